"""Black-box evasion and model-extraction query patterns, per principal and endpoint.

Every answered row is fed to :meth:`AdversarialGuard.observe` with the scores the worker
returned (the gateway sees them even when the response withholds them).  For each
(principal, endpoint) the guard keeps the last ``window`` rows in a ring buffer and four
running shares over it, each updated in O(window x features) per row:

- **near-duplicate**: the row lies within ``near`` (L-infinity, as a share of each
  feature's out-of-distribution band; a different category is far) of one of the
  previous rows, without being identical.  HopSkipJump's binary searches and gradient
  estimates are bursts of such rows walking toward the decision boundary.  An exact
  repeat of a remembered row (a retry, a customer scored twice) tells the caller
  nothing new and is skipped: it counts for no signal and dilutes none.
- **sweep**: the row differs from the previous one in exactly one feature: a systematic
  sweep of one feature with the others fixed.
- **boundary**: the top two class scores are within ``2 * boundary`` of each other
  (``|p - 0.5| < boundary`` for two classes): queries probing the decision boundary.
- **off-range**: a numeric feature beyond the training sample's observed extremes:
  synthetic rows drawn from a box (extraction by uniform random queries) land there
  constantly; rows of the training population almost never (about ``2 / (n + 1)`` per
  feature).

Once ``min_rows`` rows are in the window, a share above its limit makes the principal
*suspected* on that endpoint for ``hold_seconds`` (renewed while the pattern goes on).
A new suspicion is audited (``predict.adversarial_suspected``, actor the principal,
with the shares and counts as evidence), counted in Prometheus and handed to the
``on_suspect`` sink: the server raises it as an ``adversarial`` alert (:func:`alert_sink`;
the alert log and its webhooks).  By policy (``BASTION_SERVING_ADVERSARIAL``) a
suspected principal is then only *flagged*, *throttled* (one request per
``throttle_seconds`` on that endpoint, 429 with Retry-After) or *blocked* (403) until
the hold ends; every refusal is audited (one entry per 10 s with the count).

Memory is bounded: at most ``max_tracked`` (principal, endpoint) pairs, least recently
used evicted first, each holding ``window`` rows.  The rows live in each gateway's memory
(replicas each judge the traffic they see); the *verdict* is shared through the
rate-limit storage (:class:`SharedSuspicions`; ``BASTION_SERVING_RATE_STORAGE``): with
Redis, a principal suspected by one replica is throttled or blocked by every replica
(each asks the storage at most once per ``share_seconds`` per principal and endpoint),
and the throttle's one request per interval is counted once for all replicas.

Example::

    guard = AdversarialGuard(access, DetectorOptions(policy=AdversarialPolicy.BLOCK))
    await guard.admit(actor, "credit", "scoring")          # 403 once suspected
    await guard.observe(actor, deployment, rows, scores)   # scores from the worker
"""

from __future__ import annotations

import collections
import contextlib
import enum
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import numpy as np
import numpy.typing as npt
from limits import RateLimitItem, RateLimitItemPerSecond, storage, strategies
from limits.errors import StorageError as LimitsStorageError

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.canonical import JSON
from bastion.core.errors import AccessDenied
from bastion.serving.alerts import AlertService, Severity
from bastion.serving.deployments import endpoint_resource
from bastion.serving.errors import ServingError, Throttled
from bastion.serving.ratelimit import REMOTE_TIMEOUT, RateLimitOptions
from bastion.serving.values import Deployment

_AUDIT_WINDOW = 10.0
_T = TypeVar("_T")
ADVERSARIAL_ALERT = "adversarial"  # the alert kind
SIGNALS = ("near_duplicate", "sweep", "boundary", "off_range")


class AdversarialPolicy(enum.StrEnum):
    FLAG = "flag"  # audit and alert only
    THROTTLE = "throttle"  # one request per throttle_seconds on the endpoint (429)
    BLOCK = "block"  # refused (403) until the hold ends


class AdversarialBlocked(ServingError, AccessDenied):
    """A principal whose queries match an evasion or extraction pattern, blocked by policy."""

    code = "adversarial_blocked"


