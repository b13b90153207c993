"""The gateway's side of canary releases: which version answers, the canary's own worker,
the samples the analysis reads, the metrics.

While an endpoint has a running canary (read from the database at the gateway's refresh
interval, so every replica and a restarted gateway follow the same canary), its version
runs in a sandboxed worker of its own, started while the stable version keeps serving.
Each request is routed by weight: with the plan's sticky header (``X-Bastion-Request-Key``
by default) the key picks the bucket through an HMAC under a keyring key and the canary's
id — every replica routes one key alike, and a client cannot compute which keys land on
the canary (it can only try them and look at the answer's ``model``); without it, at
random.  A canary request the canary's worker fails is counted against the canary and
answered by the stable version, so a failing canary fails no request.

The canary's version is re-verified like the stable one, every ``verify_seconds`` while
its worker serves (signature with the project's trusted keys, scan, digest, the stored
bytes, through ``recheck``): a canary whose artifact was tampered with or whose signing key
was revoked is rolled back (audited with the reason) and its worker stops taking requests
at once; the stable version answers them.

Every answered (or failed) request of either arm becomes one sample, written with the
prediction log; after each flush the gateway asks :class:`CanaryService` to evaluate the
canaries it serves (the decision is made once, whichever replica gets there first).

Example::

    traffic = CanaryTraffic(ws.canaries, metrics, start, retire, sticky_digest)
    pick = traffic.pick("credit", "scoring", stable_live, request.headers)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio
from prometheus_client import Counter, Gauge

from bastion.core.canonical import JSON
from bastion.core.errors import BastionError
from bastion.serving.canary import CanaryService
from bastion.serving.canary_values import Arm, Canary, CanaryState
from bastion.serving.deployments import CanaryFailure
from bastion.serving.metrics import GatewayMetrics
from bastion.serving.values import Deployment

L = TypeVar("L")
_log = logging.getLogger("bastion.serving.canary")
#: labels kept per sample (the prediction-shift check reads these)
MAX_SAMPLE_LABELS = 32
_BUCKETS = 10_000
MAX_STICKY_KEY = 256


@dataclass(frozen=True)
class Pick(Generic[L]):
    """Which worker answers one request, and for which canary it is a sample."""

    live: L
    arm: Arm | None = None  # None: no canary runs on the endpoint
    canary: Canary | None = None


@dataclass
class _State(Generic[L]):
    canary: Canary | None = None
    deployment: Deployment | None = None
    live: L | None = None  # the canary's worker once started
    checked: float = float("-inf")
    verified: float = float("inf")  # when its version was last verified (its worker start)
    starting: asyncio.Task[None] | None = None
    rechecking: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class CanaryMetrics:
    def __init__(self, metrics: GatewayMetrics) -> None:
        r = metrics.registry
        self.weight = Gauge("bastion_canary_weight_percent",
                            "share of requests routed to the running canary (0: none)",
                            ["endpoint"], registry=r)
        self.state = Gauge("bastion_canary_running",
                           "1 while a canary runs on the endpoint (its worker started)",
                           ["endpoint", "model"], registry=r)
        self.requests = Counter("bastion_canary_requests",
                                "requests answered while a canary runs, by arm and outcome",
                                ["endpoint", "arm", "outcome"], registry=r)
        self.decisions = Counter("bastion_canary_decisions",
                                 "canary decisions this gateway made",
                                 ["endpoint", "decision"], registry=r)


class CanaryTraffic(Generic[L]):
    """See the module docstring."""

    def __init__(self, service: CanaryService | None, metrics: GatewayMetrics,
                 start: Callable[[Deployment], Awaitable[L]],
                 retire: Callable[[L], Awaitable[None]], sticky_digest: Callable[[bytes], str],
                 deployment_of: Callable[[L], Deployment], refresh_seconds: float, *,
                 recheck: Callable[[Canary], CanaryFailure | None] | None = None,
                 verify_seconds: float = 60.0) -> None:
        self._service = service
        self._start = start
        self._retire = retire
        self._sticky = sticky_digest
        self._deployment_of = deployment_of
        self._refresh_seconds = refresh_seconds
        #: re-verifies a canary's version; rolls it back and says why when it fails
        self._recheck = recheck
        self._verify_seconds = verify_seconds
        self.metrics = CanaryMetrics(metrics)
        self._states: dict[tuple[str, str], _State[L]] = {}
        self._samples: list[dict[str, JSON]] = []
        self._background: set[asyncio.Task[None]] = set()
        #: workers of ended canaries, by deployment id: a promoted one is adopted by the
        #: gateway as its new stable worker, the others are retired after a grace period
        self._adoptable: dict[str, L] = {}

    # -- following the database ----------------------------------------------------------
    async def refresh(self, project: str, endpoint: str) -> None:
        """Follow the endpoint's canary (at most every ``refresh_seconds``)."""
        if self._service is None:
            return
        st = self._states.setdefault((project, endpoint), _State())
        if time.monotonic() - st.checked < self._refresh_seconds or st.lock.locked():
            return  # another request is refreshing: this one goes on with the state it has
        async with st.lock:
            if time.monotonic() - st.checked < self._refresh_seconds:
                return
            service = self._service
            found = await anyio.to_thread.run_sync(lambda: service.running(project, endpoint))
            st.checked = time.monotonic()
            canary, d = found if found is not None else (None, None)
            if st.canary is not None and (canary is None or canary.id != st.canary.id):
                self._end(endpoint, st)
            if canary is None or d is None:
                return
            st.canary = canary
            if st.deployment is None:
                st.deployment = d
                self.metrics.weight.labels(endpoint).set(canary.plan.weight)
                st.starting = self._spawn(self._start_worker(endpoint, st, canary, d))
            elif (st.live is not None and st.checked - st.verified >= self._verify_seconds
                  and (st.rechecking is None or st.rechecking.done())):
                st.verified = st.checked  # in the background: requests keep flowing
                st.rechecking = self._spawn(self._reverify(endpoint, st, canary))

    async def _reverify(self, endpoint: str, st: _State[L], c: Canary) -> None:
        """Re-verify the serving canary's version; if it fails, stop routing to it now
        (the decision is in the database: every replica follows at its next refresh)."""
        recheck = self._recheck
        if recheck is None:
            return
        try:
            failure = await anyio.to_thread.run_sync(lambda: recheck(c))
        except BastionError as e:  # e.g. the database: try again at the next interval
            _log.error("re-verifying canary %s of %s failed: %s", c.id, endpoint, e.message)
            return
        if failure is None or st.canary is None or st.canary.id != c.id:
            return
        _log.error("canary %s of %s rolled back: %s", c.id, endpoint, failure.reason)
        if failure.decided:
            self.metrics.decisions.labels(endpoint, CanaryState.ROLLED_BACK.value).inc()
        self._end(endpoint, st, keep=False)
        st.checked = float("-inf")

    async def _start_worker(self, endpoint: str, st: _State[L], c: Canary,
                            d: Deployment) -> None:
        """The canary's own sandboxed worker; the stable one serves meanwhile."""
        try:
            live = await self._start(d)
        except BastionError as e:
            _log.error("canary %s of %s did not start: %s", d.ref, endpoint, e.message)
            service = self._service
            assert service is not None
            reason = f"the canary's worker did not start: {e.message[:200]}"
            await anyio.to_thread.run_sync(lambda: service.abandon(c, reason))
            st.checked = float("-inf")
            return
        if st.canary is None or st.canary.id != c.id:  # ended while it started
            await self._retire(live)
            return
        st.live = live
        st.verified = time.monotonic()  # the start verified it (signature, scan, digest)
        self.metrics.state.labels(endpoint, d.ref).set(1)

    def _end(self, endpoint: str, st: _State[L], *, keep: bool = True) -> None:
        """The canary ended (promoted, rolled back, aborted): stop routing to it.  Its
        worker waits a few refresh intervals for :meth:`adopt` (a promoted canary becomes
        the gateway's stable worker), then is retired."""
        live, d = st.live, st.deployment
        st.canary, st.deployment, st.live = None, None, None
        if st.starting is not None and not st.starting.done():
            st.starting.cancel()
        self.metrics.weight.labels(endpoint).set(0)
        if d is not None:
            with contextlib.suppress(KeyError):
                self.metrics.state.remove(endpoint, d.ref)
        if live is not None and d is not None and keep:
            self._adoptable[d.id] = live
            self._spawn(self._retire_later(d.id))
        elif live is not None:
            self._spawn(self._retire(live))

    async def _retire_later(self, deployment_id: str) -> None:
        await asyncio.sleep(3 * self._refresh_seconds + 5)
        live = self._adoptable.pop(deployment_id, None)
        if live is not None:
            await self._retire(live)

    def adopt(self, active: Deployment) -> L | None:
        """A promoted canary became the active deployment: its running worker, for the
        gateway to serve with instead of starting another (None when there is none)."""
        live = self._adoptable.pop(active.id, None)
        if live is not None:
            return live
        for st in self._states.values():
            if st.live is not None and self._deployment_of(st.live).id == active.id:
                live, st.live = st.live, None
                return live
        return None

    # -- routing --------------------------------------------------------------------------
    def pick(self, project: str, endpoint: str, stable: L,
             headers: Mapping[str, str] | None) -> Pick[L]:
        st = self._states.get((project, endpoint))
        if st is None or st.canary is None:
            return Pick(stable)
        c = st.canary
        if st.live is None:  # its worker is starting: the stable one answers, as a sample
            return Pick(stable, Arm.STABLE, c)
        key = headers.get(c.plan.sticky_header) if headers and c.plan.sticky_header else None
        if key:
            mac = self._sticky(b"canary-sticky\x00" + c.id.encode() + b"\x00"
                               + key.encode("utf-8", "replace")[:MAX_STICKY_KEY])
            bucket = int(mac[:8], 16) % _BUCKETS
        else:
            bucket = secrets.randbelow(_BUCKETS)
        if bucket < c.plan.weight * (_BUCKETS // 100):
            return Pick(st.live, Arm.CANARY, c)
        return Pick(stable, Arm.STABLE, c)

    def observe(self, pick: Pick[L], record: Mapping[str, JSON], labels: list[Any]) -> None:
        """One sample from the gateway's per-request record (``ood``: rows flagged out of
        distribution, when the gateway flags them)."""
        if pick.arm is None or pick.canary is None:
            return
        ood = record.get("ood")
        outcome = "ok" if record.get("outcome") == "ok" else "error"
        endpoint = str(record.get("endpoint", ""))
        self.metrics.requests.labels(endpoint, pick.arm.value, outcome).inc()
        self._samples.append({
            "id": uuid.uuid4().hex, "canary_id": pick.canary.id, "arm": pick.arm.value,
            "request_id": str(record.get("request_id", ""))[:64],
            "principal": str(record.get("principal", ""))[:200], "outcome": outcome,
            "latency_ms": _number(record.get("latency_ms")),
            "rows": int(_number(record.get("rows"))),
            "labels": json.dumps([str(x) for x in labels[:MAX_SAMPLE_LABELS]]),
            "ood": int(ood) if isinstance(ood, int | bool) else -1,
            "created_at": str(record.get("created_at", "")),
        })

    def failed(self, pick: Pick[L], request_id: str, principal: str, endpoint: str,
               started: float, rows: int) -> None:
        """The canary's worker failed this request (the stable one answers it)."""
        self.observe(pick, {
            "request_id": request_id, "principal": principal, "endpoint": endpoint,
            "outcome": "error", "rows": rows,
            "latency_ms": round((time.monotonic() - started) * 1000, 3),
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")}, [])

    # -- after each prediction-log flush ----------------------------------------------------
    async def flush(self) -> None:
        """Write the samples, then evaluate the canaries this gateway serves."""
        service = self._service
        if service is None:
            return
        batch, self._samples = self._samples, []
        if batch:
            await anyio.to_thread.run_sync(lambda: service.log_samples(batch))
        for (project, endpoint), st in list(self._states.items()):
            if st.canary is None:
                continue
            decided = await anyio.to_thread.run_sync(
                functools.partial(service.evaluate, project, endpoint))
            if decided is not None:
                self.metrics.decisions.labels(endpoint, decided.state.value).inc()
                self._end(endpoint, st, keep=decided.state is CanaryState.PROMOTED)
                st.checked = float("-inf")

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def close(self) -> None:
        for st in self._states.values():
            if st.starting is not None and not st.starting.done():
                st.starting.cancel()
            if st.live is not None:
                live, st.live = st.live, None
                with contextlib.suppress(Exception):
                    await self._retire(live)
        for live in list(self._adoptable.values()):
            with contextlib.suppress(Exception):
                await self._retire(live)
        self._adoptable.clear()
        for task in list(self._background):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await self.flush()


def _number(v: JSON) -> float:
    return float(v) if isinstance(v, int | float) else 0.0


__all__ = ["MAX_SAMPLE_LABELS", "CanaryMetrics", "CanaryTraffic", "Pick"]
