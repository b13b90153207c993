"""Adapters of the data-security ports (SQLAlchemy)."""
