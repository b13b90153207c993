"""Drift and performance monitoring of deployed models.

- ``reference`` — ``DriftReference``: per-column summaries of the training data,
  computed once, serialised to bytes (store them encrypted)
- ``policy``    — ``DriftPolicy``: thresholds, dataset-drift share, method overrides
- ``detect``    — ``detect_drift``: a current batch against the reference
- ``report``    — ``DriftReport`` / ``DriftVerdict`` (``to_dict``, ``render_text``)
- ``html``      — ``render_html``: a self-contained page with one SVG chart per feature
- ``decay``     — ``compute_metrics`` / ``performance_decay`` once labels arrive
- ``progress``  — ``MonitoringProgress`` for long runs

The statistics themselves live in :mod:`bastion.data_security.stats`.

Example::

    from bastion.model_security.monitoring import DriftReference, detect_drift, render_html
    reference = DriftReference.from_frame(train_df, features, prediction_column="score")
    blob = reference.to_bytes()                      # the caller stores it encrypted
    report = detect_drift(DriftReference.from_bytes(blob), batch_df)
    print(report.render_text()); html = render_html(report)
"""

from __future__ import annotations

from bastion.model_security.monitoring.decay import (
    DecayReport,
    DecayThresholds,
    MetricDecay,
    PerformanceMetrics,
    Task,
    compute_metrics,
    performance_decay,
)
from bastion.model_security.monitoring.detect import detect_drift
from bastion.model_security.monitoring.html import render_html
from bastion.model_security.monitoring.policy import DriftPolicy
from bastion.model_security.monitoring.progress import MonitoringProgress, ProgressCallback
from bastion.model_security.monitoring.reference import DriftReference, kind_of
from bastion.model_security.monitoring.report import DriftReport, DriftVerdict

__all__ = [
    "DecayReport",
    "DecayThresholds",
    "DriftPolicy",
    "DriftReference",
    "DriftReport",
    "DriftVerdict",
    "MetricDecay",
    "MonitoringProgress",
    "PerformanceMetrics",
    "ProgressCallback",
    "Task",
    "compute_metrics",
    "detect_drift",
    "kind_of",
    "performance_decay",
    "render_html",
]
