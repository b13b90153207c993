"""The drift policy: thresholds per statistic and when a whole dataset counts as drifted.

Example::

    from bastion.data_security.stats import DriftThresholds, Method
    from bastion.model_security.monitoring import DriftPolicy
    policy = DriftPolicy(drift_share=0.3, thresholds=DriftThresholds(alpha=0.01),
                         method_overrides={"zip_code": Method.JENSEN_SHANNON})
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from bastion.data_security.stats import DriftThresholds, Method
from bastion.model_security.errors import MonitoringInputInvalid


@dataclass(frozen=True)
class DriftPolicy:
    """How :func:`detect_drift` decides.

    - ``thresholds``: the per-column statistics' thresholds (alpha, effect floors, PSI, JS)
    - ``drift_share``: the dataset drifted when at least this share of features drifted
    - ``prediction_method`` / ``prediction_js_threshold``: prediction drift is the
      Jensen-Shannon distance of the prediction distribution (binned scores or labels)
    - ``prediction_drift_is_dataset_drift``: a drifted prediction alone makes the verdict
    - ``method_overrides``: force a method for named columns (the report says so)
    - ``workers``: columns tested in parallel (numpy sorts release the GIL)
    """

    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    drift_share: float = 0.5
    prediction_method: Method = Method.JENSEN_SHANNON
    prediction_js_threshold: float = 0.1
    prediction_drift_is_dataset_drift: bool = True
    method_overrides: Mapping[str, Method] = field(default_factory=dict)
    workers: int = 2

    def __post_init__(self) -> None:
        if not 0.0 < self.drift_share <= 1.0:
            raise MonitoringInputInvalid(
                f"drift_share must be in (0, 1], got {self.drift_share}", hint="e.g. 0.5"
            )
        if not (math.isfinite(self.prediction_js_threshold) and
                0.0 <= self.prediction_js_threshold <= 1.0):
            raise MonitoringInputInvalid("prediction_js_threshold must be in [0, 1]")
        if self.workers < 1:
            raise MonitoringInputInvalid(f"workers must be >= 1, got {self.workers}")
        object.__setattr__(self, "method_overrides",
                           MappingProxyType({k: Method(v) for k, v in
                                             self.method_overrides.items()}))

    @property
    def prediction_thresholds(self) -> DriftThresholds:
        """The thresholds used for the prediction column (its own JS threshold)."""
        return replace(self.thresholds, js_threshold=self.prediction_js_threshold)

    def to_dict(self) -> dict[str, object]:
        return {
            "thresholds": self.thresholds.to_dict(),
            "drift_share": self.drift_share,
            "prediction_method": self.prediction_method.value,
            "prediction_js_threshold": self.prediction_js_threshold,
            "prediction_drift_is_dataset_drift": self.prediction_drift_is_dataset_drift,
            "method_overrides": {k: v.value for k, v in self.method_overrides.items()},
            "workers": self.workers,
        }


__all__ = ["DriftPolicy"]
