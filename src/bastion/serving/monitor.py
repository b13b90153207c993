"""Drift monitors on live traffic: the live window against the training reference.

For the endpoint's active deployment the monitor reads the newest live windows (up to
``window_rows`` sampled rows, see :mod:`bastion.serving.live`), and when there are at least
``min_rows`` it runs layer 2's :func:`~bastion.model_security.monitoring.detect_drift`
against the drift reference of the model's training data (KS, chi-square, Jensen-Shannon
per feature).  Calibrated for repeated checks of many features: the per-feature
significance is ``family_alpha / features`` (Bonferroni, so an in-distribution window
raises a false alert with probability at most ``family_alpha``), and an effect-size floor
(KS D, Cramér's V) ignores trivial moves.

Prediction drift: the drift reference summarises features only (it has no model
predictions), so the prediction distribution of the live window is compared with the
deployment's *first* window of the same size (the traffic it served when it was released),
by the Jensen-Shannon distance of the predicted labels — only once the two windows do not
overlap.

Any drifted feature or a drifted prediction distribution raises (or repeats) one ``drift``
alert per endpoint (:class:`~bastion.serving.alerts.AlertService`), whose evidence names
the reference, the deployment, the drifted features with their statistics and the window.

Housekeeping, every round (the gateway's periodic check and ``bastion monitor run``):
live windows past ``retention_days`` are deleted, windows a crashed flush left unfinished
for ``sweep_grace_seconds`` are reclaimed (:func:`~bastion.serving.live.sweep`), and the
prediction log, canary samples and finished outbox rows are pruned by
:mod:`bastion.serving.retention`.  In the
gateway, :meth:`DriftMonitor.follow` also runs the alert outbox's sender.

Example::

    result = monitor.run(actor, "credit", "scoring")     # bastion monitor run scoring
    result.alert_id, result.verdict, result.drifted
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.canonical import JSON
from bastion.core.errors import BastionError
from bastion.core.settings import BastionSettings
from bastion.data_security.stats import DriftThresholds, js_from_counts
from bastion.model_security.monitoring import DriftPolicy, DriftReference, detect_drift
from bastion.serving.alerts import AlertKind, AlertService, Severity
from bastion.serving.deployments import endpoint_resource
from bastion.serving.errors import NoDeployment
from bastion.serving.events import GATEWAY
from bastion.serving.live import (
    LiveSampler,
    LiveStore,
    LiveWindow,
    expire,
    read_windows,
    sweep,
)
from bastion.serving.ports import DeploymentRepository
from bastion.serving.retention import Pruned, RetentionOptions, RetentionStore, prune
from bastion.serving.values import Deployment, FieldKind

_log = logging.getLogger("bastion.monitor")

#: (actor or None for the gateway's own checks, deployment) -> (the training data's lineage
#: id "p/ds@v", its stored drift reference or None); computed on demand for an actor who
#: may read that data, never for the gateway
ReferenceSource = Callable[[Actor | None, Deployment], tuple[str, DriftReference | None]]


@dataclass(frozen=True)
class MonitorOptions:
    min_rows: int = 200
    window_rows: int = 1000
    family_alpha: float = 0.01
    ks_min_statistic: float = 0.1
    chi_square_min_effect: float = 0.1
    prediction_js_threshold: float = 0.1
    retention_days: int = 7  # live windows (encrypted samples) older than this are deleted
    #: a window still ``writing`` after this long was left by a crashed flush (a flush
    #: writes one bounded sample per deployment: seconds, far below this)
    sweep_grace_seconds: float = 600.0
    #: the prediction log and decided canaries' samples (bastion.serving.retention)
    log_retention: RetentionOptions = dataclasses.field(default_factory=RetentionOptions)

    @classmethod
    def from_settings(cls, s: BastionSettings) -> MonitorOptions:
        return cls(log_retention=RetentionOptions(days=s.serving_log_retention_days))


@dataclass(frozen=True)
class MonitorResult:
    project: str
    endpoint: str
    model: str
    reference: str
    rows: int
    verdict: str  # "insufficient_data" | "no_reference" | "no_drift" | DriftVerdict values
    drifted: tuple[str, ...] = ()
    prediction_js: float | None = None
    alert_id: str | None = None
    new_alert: bool = False

    def to_dict(self) -> dict[str, JSON]:
        return {"project": self.project, "endpoint": self.endpoint, "model": self.model,
                "reference": self.reference, "rows": self.rows, "verdict": self.verdict,
                "drifted": list(self.drifted), "prediction_js": self.prediction_js,
                "alert": self.alert_id, "new_alert": self.new_alert}


def _frame(d: Deployment, rows: list[list[Any]]) -> pl.DataFrame:
    kinds = {FieldKind.INTEGER: pl.Int64, FieldKind.FLOAT: pl.Float64,
             FieldKind.BOOLEAN: pl.Boolean, FieldKind.STRING: pl.String}
    schema = {f.name: kinds[f.kind] for f in d.schema.fields}
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pl.DataFrame({n: list(c) for n, c in zip(schema, cols, strict=True)},
                        schema=schema, strict=False)


class DriftMonitor:
    """See the module docstring."""

    def __init__(self, access: AccessService, deployments: DeploymentRepository,
                 live: LiveStore, references: ReferenceSource, alerts: AlertService,
                 options: MonitorOptions | None = None,
                 retention: RetentionStore | None = None) -> None:
        self._access = access
        self._deployments = deployments
        self._live = live
        self._references = references
        self._alerts = alerts
        self.options = options or MonitorOptions()
        self._retention = retention

    @property
    def live(self) -> LiveStore:
        """Where the live windows are (the index and the encrypted blob store)."""
        return self._live

    def with_alerts(self, alerts: AlertService,
                    options: MonitorOptions | None = None) -> DriftMonitor:
        """The same monitor raising into another alert service (tests deliver to loopback),
        optionally with other options."""
        return DriftMonitor(self._access, self._deployments, self._live, self._references,
                            alerts, options or self.options, self._retention)

    def run(self, actor: Actor, project: str, endpoint: str) -> MonitorResult:
        """On demand (``bastion monitor run``): authorized ``monitor.run`` on the endpoint."""
        self._access.authorize(actor, "monitor.run", endpoint_resource(project, endpoint))
        self.housekeeping()
        result = self._check(actor, project, endpoint)
        self._access.record(actor, "monitor.live_drift", endpoint_resource(project, endpoint),
                            Outcome.OK, result.to_dict())
        return result

    def check(self, project: str, endpoint: str) -> MonitorResult:
        """The gateway's periodic check (no principal; reads only a stored reference)."""
        return self._check(None, project, endpoint)

    def _check(self, actor: Actor | None, project: str, endpoint: str) -> MonitorResult:
        d = self._deployments.active(project, endpoint)
        if d is None:
            raise NoDeployment(f"endpoint {endpoint!r} has no model in service to monitor",
                               hint="deploy one: bastion deploy MODEL@V --endpoint NAME")
        windows = self._live.index.latest(d.id, self.options.window_rows)
        rows, labels = read_windows(self._live, windows, d.schema.columns)
        if len(rows) < self.options.min_rows:  # too little to judge: no reference computed
            return MonitorResult(project, endpoint, d.ref, "", len(rows), "insufficient_data")
        lineage, reference = self._references(actor, d)
        if reference is None:
            _log.info("no stored drift reference for %s yet", lineage)
            return MonitorResult(project, endpoint, d.ref, lineage, len(rows), "no_reference")
        # the model's inputs only (the reference covers every column of the training data)
        reference = dataclasses.replace(reference, columns=tuple(
            c for c in reference.columns if c.name in d.schema.columns))
        report = detect_drift(reference, _frame(d, rows), policy=self._policy(reference))
        prediction_js = self._prediction_shift(d, windows, labels)
        drifted = report.drifted_features
        predicted = prediction_js is not None and \
            prediction_js >= self.options.prediction_js_threshold
        verdict = report.verdict.value if drifted or not predicted else "prediction_drift"
        result = MonitorResult(project, endpoint, d.ref, lineage, len(rows), verdict, drifted,
                               prediction_js)
        if not drifted and not predicted:
            return result
        evidence: dict[str, JSON] = {
            "reference": lineage, "deployment": d.id, "model": d.ref, "rows": len(rows),
            "windows": [w.id for w in windows], "verdict": verdict,
            "prediction_js": prediction_js,
            "features": [{"name": f.name, "method": f.method.value,
                          "statistic": _num(f.statistic), "p_value": _num(f.p_value)}
                         for f in report.features if f.drifted],
        }
        what = f"{len(drifted)}/{len(report.features)} features drifted" + (
            f" ({', '.join(drifted)})" if drifted else "") + (
            f"; prediction distribution moved (JS {prediction_js:.3f})" if predicted else "")
        severity = Severity.CRITICAL if report.dataset_drifted else Severity.WARNING
        alert, new = self._alerts.raise_alert(project, endpoint, AlertKind.DRIFT, severity,
                                              f"{d.ref}: {what}", evidence)
        return MonitorResult(project, endpoint, d.ref, lineage, len(rows), verdict, drifted,
                             prediction_js, alert.id, new)

    def _policy(self, reference: DriftReference) -> DriftPolicy:
        o = self.options
        alpha = o.family_alpha / max(len(reference.columns), 1)
        return DriftPolicy(thresholds=DriftThresholds(
            alpha=alpha, ks_min_statistic=o.ks_min_statistic,
            chi_square_min_effect=o.chi_square_min_effect))

    def _prediction_shift(self, d: Deployment, newest: list[LiveWindow],
                          labels: list[Any]) -> float | None:
        first = self._live.index.earliest(d.id, self.options.window_rows)
        if {w.id for w in first} & {w.id for w in newest}:
            return None  # the first window is (part of) the live one: nothing to compare
        _, baseline = read_windows(self._live, first, d.schema.columns)
        if len(baseline) < self.options.min_rows:
            return None
        ref_n, cur_n = Counter(map(str, baseline)), Counter(map(str, labels))
        levels = sorted(ref_n.keys() | cur_n.keys())
        ref, cur = [ref_n[lv] for lv in levels], [cur_n[lv] for lv in levels]
        return round(float(js_from_counts(ref, cur)), 4)


    # -- in the gateway ----------------------------------------------------------------------
    def check_all(self) -> list[MonitorResult]:
        """Check every endpoint in service (the gateway's periodic task); expire old windows."""
        out = []
        for d in self._deployments.all_active():
            try:
                out.append(self.check(d.project, d.endpoint))
            except BastionError as e:  # one endpoint's trouble must not stop the others
                _log.error("drift check of %s/%s failed: %s", d.project, d.endpoint, e.message)
            except Exception:  # nor an unexpected one (it would also stop window expiry)
                _log.exception("drift check of %s/%s failed", d.project, d.endpoint)
        self.housekeeping()
        return out

    def housekeeping(self) -> Pruned:
        """Expire old live windows, reclaim unfinished ones, prune the prediction log and
        decided canaries' samples (each bounded); what was pruned is audited."""
        now = dt.datetime.now(dt.UTC)
        cutoff = now - dt.timedelta(days=self.options.retention_days)
        expire(self._live, cutoff.isoformat(timespec="microseconds"))
        grace = now - dt.timedelta(seconds=self.options.sweep_grace_seconds)
        sweep(self._live, grace.isoformat(timespec="microseconds"))
        if self._retention is None:
            return Pruned()
        pruned = prune(self._retention, self.options.log_retention, now)
        if pruned.predictions or pruned.samples or pruned.outbox:
            self._access.record(GATEWAY, "serving.retention", "system/serving", Outcome.OK,
                                {"predictions": pruned.predictions,
                                 "canary_samples": pruned.samples,
                                 "alert_outbox": pruned.outbox,
                                 "days": self.options.log_retention.days})
        return pruned

    def flush(self, sampler: LiveSampler) -> int:
        """Write the gateway's pending live sample as windows (encrypted)."""
        return sampler.flush(self._live)

    async def follow(self, sampler: LiveSampler, *, flush_seconds: float = 2.0,
                     check_seconds: float = 60.0) -> None:
        """Flush the gateway's live sample every ``flush_seconds`` and check every endpoint
        every ``check_seconds``, off the event loop, until cancelled.  Starts the alert
        outbox's sender (which resumes pending deliveries) and stops it when cancelled."""
        self._alerts.deliveries.start()
        try:
            await self._follow(sampler, flush_seconds, check_seconds)
        finally:
            await asyncio.to_thread(self._alerts.deliveries.stop)

    async def _follow(self, sampler: LiveSampler, flush_seconds: float,
                      check_seconds: float) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(flush_seconds)
            try:
                await asyncio.to_thread(self.flush, sampler)
                if time.monotonic() - last >= check_seconds:
                    last = time.monotonic()
                    await asyncio.to_thread(self.check_all)
            except Exception:  # a database hiccup must not end monitoring
                _log.exception("live drift monitoring round failed")


def _num(x: float | None) -> float | None:
    import math

    return None if x is None or not math.isfinite(x) else round(float(x), 6)


__all__ = ["DriftMonitor", "MonitorOptions", "MonitorResult", "ReferenceSource"]
