"""One batch as every detector sees it: frame, model matrix, label codes, model probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import polars as pl

from bastion.data_security.checks.report import CheckResult, Decision, MetricValue
from bastion.data_security.poisoning._models import predict_proba
from bastion.data_security.poisoning._schema import FloatArray, IntArray, TableSchema
from bastion.data_security.poisoning.policy import PoisoningPolicy
from bastion.data_security.poisoning.reference import PoisoningReference

CATEGORY = "poisoning"


@dataclass(frozen=True)
class BatchView:
    """Precomputed views of the batch shared by the detectors (computed once)."""

    frame: pl.DataFrame
    x: FloatArray
    y: IntArray
    proba: FloatArray
    schema: TableSchema

    @classmethod
    def of(cls, frame: pl.DataFrame, ref: PoisoningReference) -> BatchView:
        x = ref.schema.model_matrix(frame)
        model = ref.derived.label_model(ref)
        proba = predict_proba(model, x, len(ref.schema.classes))
        return cls(frame, x, ref.schema.label_codes(frame), proba, ref.schema)

    @cached_property
    def cells(self) -> pl.DataFrame:
        """Canonical cell strings of the features (``TableSchema.cell_strings``), made once."""
        return self.schema.cell_strings(self.frame)

    @cached_property
    def row_hashes(self) -> npt.NDArray[np.uint64]:
        """``TableSchema.row_hashes`` of the batch, from the shared ``cells``."""
        return self.schema.cell_hashes(self.cells)

    @property
    def n(self) -> int:
        return self.frame.height

    @property
    def known(self) -> IntArray:
        """Indices of rows whose label is a trusted class."""
        return np.flatnonzero(self.y >= 0).astype(np.int64)


def result(
    name: str,
    passed: bool,
    blocking: bool,
    summary: str,
    metrics: dict[str, MetricValue],
    flagged: IntArray | list[int] | tuple[int, ...] = (),
    details: list[str] | tuple[str, ...] = (),
    policy: PoisoningPolicy | None = None,
    decision: Decision | None = None,
) -> CheckResult:
    """Build a poisoning CheckResult (flagged rows sorted and unique, details capped)."""
    rows = tuple(sorted({int(r) for r in flagged}))
    cap = policy.max_flagged_details if policy is not None else 10
    shown = list(details[:cap])
    if len(details) > cap:
        shown.append(f"... {len(details) - cap} more")
    return CheckResult(
        name=name,
        category=CATEGORY,
        passed=passed,
        blocking=blocking,
        summary=summary,
        metrics=metrics,
        flagged_rows=rows,
        details=tuple(shown),
        decision=decision,
    )


__all__ = ["CATEGORY", "BatchView", "result"]