@dataclass(frozen=True)
class DetectorOptions:
    policy: AdversarialPolicy = AdversarialPolicy.THROTTLE
    window: int = 64  # rows remembered per principal and endpoint
    min_rows: int = 24  # rows in the window before any verdict
    near: float = 0.02  # near-duplicate distance, share of each feature's band
    limits: tuple[tuple[str, float], ...] = (
        ("near_duplicate", 0.5), ("sweep", 0.5), ("boundary", 0.6), ("off_range", 0.3))
    boundary: float = 0.1  # |p - 0.5| below this is the boundary region (two classes)
    hold_seconds: float = 600.0
    throttle_seconds: float = 5.0
    max_tracked: int = 10_000
    share_seconds: float = 1.0  # how often a replica asks the shared storage per principal


@dataclass(frozen=True)
class Suspicion:
    principal: str
    project: str
    endpoint: str
    signals: tuple[str, ...]
    evidence: dict[str, JSON]


@dataclass
class _Track:
    numbers: npt.NDArray[np.float64]  # ring buffer: the scaled numeric features
    others: list[tuple[Any, ...]]  # ring buffer: the other features (compared by equality)
    flags: collections.deque[tuple[bool, ...]]
    previous: tuple[Any, ...] | None = None
    head: int = 0  # the next slot of the ring buffers
    sums: list[int] = field(default_factory=lambda: [0] * len(SIGNALS))
    seen: int = 0
    until: float = float("-inf")
    signals: tuple[str, ...] = ()
    refused: tuple[float, int] = (float("-inf"), 0)


def _scales(d: Deployment) -> tuple[list[float | None], list[tuple[int, float, float]]]:
    """Per column: the band width of numeric features (None: compared by equality); and
    (index, observed low, observed high) of the features with training extremes."""
    ref = d.schema.ood
    bands = {b.name: b for b in ref.bands} if ref is not None else {}
    scales: list[float | None] = []
    seen: list[tuple[int, float, float]] = []
    for i, name in enumerate(d.schema.columns):
        b = bands.get(name)
        if b is None:
            scales.append(None)
            continue
        scales.append(max(b.high - b.low, 1e-12) if math.isfinite(b.high - b.low) else None)
        if b.seen_low is not None and b.seen_high is not None:
            seen.append((i, b.seen_low, b.seen_high))
    return scales, seen


def _split(values: Sequence[Any], scales: Sequence[float | None]) -> tuple[
        npt.NDArray[np.float64], tuple[Any, ...]]:
    """A row as (scaled numeric features, the others); a null numeric value is NaN."""
    nums = [float(v) / sc if isinstance(v, int | float) else math.nan
            for v, sc in zip(values, scales, strict=True) if sc is not None]
    rest = tuple(v for v, sc in zip(values, scales, strict=True) if sc is None)
    return np.asarray(nums, dtype=np.float64), rest


def _shared_key(key: tuple[str, str, str]) -> str:
    principal, project, endpoint = key
    return f"{project}/{endpoint}/{principal}"


def _on_boundary(scores: Sequence[float], margin: float) -> bool:
    top = sorted(scores, reverse=True)
    return len(top) >= 2 and top[0] - top[1] < 2 * margin


