"""Layer 2: model security."""
