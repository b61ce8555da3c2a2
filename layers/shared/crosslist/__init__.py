"""crosslist: publish and keep second-hand listings in sync on Vinted, eBay and Etsy."""
