"""Compliance checks over data, models and third parties (see ``compliance_checks``).

Each function takes the :class:`CheckContext` of one report (one project) and
returns a :class:`CheckOutcome` with its evidence; none of them writes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from bastion.core.audit.entries import AuditQuery
from bastion.core.lineage.graph import Node, NodeKind
from bastion.data_security.erasure.ports import StoredErasure
from bastion.data_security.values import VersionStatus
from bastion.governance.compliance_checks import (
    CheckContext,
    CheckOutcome,
    EvidenceItem,
    not_applicable,
    outcome,
)
from bastion.governance.facts import gather_facts
from bastion.governance.provider_values import PERSONAL_CATEGORIES, ProviderStatus, state_of
from bastion.model_security.values import ModelVersion


def _registered(ctx: CheckContext, m: ModelVersion) -> EvidenceItem:
    entry = ctx.last_entry("model.registered", f"project/{m.project}/model/{m.name}")
    return EvidenceItem(
        f"{m.ref} registered by {m.created_by}",
        audit_seq=entry[0] if entry else None,
        sha256=m.root_digest,
        at=m.created_at,
    )


def lineage_complete(ctx: CheckContext) -> CheckOutcome:
    models = ctx.models()
    if not models:
        return not_applicable("lineage_complete", f"no model version in project {ctx.project}")
    failures: list[str] = []
    ev: list[EvidenceItem] = []
    for m in models:
        ev.append(_registered(ctx, m))
        root = Node(NodeKind.MODEL_VERSION, m.lineage_id, m.root_digest)
        check = ctx.sources.lineage.verify(root)
        if not check.ok:
            bad = [v for v in check.checked if v.status.value in ("failed", "missing")]
            failures.append(
                f"{m.ref}: lineage fails at " + ", ".join(f"{v.node.kind} {v.node.id}" for v in bad)
            )
        ev.append(EvidenceItem(f"{m.ref}: {check.verified} lineage node(s) verified"))
        if not m.trained_on:
            failures.append(f"{m.ref} names no training dataset version")
        for entry in m.trained_on:
            failures += _dataset_traced(ctx, m, entry, ev)
    return outcome(
        "lineage_complete",
        failures,
        f"{len(models)} model version(s) trace to accepted dataset versions and registered "
        "sources, and their lineage verifies",
        ev,
        "register models with --trained-on accepted dataset versions; investigate a failed "
        "node with `bastion lineage verify`",
    )


def _dataset_traced(
    ctx: CheckContext, m: ModelVersion, entry: str, ev: list[EvidenceItem]
) -> list[str]:
    lineage_id, _, digest = entry.partition("#")
    project, _, ref = lineage_id.partition("/")
    name, _, number = ref.partition("@")
    versions = {v.version: v for v in ctx.sources.datasets.versions(project, name)}
    dv = versions.get(int(number)) if number.isdigit() else None
    if dv is None:
        return [f"{m.ref}: training data {lineage_id} does not exist"]
    ev.append(EvidenceItem(f"{m.ref} trained on {lineage_id} ({dv.status.value})", sha256=digest))
    problems = []
    if dv.status is not VersionStatus.ACCEPTED:
        problems.append(f"{m.ref}: training data {lineage_id} is {dv.status.value}")
    sources = {s.name for s in ctx.sources.datasets.sources(project)}
    if dv.source not in sources:
        problems.append(f"{m.ref}: {lineage_id} comes from unregistered source {dv.source!r}")
    return problems


def pii_handled(ctx: CheckContext) -> CheckOutcome:
    datasets = ctx.sources.datasets.datasets(ctx.project)
    if not datasets:
        return not_applicable("pii_handled", f"no dataset in project {ctx.project}")
    failures: list[str] = []
    ev: list[EvidenceItem] = []
    for d in datasets:
        declared = _declared_columns(d.policy) | set(d.sensitive)
        for v in ctx.sources.datasets.versions(ctx.project, d.name):
            if v.status is not VersionStatus.ACCEPTED:
                continue
            found = _pii_columns(v.report)
            if not found:
                continue
            open_ = sorted(found - declared)
            ev.append(
                EvidenceItem(
                    f"{v.lineage_id}: personal data in {', '.join(sorted(found))}"
                    + (f" (undeclared: {', '.join(open_)})" if open_ else " (declared)"),
                    sha256=v.data_digest,
                    at=v.created_at,
                )
            )
            if open_:
                failures.append(f"{v.lineage_id}: undeclared personal data in {', '.join(open_)}")
    if not ev:
        ev.append(EvidenceItem(f"no personal data found in {len(datasets)} dataset(s)"))
    return outcome(
        "pii_handled",
        failures,
        "every column where ingestion found personal data is declared",
        ev,
        "declare the columns (bastion data policy set DATASET: pii.declared_columns) or "
        "remove the data (bastion data erase)",
    )


def _declared_columns(policy: str) -> set[str]:
    try:
        doc = json.loads(policy) if policy else {}
    except ValueError:
        return set()
    pii = doc.get("pii") if isinstance(doc, dict) else None
    cols = pii.get("declared_columns") if isinstance(pii, dict) else None
    return {str(c) for c in cols} if isinstance(cols, list) else set()


def _pii_columns(report: str) -> set[str]:
    try:
        doc = json.loads(report) if report else {}
    except ValueError:
        return set()
    found: set[str] = set()
    for c in doc.get("checks", []) if isinstance(doc, dict) else []:
        if not isinstance(c, dict) or c.get("name") != "pii_scan":
            continue
        for key, value in (c.get("metrics") or {}).items():
            if key.endswith(".count") and isinstance(value, int | float) and value > 0:
                found.add(key.rsplit(".", 2)[0])
    return found


def release_approvals(ctx: CheckContext) -> CheckOutcome:
    released = ctx.released()
    if not released:
        return not_applicable("release_approvals", "no approved or deployed model version")
    if ctx.sources.approvals is None:
        return not_applicable("release_approvals", ctx.sources.approvals_missing)
    failures: list[str] = []
    ev: list[EvidenceItem] = []
    for m in released:
        finding = ctx.sources.approvals(m)
        ev += (EvidenceItem(f"{m.ref}: {finding.summary}"), *finding.evidence)
        if not finding.ok:
            failures.append(f"{m.ref} ({m.stage.value}): {finding.summary}")
    return outcome(
        "release_approvals",
        failures,
        f"{len(released)} released model version(s) carry their approvals and gate verdict",
        ev,
        "approve through the committee (bastion model approve) and pass the release gate "
        "(bastion gate check) before promotion",
    )


def drift_monitoring(ctx: CheckContext) -> CheckOutcome:
    released = ctx.released()
    if not released:
        return not_applicable(
            "drift_monitoring", "no approved or deployed model version to monitor"
        )
    window = ctx.settings.drift_window_days
    since = (ctx.now - dt.timedelta(days=window)).isoformat(timespec="seconds")
    runs = _drift_runs(ctx, since)
    failures: list[str] = []
    ev: list[EvidenceItem] = []
    for m in released:
        refs = {t.partition("#")[0].partition("/")[2] for t in m.trained_on}
        hits = [r for r in runs if r[2] in refs]
        if hits:
            seq, at, ref, verdict = hits[-1]
            ev.append(EvidenceItem(f"{m.ref}: drift run on {ref} ({verdict})", seq, None, at))
        else:
            failures.append(f"{m.ref}: no drift run against its training data in {window} days")
    return outcome(
        "drift_monitoring",
        failures,
        f"every released model had a drift run in the last {window} days",
        ev,
        "schedule `bastion monitor drift --reference DATASET@V --current LIVE.csv`",
    )


def _drift_runs(ctx: CheckContext, since: str) -> list[tuple[int, str, str, str]]:
    """(seq, time, dataset reference, verdict) of every drift run since ``since``."""
    res = f"project/{ctx.project}/monitoring"
    q = AuditQuery(action="monitor.drift", resource=res, since=since, limit=100_000)
    out = []
    for e in ctx.sources.audit.query(q):
        if e.resource != res or e.outcome != "ok":
            continue
        d = json.loads(e.details)
        out.append((e.seq, e.ts, str(d.get("reference")), str(d.get("verdict"))))
    return out


def providers_assessed(ctx: CheckContext) -> CheckOutcome:
    s = ctx.sources
    today = ctx.now.date()
    states = {}
    for p in s.providers.providers(ctx.project):
        history = s.providers.assessments(ctx.project, p.name)
        states[p.name] = state_of(p, history[-1] if history else None, today)
    for m in ctx.models():
        for st in s.provider_check.providers_of(ctx.project, m):
            states.setdefault(st.provider.name, st)
    if not states:
        return not_applicable(
            "providers_assessed", f"no third-party provider registered in {ctx.project}"
        )
    failures: list[str] = []
    ev: list[EvidenceItem] = []
    for name, st in sorted(states.items()):
        a = st.latest
        entry = ctx.last_entry("provider.assessed", f"project/{ctx.project}/provider/{name}")
        ev.append(
            EvidenceItem(
                f"provider {name}: {st.status.value} ({st.reason})",
                audit_seq=entry[0] if entry else None,
                sha256=a.sha256 if a else None,
                at=a.reviewed_on.isoformat() if a else None,
            )
        )
        if st.status is not ProviderStatus.CURRENT:
            failures.append(f"provider {name}: {st.reason}")
        elif a is not None and not a.dpa and set(a.data_sent) & PERSONAL_CATEGORIES:
            failures.append(f"provider {name} receives personal data without a DPA")
    return outcome(
        "providers_assessed",
        failures,
        f"{len(states)} provider(s) assessed, unexpired, personal data only under a DPA",
        ev,
        "assess each provider (bastion provider assess NAME ...) and sign a DPA/BAA before "
        "sending it personal data",
    )


def erasure_finding(
    done: Sequence[StoredErasure], unfinished: Sequence[StoredErasure]
) -> CheckOutcome:
    """GDPR Art. 17: every erasure request of the project carried through to the end.

    ``done`` and ``unfinished`` are the project's erasure records; the subject is
    named only by its keyed pseudonym (the record never holds the identifier).
    """
    ev = [
        EvidenceItem(f"erasure {e.id} of {e.dataset}.{e.column} (subject {e.subject[:24]}…): "
                     f"{e.state}")
        for e in [*done, *unfinished]
    ]  # fmt: skip
    failures = [
        f"erasure {e.id} of {e.dataset} is {e.state}, not finished (key shredding or its "
        "audit record pending)"
        for e in unfinished
    ]
    return outcome(
        "erasure_handled",
        failures,
        f"{len(done)} erasure request(s), every one finished (rows rewritten, keys shredded "
        "or retained by policy, audited)",
        ev,
        "open the workspace (bastion store fsck, or any command) to roll the erasure forward, "
        "or run the same bastion data erase again",
    )


def erasure_handled(ctx: CheckContext) -> CheckOutcome:
    if ctx.sources.erasure is None:
        return not_applicable(
            "erasure_handled", "erasure (bastion data erase) is not part of this build"
        )
    return ctx.sources.erasure(ctx.project)


def model_cards_complete(ctx: CheckContext) -> CheckOutcome:
    models = ctx.models()
    if not models:
        return not_applicable("model_cards_complete", f"no model version in project {ctx.project}")
    failures: list[str] = []
    ev: list[EvidenceItem] = []
    for m in models:
        cards = ctx.sources.cards.cards(m.project, m.name, m.version)
        if not cards:
            failures.append(f"{m.ref} has no model card")
            continue
        c = cards[-1]
        entry = ctx.last_entry("card.edited", f"project/{m.project}/model/{m.name}")
        ev.append(
            EvidenceItem(
                f"{m.ref} card v{c.card_version} by {c.created_by} (risk tier "
                f"{c.spec.risk_tier.value})",
                entry[0] if entry else None,
                c.spec_sha256,
                c.created_at,
            )
        )
        missing = [
            what
            for what, items in (
                ("limitations", c.spec.limitations),
                ("out-of-scope uses", c.spec.out_of_scope_uses),
            )
            if not items
        ]
        if missing:
            failures.append(f"{m.ref} card v{c.card_version} lists no {' and no '.join(missing)}")
    return outcome(
        "model_cards_complete",
        failures,
        f"{len(models)} model version(s) have a complete card",
        ev,
        "write the card: bastion model card-set MODEL@V card.yaml (intended use, out-of-scope "
        "uses, owners, risk tier, limitations)",
    )


def evaluations_signed(ctx: CheckContext) -> CheckOutcome:
    models = ctx.models()
    if not models:
        return not_applicable("evaluations_signed", f"no model version in project {ctx.project}")
    failures: list[str] = []
    ev: list[EvidenceItem] = []
    for m in models:
        facts = gather_facts(m, ctx.sources.evidence)
        good = [e for e in facts.evaluations if e.verified]
        for e in facts.evaluations:
            state = "verified" if e.verified else f"UNVERIFIED: {e.problem}"
            ev.append(
                EvidenceItem(
                    f"{m.ref} evaluation on {e.dataset_version}: {state}",
                    sha256=e.statement_sha256,
                    at=e.evaluated_at,
                )
            )
        if not good:
            failures.append(f"{m.ref} has no verified signed evaluation")
    return outcome(
        "evaluations_signed",
        failures,
        f"{len(models)} model version(s) have a verified signed evaluation",
        ev,
        "evaluate on held-out data: bastion model evaluate MODEL@V --data DATASET@V",
    )


def models_scanned(ctx: CheckContext) -> CheckOutcome:
    models = ctx.models()
    if not models:
        return not_applicable("models_scanned", f"no model version in project {ctx.project}")
    failures: list[str] = []
    ev: list[EvidenceItem] = []
    for m in models:
        scan = json.loads(m.scan_report) if m.scan_report else {}
        verdict = str(scan.get("verdict", "unknown")) if isinstance(scan, dict) else "unknown"
        ev.append(
            EvidenceItem(
                f"{m.ref}: scan {verdict}, signed by {m.signer_key_id}",
                sha256=m.root_digest,
                at=m.signed_at,
            )
        )
        if verdict != "safe":
            failures.append(f"{m.ref}: scan verdict {verdict}")
    return outcome(
        "models_scanned",
        failures,
        f"{len(models)} model version(s) scanned safe and signed",
        ev,
        "re-register the artifact from a safe format; see `bastion model scan`",
    )


__all__ = [
    "drift_monitoring",
    "erasure_handled",
    "evaluations_signed",
    "lineage_complete",
    "model_cards_complete",
    "models_scanned",
    "pii_handled",
    "providers_assessed",
    "release_approvals",
]
