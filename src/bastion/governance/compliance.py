"""Compliance evidence: a framework's controls, each answered by automated checks.

``ComplianceService.report`` authorizes ``compliance.report`` on the project,
loads the control catalogue (shipped, plus the officer's extension when given),
runs every check the framework's controls cite — once each, over Bastion's own
state — and returns a :class:`ComplianceReport`: per control ``pass``, ``fail``
or ``not-applicable``, the evidence behind each check and, for each failure,
what to do.  The report is audited (``compliance.reported``, with its digest);
an unknown framework or a refused catalogue is audited (``compliance.refused``).

A control fails when any of its checks fails, passes when none fails and at
least one passes, and is not applicable when none of its checks applies.

Example::

    report = ws.compliance.report(actor, "soc2", "credit")
    Path("soc2.html").write_text(render_html(report))
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bastion.core.access.service import AccessService
from bastion.core.access.values import Actor
from bastion.core.audit.entries import Outcome
from bastion.core.canonical import JSON, canonical_json
from bastion.core.errors import BastionError
from bastion.governance import compliance_checks as pc
from bastion.governance import compliance_model_checks as mc
from bastion.governance.compliance_catalogue import Catalogue, ControlSpec, load_catalogue
from bastion.governance.compliance_checks import (
    Check,
    CheckContext,
    CheckOutcome,
    ComplianceSources,
    Status,
)

#: every automated check a catalogue may cite, by name
CHECKS: Mapping[str, Check] = {
    "encryption_at_rest": pc.encryption_at_rest,
    "key_rotation": pc.key_rotation,
    "least_privilege": pc.least_privilege,
    "audit_log_intact": pc.audit_log_intact,
    "transport_security": pc.transport_security,
    "lineage_complete": mc.lineage_complete,
    "pii_handled": mc.pii_handled,
    "release_approvals": mc.release_approvals,
    "drift_monitoring": mc.drift_monitoring,
    "providers_assessed": mc.providers_assessed,
    "erasure_handled": mc.erasure_handled,
    "model_cards_complete": mc.model_cards_complete,
    "evaluations_signed": mc.evaluations_signed,
    "models_scanned": mc.models_scanned,
}


@dataclass(frozen=True)
class ControlResult:
    id: str
    title: str
    description: str
    status: Status
    checks: tuple[CheckOutcome, ...]

    def to_dict(self) -> dict[str, JSON]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "status": self.status.value,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class ComplianceReport:
    framework: str
    title: str
    project: str
    generated_at: str
    generated_by: str
    catalogue_sha256: str
    catalogue_sources: tuple[str, ...]
    controls: tuple[ControlResult, ...]

    def counts(self) -> dict[str, int]:
        return {s.value: sum(c.status is s for c in self.controls) for s in Status}

    def to_dict(self) -> dict[str, JSON]:
        counts: dict[str, JSON] = dict(self.counts())
        return {
            "framework": self.framework,
            "title": self.title,
            "project": self.project,
            "generated_at": self.generated_at,
            "generated_by": self.generated_by,
            "catalogue_sha256": self.catalogue_sha256,
            "catalogue_sources": list(self.catalogue_sources),
            "summary": counts,
            "controls": [c.to_dict() for c in self.controls],
        }

    def sha256(self) -> str:
        return hashlib.sha256(canonical_json(self.to_dict())).hexdigest()


def control_status(outcomes: tuple[CheckOutcome, ...]) -> Status:
    statuses = {o.status for o in outcomes}
    if Status.FAIL in statuses:
        return Status.FAIL
    return Status.PASS if Status.PASS in statuses else Status.NOT_APPLICABLE


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class ComplianceService:
    def __init__(
        self,
        access: AccessService,
        sources: ComplianceSources,
        *,
        now: Callable[[], dt.datetime] = _now,
    ) -> None:
        self._access = access
        self._sources = sources
        self._now = now

    def catalogue(
        self,
        actor: Actor,
        project: str,
        extension: str | None = None,
        *,
        source: str = "catalogue file",
    ) -> Catalogue:
        """The merged catalogue (to show or to check an extension before using it)."""
        res = f"project/{project}/compliance"
        self._access.authorize(actor, "compliance.report", res, details={"step": "catalogue"})
        return self._load(actor, res, extension, source)

    def report(
        self,
        actor: Actor,
        framework: str,
        project: str,
        *,
        catalogue: str | None = None,
        catalogue_source: str = "catalogue file",
    ) -> ComplianceReport:
        res = f"project/{project}/compliance"
        self._access.authorize(
            actor, "compliance.report", res, details={"framework": framework[:60]}
        )
        cat = self._load(actor, res, catalogue, catalogue_source)
        try:
            fw = cat.framework(framework)
        except BastionError as e:
            self._refused(actor, res, e)
            raise
        self._access.require_project(project)
        now = self._now()
        ctx = CheckContext(self._sources, project, cat.settings, now)
        cache: dict[str, CheckOutcome] = {}
        controls = tuple(self._control(c, ctx, cache) for c in fw.controls)
        report = ComplianceReport(
            fw.name, fw.title, project, now.isoformat(), actor.name, cat.sha256,
            cat.sources, controls,
        )  # fmt: skip
        details: dict[str, JSON] = {
            "framework": fw.name,
            "report_sha256": report.sha256(),
            "catalogue_sha256": cat.sha256,
            **report.counts(),
        }
        self._access.record(actor, "compliance.reported", res, Outcome.OK, details)
        return report

    def _load(
        self, actor: Actor, res: str, extension: str | None, source: str = "catalogue file"
    ) -> Catalogue:
        try:
            return load_catalogue(extension, known_checks=CHECKS, extension_source=source)
        except BastionError as e:
            self._refused(actor, res, e)
            raise

    def _refused(self, actor: Actor, res: str, e: BastionError) -> None:
        self._access.record(
            actor, "compliance.refused", res, Outcome.FAILED,
            {"code": e.code, "reason": e.message[:500]},
        )  # fmt: skip

    @staticmethod
    def _control(
        spec: ControlSpec, ctx: CheckContext, cache: dict[str, CheckOutcome]
    ) -> ControlResult:
        outcomes = []
        for name in spec.checks:
            if name not in cache:
                cache[name] = _run(name, ctx)
            outcomes.append(cache[name])
        done = tuple(outcomes)
        return ControlResult(spec.id, spec.title, spec.description, control_status(done), done)


def _run(name: str, ctx: CheckContext) -> CheckOutcome:
    # A check that cannot read its evidence fails the control with the reason: an
    # unreadable store is a finding, never a silent pass or a crashed report.
    try:
        return CHECKS[name](ctx)
    except BastionError as e:
        return CheckOutcome(
            name, Status.FAIL, f"the check could not read its evidence: {e.code}: {e.message}",
            remedy=e.hint or "repair the store, then run the report again",
        )  # fmt: skip


def report_json(report: ComplianceReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"


__all__ = [
    "CHECKS",
    "ComplianceReport",
    "ComplianceService",
    "ControlResult",
    "control_status",
    "report_json",
]
