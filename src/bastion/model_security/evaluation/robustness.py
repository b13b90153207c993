"""The adversarial-robustness suite: ART attacks under realistic tabular constraints.

On a bounded, seeded sample of rows (no missing numeric values) the suite
runs each requested attack against the rows the model classifies correctly,
projects every adversarial example onto the :class:`TabularConstraints`
(immutable features reset, per-feature budget of ``eps`` standard deviations,
bounds, integer and finite domains — see ``_space``), asks the model again,
and counts only rows that are still misclassified.  String categoricals are
held fixed.  Attacks that do not apply to the model (FGSM on a forest) are
reported as skipped with the reason; an attack that crashes fails the
evaluation (an error while checking is never a pass).

Example::

    report = run_robustness(pipeline, frame, y, classes=(0, 1), features=cols,
                            constraints=TabularConstraints.from_frame(frame, cols, immutable={"a"}),
                            suite=RobustnessSuite(eps=0.5, sample_size=200))
    [(a.attack, a.success_rate) for a in report.attacks]
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from numpy.typing import NDArray

from bastion.model_security.errors import EvaluationError
from bastion.model_security.evaluation import _attacks
from bastion.model_security.evaluation._arrays import ModelArray, encoded_array, generic_array
from bastion.model_security.evaluation._canonical import safe_float
from bastion.model_security.evaluation._space import AttackSpace, FloatArray, build_space
from bastion.model_security.evaluation.constraints import (
    AttackKind,
    RobustnessSuite,
    TabularConstraints,
)


class AttackStatus(enum.StrEnum):
    RAN = "ran"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Perturbation:
    """Mean / median size of the successful perturbations (``None`` when none succeeded)."""

    l2_mean: float | None = None
    l2_median: float | None = None
    linf_mean: float | None = None
    linf_median: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "l2_mean": safe_float(self.l2_mean),
            "l2_median": safe_float(self.l2_median),
            "linf_mean": safe_float(self.linf_mean),
            "linf_median": safe_float(self.linf_median),
        }


@dataclass(frozen=True)
class AttackReport:
    """Outcome of one attack on the sample."""

    attack: AttackKind
    status: AttackStatus
    reason: str | None = None
    space: str | None = None  # "encoded" | "generic": where the attack searched
    n_rows: int = 0
    n_attacked: int = 0  # rows the model got right, i.e. rows an attack can flip
    n_successful: int = 0
    clean_accuracy: float | None = None
    adversarial_accuracy: float | None = None
    success_rate: float | None = None  # after projection, over attacked rows
    unconstrained_success_rate: float | None = None  # before projection
    perturbation_original_units: Perturbation = field(default_factory=Perturbation)
    perturbation_std_units: Perturbation = field(default_factory=Perturbation)
    duration_s: float | None = None
    # projected adversarial rows, aligned with the first n_rows of RobustnessReport.sample
    # (not serialised: the signed statement carries numbers, not rows)
    adversarial: pl.DataFrame | None = field(default=None, compare=False, repr=False)
    successful: tuple[bool, ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "attack": self.attack.value,
            "status": self.status.value,
            "reason": self.reason,
            "space": self.space,
            "n_rows": self.n_rows,
            "n_attacked": self.n_attacked,
            "n_successful": self.n_successful,
            "clean_accuracy": safe_float(self.clean_accuracy),
            "adversarial_accuracy": safe_float(self.adversarial_accuracy),
            "success_rate": safe_float(self.success_rate),
            "unconstrained_success_rate": safe_float(self.unconstrained_success_rate),
            "perturbation_original_units": self.perturbation_original_units.to_dict(),
            "perturbation_std_units": self.perturbation_std_units.to_dict(),
            "duration_s": safe_float(round(self.duration_s, 3))
            if self.duration_s is not None
            else None,
        }


@dataclass(frozen=True)
class RobustnessReport:
    """All attacks of a suite on one sample."""

    suite: RobustnessSuite
    constraints: TabularConstraints
    attacked_features: tuple[str, ...]  # numeric features an attack may move
    fixed_features: tuple[str, ...]  # immutable numerics and every categorical
    n_rows: int
    rows_skipped_missing: int
    attacks: tuple[AttackReport, ...]
    sample: pl.DataFrame | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "suite": self.suite.to_dict(),
            "constraints": self.constraints.to_dict(),
            "attacked_features": list(self.attacked_features),
            "fixed_features": list(self.fixed_features),
            "n_rows": self.n_rows,
            "rows_skipped_missing": self.rows_skipped_missing,
            "attacks": [a.to_dict() for a in self.attacks],
        }


def run_robustness(
    model: object,
    frame: pl.DataFrame,
    y: NDArray[np.generic],
    *,
    classes: Sequence[object],
    features: Sequence[str],
    constraints: TabularConstraints,
    suite: RobustnessSuite,
    on_attack: Callable[[AttackKind, int, int], None] | None = None,
) -> RobustnessReport:
    """Run ``suite`` against ``model`` on a sample of ``frame`` (see module doc)."""
    sample_rows, skipped = _sample_rows(frame, features, suite)
    sample = frame[sample_rows]
    y_sample = np.asarray(y)[sample_rows]
    space = build_space(sample.select(features), frame, features, constraints, suite.eps)
    clean = np.asarray(model.predict(space.frame(space.x)))  # type: ignore[attr-defined]
    correct = clean == y_sample
    encoded = encoded_array(model, space)
    arr = encoded if isinstance(encoded, ModelArray) else generic_array(model, space)
    class_list = list(classes)
    y_index = np.array([class_list.index(v) for v in y_sample], dtype=int)
    reports = []
    for i, kind in enumerate(suite.attacks):
        if on_attack:
            on_attack(kind, i, len(suite.attacks))
        reports.append(
            _one_attack(kind, model, space, arr, y_sample, y_index, correct, class_list, suite)
        )
    mutable = tuple(n for n, m in zip(space.numeric, space.mutable, strict=True) if m)
    return RobustnessReport(
        suite=suite,
        constraints=constraints,
        attacked_features=mutable,
        fixed_features=tuple(f for f in features if f not in mutable),
        n_rows=len(sample_rows),
        rows_skipped_missing=skipped,
        attacks=tuple(reports),
        sample=space.to_polars(space.x),
    )


def _one_attack(
    kind: AttackKind,
    model: object,
    space: AttackSpace,
    arr: ModelArray,
    y: NDArray[np.generic],
    y_index: NDArray[np.int_],
    correct: NDArray[np.bool_],
    classes: list[object],
    suite: RobustnessSuite,
) -> AttackReport:
    reason = _attacks.inapplicable(kind, arr)
    if reason is not None:
        return AttackReport(kind, AttackStatus.SKIPPED, reason=reason)
    started = time.perf_counter()
    limit = suite.hsj_sample_size if kind is AttackKind.HOP_SKIP_JUMP else len(y)
    x_adv = space.x.copy()
    raw_success = np.zeros(len(y), dtype=bool)
    rows = np.flatnonzero(correct[:limit])
    note = None
    if not space.mutable.any():
        note = "no feature may change (budget is zero or every numeric feature is immutable)"
    elif len(rows):
        try:
            adv = _attacks.generate(kind, arr, arr.array[rows], y_index[rows], len(classes), suite)
        except Exception as e:  # fail closed: a crashed attack is not a robust model
            raise EvaluationError(
                f"adversarial attack {kind.value} failed: {type(e).__name__}: {e}",
                hint="report it with the model type; drop the attack from the suite to proceed",
            ) from e
        x_adv[rows] = arr.decode(adv)
        raw_success[rows] = arr.predict_proba(adv).argmax(axis=1) != y_index[rows]
    projected = space.project(x_adv)[:limit]
    original = space.x[:limit]
    adv_pred = np.asarray(model.predict(space.frame(projected, space.cats.iloc[:limit])))  # type: ignore[attr-defined]
    y, correct = y[:limit], correct[:limit]
    success = correct & (adv_pred != y)
    attacked = int(correct.sum())
    delta = projected[success] - original[success]
    return AttackReport(
        attack=kind,
        status=AttackStatus.RAN,
        reason=note,
        space=arr.kind,
        n_rows=len(y),
        n_attacked=attacked,
        n_successful=int(success.sum()),
        clean_accuracy=float(correct.mean()) if len(y) else None,
        adversarial_accuracy=float((adv_pred == y).mean()) if len(y) else None,
        success_rate=float(success.sum() / attacked) if attacked else None,
        unconstrained_success_rate=float(raw_success.sum() / attacked) if attacked else None,
        perturbation_original_units=_norms(delta),
        perturbation_std_units=_norms(delta / np.where(space.std > 0, space.std, 1.0)),
        duration_s=time.perf_counter() - started,
        adversarial=space.to_polars(projected),
        successful=tuple(bool(s) for s in success),
    )


def _norms(delta: FloatArray) -> Perturbation:
    if len(delta) == 0:
        return Perturbation()
    l2 = np.linalg.norm(delta, ord=2, axis=1)
    linf = np.abs(delta).max(axis=1) if delta.shape[1] else np.zeros(len(delta))
    return Perturbation(
        float(l2.mean()), float(np.median(l2)), float(linf.mean()), float(np.median(linf))
    )


def _sample_rows(
    frame: pl.DataFrame, features: Sequence[str], suite: RobustnessSuite
) -> tuple[NDArray[np.int_], int]:
    numeric = [f for f in features if frame.schema[f].is_numeric()]
    if numeric:
        complete = frame.select(
            pl.all_horizontal(
                [pl.col(c).is_not_null() & ~pl.col(c).cast(pl.Float64).is_nan() for c in numeric]
            )
        ).to_series()
        eligible = np.flatnonzero(complete.to_numpy())
    else:
        eligible = np.arange(len(frame))
    rng = np.random.default_rng(suite.seed)
    if len(eligible) > suite.sample_size:
        eligible = np.sort(rng.choice(eligible, size=suite.sample_size, replace=False))
    skipped = len(frame) - int(len(np.flatnonzero(complete.to_numpy())) if numeric else len(frame))
    return eligible, skipped


__all__ = ["AttackReport", "AttackStatus", "Perturbation", "RobustnessReport", "run_robustness"]
