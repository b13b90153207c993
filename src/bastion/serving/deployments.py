"""Deployments: put a model version behind an endpoint, only as the release gate allows.

``deploy`` authorizes ``deployment.create`` on the endpoint, runs the release gate on the
exact version (through the :class:`ReleaseGate` port), re-verifies the signature and
re-scans the stored bytes, checks that the digest the gate passed is the digest verified,
derives the input schema from the training dataset's contract, and records the
deployment (the previous one becomes ``superseded``: a stable version to return to).
``rollback`` returns to the previous stable version (or ``to`` a version this endpoint
served before), re-verified first.  A version whose signature or scan no longer passes
(tampered, key revoked) is refused and, if it is in service, taken out (``revoked``).
Every refusal is audited and changes nothing.

Example::

    d = service.deploy(actor, "credit", "scorer@3", "scoring")
    service.rollback(actor, "credit", "scoring")          # back to scorer@2
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.canonical import JSON
from bastion.core.errors import (
    BastionError,
    Conflict,
    InputError,
    IntegrityError,
    NotFound,
)
from bastion.core.names import check_name
from bastion.data_security.contract import DataContract
from bastion.model_security.registry import ModelRegistry
from bastion.model_security.values import ModelRef, ModelVersion
from bastion.serving.canary_ports import CanaryRepository
from bastion.serving.canary_values import Canary, CanaryPlan, CanaryState
from bastion.serving.errors import DeploymentRefused
from bastion.serving.ports import ContractSource, DeploymentRepository, GateVerdict, ReleaseGate
from bastion.serving.schema import derive_schema
from bastion.serving.values import (
    Deployment,
    DeploymentState,
    EndpointStatus,
    InputSchema,
    ResponsePolicy,
)


@dataclasses.dataclass(frozen=True)
class CanaryFailure:
    """A running canary that no longer verifies: why, and whether this call rolled it
    back (False: another replica or a person decided it first)."""

    reason: str
    decided: bool


def endpoint_resource(project: str, endpoint: str) -> str:
    return f"project/{project}/endpoint/{endpoint}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class DeploymentService:
    """See the module docstring."""

    def __init__(self, access: AccessService, registry: ModelRegistry,
                 repo: DeploymentRepository, gate: ReleaseGate,
                 contracts: ContractSource, canaries: CanaryRepository | None = None) -> None:
        self._access = access
        self._registry = registry
        self._repo = repo
        self._gate = gate
        self._contracts = contracts
        self._canaries = canaries

    # -- deploy -----------------------------------------------------------------------
    def deploy(self, actor: Actor, project: str, ref: str, endpoint: str,
               policy: ResponsePolicy | None = None,
               canary: CanaryPlan | None = None) -> Deployment:
        """Deploy ``ref``; with ``canary``, beside the active version as its canary."""
        check_name("endpoint", endpoint, max_length=100)
        resource = endpoint_resource(project, endpoint)
        details: dict[str, JSON] = {"model": ref}
        if canary is not None:
            details["canary_weight"] = canary.weight
        self._access.authorize(actor, "deployment.create", resource, details=details)
        self._access.require_project(project)
        r = ModelRef.parse(ref)
        if r.version is None:
            raise InputError(f"deploy names an exact version: {ref}@N",
                             hint="the gate and the signature are checked on one version")
        try:
            self._refuse_over_canary(project, endpoint)
            verdict = self._gate.check(actor, project, ref)
            if not verdict.passed:
                raise DeploymentRefused(
                    f"the release gate refused {ref}: failing rules "
                    f"{', '.join(verdict.failed) or '(none named)'}",
                    hint="see bastion gate check; fix the evidence or the policy")
            v, schema = self._verified(project, ref, verdict)
        except BastionError as e:
            self._access.record(actor, "deployment.refused", resource, Outcome.FAILED,
                                {"model": ref, "error": e.code, "reason": e.message[:300]})
            raise
        new = Deployment(
            id=uuid.uuid4().hex, project=project, endpoint=endpoint, seq=0, model=v.name,
            version=v.version, root_digest=v.root_digest, state=DeploymentState.ACTIVE,
            schema=schema, policy=policy or ResponsePolicy(),
            gate=json.dumps(_gate_summary(verdict), sort_keys=True),
            created_at=_now(), created_by=actor.name, reason="deploy")
        if canary is not None:
            return self._start_canary(actor, new, canary, resource)
        previous = self._repo.active(project, endpoint)
        stored = self._repo.switch(new, DeploymentState.SUPERSEDED, actor.name,
                                   f"superseded by {v.ref}")
        self._access.record(actor, "deployment.created", resource, Outcome.OK, {
            "model": v.ref, "root_digest": v.root_digest, "seq": stored.seq,
            "previous": previous.ref if previous else None, "deployment": stored.id})
        return stored

    def _refuse_over_canary(self, project: str, endpoint: str) -> None:
        running = self._canaries.running(project, endpoint) if self._canaries else None
        if running is not None:
            raise DeploymentRefused(
                f"endpoint {endpoint!r} has a running canary ({running.plan.weight} % of "
                f"traffic, started {running.created_at} by {running.created_by})",
                hint="wait for its promotion or rollback (bastion deploy status), or abort "
                     f"it: bastion rollback {endpoint}")

    def _start_canary(self, actor: Actor, new: Deployment, plan: CanaryPlan,
                      resource: str) -> Deployment:
        """The gate passed: store ``new`` as the endpoint's canary (see serving.canary)."""
        assert self._canaries is not None, "the composition root wires the canary store"
        stable = self._repo.active(new.project, new.endpoint)
        try:
            if stable is None:
                raise DeploymentRefused(
                    f"endpoint {new.endpoint!r} has no version in service to compare a "
                    "canary with", hint="deploy it without --canary first")
            if stable.root_digest == new.root_digest:
                raise DeploymentRefused(f"{new.ref} is already the version in service")
            if new.schema.columns != stable.schema.columns:
                # both arms answer one request format: the split must be invisible
                raise DeploymentRefused(
                    f"{new.ref} takes other input fields than {stable.ref} in service",
                    hint="deploy it without --canary (a new input schema), or retrain it "
                         "on the same features")
            c = Canary(uuid.uuid4().hex, new.project, new.endpoint, new.id, stable.id, plan,
                       CanaryState.RUNNING, 0, new.created_at, actor.name)
            stored = self._canaries.start(
                dataclasses.replace(new, reason=f"canary {plan.weight} %"), c)
        except BastionError as e:
            self._access.record(actor, "deployment.refused", resource, Outcome.FAILED,
                                {"model": new.ref, "error": e.code, "reason": e.message[:300]})
            raise
        self._access.record(actor, "deployment.canary.started", resource, Outcome.OK, {
            "model": new.ref, "root_digest": new.root_digest, "seq": stored.seq,
            "stable": stable.ref, "weight": plan.weight, "promote_after": plan.promote_after,
            "canary": c.id, "deployment": stored.id})
        return stored

    def _abort_canary(self, actor: Actor, c: Canary, resource: str) -> Deployment:
        """``rollback`` while a canary runs: the canary is aborted, the stable one stays."""
        assert self._canaries is not None
        reason = f"aborted by {actor.name} (bastion rollback)"
        if not self._canaries.decide(c, CanaryState.ABORTED, actor.name, reason, _now(), None):
            raise Conflict(f"the canary of endpoint {c.endpoint!r} was decided at this moment",
                           hint="see bastion deploy status, then roll back again if needed")
        self._access.record(actor, "deployment.canary.aborted", resource, Outcome.OK, {
            "canary": c.id, "deployment": c.deployment_id, "stable": c.stable_id})
        active = self._repo.active(c.project, c.endpoint)
        if active is None:
            raise NotFound(f"endpoint {c.endpoint!r} has nothing in service")
        return active

    def _verified(self, project: str, ref: str,
                  verdict: GateVerdict) -> tuple[ModelVersion, InputSchema]:
        """Re-verify signature and scan now; the digest must be the one the gate passed."""
        with self._registry.verified_checkout(project, ref) as (v, _root):
            pass
        if verdict.root_digest != v.root_digest:
            raise DeploymentRefused(
                f"the gate passed digest {verdict.root_digest[:16]}… but {v.ref} verifies as "
                f"{v.root_digest[:16]}…", hint="run the gate again on this version")
        return v, self._schema(project, v)

    def _schema(self, project: str, v: ModelVersion) -> InputSchema:
        run = json.loads(v.training_run) if v.training_run else {}
        features = run.get("features") if isinstance(run, dict) else None
        if not v.trained_on or not isinstance(features, list) or not features:
            raise DeploymentRefused(
                f"{v.ref} records no training data and features, so the gateway cannot "
                "validate its input", hint="train it with bastion model train on a dataset "
                "with a data contract")
        dataset_ref = v.trained_on[0].split("#")[0]  # "project/name@v"
        name = dataset_ref.split("/", 1)[1].split("@")[0]
        text = self._contracts(project, name)
        if text is None:
            raise DeploymentRefused(f"dataset {name} has no data contract to validate input",
                                    hint="set one: bastion data contract-set")
        contract = DataContract.from_json(text)
        source = f"{project}/{name} contract v{contract.version}"
        return derive_schema(contract, [str(f) for f in features], source=source)

    # -- read -------------------------------------------------------------------------
    def status(self, actor: Actor, project: str, endpoint: str) -> EndpointStatus:
        self._access.authorize(actor, "deployment.read", endpoint_resource(project, endpoint))
        history = self._repo.history(project, endpoint)
        if not history:
            raise NotFound(f"no endpoint {endpoint!r} in project {project}",
                           hint="deploy one: bastion deploy MODEL@V --endpoint NAME")
        active = next((d for d in history if d.state is DeploymentState.ACTIVE), None)
        canary = self._canaries.latest(project, endpoint) if self._canaries else None
        return EndpointStatus(project, endpoint, active, tuple(history), canary)

    def active(self, project: str, endpoint: str) -> Deployment | None:
        """The deployment in service (no check: the gateway authorized ``predict``)."""
        return self._repo.active(project, endpoint)

    # -- rollback ---------------------------------------------------------------------
    def rollback(self, actor: Actor, project: str, endpoint: str,
                 to: int | None = None) -> Deployment:
        resource = endpoint_resource(project, endpoint)
        self._access.authorize(actor, "deployment.rollback", resource,
                               details={"to": to})
        running = self._canaries.running(project, endpoint) if self._canaries else None
        if running is not None:  # a rollback during a canary aborts it first
            aborted = self._abort_canary(actor, running, resource)
            if to is None:
                return aborted
        history = self._repo.history(project, endpoint)
        current = next((d for d in history if d.state is DeploymentState.ACTIVE), None)
        try:
            target = self._target(project, endpoint, history, current, to)
            with self._registry.verified_checkout(project, target.ref) as (v, _root):
                if v.root_digest != target.root_digest:
                    raise DeploymentRefused(f"{target.ref} no longer has the digest it was "
                                            "deployed with")
        except BastionError as e:
            self._access.record(actor, "deployment.refused", resource, Outcome.FAILED,
                                {"rollback_to": to, "error": e.code, "reason": e.message[:300]})
            raise
        assert current is not None
        new = Deployment(
            id=uuid.uuid4().hex, project=project, endpoint=endpoint, seq=0,
            model=target.model, version=target.version, root_digest=target.root_digest,
            state=DeploymentState.ACTIVE, schema=target.schema, policy=target.policy,
            gate=target.gate, created_at=_now(), created_by=actor.name,
            reason=f"rollback to #{target.seq}")
        stored = self._repo.switch(new, DeploymentState.ROLLED_BACK, actor.name,
                                   f"rolled back to {target.ref}")
        self._access.record(actor, "deployment.rolled_back", resource, Outcome.OK, {
            "from": current.ref, "to": target.ref, "seq": stored.seq, "deployment": stored.id,
            "root_digest": target.root_digest})
        return stored

    @staticmethod
    def _target(project: str, endpoint: str, history: list[Deployment],
                current: Deployment | None, to: int | None) -> Deployment:
        if current is None:
            raise NotFound(f"endpoint {endpoint!r} in project {project} has nothing in service")
        earlier = [d for d in history if d.seq < current.seq
                   and d.state is not DeploymentState.REVOKED
                   and d.root_digest != current.root_digest]
        if to is not None:
            earlier = [d for d in earlier if d.model == current.model and d.version == to]
            if not earlier:
                raise DeploymentRefused(
                    f"{current.model}@{to} never served endpoint {endpoint!r} (or was revoked)",
                    hint="roll back to a version in `bastion deploy status`, or deploy it "
                         "(the release gate runs)")
        else:
            earlier = [d for d in earlier if d.state is DeploymentState.SUPERSEDED]
            if not earlier:
                raise DeploymentRefused(f"endpoint {endpoint!r} has no earlier stable version")
        return earlier[-1]

    def log_predictions(self, rows: list[dict[str, JSON]]) -> None:
        """Append to the prediction log (the gateway writes what it answered)."""
        self._repo.log_predictions(rows)

    # -- revocation -------------------------------------------------------------------
    def revoke(self, deployment: Deployment, actor: Actor, reason: str) -> None:
        """Take a deployment out of service for good (its bytes no longer verify)."""
        self._repo.end(deployment.id, DeploymentState.REVOKED, actor.name, reason[:500])
        self._access.record(actor, "deployment.revoked",
                            endpoint_resource(deployment.project, deployment.endpoint),
                            Outcome.FAILED, {"model": deployment.ref, "reason": reason[:300],
                                             "deployment": deployment.id})

    def recheck(self, d: Deployment, actor: Actor) -> bool:
        """Re-verify one deployment in service; revoke it if it no longer passes.
        True when it still verifies."""
        failure = self._failure(d)
        if failure is not None:
            self.revoke(d, actor, failure)
        return failure is None

    def _failure(self, d: Deployment) -> str | None:
        """Why ``d``'s version no longer verifies (signature, scan, digest, stored bytes),
        or None."""
        try:
            with self._registry.verified_checkout(d.project, d.ref) as (v, _root):
                if v.root_digest != d.root_digest:
                    raise DeploymentRefused("the version's digest changed")
        # IntegrityError: a tampered stored blob fails decryption (BlobCorrupted) before
        # the signature is even checked; it must take the version out like a bad signature
        # (SignatureInvalid and MaliciousArtifact are IntegrityErrors too)
        except (IntegrityError, DeploymentRefused) as e:
            return e.message
        return None

    def enforce_revocations(self, actor: Actor) -> list[Deployment]:
        """Re-verify every deployment in service; revoke those that no longer pass (a
        running canary that no longer passes is rolled back)."""
        out = [d for d in self._repo.all_active() if not self.recheck(d, actor)]
        return out + self._revoke_canaries(actor)

    def _revoke_canaries(self, actor: Actor) -> list[Deployment]:
        out: list[Deployment] = []
        canaries = self._canaries
        if canaries is None:
            return out
        for c in canaries.all_running():
            d = canaries.deployment(c.deployment_id)
            if d is not None and self.recheck_canary(c, actor) is not None:
                out.append(d)
        return out

    def recheck_canary(self, c: Canary, actor: Actor) -> CanaryFailure | None:
        """Re-verify a running canary's version (signature, trusted key, scan, digest,
        stored bytes); when it no longer passes, roll the canary back (the stable version
        serves on), audited with the reason.  Returns why it failed, or None."""
        canaries = self._canaries
        d = canaries.deployment(c.deployment_id) if canaries is not None else None
        if canaries is None or d is None:
            return None
        failure = self._failure(d)
        if failure is None:
            return None
        reason = f"the canary no longer verifies: {failure}"[:500]
        # one conditional decision: a replica (or a person) that decided first audits
        decided = canaries.decide(c, CanaryState.ROLLED_BACK, actor.name, reason, _now(), None)
        if decided:
            self._access.record(
                actor, "deployment.canary.rolled_back",
                endpoint_resource(d.project, d.endpoint), Outcome.FAILED,
                {"canary": c.id, "model": d.ref, "deployment": d.id, "reason": reason[:300]})
        return CanaryFailure(reason, decided)

def _gate_summary(verdict: GateVerdict) -> dict[str, JSON]:
    full = verdict.to_dict()
    return {k: full[k] for k in ("passed", "policy_version", "policy_sha256", "checked_at",
                                 "outcomes_sha256", "audit_seq", "root_digest") if k in full}


__all__ = ["CanaryFailure", "DeploymentService", "endpoint_resource"]
