"""SQLAlchemy adapters: the metadata database (SQLite WAL or PostgreSQL)."""
