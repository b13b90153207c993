"""Value types of the drift statistics: column kinds, methods, thresholds, results.

Everything here is a frozen dataclass or an enum with a JSON-safe ``to_dict``.

Example::

    from bastion.data_security.stats import ColumnKind, DriftThresholds, Method
    strict = DriftThresholds(alpha=0.01, psi_threshold=0.1)
    assert Method.KS.value == "ks" and ColumnKind("numeric") is ColumnKind.NUMERIC
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum

from bastion.data_security.errors import StatsInputInvalid

#: a JSON-safe scalar
JsonScalar = float | int | str | bool | None


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a plain float, or ``None`` when it is missing, NaN or infinite."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


class ColumnKind(StrEnum):
    """How a column's values are compared: as ordered numbers or as labels."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class Method(StrEnum):
    """The statistic that decides whether a column drifted."""

    KS = "ks"
    CHI_SQUARE = "chi_square"
    JENSEN_SHANNON = "jensen_shannon"
    PSI = "psi"


class PsiLevel(StrEnum):
    """The conventional reading of a PSI value (credit-risk practice)."""

    STABLE = "stable"  # < moderate threshold
    MODERATE = "moderate"  # between the two thresholds
    SIGNIFICANT = "significant"  # >= psi_threshold


@dataclass(frozen=True)
class TestResult:
    """A test statistic and its p-value."""

    __test__ = False  # not a pytest test class despite the name

    statistic: float
    p_value: float

    def to_dict(self) -> dict[str, float | None]:
        return {
            "statistic": finite_or_none(self.statistic),
            "p_value": finite_or_none(self.p_value),
        }


@dataclass(frozen=True)
class DriftThresholds:
    """Every threshold a drift decision uses; reports echo the instance they used.

    A p-value test flags drift only when it is significant (``p < alpha``) *and*
    its effect size reaches a floor: with a million rows a KS test finds a
    difference of 0.2 % "significant", and nobody should be paged for that.
    """

    alpha: float = 0.05
    #: KS statistic D (max CDF gap) below which a significant KS result is ignored
    ks_min_statistic: float = 0.05
    #: Cramér's V below which a significant chi-square result is ignored
    chi_square_min_effect: float = 0.05
    #: Jensen-Shannon distance (base 2, in [0, 1]) at or above which JS flags drift
    js_threshold: float = 0.1
    #: PSI at or above which the shift is "significant" (and PSI, when chosen, flags)
    psi_threshold: float = 0.2
    #: PSI at or above which the shift is "moderate"
    psi_moderate: float = 0.1
    #: absolute null-rate change that, when also significant, flags the column
    null_rate_min_delta: float = 0.05
    #: fewer non-null rows than this on either side: the column is not tested
    min_samples: int = 30
    #: a numeric column with at most this many distinct values is compared as levels
    max_numeric_levels: int = 20
    #: a categorical column with more levels than this uses Jensen-Shannon
    max_chi_square_levels: int = 50

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise StatsInputInvalid(
                f"alpha must be in (0, 1), got {self.alpha}", hint="use e.g. 0.05"
            )
        for name in ("ks_min_statistic", "chi_square_min_effect", "js_threshold",
                     "psi_threshold", "psi_moderate", "null_rate_min_delta"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise StatsInputInvalid(f"{name} must be a finite number >= 0, got {value}")
        if self.psi_moderate > self.psi_threshold:
            raise StatsInputInvalid(
                f"psi_moderate ({self.psi_moderate}) exceeds psi_threshold ({self.psi_threshold})"
            )
        if self.min_samples < 2 or self.max_numeric_levels < 1 or self.max_chi_square_levels < 2:
            raise StatsInputInvalid(
                "min_samples must be >= 2, max_numeric_levels >= 1, max_chi_square_levels >= 2"
            )

    def psi_level(self, value: float) -> PsiLevel:
        if value >= self.psi_threshold:
            return PsiLevel.SIGNIFICANT
        if value >= self.psi_moderate:
            return PsiLevel.MODERATE
        return PsiLevel.STABLE

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, float | int]) -> DriftThresholds:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Histogram:
    """Reference vs current shares over the same bins, for charts and reports."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]

    def to_dict(self) -> dict[str, list[str] | list[float]]:
        return {
            "labels": list(self.labels),
            "reference": [float(v) for v in self.reference],
            "current": [float(v) for v in self.current],
        }


@dataclass(frozen=True)
class NullDrift:
    """The change of a column's null rate, tested separately from its values."""

    reference_rate: float
    current_rate: float
    p_value: float
    drifted: bool

    @property
    def delta(self) -> float:
        return self.current_rate - self.reference_rate

    def to_dict(self) -> dict[str, JsonScalar]:
        return {
            "reference_rate": self.reference_rate,
            "current_rate": self.current_rate,
            "delta": self.delta,
            "p_value": finite_or_none(self.p_value),
            "drifted": self.drifted,
        }


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict for one column, with the evidence and the reason for the method.

    ``statistic`` is the chosen method's statistic (KS D, chi-square, JS distance
    or PSI), ``effect`` the effect size compared with the floor (KS D, Cramér's V,
    JS distance or PSI); ``p_value`` is ``None`` for the distance methods.  ``psi``
    and ``jensen_shannon`` are always computed as magnitude scores.
    """

    name: str
    kind: ColumnKind
    method: Method
    reason: str
    statistic: float
    p_value: float | None
    effect: float
    psi: float
    jensen_shannon: float
    distribution_drifted: bool
    nulls: NullDrift
    n_reference: int
    n_current: int
    thresholds: DriftThresholds
    histogram: Histogram
    new_categories: tuple[str, ...] = ()
    new_category_share: float = 0.0
    tested: bool = True

    @property
    def drifted(self) -> bool:
        """True when the values or the null rate drifted."""
        return self.distribution_drifted or self.nulls.drifted

    @property
    def psi_level(self) -> PsiLevel:
        return self.thresholds.psi_level(self.psi)

    def summary(self) -> str:
        """One line: verdict, method, statistic and PSI."""
        verdict = "DRIFT" if self.drifted else "ok"
        if not self.tested:
            verdict = "untested"
        p = "" if self.p_value is None else f", p={self.p_value:.3g}"
        text = (f"{self.name}: {verdict} — {self.method.value} statistic={self.statistic:.4g}{p},"
                f" PSI={self.psi:.3f} ({self.psi_level.value})")
        if self.nulls.drifted:
            text += (f"; null rate {self.nulls.reference_rate:.1%} -> "
                     f"{self.nulls.current_rate:.1%}")
        if self.new_categories:
            text += f"; {len(self.new_categories)} new categories ({self.new_category_share:.1%})"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "method": self.method.value,
            "reason": self.reason,
            "statistic": finite_or_none(self.statistic),
            "p_value": finite_or_none(self.p_value),
            "effect": finite_or_none(self.effect),
            "psi": finite_or_none(self.psi),
            "psi_level": self.psi_level.value,
            "jensen_shannon": finite_or_none(self.jensen_shannon),
            "drifted": self.drifted,
            "distribution_drifted": self.distribution_drifted,
            "tested": self.tested,
            "nulls": self.nulls.to_dict(),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "new_categories": list(self.new_categories),
            "new_category_share": self.new_category_share,
            "thresholds": self.thresholds.to_dict(),
            "histogram": self.histogram.to_dict(),
        }


__all__ = [
    "ColumnDrift",
    "ColumnKind",
    "DriftThresholds",
    "Histogram",
    "JsonScalar",
    "Method",
    "NullDrift",
    "PsiLevel",
    "TestResult",
    "finite_or_none",
]
