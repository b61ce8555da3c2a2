"""Imports of a seller's existing shops: listings read page by page, matched to products, proposed when unsure."""
