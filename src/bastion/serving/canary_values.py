"""Value types of canary releases: the plan a deploy asks for, the analysis thresholds,
a canary's state and the evidence of its last analysis.

A canary is a second deployment of an endpoint, served to ``weight`` percent of its
traffic beside the stable (active) one, and judged against it over a sliding window
until it is promoted (it becomes the active deployment), rolled back (an anomaly), or
aborted (``bastion rollback`` while it ran).

Example::

    plan = CanaryPlan(weight=10, promote_after=500, sticky_header="X-Bastion-Request-Key")
    canary.state             # CanaryState.RUNNING
    canary.analysis.failed   # ("prediction_shift",) once judged
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bastion.core.canonical import JSON
from bastion.core.errors import InputError

#: the header carrying the sticky request key when the plan names none
DEFAULT_STICKY_HEADER = "X-Bastion-Request-Key"


class CanaryState(enum.StrEnum):
    RUNNING = "running"
    PROMOTED = "promoted"  # the canary became the endpoint's active deployment
    ROLLED_BACK = "rolled_back"  # the analysis found an anomaly; the stable one serves alone
    ABORTED = "aborted"  # a person rolled the endpoint back while the canary ran


class Arm(enum.StrEnum):
    STABLE = "stable"
    CANARY = "canary"


@dataclass(frozen=True)
class CanaryThresholds:
    """When a canary is judged, and what counts as an anomaly (canary against stable).

    Nothing is judged before ``min_requests`` canary requests *and* as many stable ones
    are in the window: one bad answer never decides.  Each check compares the two arms
    over the last ``window`` requests of each."""

    window: int = 1000  # most recent requests per arm the analysis reads
    min_requests: int = 50  # per arm, before any judgement
    #: the canary's error rate may exceed the stable one's by this much, where the
    #: canary's rate is the lower end of its 95 % Wilson interval (not one unlucky error)
    max_error_rate_increase: float = 0.02
    #: latency: canary p95 (p99) above stable p95 (p99) x ratio + slack is an anomaly
    p95_ratio: float = 2.0
    p99_ratio: float = 3.0
    latency_slack_ms: float = 25.0
    #: prediction-distribution shift: Jensen-Shannon distance (layer 2's drift detector)
    max_prediction_shift: float = 0.1
    #: out-of-distribution rows: canary rate above stable rate + this
    max_ood_rate_increase: float = 0.05
    #: accuracy on feedback labels: judged once both arms have this many labels
    min_labels: int = 30
    max_accuracy_drop: float = 0.1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not math.isfinite(value) or value < 0:
                raise InputError(f"canary threshold {f.name} must be a finite number >= 0, "
                                 f"got {value}")
        if not 10 <= self.window <= 100_000 or not 1 <= self.min_requests <= self.window:
            raise InputError("canary window must be in 10..100000 and min_requests in "
                             "1..window", hint="e.g. window 1000, min_requests 50")
        for name in ("max_error_rate_increase", "max_prediction_shift",
                     "max_ood_rate_increase", "max_accuracy_drop"):
            if getattr(self, name) > 1:
                raise InputError(f"canary threshold {name} is a fraction in [0, 1]")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CanaryThresholds:
        doc = json.loads(text)
        base = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in doc:  # each value keeps the type of its default
                values[f.name] = type(getattr(base, f.name))(doc[f.name])
        return cls(**values)


@dataclass(frozen=True)
class CanaryPlan:
    """What ``bastion deploy MODEL@V --endpoint E --canary PERCENT`` asks for."""

    weight: int  # percent of requests the canary answers (1..99)
    promote_after: int = 500  # healthy canary requests before it is promoted
    sticky_header: str | None = DEFAULT_STICKY_HEADER
    thresholds: CanaryThresholds = field(default_factory=CanaryThresholds)

    def __post_init__(self) -> None:
        if not 1 <= self.weight <= 99:
            raise InputError(f"canary weight must be a percentage in 1..99, got {self.weight}",
                             hint="--canary 10 sends a tenth of the traffic to the new version")
        if not 1 <= self.promote_after <= 10_000_000:
            raise InputError("--promote-after must be in 1..10000000")
        if self.promote_after < self.thresholds.min_requests:
            raise InputError(
                f"--promote-after {self.promote_after} is below the minimum sample "
                f"{self.thresholds.min_requests}: the canary would be promoted unjudged",
                hint="raise --promote-after or lower min_requests")
        h = self.sticky_header
        if h is not None and (not 1 <= len(h) <= 100 or not all(
                c.isascii() and (c.isalnum() or c == "-") for c in h)):
            raise InputError(f"sticky header {h!r} is not a header name",
                             hint="letters, digits and '-', e.g. X-Bastion-Request-Key")


def canary_plan(weight: int, promote_after: int = 500,
                sticky_header: str | None = DEFAULT_STICKY_HEADER,
                thresholds: list[str] | tuple[str, ...] = ()) -> CanaryPlan:
    """A plan from the command line's words: ``thresholds`` as ``NAME=VALUE`` items."""
    known = {f.name: f for f in fields(CanaryThresholds)}
    base = CanaryThresholds()
    values: dict[str, Any] = {}
    for item in thresholds:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or name not in known:
            raise InputError(f"--threshold {item!r} is not NAME=VALUE with a known name",
                             hint=f"names: {', '.join(known)}")
        try:
            values[name] = type(getattr(base, name))(text.strip())
        except ValueError:
            raise InputError(f"--threshold {name}: {text!r} is not a number") from None
    return CanaryPlan(weight, promote_after, sticky_header or None,
                      CanaryThresholds(**values))


