"""The facts the release gate's rules read, each with the evidence it came from.

Every fact is computed from evidence that a database edit cannot improve:

- ``signature``: the artifact re-verified against its signature bundle with the
  project's trusted keys (a caller-supplied verifier, the registry's);
- ``scan``: the scan verdict the *audit log* recorded at registration, and the
  stored report must agree with it;
- ``datasets``: each training dataset version accepted per the audit log
  (``dataset.ingested`` accepted, or a later ``dataset.released``), no erasure
  (``dataset.erased``) naming this model among the ones trained on the erased rows, and the
  model's lineage verifying (every node re-hashed or bound);
- ``evaluation``: only verified signed statements (:func:`~bastion.governance.facts.gather_facts`);
  the best accuracy, the largest demographic-parity gap, the highest attack
  success rate and the lowest adversarial accuracy over them;
- ``approvals``: the ledger's tally of signed approval statements;
- ``card``: the current card version; complete when every hand-written field
  has content;
- ``providers``: the provider register's answer for the model's lineage;
- ``drift``: an *open alert* is the latest ``monitor.drift`` audit entry against
  one of the model's training datasets whose verdict is not ``no_drift``, or an
  open (unacknowledged) ``drift`` alert of the live monitors on that training data.

Example::

    facts = compute_facts(actor, version, sources, policy, tally, verify)
    facts.values["approvals"]["valid"], facts.evidence["approvals"]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bastion.core.access.values import Actor
from bastion.core.canonical import JSON
from bastion.core.errors import BastionError
from bastion.core.lineage.graph import Node, NodeKind
from bastion.governance.approvals import Tally
from bastion.governance.facts import gather_facts
from bastion.governance.release_sources import ReleaseSources, details, entries
from bastion.governance.values import CardFacts, CardVersion
from bastion.model_security.values import ModelVersion

#: re-verifies the stored artifact against its signature; returns "key_id identity" or raises
VerifyModel = Callable[[Actor, ModelVersion], str]


@dataclass(frozen=True)
class GateFacts:
    values: dict[str, dict[str, JSON]]  # group -> fact -> value (the CEL ``facts`` variable)
    evidence: dict[str, tuple[str, ...]]  # group -> "audit#seq", "sha256:…", ids


def compute_facts(
    actor: Actor,
    v: ModelVersion,
    s: ReleaseSources,
    tally: Tally,
    card: CardVersion | None,
    verify: VerifyModel,
) -> GateFacts:
    card_facts = gather_facts(v, s.evidence)
    groups: dict[str, Group] = {
        "model": ({"name": v.name, "version": v.version, "stage": v.stage.value,
                   "root_digest": v.root_digest}, (f"sha256:{v.root_digest}",)),
        "signature": _signature(actor, v, verify),
        "scan": _scan(v, s),
        "datasets": _datasets(v, s),
        "evaluation": _evaluation(card_facts),
        "approvals": _approvals(tally),
        "card": _card(card),
        "providers": _providers(v, s),
        "drift": _drift(v, s),
    }  # fmt: skip
    return GateFacts(
        {k: val for k, (val, _) in groups.items()},
        {k: tuple(ev) for k, (_, ev) in groups.items()},
    )


Group = tuple[dict[str, JSON], tuple[str, ...]]


def _signature(actor: Actor, v: ModelVersion, verify: VerifyModel) -> Group:
    ev = (f"bundle sha256:{v.bundle_digest}", f"root sha256:{v.root_digest}")
    try:
        signer = verify(actor, v)
    except BastionError as e:
        return {"valid": False, "signer": f"{e.code}: {e.message[:200]}", "key_id": ""}, ev
    return {"valid": True, "signer": signer, "key_id": v.signer_key_id}, ev


def _registration(v: ModelVersion, s: ReleaseSources) -> tuple[int, dict[str, object]] | None:
    for e in entries(s.audit, "model.registered", f"project/{v.project}/model/{v.name}"):
        d = details(e)
        if d.get("version_id") == v.id and d.get("root_digest") == v.root_digest:
            return e.seq, d
    return None


def _scan(v: ModelVersion, s: ReleaseSources) -> Group:
    reg = _registration(v, s)
    try:
        stored = json.loads(v.scan_report) if v.scan_report else {}
    except ValueError:
        stored = {}
    stored_verdict = str(stored.get("verdict", "unknown")) if isinstance(stored, dict) else "?"
    findings = len(stored.get("findings", []) or []) if isinstance(stored, dict) else 0
    if reg is None:
        return {"clean": False, "verdict": "no registration entry in the audit log",
                "findings": findings}, ()  # fmt: skip
    seq, d = reg
    audited = str(d.get("scan", "unknown"))
    clean = audited == "safe" and stored_verdict == audited
    verdict = audited if stored_verdict == audited else f"{audited} (stored report says "\
        f"{stored_verdict})"  # fmt: skip
    return {"clean": clean, "verdict": verdict, "findings": findings}, (f"audit#{seq}",)


def _accepted(s: ReleaseSources, lineage_id: str) -> tuple[bool, list[str]]:
    project, _, ref = lineage_id.partition("/")
    name, _, number = ref.partition("@")
    resource = f"project/{project}/dataset/{name}"
    seqs: list[str] = []
    accepted = False
    for action in ("dataset.ingested", "dataset.released"):
        for e in entries(s.audit, action, resource):
            d = details(e)
            if str(d.get("version")) != number:
                continue
            if action == "dataset.released" or d.get("status") == "accepted":
                accepted = True
                seqs.append(f"audit#{e.seq}")
    return accepted, seqs


def _erasures_affecting(v: ModelVersion, s: ReleaseSources) -> list[str]:
    """Erasures (GDPR Art. 17) whose audited list of affected models names ``v``.

    A model trained on a subject's rows keeps what it learned from them after the
    rows are erased from the data: it must be retrained before it may ship.
    """
    found: list[str] = []
    datasets = {t.partition("#")[0].partition("@")[0] for t in v.trained_on}
    for lineage_id in sorted(datasets):
        project, _, name = lineage_id.partition("/")
        for e in entries(s.audit, "dataset.erased", f"project/{project}/dataset/{name}"):
            d = details(e)
            models = d.get("affected_models")
            if isinstance(models, list) and v.lineage_id in models:
                found.append(f"audit#{e.seq} erasure {d.get('erasure')}")
    return found


def _datasets(v: ModelVersion, s: ReleaseSources) -> Group:
    evidence: list[str] = []
    not_accepted: list[str] = []
    for t in v.trained_on:
        lineage_id, _, digest = t.partition("#")
        ok, seqs = _accepted(s, lineage_id)
        evidence += [f"{lineage_id} sha256:{digest}", *seqs]
        if not ok:
            not_accepted.append(lineage_id)
    erased = _erasures_affecting(v, s)
    evidence += erased
    if erased:
        not_accepted.append(f"{v.lineage_id}: trained on rows erased since (retrain)")
    root = Node(NodeKind.MODEL_VERSION, v.lineage_id, v.root_digest)
    try:
        report = s.evidence.lineage.verify(root)
        verified, checked = report.ok, f"lineage: {report.verified}/{len(report.checked)} verified"
        failed = [f"{c.node.id}: {c.problem}" for c in report.checked
                  if c.status.value in ("failed", "missing")]  # fmt: skip
    except BastionError as e:
        verified, checked, failed = False, f"lineage: {e.message[:200]}", []
    evidence.append(checked)
    evidence += failed[:5]
    return {
        "count": len(v.trained_on),
        "all_accepted": not not_accepted,
        "lineage_verified": verified,
        "not_accepted": list(not_accepted),
    }, tuple(evidence)


def _numbers(card: CardFacts) -> Iterator[tuple[str, float]]:
    for e in card.evaluations:
        if not e.verified:
            continue
        metrics = e.result.get("metrics")
        if isinstance(metrics, dict) and isinstance(metrics.get("accuracy"), int | float):
            yield "accuracy", float(metrics["accuracy"])
        for f in e.result.get("fairness") or []:  # type: ignore[union-attr]
            gap = f.get("demographic_parity_difference") if isinstance(f, dict) else None
            if isinstance(gap, int | float):
                yield "gap", float(gap)
        rob = e.result.get("robustness")
        for a in (rob.get("attacks") or []) if isinstance(rob, dict) else []:
            if not isinstance(a, dict) or a.get("status") != "ran":
                continue
            if isinstance(a.get("success_rate"), int | float):
                yield "success", float(a["success_rate"])
            if isinstance(a.get("adversarial_accuracy"), int | float):
                yield "robust", float(a["adversarial_accuracy"])


def _evaluation(card: CardFacts) -> Group:
    found: dict[str, list[float]] = {}
    for key, value in _numbers(card):
        found.setdefault(key, []).append(value)
    signed = [e for e in card.evaluations if e.verified]
    evidence = tuple(
        f"evaluation {e.evaluation_id[:12]} statement sha256:{e.statement_sha256}"
        + ("" if e.verified else f" (unverified: {e.problem})")
        for e in card.evaluations
    )
    return {
        "present": bool(signed),
        "signed": bool(signed) and len(signed) == len(card.evaluations),
        "count": len(signed),
        # unmeasured numbers take the worst value, so a rule that forgets *_measured still fails
        "accuracy": max(found.get("accuracy", [0.0])),
        "fairness_measured": "gap" in found,
        "fairness_gap": max(found.get("gap", [1.0])),
        "robustness_measured": "success" in found,
        "attack_success_rate": max(found.get("success", [1.0])),
        "robust_accuracy": min(found.get("robust", [0.0])),
    }, evidence


def _approvals(t: Tally) -> Group:
    evidence = tuple(
        f"{v.record.decision.value} {v.record.id[:12]} by {v.record.principal} statement "
        f"sha256:{v.record.statement_digest}" + ("" if v.counts else f" (not counted: {v.problem})")
        for v in t.views
    )
    return {
        "required": t.required,
        "valid": t.valid,
        "expired": t.expired,
        "rejections": t.rejections,
        "approvers": list(t.approvers),
    }, evidence


def _card(card: CardVersion | None) -> Group:
    if card is None:
        return {"present": False, "complete": False, "version": 0, "risk_tier": "",
                "missing": ["the whole card"]}, ()  # fmt: skip
    spec = card.spec
    missing = [name for name, value in (
        ("out_of_scope_uses", spec.out_of_scope_uses), ("limitations", spec.limitations),
    ) if not value]  # fmt: skip
    return {
        "present": True,
        "complete": not missing,
        "version": card.card_version,
        "risk_tier": spec.risk_tier.value,
        "missing": list(missing),
    }, (f"card version {card.card_version} sha256:{card.spec_sha256}",)


def _providers(v: ModelVersion, s: ReleaseSources) -> Group:
    unassessed = sorted(s.providers.unassessed_providers(v.project, v))
    return {"unassessed": list(unassessed)}, tuple(unassessed)


def _drift(v: ModelVersion, s: ReleaseSources) -> Group:
    wanted: dict[str, str] = {}
    for t in v.trained_on:
        ref = t.partition("#")[0].partition("/")[2]  # "credit@2"
        wanted[ref] = ref
        wanted.setdefault(ref.partition("@")[0], ref)  # a drift run against the dataset name
    latest: dict[str, tuple[int, str]] = {}
    for e in entries(s.audit, "monitor.drift", f"project/{v.project}/monitoring"):
        ref = str(details(e).get("reference", ""))
        if ref in wanted:
            latest[wanted[ref]] = (e.seq, str(details(e).get("verdict", "")))
    open_alerts = [(seq, verdict) for seq, verdict in latest.values() if verdict != "no_drift"]
    evidence = tuple(f"audit#{seq} {verdict}" for seq, verdict in sorted(latest.values()))
    live = s.drift_alerts(v.project, tuple(t.partition("#")[0] for t in v.trained_on))
    return {"open_alerts": len(open_alerts) + len(live),
            "checked": bool(latest) or bool(live)}, evidence + tuple(live)


__all__ = ["GateFacts", "VerifyModel", "compute_facts"]
