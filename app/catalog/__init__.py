"""Products, SKUs, price tiers."""
