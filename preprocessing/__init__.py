"""Turn recordings and annotations into training windows, and simulate recordings."""
