"""Thresholds of the poisoning detectors, in one frozen, documented policy.

Every batch-level decision is a significance test at a stated level ``alpha``
(Bonferroni-corrected across the features, classes or patterns a detector
tests), usually AND-ed with an effect-size floor, so clean batches rarely
alarm and huge batches do not alarm on trivial differences.  Each detector is
blocking (a failure quarantines the batch) or only warns.

Example::

    policy = PoisoningPolicy(flip_alpha=0.001, outlier_blocking=False)
    results = detect_poisoning(batch, reference, label="Status", policy=policy)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bastion.data_security.checks.report import FALSE_QUARANTINE_TARGET
from bastion.data_security.errors import PoisoningInputError


class PoisoningProgress(Protocol):
    """Receives ``(stage, done, total)`` as detection advances (the core never prints)."""

    def __call__(self, stage: str, done: int, total: int) -> None: ...


ProgressCallback = PoisoningProgress | Callable[[str, int, int], None]


@dataclass(frozen=True)
class PoisoningPolicy:
    """Thresholds and blocking choices; the defaults suit batches of a few hundred rows and up.

    Distribution shift: a feature drifts when its Bonferroni-corrected KS (numeric)
    or chi-square (categorical) p-value is below ``shift_alpha`` AND its PSI is at
    least ``shift_min_psi`` (``cumulative_min_psi`` for recent + batch).

    Labels: the overall label mix is tested by chi-square (``label_shift_alpha``,
    effect floor ``label_shift_min_delta``); the label rate inside each class's
    high-risk region (the ``risk_quantile`` of trusted rows the model finds least
    likely to carry that label) by a one-sided Fisher test (``risk_alpha``,
    floor ``risk_min_delta``).

    Label flips: per row, the label model's out-of-sample probability (batch rows
    scored by the out-of-fold models that scored the trusted rows) blended with
    the labels of the nearest trusted rows; likelihood-ratio statistics against
    ``flip_design_rate`` flips (any direction, and into each class) and a count of
    near-impossible labels are compared with their joint two-sample permutation
    null against the held-out trusted rows (``flip_bootstrap`` draws) at
    ``flip_alpha``; when the batch alarms, as many rows
    as the moments say moved (observed minus expected labels, calibrated on
    trusted rows) are named, least likely under the trusted data first, plus any
    row whose own-label probability is below ``flip_row_posterior`` times
    ``flip_design_rate``.

    Outliers: an Isolation Forest fitted on half the trusted rows, its threshold the
    ``outlier_contamination`` quantile of its scores on the other half (split
    conformal); the batch's count below it is tested beta-binomially
    (``outlier_alpha``) and its share must exceed ``outlier_min_ratio`` times the
    expected share.

    Duplicates: exact and near duplicates (all numeric features within
    ``near_duplicate_tolerance`` trusted standard deviations, categories equal)
    within the batch and against the reference; blocking when the count is
    binomially significant over the trusted duplicate rate (``duplicate_alpha``)
    and at least ``duplicate_min_rows``.

    Backdoor triggers: single or paired feature values with at least
    ``trigger_min_support`` rows in the batch, label purity at least
    ``trigger_min_purity``, and over-representation vs. trusted (or a label-rate
    shift) significant at ``trigger_alpha`` after Bonferroni over all patterns;
    and the purity itself must be unlikely under the trusted class prior
    (binomial tail below ``trigger_purity_alpha``), so a novel value that merely
    happens to carry the majority label (e.g. a rescaled column) does not alarm.
    Effect-size floors keep huge clean batches quiet: the pattern's minority-label
    share must be at most ``trigger_max_error_ratio`` of the trusted one, an
    over-representation must be ``trigger_min_over_ratio``-fold, and a label-only
    finding needs the pattern rare in trusted rows (``trigger_rare_share``).
    """

    shift_alpha: float = 0.001
    shift_min_psi: float = 0.1
    cumulative_min_psi: float = 0.05
    shift_bins: int = 10
    shift_blocking: bool = True
    label_shift_alpha: float = 0.001
    label_shift_min_delta: float = 0.05
    risk_quantile: float = 0.2
    risk_alpha: float = 0.002
    risk_min_delta: float = 0.08
    label_blocking: bool = True
    flip_alpha: float = 0.005
    flip_design_rate: float = 0.05
    #: kept for stored policies; row naming now uses the estimated number of flips
    flip_row_recall: float = 0.85
    flip_row_posterior: float = 0.2
    flip_bootstrap: int = 4000
    flip_blocking: bool = True
    outlier_contamination: float = 0.01
    outlier_alpha: float = 0.001
    outlier_min_ratio: float = 2.0
    outlier_blocking: bool = True
    near_duplicate_tolerance: float = 0.02
    duplicate_alpha: float = 0.001
    duplicate_min_rows: int = 3
    duplicate_blocking: bool = True
    trigger_min_support: int = 5
    trigger_min_purity: float = 0.9
    trigger_alpha: float = 0.001
    trigger_purity_alpha: float = 0.05
    #: a pattern seen in more than this share of trusted rows is not "rare"
    trigger_rare_share: float = 0.02
    #: the pattern's minority-label share must be at most this fraction of the trusted one
    trigger_max_error_ratio: float = 0.5
    #: an over-represented pattern must be at least this many times as frequent as in trusted
    trigger_min_over_ratio: float = 3.0
    trigger_pairs: bool = True
    trigger_blocking: bool = True
    max_flagged_details: int = 10
    #: per-batch false-quarantine target on clean data; caps every ``*_alpha`` above
    false_quarantine_target: float = FALSE_QUARANTINE_TARGET

    def __post_init__(self) -> None:
        probabilities = {
            "shift_alpha": self.shift_alpha,
            "label_shift_alpha": self.label_shift_alpha,
            "risk_alpha": self.risk_alpha,
            "risk_quantile": self.risk_quantile,
            "flip_alpha": self.flip_alpha,
            "flip_design_rate": self.flip_design_rate,
            "flip_row_recall": self.flip_row_recall,
            "outlier_contamination": self.outlier_contamination,
            "outlier_alpha": self.outlier_alpha,
            "duplicate_alpha": self.duplicate_alpha,
            "trigger_min_purity": self.trigger_min_purity,
            "trigger_alpha": self.trigger_alpha,
            "trigger_purity_alpha": self.trigger_purity_alpha,
            "trigger_rare_share": self.trigger_rare_share,
            "flip_row_posterior": self.flip_row_posterior,
        }
        for name, value in probabilities.items():
            if not 0.0 < value < 1.0:
                raise PoisoningInputError(
                    f"PoisoningPolicy.{name} must be strictly between 0 and 1, got {value}"
                )
        if self.shift_bins < 2 or self.trigger_min_support < 2 or self.duplicate_min_rows < 1:
            raise PoisoningInputError(
                "PoisoningPolicy: shift_bins and trigger_min_support must be >= 2, "
                "duplicate_min_rows >= 1"
            )
        if not 0.0 < self.trigger_max_error_ratio <= 1.0 or self.trigger_min_over_ratio < 1.0:
            raise PoisoningInputError(
                "PoisoningPolicy: trigger_max_error_ratio must be in (0, 1], "
                "trigger_min_over_ratio >= 1"
            )
        if not 0.0 < self.false_quarantine_target <= 0.2:
            raise PoisoningInputError(
                "PoisoningPolicy.false_quarantine_target must be in (0, 0.2], "
                f"got {self.false_quarantine_target}"
            )
        if self.flip_bootstrap < 1000:
            raise PoisoningInputError("PoisoningPolicy.flip_bootstrap must be >= 1000")
        if self.near_duplicate_tolerance < 0:
            raise PoisoningInputError("PoisoningPolicy.near_duplicate_tolerance must be >= 0")

    def level(self, alpha: float) -> float:
        """``alpha`` scaled by the policy's target (the defaults budget 2 % per batch)."""
        return alpha * self.false_quarantine_target / FALSE_QUARANTINE_TARGET

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


__all__ = ["PoisoningPolicy", "PoisoningProgress", "ProgressCallback"]
