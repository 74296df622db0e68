"""Service and diagnosis codes: each code system's rule, and the checks of a bill's or encounter's lines and
diagnoses against them and against the company's code systems."""
