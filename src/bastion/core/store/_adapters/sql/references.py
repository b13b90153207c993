"""Every blob digest the metadata database mentions, for reclaiming unreferenced blobs.

Deliberately schema-blind: every text column of every table (the audit log
included) is scanned for 64-hex-digit tokens. A new table or column that
stores a digest is covered without anyone remembering to register it here, so
the reclaimer can only ever keep too much, never delete a blob something names.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bastion.core.store._adapters.sql.engine import reading

_HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


_HEX64_BYTES = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def digests_in(data: bytes) -> set[str]:
    """Every 64-hex-digit token in a blob's plaintext (a document naming other blobs)."""
    return {m.decode() for m in _HEX64_BYTES.findall(data)}


def referenced_digests(engine: Engine) -> set[str]:
    found: set[str] = set()
    meta = sa.MetaData()
    meta.reflect(bind=engine)
    with reading(engine, "collecting blob references") as c:
        for table in meta.sorted_tables:
            text_cols = [
                col for col in table.columns if isinstance(col.type, sa.String | sa.Text)
            ]
            if not text_cols:
                continue
            result = c.execution_options(stream_results=True, yield_per=5000).execute(
                sa.select(*text_cols)
            )
            for row in result:
                for value in row:
                    if isinstance(value, str) and len(value) >= 64:
                        found.update(_HEX64.findall(value.lower()))
    return found


__all__ = ["digests_in", "referenced_digests"]
