"""The prediction gateway: one request from the edge to a sandboxed worker and back.

``admit`` runs before the request body is read: the per-principal rate limit (no
database touched, so a flood from one token costs nothing), ``authorize(actor,
"predict", endpoint)`` (the audited decision), the per-endpoint rate limit.  ``predict``
then parses and validates the body against the deployment's input schema, hands the rows
to the deployment's worker (adaptive micro-batching), shapes the answer by the response
policy (decision, scores rounded or withheld), logs the prediction (request id, endpoint,
model version, latency, a digest of the features — never the features) and counts it.

The gateway follows the database: at most every ``refresh_seconds`` it reads which
deployment is active per endpoint, and every ``verify_seconds`` it re-verifies the
version in service (signature with the project's trusted keys, digests, scan): a revoked
key or tampered store takes it out of service.  A new deployment (deploy, rollback)
gets a fresh worker, verified and started *while the old one keeps serving*; then the
old one drains and stops, so a switch fails no request.  An endpoint with nothing
active (revoked, never deployed) answers ``NoDeployment``; a version whose signature or
scan fails when its worker starts is revoked (audited) and taken out of service.
Refusals are audited, repeated throttling once per key and window with a count.

Example::

    gw = Gateway(ws.access, ws.deployments, ws.models, ws.scratch.workdir, digest)
    admission = await gw.admit(actor, "credit", "scoring")
    answer = await gw.predict(actor, "credit", "scoring", body, request_id="r1",
                              admission=admission)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.canonical import JSON
from bastion.core.errors import BastionError, IntegrityError
from bastion.core.settings import BastionSettings
from bastion.model_security.errors import MaliciousArtifact, SignatureInvalid
from bastion.model_security.registry import ModelRegistry
from bastion.serving.admission import Admission, BatchedAuthorizer
from bastion.serving.adversarial import (
    AdversarialGuard,
    AdversarialPolicy,
    DetectorOptions,
    SharedSuspicions,
)
from bastion.serving.artifact import stage_artifact
from bastion.serving.canary import CanaryService
from bastion.serving.canary_traffic import CanaryTraffic, Pick
from bastion.serving.canary_values import Arm
from bastion.serving.deployments import DeploymentService, endpoint_resource
from bastion.serving.errors import (
    DeploymentRefused,
    InvalidFeatures,
    NoDeployment,
    RateLimitUnavailable,
    Throttled,
    WorkerUnavailable,
)
from bastion.serving.events import GATEWAY, audited
from bastion.serving.metrics import GatewayMetrics
from bastion.serving.ood import OodPolicy, OutOfDistribution, out_of_band, refusal
from bastion.serving.ratelimit import RateLimiter, RateLimitOptions
from bastion.serving.sandbox import MIB, Sandbox, SandboxLimits
from bastion.serving.schema import parse_request, validate_rows
from bastion.serving.values import Deployment
from bastion.serving.workers import SandboxedWorker, WorkerOptions, WorkerSpec, WorkerStopped

Workdir = Callable[[str], AbstractContextManager[Path]]
FeatureDigest = Callable[[bytes], str]
Observer = Callable[[Deployment, list[list[Any]], list[Any]], None]
_THROTTLE_AUDIT_WINDOW = 10.0
_log = logging.getLogger("bastion.serving")


@dataclass(frozen=True)
class GatewayOptions:
    refresh_seconds: float = 1.0
    #: how often each version in service is re-verified (signature, trusted key, scan)
    verify_seconds: float = 60.0
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    worker: WorkerOptions = field(default_factory=WorkerOptions)
    rate: RateLimitOptions = field(default_factory=RateLimitOptions)
    adversarial: DetectorOptions = field(default_factory=DetectorOptions)
    #: after a worker starts, move what the process holds by then out of the cyclic
    #: collector's full passes (``gc.freeze``; set by ``bastion serve``, see server.py)
    freeze_heap: bool = False

    @classmethod
    def from_settings(cls, s: BastionSettings) -> GatewayOptions:
        return cls(
            refresh_seconds=s.serving_refresh_seconds,
            verify_seconds=s.serving_verify_seconds,
            limits=SandboxLimits(memory_bytes=s.serving_worker_memory_mib * MIB),
            worker=WorkerOptions(request_timeout=s.serving_request_timeout),
            rate=RateLimitOptions(s.serving_rate_principal, s.serving_rate_endpoint,
                                  s.serving_rate_storage),
            adversarial=DetectorOptions(policy=AdversarialPolicy(s.serving_adversarial)),
            freeze_heap=True,
        )


@dataclass
class _Live:
    deployment: Deployment
    worker: SandboxedWorker
    scratch: contextlib.ExitStack


@dataclass
class _Endpoint:
    live: _Live | None = None
    checked: float = float("-inf")
    verified: float = field(default_factory=time.monotonic)
    switching: asyncio.Task[None] | None = None
    rechecking: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Gateway:
    """See the module docstring."""

    def __init__(self, access: AccessService, deployments: DeploymentService,
                 registry: ModelRegistry, workdir: Workdir, digest: FeatureDigest,
                 options: GatewayOptions | None = None, *,
                 canaries: CanaryService | None = None,
                 sticky_digest: FeatureDigest | None = None) -> None:
        self._access = access
        self._deployments = deployments
        self._registry = registry
        self._workdir = workdir
        self._digest = digest
        self.options = options or GatewayOptions()
        self._sandbox = Sandbox(self.options.limits)
        self._authorizer = BatchedAuthorizer(access)
        self._rate = RateLimiter(self.options.rate)
        self.metrics = GatewayMetrics()
        self._endpoints: dict[tuple[str, str], _Endpoint] = {}
        self._log: list[dict[str, JSON]] = []
        self._throttle_seen: dict[tuple[str, str, str], tuple[float, int]] = {}
        self._background: set[asyncio.Task[None]] = set()
        #: canary releases: routing, the canary's own worker, samples (canary_traffic.py)
        self.canary: CanaryTraffic[_Live] = CanaryTraffic(
            canaries, self.metrics, self._start, self._retire, sticky_digest or digest,
            lambda live: live.deployment, self.options.refresh_seconds,
            recheck=lambda c: deployments.recheck_canary(c, GATEWAY),
            verify_seconds=self.options.verify_seconds)
        #: called with (deployment, validated rows, labels) after each answered request, on
        #: the event loop (must not block): the drift monitor's live sample
        self.observers: list[Observer] = []
        #: evasion / extraction query patterns per principal (serving/adversarial.py)
        self.guard = AdversarialGuard(
            access, self.options.adversarial,
            shared=SharedSuspicions(self.options.rate, self.options.adversarial),
            on_count=lambda ep, what: self.metrics.adversarial.labels(ep, what).inc())

    # -- before the body --------------------------------------------------------------
    async def admit(self, actor: Actor, project: str, endpoint: str) -> Admission:
        """Rate limits and the audited ``predict`` decision. Returns once the request is
        decided allowed, while the decision is still being committed (concurrent requests
        share one durable audit commit): the caller passes the :class:`Admission` to
        ``predict``, which answers only once ``recorded()`` has returned, and must await
        ``recorded()`` itself before any other answer (an error) leaves."""
        resource = endpoint_resource(project, endpoint)
        try:
            await self._limit(endpoint, lambda: self._rate.hit_principal(actor.name))
        except Throttled:
            await self._throttled(actor, project, endpoint, "principal")
            raise
        admission = await self._authorizer.admit(actor, "predict", resource)
        try:
            await self.guard.admit(actor, project, endpoint)
            try:
                await self._limit(endpoint, lambda: self._rate.hit_endpoint(project, endpoint))
            except Throttled:
                await self._throttled(actor, project, endpoint, "endpoint")
                raise
        except BaseException:
            await admission.recorded()  # a refusal leaves only once the decision is on disk
            raise
        return admission

    async def limit_principal(self, actor: Actor, project: str, endpoint: str) -> None:
        """The per-principal rate limit alone (the feedback route: its service authorizes)."""
        try:
            await self._limit(endpoint, lambda: self._rate.hit_principal(actor.name))
        except Throttled:
            await self._throttled(actor, project, endpoint, "principal")
            raise

    async def _limit(self, endpoint: str, hit: Callable[[], None]) -> None:
        """One rate-limit hit; a shared (Redis) storage is asked off the event loop, and
        when it does not answer the request is refused (503), never let through."""
        try:
            if self._rate.remote:
                await anyio.to_thread.run_sync(hit)
            else:
                hit()
        except RateLimitUnavailable as e:
            self.metrics.refusals.labels(endpoint, "rate_limit_unavailable").inc()
            _log.error("%s", e.message)
            raise

    async def _throttled(self, actor: Actor, project: str, endpoint: str, kind: str) -> None:
        self.metrics.refusals.labels(endpoint, f"rate_limited_{kind}").inc()
        key = (actor.name, f"{project}/{endpoint}", kind)
        now = time.monotonic()
        first, count = self._throttle_seen.get(key, (float("-inf"), 0))
        if now - first < _THROTTLE_AUDIT_WINDOW:
            self._throttle_seen[key] = (first, count + 1)
            return  # one audit entry per key and window, with the count of the last one
        self._throttle_seen[key] = (now, 0)
        details: dict[str, JSON] = {"reason": f"rate_limited_{kind}", "suppressed_before": count}
        await anyio.to_thread.run_sync(lambda: self._access.record(
            actor, "predict.refused", endpoint_resource(project, endpoint), Outcome.DENIED,
            details))

    # -- the prediction ---------------------------------------------------------------
    async def predict(self, actor: Actor, project: str, endpoint: str, body: bytes,
                      *, request_id: str, headers: Mapping[str, str] | None = None,
                      canary: bool = True,
                      admission: Admission | None = None) -> dict[str, JSON]:
        """Validate, predict, shape, log. With the ``admission`` of ``admit``, nothing of
        the answer is used (logged, sampled, observed, returned) before the authorization
        is durably recorded; a failed commit fails the request."""
        started = time.monotonic()
        live = await self._live(project, endpoint)
        pick = self.canary.pick(project, endpoint, live, headers) if canary else Pick(live)
        live = pick.live
        d = live.deployment
        try:
            rows = validate_rows(d.schema, parse_request(body))
            ood = out_of_band(d.schema.ood, d.schema.columns, rows)
            if d.policy.ood is OodPolicy.REFUSE and any(ood):
                raise refusal(ood)
        except InvalidFeatures as e:
            if admission is not None:  # a request refused at its commit leaves no trace
                await admission.recorded()
            why = e.code if isinstance(e, OutOfDistribution) else "invalid_input"
            self.metrics.refusals.labels(endpoint, why).inc()
            self._record(actor, d, request_id, 0, started, why, b"")
            details: dict[str, JSON] = {"reason": why, "field": e.field[:100],
                                        "problem": e.reason[:200]}
            await anyio.to_thread.run_sync(lambda: self._access.record(
                actor, "predict.refused", endpoint_resource(project, endpoint),
                Outcome.FAILED, details))
            raise
        try:
            labels, scores = await self._ask(project, endpoint, live, rows)
        except WorkerUnavailable:
            if admission is not None:  # nothing counted, logged or sampled before it
                await admission.recorded()
            if pick.arm is Arm.CANARY:  # counted against the canary; the stable one answers
                self.canary.failed(pick, request_id, actor.name, endpoint, started, len(rows))
                return await self.predict(actor, project, endpoint, body,
                                          request_id=request_id, canary=False,
                                          admission=admission)
            self.metrics.requests.labels(endpoint, "error").inc()
            self._record(actor, d, request_id, len(rows), started, "error", body)
            self.canary.observe(pick, self._log[-1], [])
            raise
        if admission is not None:
            await admission.recorded()
        answer = self._shape(d, live.worker.classes, labels, scores, request_id)
        flagged = _mark_ood(answer, ood)
        if flagged:
            self.metrics.ood_rows.labels(endpoint).inc(flagged)
        await self.guard.observe(actor, d, rows, scores)
        for observe in self.observers:
            observe(d, rows, labels)
        self.metrics.requests.labels(endpoint, "ok").inc()
        self.metrics.latency.labels(endpoint).observe(time.monotonic() - started)
        self._record(actor, d, request_id, len(rows), started, "ok", body, ood=flagged)
        self.canary.observe(pick, self._log[-1], labels)
        return answer

    async def _ask(self, project: str, endpoint: str, live: _Live,
                   rows: list[list[Any]]) -> tuple[list[Any], list[list[float]] | None]:
        try:
            return await live.worker.predict(rows)
        except WorkerStopped:  # switched away under us: the new worker answers
            fresh = await self._live(project, endpoint)
            return await fresh.worker.predict(rows)

    @staticmethod
    def _shape(d: Deployment, classes: list[Any] | None, labels: list[Any],
               scores: list[list[float]] | None, request_id: str) -> dict[str, JSON]:
        out: list[JSON] = []
        for i, label in enumerate(labels):
            item: dict[str, JSON] = {"label": label}
            if d.policy.scores and scores is not None and classes is not None:
                item["scores"] = {str(c): round(float(p), d.policy.decimals)
                                  for c, p in zip(classes, scores[i], strict=False)}
            out.append(item)
        return {"request_id": request_id, "endpoint": d.endpoint, "model": d.ref,
                "predictions": out}

    def _record(self, actor: Actor, d: Deployment, request_id: str, rows: int,
                started: float, outcome: str, body: bytes, *, ood: int = 0) -> None:
        self._log.append({
            "id": uuid.uuid4().hex, "request_id": request_id, "project": d.project,
            "endpoint": d.endpoint, "deployment_id": d.id, "model": d.model,
            "version": d.version, "rows": rows,
            "latency_ms": round((time.monotonic() - started) * 1000, 3), "outcome": outcome,
            "features_digest": self._digest(body), "principal": actor.name, "ood": ood,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        })

    async def flush_log(self) -> int:
        """Write the buffered prediction log (the server calls this about every second)."""
        batch, self._log = self._log, []
        if batch:
            await anyio.to_thread.run_sync(lambda: self._deployments.log_predictions(batch))
        await self.canary.flush()  # its samples, then the analysis of running canaries
        return len(batch)

    # -- which worker serves ------------------------------------------------------------
    async def _live(self, project: str, endpoint: str) -> _Live:
        ep = self._endpoints.setdefault((project, endpoint), _Endpoint())
        # While one request refreshes, the others are served by the version in service
        # (as they were a moment before) instead of queueing behind its database read.
        refreshing = ep.live is not None and ep.lock.locked()
        if time.monotonic() - ep.checked >= self.options.refresh_seconds and not refreshing:
            await self._refresh(project, endpoint, ep)
        await self.canary.refresh(project, endpoint)  # at the same interval
        if ep.live is None and ep.lock.locked():  # the first worker is starting: wait for it
            async with ep.lock:
                pass
        if ep.live is None:
            raise NoDeployment(f"endpoint {endpoint!r} has no model in service",
                               hint="deploy one: bastion deploy MODEL@V --endpoint NAME")
        return ep.live

    async def _refresh(self, project: str, endpoint: str, ep: _Endpoint) -> None:
        async with ep.lock:
            if time.monotonic() - ep.checked < self.options.refresh_seconds:
                return
            active = await anyio.to_thread.run_sync(
                lambda: self._deployments.active(project, endpoint))
            ep.checked = time.monotonic()
            if active is None:
                old, ep.live = ep.live, None
                if old is not None:  # keep a reference: the loop holds tasks only weakly
                    task = asyncio.create_task(self._retire(old))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                return
            if ep.live is not None and ep.live.deployment.id == active.id:
                if ep.checked - ep.verified >= self.options.verify_seconds:
                    ep.verified = ep.checked  # in the background: requests keep flowing
                    ep.rechecking = asyncio.create_task(self._recheck(ep, active))
                return
            if ep.live is None:  # nothing to serve meanwhile: wait for the start
                ep.live = await self._start(active)
                return
            if ep.switching is None or ep.switching.done():
                ep.switching = asyncio.create_task(self._switch(ep, active))

    async def _recheck(self, ep: _Endpoint, active: Deployment) -> None:
        """A revoked key or tampered store takes the version out of service here."""
        ok = await anyio.to_thread.run_sync(lambda: self._deployments.recheck(active, GATEWAY))
        if not ok and ep.live is not None and ep.live.deployment.id == active.id:
            old, ep.live = ep.live, None
            await self._retire(old)

    async def _switch(self, ep: _Endpoint, active: Deployment) -> None:
        try:  # a promoted canary's worker serves on (started and verified already)
            new = self.canary.adopt(active) or await self._start(active)
        except BastionError:
            return  # revoked or failed to start: the old one serves until the next refresh
        old, ep.live = ep.live, new
        if old is not None:
            await self._retire(old)

    async def _start(self, d: Deployment) -> _Live:
        resource = endpoint_resource(d.project, d.endpoint)
        stack = contextlib.ExitStack()
        try:
            folder = stack.enter_context(self._workdir("serving"))
            staged = await anyio.to_thread.run_sync(
                lambda: stage_artifact(self._registry, d.project, d.ref, folder / "worker"))
            if staged.root_digest != d.root_digest:
                raise DeploymentRefused(f"{d.ref} no longer has the digest it was deployed with")
            spec = WorkerSpec(f"{d.project}/{d.endpoint}#{d.seq} {d.ref}", staged.folder,
                              staged.model_file, staged.digest, d.schema.columns)
            sink = audited(self._access, resource)

            def on_event(event: str, details: dict[str, JSON]) -> None:
                if event == "serving.worker.crashed":
                    self.metrics.restarts.labels(d.endpoint).inc()
                sink(event, details)

            worker = SandboxedWorker(spec, self._sandbox, on_event=on_event,
                                     options=self.options.worker,
                                     on_batch=self.metrics.batch_rows.observe)
            await worker.start()
            if self.options.freeze_heap:
                gc.freeze()  # no collection (no stall): only what lives now leaves the scans
        except (SignatureInvalid, MaliciousArtifact, DeploymentRefused, IntegrityError) as e:
            # IntegrityError: a stored blob that fails decryption (BlobCorrupted) is
            # tampered as surely as a bad signature
            stack.close()
            reason = e.message
            await anyio.to_thread.run_sync(lambda: self._deployments.revoke(d, GATEWAY, reason))
            raise
        except BaseException:
            stack.close()
            raise
        self.metrics.serving.labels(d.endpoint, d.ref).set(d.version)
        await anyio.to_thread.run_sync(lambda: self._access.record(
            GATEWAY, "deployment.loaded", resource, Outcome.OK,
            {"model": d.ref, "root_digest": d.root_digest, "deployment": d.id}))
        return _Live(d, worker, stack)

    async def _retire(self, live: _Live) -> None:
        with contextlib.suppress(Exception):
            await live.worker.drain()
        live.scratch.close()
        self.metrics.serving.remove(live.deployment.endpoint, live.deployment.ref)

    async def close(self) -> None:
        await self.canary.close()
        for ep in self._endpoints.values():
            for task in (ep.switching, ep.rechecking):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
            if ep.live is not None:
                await ep.live.worker.close()
                ep.live.scratch.close()
                ep.live = None
        await self.flush_log()

    def workers(self) -> Iterator[SandboxedWorker]:
        """The workers serving now (for tests and diagnostics)."""
        return (ep.live.worker for ep in self._endpoints.values() if ep.live is not None)


def _mark_ood(answer: dict[str, JSON], flags: list[tuple[str, ...]]) -> int:
    """Mark the rows out of the training distribution (``"ood": true``); their count."""
    predictions = answer["predictions"]
    assert isinstance(predictions, list)
    for item, out in zip(predictions, flags, strict=False):
        if out and isinstance(item, dict):
            item["ood"] = True
            item["ood_fields"] = list(out)
    return sum(1 for out in flags if out)


__all__ = ["FeatureDigest", "Gateway", "GatewayOptions"]
