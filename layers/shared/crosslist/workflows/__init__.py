"""Workflows: a marketplace action as an ordered list of steps whose progress survives every retry."""
