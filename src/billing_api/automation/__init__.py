"""Billing automation: company and patient settings, cards, billing contacts, documents, and the nightly run."""
