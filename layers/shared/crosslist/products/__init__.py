"""The reseller's catalogue: one product, listed on several marketplaces."""