@dataclass(frozen=True)
class Sample:
    """One answered (or failed) request of one arm, as the analysis reads it.
    ``ood`` is the count of rows flagged out of distribution, -1 when not flagged at all."""

    outcome: str  # "ok" or "error"
    latency_ms: float
    labels: tuple[str, ...]  # predicted labels (first rows of the request)
    ood: int
    rows: int


@dataclass(frozen=True)
class Check:
    """One comparison of the analysis: its measurements and whether it failed."""

    name: str  # error_rate, latency_p95, latency_p99, prediction_shift, ood_rate, accuracy
    judged: bool  # False: not enough data yet (the reason says what is missing)
    failed: bool
    canary: float | None
    stable: float | None
    limit: float | None
    reason: str

    def to_dict(self) -> dict[str, JSON]:
        return {"name": self.name, "judged": self.judged, "failed": self.failed,
                "canary": _num(self.canary), "stable": _num(self.stable),
                "limit": _num(self.limit), "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, JSON]) -> Check:
        def f(k: str) -> float | None:
            v = d.get(k)
            return float(v) if isinstance(v, int | float) else None

        return cls(str(d["name"]), bool(d["judged"]), bool(d["failed"]), f("canary"),
                   f("stable"), f("limit"), str(d.get("reason", "")))


@dataclass(frozen=True)
class Analysis:
    """One analysis of the window: the counts it saw and every check."""

    canary_requests: int  # in the window
    stable_requests: int
    checks: tuple[Check, ...]
    at: str

    @property
    def judged(self) -> bool:
        return any(c.judged for c in self.checks)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if c.failed)

    @property
    def healthy(self) -> bool:
        """Judged, and no check failed (checks without data yet do not block)."""
        return self.judged and not self.failed

    def to_dict(self) -> dict[str, JSON]:
        return {"canary_requests": self.canary_requests, "stable_requests": self.stable_requests,
                "failed": list(self.failed), "healthy": self.healthy, "at": self.at,
                "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_json(cls, text: str) -> Analysis:
        d = json.loads(text)
        return cls(int(d["canary_requests"]), int(d["stable_requests"]),
                   tuple(Check.from_dict(c) for c in d["checks"]), str(d["at"]))


@dataclass(frozen=True)
class Canary:
    """One canary release of an endpoint (the database row)."""

    id: str
    project: str
    endpoint: str
    deployment_id: str  # the canary's deployment (state ``canary`` while it runs)
    stable_id: str  # the deployment it is compared with
    plan: CanaryPlan
    state: CanaryState
    row_version: int  # bumped by every write: a decision is a conditional UPDATE on it
    created_at: str
    created_by: str
    analysis: Analysis | None = None
    ended_at: str | None = None
    ended_by: str | None = None
    end_reason: str | None = None
    canary_requests: int = 0  # since it started (every replica's)
    stable_requests: int = 0

    def to_dict(self) -> dict[str, JSON]:
        return {
            "id": self.id, "state": self.state.value, "weight": self.plan.weight,
            "promote_after": self.plan.promote_after, "sticky_header": self.plan.sticky_header,
            "deployment": self.deployment_id, "stable": self.stable_id,
            "canary_requests": self.canary_requests, "stable_requests": self.stable_requests,
            "created_at": self.created_at, "created_by": self.created_by,
            "ended_at": self.ended_at, "ended_by": self.ended_by, "end_reason": self.end_reason,
            "thresholds": json.loads(self.plan.thresholds.to_json()),
            "analysis": self.analysis.to_dict() if self.analysis else None,
        }


def _num(v: float | None) -> JSON:
    return round(v, 6) if v is not None and math.isfinite(v) else None


__all__ = [
    "DEFAULT_STICKY_HEADER",
    "Analysis",
    "Arm",
    "Canary",
    "CanaryPlan",
    "CanaryState",
    "CanaryThresholds",
    "Check",
    "Sample",
    "canary_plan",
]
