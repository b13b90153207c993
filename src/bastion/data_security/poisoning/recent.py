"""The accepted batches since the reference was pinned, for cumulative drift tests.

Slow poisoning spreads a shift over many small batches, each too small to
alarm alone.  A :class:`RecentWindow` accumulates accepted batches (immutably:
``with_batch`` returns a new window) so ``detect_poisoning`` can test
``recent + batch`` against the pinned reference.  It keeps at most
``max_rows`` rows, dropping the oldest: a slow drift shows in the newest rows.
Quarantined batches must not be added.  ``to_bytes`` / ``from_bytes`` use
parquet (data only).

Example::

    window = RecentWindow.empty(max_rows=50_000)
    for batch in accepted_batches:
        window = window.with_batch(batch)
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import polars as pl

from bastion.data_security.errors import InvalidPoisoningReference, PoisoningInputError


@dataclass(frozen=True)
class RecentWindow:
    """Accepted rows since the pin (bounded) and how many batches they came from."""

    rows: pl.DataFrame
    batches: int = 0
    max_rows: int = 50_000

    @classmethod
    def empty(cls, *, max_rows: int = 50_000) -> RecentWindow:
        if max_rows < 1:
            raise PoisoningInputError(f"RecentWindow.max_rows must be >= 1, got {max_rows}")
        return cls(rows=pl.DataFrame(), batches=0, max_rows=max_rows)

    @property
    def height(self) -> int:
        return self.rows.height

    def with_batch(self, batch: pl.DataFrame) -> RecentWindow:
        """A new window with ``batch`` appended (oldest rows dropped beyond ``max_rows``)."""
        if self.rows.width and set(batch.columns) != set(self.rows.columns):
            raise PoisoningInputError(
                "batch columns differ from the recent window's columns",
                hint="all batches of one dataset must have the same columns",
            )
        ordered = batch.select(self.rows.columns) if self.rows.width else batch
        rows = (
            pl.concat([self.rows, ordered], how="vertical_relaxed") if self.rows.width else ordered
        )
        return RecentWindow(
            rows=rows.tail(self.max_rows), batches=self.batches + 1, max_rows=self.max_rows
        )

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        self.rows.with_columns(
            pl.lit(self.batches).alias("__batches"), pl.lit(self.max_rows).alias("__max_rows")
        ).write_parquet(buf)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> RecentWindow:
        try:
            frame = pl.read_parquet(io.BytesIO(blob))
        except Exception as e:  # polars raises several unrelated types for bad bytes
            raise InvalidPoisoningReference("recent-window bytes are not readable parquet") from e
        if "__batches" not in frame.columns or "__max_rows" not in frame.columns:
            raise InvalidPoisoningReference("recent-window bytes lack their counters")
        if frame.height == 0:
            return cls.empty()
        batches = int(frame.get_column("__batches")[0])
        max_rows = int(frame.get_column("__max_rows")[0])
        return cls(rows=frame.drop("__batches", "__max_rows"), batches=batches, max_rows=max_rows)


__all__ = ["RecentWindow"]
