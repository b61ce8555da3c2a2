"""Vinted: no public API; every call runs in the user's browser through the crosslist extension."""

MAX_PHOTOS = 20  # Vinted accepts at most 20 photos per item
