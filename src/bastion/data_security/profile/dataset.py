"""A whole dataset's (or batch's) mergeable profile and its stable serialization.

The byte form is ``MAGIC + version (u16, big-endian) + canonical JSON`` where
sketches are base64 of their native DataSketches serialization, so a profile
written today can be read, merged and compared later.

Example::

    whole = profile_frame(chunk_a).merge(profile_frame(chunk_b))
    blob = whole.to_bytes()
    assert DatasetProfile.from_bytes(blob) == whole
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from bastion.data_security.errors import InvalidProfile
from bastion.data_security.profile.column import ColumnProfile

MAGIC = b"BASTION-PROFILE\n"
#: bump when the serialized layout changes; readers refuse unknown versions
FORMAT_VERSION = 1


@dataclass(frozen=True)
class DatasetProfile:
    """Row count plus one :class:`ColumnProfile` per column, in column order."""

    row_count: int
    columns: tuple[ColumnProfile, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise InvalidProfile("profile has duplicate column names")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> ColumnProfile:
        """The named column's profile; raises :class:`InvalidProfile` if absent."""
        for col in self.columns:
            if col.name == name:
                return col
        raise InvalidProfile(
            f"profile has no column {name!r}", hint=f"columns: {', '.join(self.column_names)}"
        )

    def get(self, name: str) -> ColumnProfile | None:
        """The named column's profile or ``None``."""
        return next((c for c in self.columns if c.name == name), None)

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        """Profile of the concatenated rows of ``self`` and ``other``.

        Columns present in only one side are kept; the other side's rows count
        as nulls for them (the rows existed, the column did not).
        """
        merged: list[ColumnProfile] = []
        for col in self.columns:
            theirs = other.get(col.name)
            merged.append(col.merge(theirs) if theirs else _pad(col, other.row_count))
        for col in other.columns:
            if self.get(col.name) is None:
                merged.append(_pad(col, self.row_count))
        return DatasetProfile(row_count=self.row_count + other.row_count, columns=tuple(merged))

    def to_dict(self) -> dict[str, object]:
        """Human-oriented JSON-safe summary (estimates, quantiles, top values)."""
        return {
            "row_count": self.row_count,
            "columns": {c.name: c.describe() for c in self.columns},
        }

    def to_bytes(self) -> bytes:
        """Stable, versioned serialization (round-trips through :meth:`from_bytes`)."""
        doc = {"row_count": self.row_count, "columns": [c.to_dict() for c in self.columns]}
        body = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return MAGIC + struct.pack(">H", FORMAT_VERSION) + body.encode("utf-8")

    @classmethod
    def from_bytes(cls, blob: bytes) -> DatasetProfile:
        """Parse :meth:`to_bytes` output; raises :class:`InvalidProfile` on anything else."""
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 2:
            raise InvalidProfile("not a Bastion profile (bad magic header)")
        (version,) = struct.unpack(">H", blob[len(MAGIC) : len(MAGIC) + 2])
        if version != FORMAT_VERSION:
            raise InvalidProfile(
                f"profile format version {version} is not supported",
                hint=f"this Bastion reads version {FORMAT_VERSION}",
            )
        try:
            doc = json.loads(blob[len(MAGIC) + 2 :].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InvalidProfile(f"profile body is not valid JSON: {e}") from e
        if not isinstance(doc, Mapping) or not isinstance(doc.get("columns"), list):
            raise InvalidProfile("profile body must be an object with a 'columns' list")
        rows = doc.get("row_count")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise InvalidProfile("profile 'row_count' must be a non-negative int")
        cols = []
        for item in doc["columns"]:
            if not isinstance(item, Mapping):
                raise InvalidProfile("each profile column must be an object")
            cols.append(ColumnProfile.from_dict(item))
        return cls(row_count=rows, columns=tuple(cols))


def _pad(col: ColumnProfile, missing_rows: int) -> ColumnProfile:
    return ColumnProfile(
        name=col.name,
        logical=col.logical,
        dtype=col.dtype,
        count=col.count + missing_rows,
        null_count=col.null_count + missing_rows,
        hll=col.hll,
        numeric=col.numeric,
        text=col.text,
    )


__all__ = ["FORMAT_VERSION", "DatasetProfile"]
