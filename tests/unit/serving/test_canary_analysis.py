"""The canary analysis on synthetic windows: statistical (a minimum sample, bounds at
99.9 %), so one bad answer never decides, a garbage canary always does, and a healthy
canary drawn from the stable one's own distribution is not flagged."""

from __future__ import annotations

import numpy as np
import pytest

from bastion.core.errors import InputError
from bastion.serving.canary_analysis import analyze, wilson
from bastion.serving.canary_values import CanaryThresholds, Sample, canary_plan

T = CanaryThresholds()


def _arm(n: int, *, p_bad: float = 0.3, errors: int = 0, latency: float = 5.0,
         seed: int = 0, ood: int = -1) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        failed = i < errors
        label = "bad" if rng.random() < p_bad else "good"
        out.append(Sample("error" if failed else "ok", latency + rng.random(),
                          () if failed else (label,), ood, 1))
    return out


def test_one_failed_canary_request_does_not_decide() -> None:
    a = analyze(_arm(49, errors=1), _arm(200, seed=1), [], [], T, at="t")
    assert not a.judged and not a.failed  # below the minimum sample: nothing judged
    a = analyze(_arm(100, errors=1), _arm(200, seed=1), [], [], T, at="t")
    assert "error_rate" not in a.failed and a.healthy


def test_canary_whose_worker_always_errors_fails_the_error_rate() -> None:
    a = analyze(_arm(50, errors=50), _arm(200, seed=1), [], [], T, at="t")
    assert a.failed == ("error_rate",)


def test_canary_that_always_predicts_one_class_fails_the_prediction_shift() -> None:
    a = analyze(_arm(60, p_bad=1.0), _arm(300, seed=1), [], [], T, at="t")
    assert "prediction_shift" in a.failed
    shift = next(c for c in a.checks if c.name == "prediction_shift")
    assert shift.canary is not None and shift.canary > T.max_prediction_shift


@pytest.mark.parametrize("seed", range(40))
def test_healthy_canary_from_the_stable_distribution_is_not_flagged(seed: int) -> None:
    a = analyze(_arm(60, seed=seed), _arm(600, seed=1000 + seed, errors=1), [], [], T,
                at="t")
    assert a.healthy, a.to_dict()


def test_latency_percentiles_wait_for_enough_answers_and_then_judge() -> None:
    slow = _arm(99, latency=500.0)
    a = analyze(slow, _arm(600, seed=1), [], [], T, at="t")
    assert "latency_p95" not in a.failed  # 99 answers cannot show a p95
    a = analyze(_arm(100, latency=500.0), _arm(600, seed=1), [], [], T, at="t")
    assert "latency_p95" in a.failed and "latency_p99" not in a.failed  # p99 needs 500


def test_ood_rate_is_not_judged_when_the_gateway_flags_nothing() -> None:
    a = analyze(_arm(100), _arm(100, seed=1), [], [], T, at="t")
    ood = next(c for c in a.checks if c.name == "ood_rate")
    assert not ood.judged and "counted as 0" in ood.reason
    a = analyze(_arm(100, ood=1), _arm(100, seed=1, ood=0), [], [], T, at="t")
    assert "ood_rate" in a.failed


def test_accuracy_on_feedback_labels_fails_a_canary_that_is_mostly_wrong() -> None:
    right = [("good", "good")] * 40 + [("bad", "good")] * 5
    wrong = [("bad", "good")] * 35 + [("good", "good")] * 5
    a = analyze(_arm(100), _arm(100, seed=1), wrong, right, T, at="t")
    assert "accuracy" in a.failed
    a = analyze(_arm(100), _arm(100, seed=1), right[:20], right, T, at="t")
    assert "accuracy" not in a.failed  # 20 labels: below min_labels, not judged


def test_wilson_interval_brackets_the_rate() -> None:
    low, high = wilson(5, 100)
    assert 0 < low < 0.05 < high < 0.2
    assert wilson(0, 0) == (0.0, 1.0)


def test_plan_refuses_unusable_settings() -> None:
    with pytest.raises(InputError):
        canary_plan(0)
    with pytest.raises(InputError):
        canary_plan(10, promote_after=10)  # below the minimum sample: promoted unjudged
    with pytest.raises(InputError):
        canary_plan(10, sticky_header="X-Key\r\nInjected: 1")
    with pytest.raises(InputError):
        canary_plan(10, thresholds=["nonsense=1"])
    plan = canary_plan(10, thresholds=["max_prediction_shift=0.2", "min_requests=30"])
    assert plan.thresholds.max_prediction_shift == 0.2 and plan.thresholds.min_requests == 30
