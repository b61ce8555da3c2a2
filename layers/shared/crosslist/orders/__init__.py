"""Sales imported from the marketplaces (an `orders` job writes them; the HTTP API lists them)."""
