"""Layer 1: data security."""
