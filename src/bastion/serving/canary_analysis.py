"""The canary analysis: one arm's recent requests against the other's, check by check.

Pure functions over the samples of the sliding window (every replica's, read from the
database).  Each check says whether it could judge (enough data) and whether it failed:

- ``error_rate``: worker errors of the canary.  Failed when the *lower* end of the
  canary's 99.9 % Wilson interval exceeds the stable rate + ``max_error_rate_increase``
  (the analysis looks again every second, hence 99.9 % rather than 95 %).
- ``latency_p95`` / ``latency_p99``: failed when the canary's percentile exceeds the
  stable one's x ratio + slack.  A percentile q is judged only with at least 5 / (1 - q)
  answered requests per arm (100 for p95, 500 for p99): one slow request is never a p99.
- ``prediction_shift``: the distribution of predicted labels, compared with layer 2's
  drift statistics (:func:`bastion.data_security.stats.column_drift`, chi-square at
  alpha 0.001 *and* a Jensen-Shannon distance of at least ``max_prediction_shift``).
- ``ood_rate``: rows the gateway flagged out of distribution (``ood`` of each request),
  Wilson bound as for errors.  When the gateway flags nothing (no ``ood`` in its
  records) the check is not judged and says so.
- ``accuracy``: predicted label against the label posted on the feedback endpoint, once
  both arms have ``min_labels`` labels; failed when the upper end of the canary's 99.9 %
  Wilson interval is below the stable accuracy - ``max_accuracy_drop``.

Example::

    a = analyze(canary_window, stable_window, [], [], CanaryThresholds(), at="...")
    a.failed     # ("prediction_shift",)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bastion.data_security.stats import ColumnKind, DriftThresholds, Method, column_drift
from bastion.serving.canary_values import Analysis, CanaryThresholds, Check, Sample

#: z of a two-sided 99.9 % interval
Z = 3.29


def wilson(successes: int, n: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval of a proportion (0, 1 when ``n`` is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    den = 1 + z * z / n
    return max(0.0, (centre - spread) / den), min(1.0, (centre + spread) / den)


def analyze(canary: Sequence[Sample], stable: Sequence[Sample],
            canary_labelled: Sequence[tuple[str, str]],
            stable_labelled: Sequence[tuple[str, str]], t: CanaryThresholds,
            *, at: str) -> Analysis:
    checks = (
        _errors(canary, stable, t),
        _latency(canary, stable, t, 0.95, t.p95_ratio),
        _latency(canary, stable, t, 0.99, t.p99_ratio),
        _shift(canary, stable, t),
        _ood(canary, stable, t),
        _accuracy(canary_labelled, stable_labelled, t),
    )
    return Analysis(len(canary), len(stable), checks, at)


def _short(name: str, c: int, s: int, need: int, what: str = "requests") -> Check | None:
    if min(c, s) >= need:
        return None
    return Check(name, False, False, None, None, None,
                 f"waiting for {need} {what} per arm (canary {c}, stable {s})")


def _errors(canary: Sequence[Sample], stable: Sequence[Sample], t: CanaryThresholds) -> Check:
    waiting = _short("error_rate", len(canary), len(stable), t.min_requests)
    if waiting:
        return waiting
    c_err = sum(1 for x in canary if x.outcome != "ok")
    s_rate = sum(1 for x in stable if x.outcome != "ok") / len(stable)
    low, _ = wilson(c_err, len(canary))
    limit = s_rate + t.max_error_rate_increase
    return Check("error_rate", True, low > limit, c_err / len(canary), s_rate, limit,
                 f"{c_err}/{len(canary)} canary requests failed; lower 99.9 % bound "
                 f"{low:.3f} vs limit {limit:.3f}")


def _latency(canary: Sequence[Sample], stable: Sequence[Sample], t: CanaryThresholds,
             q: float, ratio: float) -> Check:
    name = f"latency_p{round(q * 100)}"
    c = [x.latency_ms for x in canary if x.outcome == "ok"]
    s = [x.latency_ms for x in stable if x.outcome == "ok"]
    need = max(t.min_requests, math.ceil(5 / (1 - q) - 1e-9))
    waiting = _short(name, len(c), len(s), need, "answered requests")
    if waiting:
        return waiting
    cq, sq = float(np.quantile(c, q)), float(np.quantile(s, q))
    limit = sq * ratio + t.latency_slack_ms
    return Check(name, True, cq > limit, cq, sq, limit,
                 f"canary {cq:.1f} ms vs stable {sq:.1f} ms (limit {limit:.1f} ms)")


def _shift(canary: Sequence[Sample], stable: Sequence[Sample], t: CanaryThresholds) -> Check:
    c = [label for x in canary if x.outcome == "ok" for label in x.labels]
    s = [label for x in stable if x.outcome == "ok" for label in x.labels]
    waiting = _short("prediction_shift", len(c), len(s), t.min_requests, "predicted rows")
    if waiting:
        return waiting
    d = column_drift("prediction", np.array(s, dtype=object), np.array(c, dtype=object),
                     ColumnKind.CATEGORICAL, method=Method.CHI_SQUARE,
                     thresholds=DriftThresholds(alpha=0.001, min_samples=t.min_requests))
    js = float(d.jensen_shannon)
    failed = d.distribution_drifted and js >= t.max_prediction_shift
    p = f"p={d.p_value:.2g}" if d.p_value is not None else "p n/a"
    return Check("prediction_shift", True, failed, js, 0.0, t.max_prediction_shift,
                 f"predicted labels: Jensen-Shannon distance {js:.3f}, chi-square {p} "
                 f"(alpha 0.001) over {len(c)} canary and {len(s)} stable rows")


def _ood(canary: Sequence[Sample], stable: Sequence[Sample], t: CanaryThresholds) -> Check:
    if all(x.ood < 0 for x in (*canary, *stable)):
        return Check("ood_rate", False, False, 0.0, 0.0, None,
                     "the gateway flags no out-of-distribution rows in its records: counted as 0")
    c = [x for x in canary if x.ood >= 0]
    s = [x for x in stable if x.ood >= 0]
    c_rows, s_rows = sum(x.rows for x in c), sum(x.rows for x in s)
    waiting = _short("ood_rate", c_rows, s_rows, t.min_requests, "flagged-or-not rows")
    if waiting:
        return waiting
    c_ood = sum(x.ood for x in c)
    s_rate = sum(x.ood for x in s) / s_rows
    low, _ = wilson(c_ood, c_rows)
    limit = s_rate + t.max_ood_rate_increase
    return Check("ood_rate", True, low > limit, c_ood / c_rows, s_rate, limit,
                 f"{c_ood}/{c_rows} canary rows out of distribution; lower 99.9 % bound "
                 f"{low:.3f} vs limit {limit:.3f}")


def _accuracy(canary: Sequence[tuple[str, str]], stable: Sequence[tuple[str, str]],
              t: CanaryThresholds) -> Check:
    waiting = _short("accuracy", len(canary), len(stable), t.min_labels, "feedback labels")
    if waiting:
        return waiting
    c_right = sum(1 for p, y in canary if p == y)
    s_acc = sum(1 for p, y in stable if p == y) / len(stable)
    _, high = wilson(c_right, len(canary))
    limit = s_acc - t.max_accuracy_drop
    return Check("accuracy", True, high < limit, c_right / len(canary), s_acc, limit,
                 f"canary {c_right}/{len(canary)} right (upper 99.9 % bound {high:.3f}) vs "
                 f"stable {s_acc:.3f} - {t.max_accuracy_drop}")


__all__ = ["Z", "analyze", "wilson"]
