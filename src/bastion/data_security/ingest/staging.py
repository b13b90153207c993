"""Staging an incoming file: strict streaming read -> Parquet + mergeable profile.

The staged Parquet file lives in a private scratch folder; the audit reads it
back in bounded chunks, so a batch larger than memory is handled.

Example::

    profile, rows, schema, fmt, sha = stage_file(Path("batch.csv"), ReadOptions(), staged)
    for chunk in parquet_chunks(staged):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from bastion.core.errors import InputError
from bastion.data_security.profile.build import profile_frame
from bastion.data_security.profile.dataset import DatasetProfile
from bastion.data_security.readers import ReadOptions, open_table

READ_BATCH_ROWS = 200_000
AUDIT_CHUNK_ROWS = 2_000_000


def stage_file(
    path: Path, options: ReadOptions, staged: Path
) -> tuple[DatasetProfile, int, dict[str, object], str, str]:
    """Read ``path`` strictly, write it to ``staged`` as Parquet and profile it.

    Returns (profile, rows, schema, format, SHA-256 of the raw bytes)."""
    profile: DatasetProfile | None = None
    writer: pq.ParquetWriter | None = None
    try:
        # pyarrow writes a batch (without the GIL) while the next is profiled; leaving the
        # executor waits for the last write, before the writer is closed
        with (
            open_table(path, options=options) as reader,
            ThreadPoolExecutor(max_workers=1) as writing,
        ):
            pending: Future[None] | None = None
            for batch in reader.iter_batches(READ_BATCH_ROWS):
                table = batch.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(staged, table.schema)
                if pending is not None:
                    pending.result()
                pending = writing.submit(writer.write_table, table)
                part = profile_frame(batch)
                profile = part if profile is None else profile.merge(part)
            if pending is not None:
                pending.result()
            rows, schema_doc, fmt = reader.rows_read, reader.schema.to_dict(), reader.format.value
            raw_sha = reader.sha256
    finally:
        if writer is not None:
            writer.close()
    if profile is None or writer is None or raw_sha is None:
        raise InputError(f"{path} holds no rows", hint="send a file with at least one row")
    return profile, rows, dict(schema_doc), fmt, raw_sha


def parquet_chunks(path: Path) -> Iterator[pl.DataFrame]:
    """The staged batch in chunks of about AUDIT_CHUNK_ROWS rows (bounded memory)."""
    pending: list[pl.DataFrame] = []
    held = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_BATCH_ROWS):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        pending.append(frame)
        held += frame.height
        if held >= AUDIT_CHUNK_ROWS:
            yield pl.concat(pending)
            pending, held = [], 0
    if pending:
        yield pl.concat(pending)


__all__ = ["AUDIT_CHUNK_ROWS", "READ_BATCH_ROWS", "parquet_chunks", "stage_file"]
