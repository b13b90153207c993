"""What an attacker may change in a tabular row, and which attacks to run.

:class:`TabularConstraints` makes adversarial examples realistic: immutable
features (age, a date of birth) never move; integer features stay integers;
features with a finite numeric domain snap to an allowed value; every feature
stays inside its bounds; and each feature moves at most ``eps`` standard
deviations (times an optional per-feature scale).  String categoricals are
always held fixed by the robustness suite.

:class:`RobustnessSuite` says which attacks run, on how many rows, with which
budget.

Example::

    constraints = TabularConstraints.from_frame(frame, features, immutable={"age"})
    suite = RobustnessSuite(eps=0.3, sample_size=200)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from bastion.model_security.errors import EvaluationInputInvalid
from bastion.model_security.evaluation._canonical import safe_float

Bounds = tuple[float | None, float | None]


@dataclass(frozen=True)
class TabularConstraints:
    """Domain rules an adversarial example must satisfy to count."""

    immutable: frozenset[str] = frozenset()
    integer: frozenset[str] = frozenset()
    bounds: Mapping[str, Bounds] = field(default_factory=dict)
    allowed_values: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    eps_scale: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, (low, high) in self.bounds.items():
            if low is not None and high is not None and low > high:
                raise EvaluationInputInvalid(
                    f"constraint bounds for {name!r} are reversed: {low} > {high}",
                    hint="give bounds as (low, high)",
                )
        for name, scale in self.eps_scale.items():
            if not scale >= 0:
                raise EvaluationInputInvalid(
                    f"eps_scale for {name!r} must be >= 0, got {scale}",
                    hint="use 0 to freeze a feature, 1 for the suite's eps",
                )
        for name, values in self.allowed_values.items():
            if not values:
                raise EvaluationInputInvalid(f"allowed_values for {name!r} is empty")

    @classmethod
    def from_frame(
        cls,
        frame: pl.DataFrame,
        features: Sequence[str],
        *,
        immutable: Iterable[str] = (),
        allowed_values: Mapping[str, Sequence[float]] | None = None,
        eps_scale: Mapping[str, float] | None = None,
        observed_bounds: bool = True,
    ) -> TabularConstraints:
        """Constraints inferred from ``frame``: integer dtypes, observed min / max as bounds."""
        missing = [f for f in [*features, *immutable] if f not in frame.columns]
        if missing:
            raise EvaluationInputInvalid(
                f"constraint features not in the frame: {', '.join(missing)}",
                hint=f"available columns: {', '.join(frame.columns)}",
            )
        numeric = [f for f in features if frame.schema[f].is_numeric()]
        integer = frozenset(f for f in numeric if frame.schema[f].is_integer())
        bounds: dict[str, Bounds] = {}
        if observed_bounds:
            for name in numeric:
                column = frame.get_column(name).cast(pl.Float64)
                low, high = column.min(), column.max()
                if isinstance(low, float) and isinstance(high, float):
                    bounds[name] = (low, high)
        return cls(
            immutable=frozenset(immutable),
            integer=integer,
            bounds=bounds,
            allowed_values={
                k: tuple(sorted(float(x) for x in v)) for k, v in (allowed_values or {}).items()
            },
            eps_scale=dict(eps_scale or {}),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "immutable": sorted(self.immutable),
            "integer": sorted(self.integer),
            "bounds": {
                k: [safe_float(lo), safe_float(hi)] for k, (lo, hi) in sorted(self.bounds.items())
            },
            "allowed_values": {
                k: [safe_float(v) for v in vals] for k, vals in sorted(self.allowed_values.items())
            },
            "eps_scale": {k: safe_float(v) for k, v in sorted(self.eps_scale.items())},
        }


class AttackKind(enum.StrEnum):
    """Attacks of the robustness suite (all from the Adversarial Robustness Toolbox)."""

    HOP_SKIP_JUMP = "hop_skip_jump"  # black box: any classifier with predict_proba
    DECISION_TREE = "decision_tree"  # white box: a DecisionTreeClassifier pipeline
    FGSM = "fgsm"  # gradient: a LogisticRegression pipeline
    PGD = "pgd"  # gradient: a LogisticRegression pipeline


@dataclass(frozen=True)
class RobustnessSuite:
    """Which attacks to run, on how many rows, with which L∞ budget (in std units)."""

    attacks: tuple[AttackKind, ...] = tuple(AttackKind)
    eps: float = 0.5
    sample_size: int = 200
    seed: int = 0
    # HopSkipJump queries the model hundreds of times per row: it attacks the first
    # ``hsj_sample_size`` rows of the sample only, so a forest still finishes in seconds
    hsj_sample_size: int = 25
    hsj_max_iter: int = 5
    hsj_max_eval: int = 100
    hsj_init_eval: int = 10
    pgd_max_iter: int = 20

    def __post_init__(self) -> None:
        if not self.eps >= 0:
            raise EvaluationInputInvalid(f"suite eps must be >= 0, got {self.eps}")
        for name in (
            "sample_size",
            "hsj_sample_size",
            "hsj_max_iter",
            "hsj_max_eval",
            "hsj_init_eval",
            "pgd_max_iter",
        ):
            if getattr(self, name) < 1:
                raise EvaluationInputInvalid(
                    f"suite {name} must be >= 1, got {getattr(self, name)}"
                )

    def to_dict(self) -> dict[str, object]:
        return {
            "attacks": [a.value for a in self.attacks],
            "eps_std_units": safe_float(self.eps),
            "sample_size": self.sample_size,
            "seed": self.seed,
            "hsj_sample_size": self.hsj_sample_size,
            "hsj_max_iter": self.hsj_max_iter,
            "hsj_max_eval": self.hsj_max_eval,
            "hsj_init_eval": self.hsj_init_eval,
            "pgd_max_iter": self.pgd_max_iter,
        }


__all__ = ["AttackKind", "Bounds", "RobustnessSuite", "TabularConstraints"]
