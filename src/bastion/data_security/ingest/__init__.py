"""Ingestion: read a file, stage it as Parquet, profile it, audit it, decide."""