class SharedSuspicions:
    """The verdicts (suspected until; throttle slots) in the rate-limit storage: in process
    for ``memory://``, shared by every replica for Redis.  Keys carry the workspace's
    namespace.  A storage that does not answer shares nothing (each replica keeps its own
    verdicts; the rate limiter already refuses traffic while Redis is down)."""

    def __init__(self, rate: RateLimitOptions, options: DetectorOptions) -> None:
        url = rate.storage_url
        self.remote = not url.startswith("memory://")
        extra: dict[str, float | bool] = {}
        if url.startswith(("redis://", "rediss://", "redis+unix://")):
            extra = {"socket_timeout": REMOTE_TIMEOUT, "socket_connect_timeout": REMOTE_TIMEOUT}
        store = storage.storage_from_string(url, wrap_exceptions=True, **extra)
        self._fixed = strategies.FixedWindowRateLimiter(store)
        self._moving = strategies.MovingWindowRateLimiter(store)
        self._hold = RateLimitItemPerSecond(1, max(1, math.ceil(options.hold_seconds)))
        self._slot = RateLimitItemPerSecond(1, max(1, math.ceil(options.throttle_seconds)))
        self._ns = rate.namespace

    def mark(self, key: str) -> None:
        """Record a suspicion (held for ``hold_seconds`` from the first, on every replica)."""
        with contextlib.suppress(LimitsStorageError):
            self._fixed.hit(self._hold, self._ns, "adv-suspect", key)

    def remaining(self, key: str) -> float:
        """Seconds the suspicion of ``key`` still holds (0: not suspected)."""
        return self._wait(self._fixed, self._fixed.test, self._hold, "adv-suspect", key, 0.0)

    def take_slot(self, key: str) -> float:
        """Take the one request a throttled principal has per interval: 0 when taken,
        else the seconds until the next one."""
        return self._wait(self._moving, self._moving.hit, self._slot, "adv-throttle", key, 1.0)

    def _wait(self, limiter: strategies.RateLimiter, passes: Callable[..., bool],
              item: RateLimitItem, kind: str, key: str, floor: float) -> float:
        """0 when ``passes`` lets ``key`` through (or the storage does not answer: see the
        class docstring), else the seconds until its window resets (at least ``floor``)."""
        try:
            if passes(item, self._ns, kind, key):
                return 0.0
            reset = limiter.get_window_stats(item, self._ns, kind, key).reset_time
        except LimitsStorageError:
            return 0.0
        return max(floor, reset - time.time())


