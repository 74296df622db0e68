"""billing-api: who may see and touch whose bills, and the nightly billing automation."""

__version__ = "0.1.0"
