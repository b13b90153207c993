"""The REST API (FastAPI): bearer auth, typed errors mapped to HTTP statuses."""
