"""Adapters of the core storage ports (local folder, SQLAlchemy)."""
