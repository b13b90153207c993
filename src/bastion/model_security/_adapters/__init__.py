"""Adapters of the model-security ports (SQLAlchemy)."""
