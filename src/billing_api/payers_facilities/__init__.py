"""Payers and facilities: kept per company; parent-level ones are managed by company administrators only and
copied down to child companies."""
