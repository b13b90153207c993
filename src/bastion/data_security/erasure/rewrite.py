"""Rewriting a batch without one subject's rows: the mask, the new bytes, scrubbed reports.

Values are compared as text, exactly as they read in the stored batch
(``C-1042``, ``1042``): an integer column matches ``1042``, not ``1042.0``.

Example::

    rest = frame.filter(~subject_rows(frame, "customer_id", "C-1042"))
    raw = raw_bytes(rest, "csv")
"""

from __future__ import annotations

import io
import json
import re

import polars as pl

from bastion.core.canonical import JSON

#: what replaces a report string that held the subject's identifier
ERASED_TEXT = "[erased]"


def mentions(text: str, value: str) -> bool:
    """Whether ``text`` holds ``value`` as a whole token (``1`` is not in ``DSR-101``)."""
    pattern = r"(?<![0-9A-Za-z])" + re.escape(value) + r"(?![0-9A-Za-z])"
    return re.search(pattern, text) is not None


def subject_rows(frame: pl.DataFrame, column: str, value: str) -> pl.Series:
    """A boolean mask of the rows whose ``column`` reads ``value`` (nulls never match)."""
    text = frame.get_column(column).cast(pl.String, strict=False)
    return (text == value).fill_null(False)


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


def raw_bytes(frame: pl.DataFrame, fmt: str) -> bytes:
    """The batch re-serialized in its delivered format (the source's bytes held the subject)."""
    buf = io.BytesIO()
    if fmt == "parquet":
        frame.write_parquet(buf)
    elif fmt == "jsonl":
        frame.write_ndjson(buf)
    else:
        frame.write_csv(buf)
    return buf.getvalue()


def scrub(text: str, value: str) -> str:
    """A JSON document with every string that contains ``value`` replaced (reports)."""
    return json.dumps(_scrub(json.loads(text), value), sort_keys=True)


def _scrub(doc: JSON, value: str) -> JSON:
    if isinstance(doc, str):
        return ERASED_TEXT if mentions(doc, value) else doc
    if isinstance(doc, list):
        return [_scrub(d, value) for d in doc]
    if isinstance(doc, dict):
        return {
            (ERASED_TEXT if mentions(k, value) else k): _scrub(v, value) for k, v in doc.items()
        }
    return doc


__all__ = ["ERASED_TEXT", "mentions", "parquet_bytes", "raw_bytes", "scrub", "subject_rows"]
