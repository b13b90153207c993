"""Adapters of the serving layer (SQL)."""
