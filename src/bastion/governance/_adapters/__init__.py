"""Adapters of the governance layer (SQLAlchemy)."""
