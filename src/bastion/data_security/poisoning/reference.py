"""The pinned, trusted reference every poisoning detector compares a batch against.

A :class:`PoisoningReference` is built ONCE from the accepted history (not just
the previous batch): a bounded uniform reservoir sample of trusted rows, the
label model's out-of-fold probabilities on that sample (how a model trained on
trusted data behaves on rows it never saw: the base rates of disagreement), and
64-bit hashes of every history row for duplicate detection.

Serialization stores only data — a zip of ``meta.json``, ``sample.parquet`` and
``.npy`` arrays loaded with ``allow_pickle=False`` — never pickled models: the
out-of-fold label models (all five up to 20,000 trusted rows, else one) and
the Isolation Forest are refitted deterministically from the stored sample on
first use; a reference just built keeps the fold models it fitted.  Each member's SHA-256
is checked on load.  The lead stores these bytes encrypted in the workspace;
the internal digests only catch accidental damage, authenticity comes from
that authenticated encryption.

Example::

    ref = PoisoningReference.build(history_df, label="Status", max_rows=100_000)
    blob = ref.to_bytes()
    same = PoisoningReference.from_bytes(blob)
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import polars as pl

from bastion.data_security.errors import InvalidPoisoningReference, PoisoningInputError
from bastion.data_security.poisoning._derived import Derived
from bastion.data_security.poisoning._models import out_of_fold_models
from bastion.data_security.poisoning._schema import FloatArray, IntArray, TableSchema
from bastion.data_security.poisoning.policy import ProgressCallback

_FORMAT = "bastion.poisoning-reference/1"
_MEMBERS = ("sample.parquet", "oof.npy", "hashes.npy", "hash_labels.npy")
_MIN_ROWS = 50


def _reservoir(
    frames: Iterable[pl.DataFrame], label: str, max_rows: int, seed: int
) -> tuple[pl.DataFrame, list[pl.DataFrame], int]:
    # Bottom-k of i.i.d. uniform keys == a uniform sample without replacement, batch by batch.
    rng = np.random.default_rng(seed)
    kept: pl.DataFrame | None = None
    seen: list[pl.DataFrame] = []
    total = 0
    for frame in frames:
        if label not in frame.columns:
            raise PoisoningInputError(f"a history batch lacks the label column {label!r}")
        frame = frame.filter(pl.col(label).is_not_null())
        total += frame.height
        seen.append(frame)
        keyed = frame.with_columns(pl.Series("__key", rng.random(frame.height)))
        both = keyed if kept is None else pl.concat([kept, keyed], how="vertical_relaxed")
        kept = both.sort("__key").head(max_rows)
    if kept is None or kept.height < _MIN_ROWS:
        raise PoisoningInputError(
            f"the trusted history has {0 if kept is None else kept.height} labelled rows",
            hint=f"pin a reference from at least {_MIN_ROWS} accepted, labelled rows",
        )
    return kept.drop("__key"), seen, total


@dataclass(frozen=True)
class PoisoningReference:
    """Trusted sample + out-of-fold label probabilities + history row hashes (see module doc)."""

    schema: TableSchema
    sample: pl.DataFrame
    oof_proba: FloatArray
    history_hashes: npt.NDArray[np.uint64]
    history_labels: IntArray
    history_rows: int
    created_at: str
    derived: Derived = field(repr=False, compare=False, default_factory=Derived)

    @classmethod
    def build(
        cls,
        history: pl.DataFrame | Iterable[pl.DataFrame],
        *,
        label: str,
        max_rows: int = 100_000,
        seed: int = 0,
        progress: ProgressCallback | None = None,
    ) -> PoisoningReference:
        """Pin a reference from accepted history (one frame or an iterable of batches)."""
        if max_rows < _MIN_ROWS:
            raise PoisoningInputError(f"max_rows must be at least {_MIN_ROWS}, got {max_rows}")
        frames = [history] if isinstance(history, pl.DataFrame) else history
        sample, seen, total = _reservoir(frames, label, max_rows, seed)
        schema = TableSchema.infer(sample, label=label)
        sample = sample.select(schema.label, *schema.feature_names)
        if progress is not None:
            progress("reference: sample", 1, 3)
        y = schema.label_codes(sample)
        oof, fold_models = out_of_fold_models(schema, schema.model_matrix(sample), y)
        if progress is not None:
            progress("reference: out-of-fold label model", 2, 3)
        hashes = np.concatenate([schema.row_hashes(f) for f in seen])
        labels = np.concatenate([schema.label_codes(f) for f in seen])
        if progress is not None:
            progress("reference: history hashes", 3, 3)
        ref = cls(
            schema=schema,
            sample=sample,
            oof_proba=oof,
            history_hashes=hashes,
            history_labels=labels,
            history_rows=total,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        ref.derived.keep_label_model(ref, fold_models)
        return ref

    @property
    def sample_labels(self) -> IntArray:
        return self.derived.sample_labels(self)

    def to_bytes(self) -> bytes:
        """Data-only zip (no pickle); store it encrypted (the workspace does)."""
        members = {
            "sample.parquet": _parquet(self.sample),
            "oof.npy": _npy(self.oof_proba),
            "hashes.npy": _npy(self.history_hashes),
            "hash_labels.npy": _npy(self.history_labels),
        }
        meta = {
            "format": _FORMAT,
            "schema": self.schema.to_dict(),
            "history_rows": self.history_rows,
            "created_at": self.created_at,
            "sha256": {k: hashlib.sha256(v).hexdigest() for k, v in members.items()},
        }
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("meta.json", json.dumps(meta, sort_keys=True))
            for name, data in members.items():
                zf.writestr(name, data)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> PoisoningReference:
        """Load and verify; models are refitted lazily on first use."""
        try:
            with zipfile.ZipFile(io.BytesIO(blob)) as zf:
                meta = json.loads(zf.read("meta.json"))
                members = {name: zf.read(name) for name in _MEMBERS}
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
            raise InvalidPoisoningReference(
                "poisoning reference bytes are not a readable reference archive",
                hint="re-pin the reference from the accepted history",
            ) from e
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise InvalidPoisoningReference(
                f"unknown poisoning reference format {meta.get('format')!r}"
                if isinstance(meta, dict)
                else "poisoning reference metadata is not an object"
            )
        digests = meta.get("sha256", {})
        for name, data in members.items():
            actual = hashlib.sha256(data).hexdigest()
            if not isinstance(digests, dict) or digests.get(name) != actual:
                raise InvalidPoisoningReference(
                    f"poisoning reference member {name} fails its digest"
                )
        try:
            return cls(
                schema=TableSchema.from_dict(meta["schema"]),
                sample=pl.read_parquet(io.BytesIO(members["sample.parquet"])),
                oof_proba=np.load(io.BytesIO(members["oof.npy"]), allow_pickle=False),
                history_hashes=np.load(io.BytesIO(members["hashes.npy"]), allow_pickle=False),
                history_labels=np.load(io.BytesIO(members["hash_labels.npy"]), allow_pickle=False),
                history_rows=int(meta["history_rows"]),
                created_at=str(meta["created_at"]),
            )
        except (KeyError, ValueError, TypeError, PoisoningInputError) as e:
            raise InvalidPoisoningReference("poisoning reference content is malformed") from e

    def to_dict(self) -> dict[str, object]:
        """JSON-safe summary (not the data)."""
        return {
            "schema": self.schema.to_dict(),
            "sample_rows": self.sample.height,
            "history_rows": self.history_rows,
            "created_at": self.created_at,
        }


def _parquet(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


def _npy(array: npt.NDArray[np.generic]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


__all__ = ["PoisoningReference"]
