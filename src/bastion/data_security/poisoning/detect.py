"""``detect_poisoning``: run every poisoning detector on one batch against the pinned reference.

Each detector returns one :class:`CheckResult` (category ``"poisoning"``) with
its metrics and flagged batch rows; any failed blocking result quarantines the
batch.  A detector that raises an unexpected error yields a failed blocking
result naming the error: a check that could not run is a refusal, never "ok".

Example::

    results = detect_poisoning(batch, reference, label="Status",
                               policy=PoisoningPolicy(), recent=window)
    quarantine = any(r.blocking and not r.passed for r in results)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import polars as pl

from bastion.data_security.checks.report import CheckResult
from bastion.data_security.errors import PoisoningInputError
from bastion.data_security.poisoning._batch import BatchView, result
from bastion.data_security.poisoning.duplicates import duplicate_injection
from bastion.data_security.poisoning.labels import (
    label_distribution_shift,
    label_flips,
    risk_conditional_label_rate,
)
from bastion.data_security.poisoning.outliers import injected_outliers
from bastion.data_security.poisoning.policy import PoisoningPolicy, ProgressCallback
from bastion.data_security.poisoning.recent import RecentWindow
from bastion.data_security.poisoning.reference import PoisoningReference
from bastion.data_security.poisoning.shift import feature_shift
from bastion.data_security.poisoning.triggers import backdoor_triggers

_Detector = Callable[[BatchView, PoisoningReference, PoisoningPolicy], CheckResult]
_VIEW_DETECTORS: tuple[tuple[str, _Detector], ...] = (
    ("label_distribution_shift", label_distribution_shift),
    ("risk_conditional_label_rate", risk_conditional_label_rate),
    ("label_flips", label_flips),
    ("injected_outliers", injected_outliers),
    ("duplicate_injection", duplicate_injection),
    ("backdoor_triggers", backdoor_triggers),
)


def _guarded(name: str, run: Callable[[], CheckResult]) -> CheckResult:
    try:
        return run()
    except PoisoningInputError:
        raise
    except Exception as e:  # fail closed: an error while checking is a refusal
        return result(
            name,
            False,
            True,
            f"detector failed: {type(e).__name__}: {e}",
            {},
            (),
            ["the batch cannot be accepted until this detector runs"],
        )


def detect_poisoning(
    batch: pl.DataFrame,
    reference: PoisoningReference,
    *,
    label: str,
    policy: PoisoningPolicy | None = None,
    recent: RecentWindow | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[CheckResult, ...]:
    """All poisoning checks for ``batch``; quarantine when any blocking one failed."""
    policy = policy or PoisoningPolicy()
    schema = reference.schema
    if label != schema.label:
        raise PoisoningInputError(
            f"label {label!r} differs from the reference's label {schema.label!r}",
            hint="pin a reference for this label or pass the label it was pinned with",
        )
    if batch.height == 0:
        raise PoisoningInputError("the batch is empty", hint="send at least one row")
    schema.check_batch(batch)
    batch = batch.select(schema.label, *schema.feature_names)
    cumulative = recent is not None and recent.height > 0
    total = 2 + len(_VIEW_DETECTORS) + int(cumulative)
    step = 0

    def tick(stage: str) -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(stage, step, total)

    view = BatchView.of(batch, reference)
    tick("label model")
    results = [
        _guarded(
            "feature_shift", lambda: feature_shift(batch, reference, policy, name="feature_shift")
        )
    ]
    tick("feature_shift")
    if recent is not None and recent.height > 0:
        schema.check_batch(recent.rows)
        window = recent.rows.select(schema.label, *schema.feature_names)
        both = pl.concat([window, batch], how="vertical_relaxed")
        results.append(
            _guarded(
                "cumulative_feature_shift",
                lambda: feature_shift(
                    both,
                    reference,
                    policy,
                    name="cumulative_feature_shift",
                    batch_rows=batch.height,
                    min_psi=policy.cumulative_min_psi,
                ),
            )
        )
        tick("cumulative_feature_shift")
    for name, detector in _VIEW_DETECTORS:
        results.append(_guarded(name, partial(detector, view, reference, policy)))
        tick(name)
    return tuple(results)


def quarantined(results: tuple[CheckResult, ...]) -> bool:
    """True when any blocking check failed."""
    return any(r.blocking and not r.passed for r in results)


__all__ = ["detect_poisoning", "quarantined"]
