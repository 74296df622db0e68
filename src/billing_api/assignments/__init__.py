"""Billing customer assignments: which child companies a group's members and a user reach (rule 3), and the
context switcher."""
