"""The drift report: per-feature results, prediction drift and the overall verdict.

Example::

    report = detect_drift(reference, batch, policy=DriftPolicy())
    if report.verdict is DriftVerdict.DATASET_DRIFT:
        print(report.render_text())
    json.dumps(report.to_dict())
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bastion.data_security.stats import ColumnDrift
from bastion.model_security.monitoring.policy import DriftPolicy


class DriftVerdict(StrEnum):
    """The overall reading of a drift report."""

    NO_DRIFT = "no_drift"
    #: some features (or the prediction) drifted, fewer than the policy's share
    FEATURE_DRIFT = "feature_drift"
    #: the share of drifted features reached the policy, or the prediction drifted
    DATASET_DRIFT = "dataset_drift"


@dataclass(frozen=True)
class DriftReport:
    """The result of comparing one current batch with a drift reference."""

    features: tuple[ColumnDrift, ...]
    prediction: ColumnDrift | None
    n_reference_rows: int
    n_current_rows: int
    policy: DriftPolicy
    elapsed_seconds: float = 0.0

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    @property
    def untested_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if not f.tested)

    @property
    def drift_share(self) -> float:
        """The share of monitored features that drifted."""
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    @property
    def prediction_drifted(self) -> bool:
        return self.prediction is not None and self.prediction.drifted

    @property
    def dataset_drifted(self) -> bool:
        return self.verdict is DriftVerdict.DATASET_DRIFT

    @property
    def verdict(self) -> DriftVerdict:
        if self.drift_share >= self.policy.drift_share or (
            self.prediction_drifted and self.policy.prediction_drift_is_dataset_drift
        ):
            return DriftVerdict.DATASET_DRIFT
        if self.drifted_features or self.prediction_drifted:
            return DriftVerdict.FEATURE_DRIFT
        return DriftVerdict.NO_DRIFT

    def feature(self, name: str) -> ColumnDrift:
        """The result of the feature called ``name`` (``KeyError`` if not monitored)."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def headline(self) -> str:
        share = f"{len(self.drifted_features)}/{len(self.features)} features drifted"
        pred = ""
        if self.prediction is not None:
            pred = "; prediction " + ("DRIFTED" if self.prediction_drifted else "stable")
        return f"{self.verdict.value.replace('_', ' ').upper()}: {share} ({self.drift_share:.0%})"\
            f"{pred}; {self.n_current_rows} current vs {self.n_reference_rows} reference rows"

    def render_text(self) -> str:
        """A plain-text report: headline, then one line per column with the method's reason."""
        lines = [self.headline(), ""]
        ordered = sorted(self.features, key=lambda f: (not f.drifted, f.name))
        for f in [*([self.prediction] if self.prediction else []), *ordered]:
            lines.append(("[prediction] " if f is self.prediction else "") + f.summary())
            lines.append(f"    why {f.method.value}: {f.reason}")
        if self.untested_features:
            lines.append(f"untested (too few values): {', '.join(self.untested_features)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "verdict": self.verdict.value,
            "dataset_drifted": self.dataset_drifted,
            "drift_share": self.drift_share,
            "drifted_features": list(self.drifted_features),
            "untested_features": list(self.untested_features),
            "prediction_drifted": self.prediction_drifted,
            "n_reference_rows": self.n_reference_rows,
            "n_current_rows": self.n_current_rows,
            "elapsed_seconds": self.elapsed_seconds,
            "policy": self.policy.to_dict(),
            "features": [f.to_dict() for f in self.features],
            "prediction": self.prediction.to_dict() if self.prediction else None,
        }


__all__ = ["DriftReport", "DriftVerdict"]