class AdversarialGuard:
    """See the module docstring."""

    def __init__(self, access: AccessService, options: DetectorOptions | None = None, *,
                 shared: SharedSuspicions | None = None,
                 on_suspect: Callable[[Suspicion], None] | None = None,
                 on_count: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._access = access
        self.options = options or DetectorOptions()
        #: where a new suspicion goes besides the audit log (the alert store: alert_sink)
        self.on_suspect = on_suspect
        self._on_count = on_count  # (endpoint, what) for the metrics
        self._clock = clock
        self._limits = dict(self.options.limits)
        self._shared = shared or SharedSuspicions(RateLimitOptions(), self.options)
        #: when each (principal, project, endpoint) last asked the shared storage
        self._asked: collections.OrderedDict[tuple[str, str, str], tuple[float, float]] = (
            collections.OrderedDict())
        self._tracks: collections.OrderedDict[tuple[str, str, str], _Track] = (
            collections.OrderedDict())
        #: per deployment id (a deployment's schema never changes): its scales
        self._scales: dict[str, tuple[list[float | None], list[tuple[int, float, float]]]] = {}

    # -- before the body -------------------------------------------------------------------
    async def admit(self, actor: Actor, project: str, endpoint: str) -> None:
        """Refuse a suspected principal by policy (403 blocked, 429 throttled), audited."""
        if self.options.policy is AdversarialPolicy.FLAG:
            return
        key = (actor.name, project, endpoint)
        hold = await self._held(key)
        if hold <= 0:
            return
        t = self._track(*key, None)
        signals = ", ".join(t.signals) or "an evasion or extraction pattern"
        if self.options.policy is AdversarialPolicy.BLOCK:
            e: ServingError = AdversarialBlocked(
                f"{actor.name} is blocked on endpoint {endpoint!r} for "
                f"{math.ceil(hold)} s: its queries match {signals}",
                hint="the queries look like a model-evasion or extraction attack; an "
                     "administrator can see the evidence in the audit log "
                     "(predict.adversarial_suspected)")
        else:
            wait = await self._call(lambda: self._shared.take_slot(_shared_key(key)))
            if wait <= 0:
                return
            e = Throttled(
                f"{actor.name} is throttled on endpoint {endpoint!r} to one request per "
                f"{self.options.throttle_seconds:g} s: its queries match {signals}",
                retry_after=max(1, math.ceil(wait)),
                hint="the queries look like a model-evasion or extraction attack")
        await self._refused(actor, project, endpoint, t, self._clock(), e)
        raise e

    async def _held(self, key: tuple[str, str, str]) -> float:
        """Seconds the principal stays suspected: this replica's verdict, else the shared
        one (asked at most every ``share_seconds``)."""
        now = self._clock()
        t = self._tracks.get(key)
        if t is not None and now < t.until:
            return t.until - now
        asked, hold_until = self._asked.get(key, (float("-inf"), float("-inf")))
        if now - asked >= self.options.share_seconds:
            remaining = await self._call(lambda: self._shared.remaining(_shared_key(key)))
            hold_until = now + remaining if remaining > 0 else float("-inf")
            self._asked[key] = (now, hold_until)
            self._asked.move_to_end(key)
            while len(self._asked) > self.options.max_tracked:
                self._asked.popitem(last=False)
        return max(0.0, hold_until - now)

    async def _call(self, fn: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(fn) if self._shared.remote else fn()

    async def _refused(self, actor: Actor, project: str, endpoint: str, t: _Track,
                       now: float, e: ServingError) -> None:
        reason = f"adversarial_{self.options.policy.value}"
        if self._on_count is not None:
            self._on_count(endpoint, reason)
        first, count = t.refused
        if now - first < _AUDIT_WINDOW:
            t.refused = (first, count + 1)
            return
        t.refused = (now, 0)
        details: dict[str, JSON] = {"reason": reason, "signals": list(t.signals),
                                    "suppressed_before": count, "error": e.code}
        await anyio.to_thread.run_sync(lambda: self._access.record(
            actor, "predict.refused", endpoint_resource(project, endpoint), Outcome.DENIED,
            details))

    # -- after the answer ------------------------------------------------------------------
    async def observe(self, actor: Actor, d: Deployment, rows: Sequence[Sequence[Any]],
                      scores: Sequence[Sequence[float]] | None) -> Suspicion | None:
        """Feed answered rows; a new suspicion is audited, counted and sunk, and returned."""
        found = self.feed(actor.name, d, rows, scores)
        if found is None:
            return None
        if self._on_count is not None:
            self._on_count(d.endpoint, "suspected")
        shared_key = _shared_key((actor.name, d.project, d.endpoint))
        await self._call(lambda: self._shared.mark(shared_key))
        details = {"signals": list(found.signals), **found.evidence,
                   "policy": self.options.policy.value}
        await anyio.to_thread.run_sync(lambda: self._access.record(
            actor, "predict.adversarial_suspected", endpoint_resource(d.project, d.endpoint),
            Outcome.DENIED, details))
        if self.on_suspect is not None:
            sink = self.on_suspect
            await anyio.to_thread.run_sync(lambda: sink(found))
        return found

    def feed(self, principal: str, d: Deployment, rows: Sequence[Sequence[Any]],
             scores: Sequence[Sequence[float]] | None) -> Suspicion | None:
        """The detector itself (synchronous, no I/O): the new suspicion, if any."""
        found = self._scales.get(d.id)
        if found is None:
            if len(self._scales) >= 256:
                self._scales.clear()
            found = self._scales[d.id] = _scales(d)
        scales, seen = found
        t = self._track(principal, d.project, d.endpoint,
                        sum(1 for sc in scales if sc is not None))
        for i, row in enumerate(rows):
            values = tuple(row)
            near = self._near(t, *_split(values, scales))
            if near is None:
                continue  # a repeat of a remembered row: neither evidence nor cover
            sweep = t.previous is not None and len(t.previous) == len(values) and sum(
                1 for x, y in zip(values, t.previous, strict=True) if x != y) == 1
            boundary = scores is not None and i < len(scores) and _on_boundary(
                scores[i], self.options.boundary)
            off = any(isinstance(values[j], int | float) and not lo <= values[j] <= hi
                      for j, lo, hi in seen)
            self._push(t, values, (near, sweep, boundary, off))
        return self._judge(t, principal, d)

    def _near(self, t: _Track, nums: npt.NDArray[np.float64],
              rest: tuple[Any, ...]) -> bool | None:
        """Whether the row is within ``near`` of a remembered row (then remembered), or
        None for an exact repeat of one (not remembered: it tells the caller nothing new)."""
        n = len(t.flags)
        found = False
        if n:
            gaps = np.abs(t.numbers[:n] - nums)  # NaN (a null) is never near
            close = [k for k in np.flatnonzero((gaps <= self.options.near).all(axis=1))
                     if t.others[k] == rest]
            if any(not gaps[k].any() for k in close):
                return None
            found = bool(close)
        slot = t.head
        t.numbers[slot] = nums
        if slot < len(t.others):
            t.others[slot] = rest
        else:
            t.others.append(rest)
        t.head = (slot + 1) % self.options.window
        return found

    def _track(self, principal: str, project: str, endpoint: str, width: int | None) -> _Track:
        """The pair's state (``width`` None: any width, e.g. to remember a refusal)."""
        key = (principal, project, endpoint)
        t = self._tracks.get(key)
        if t is None or (width is not None and t.numbers.shape[1] != width):
            w = self.options.window
            t = _Track(np.full((w, width or 0), np.nan), [], collections.deque(maxlen=w))
            self._tracks[key] = t
            while len(self._tracks) > self.options.max_tracked:
                self._tracks.popitem(last=False)  # least recently used
        else:
            self._tracks.move_to_end(key)
        return t

    @staticmethod
    def _push(t: _Track, values: tuple[Any, ...], flags: tuple[bool, ...]) -> None:
        if t.flags and len(t.flags) == t.flags.maxlen:
            for k, f in enumerate(t.flags[0]):
                t.sums[k] -= int(f)
        t.previous = values
        t.flags.append(flags)
        for k, f in enumerate(flags):
            t.sums[k] += int(f)
        t.seen += 1

    def _judge(self, t: _Track, principal: str, d: Deployment) -> Suspicion | None:
        n = len(t.flags)
        if n < self.options.min_rows:
            return None
        shares = {s: t.sums[k] / n for k, s in enumerate(SIGNALS)}
        hits = tuple(s for s in SIGNALS if shares[s] > self._limits[s])
        if not hits:
            return None
        now = self._clock()
        new = now >= t.until
        t.until = now + self.options.hold_seconds
        t.signals = tuple(sorted(set(hits) | (set() if new else set(t.signals))))
        if not new:
            return None  # the same suspicion goes on: held longer, not raised again
        evidence: dict[str, JSON] = {
            "window_rows": n, "rows_seen": t.seen,
            "shares": {s: round(v, 3) for s, v in shares.items()},
            "limits": {s: v for s, v in self._limits.items()},
            "model": d.ref, "hold_seconds": self.options.hold_seconds}
        return Suspicion(principal, d.project, d.endpoint, hits, evidence)

    def suspected(self, principal: str, project: str, endpoint: str) -> bool:
        """This replica's own verdict (the shared one is asked by ``admit``)."""
        t = self._tracks.get((principal, project, endpoint))
        return t is not None and self._clock() < t.until

    def tracked(self) -> int:
        return len(self._tracks)


def alert_sink(alerts: AlertService) -> Callable[[Suspicion], None]:
    """Raise each new suspicion as an ``adversarial`` alert (log and webhooks); one open
    alert per endpoint, later suspicions count as its repeats."""

    def sink(s: Suspicion) -> None:
        alerts.raise_alert(
            s.project, s.endpoint, ADVERSARIAL_ALERT, Severity.CRITICAL,
            f"{s.principal}'s queries match {', '.join(s.signals)} (evasion or extraction)",
            {"principal": s.principal, "signals": list(s.signals), **s.evidence})

    return sink


__all__ = [
    "ADVERSARIAL_ALERT",
    "SIGNALS",
    "AdversarialBlocked",
    "AdversarialGuard",
    "AdversarialPolicy",
    "DetectorOptions",
    "SharedSuspicions",
    "Suspicion",
    "alert_sink",
]
