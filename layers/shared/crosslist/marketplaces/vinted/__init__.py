"""Vinted: no public API; every call runs in the user's browser through the crosslist extension."""
