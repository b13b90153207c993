"""The third-party register on real workspaces (SQLite and PostgreSQL): providers,
versioned audited assessments, lineage links bound by the audit log, the gate's
port, and every refusal (audited, nothing changed), each named after its attack."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from governed_ws import Governed, P

from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import AccessDenied, Conflict, InputError, NotFound
from bastion.core.lineage.graph import CheckStatus, Node, NodeKind
from bastion.governance._adapters.sql_providers import SqlProviderRepository
from bastion.governance.errors import ProviderInvalid
from bastion.governance.provider_values import AssessmentRequest, ProviderKind
from bastion.governance.providers import LinkTarget, ProviderLineageCheck


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _req(
    *,
    reviewed: int = -30,
    expires: int = 335,
    risk: str = "medium",
    data: tuple[str, ...] = ("personal", "financial"),
    dpa: bool = True,
) -> AssessmentRequest:
    t = _today()
    return AssessmentRequest(
        data,
        dpa,
        ("ISO 27001",),
        (t + dt.timedelta(days=reviewed)).isoformat(),
        (t + dt.timedelta(days=expires)).isoformat(),
        risk,
    )


def _refusals(g: Governed) -> list[str]:
    return [e.details for e in g.ws.audit.query(AuditQuery(action="provider.refused"))]


def test_provider_register_assess_link_show_round_trip(governed: Governed) -> None:
    g, ws = governed, governed.ws
    ws.providers.register(g.admin, P, "acme-bureau", ProviderKind.DATA, "credit bureau")
    first = ws.providers.assess(g.admin, P, "acme-bureau", _req())
    second = ws.providers.assess(g.admin, P, "acme-bureau", _req(risk="high"))
    assert (first.assessment_version, second.assessment_version) == (1, 2)
    assert first.sha256 != second.sha256 and len(first.sha256) == 64
    link = ws.providers.link(g.admin, P, "acme-bureau", LinkTarget.SOURCE, "bureau")
    assert (link.target_kind, link.target, link.relation) == ("source", f"{P}/bureau", "supplies")
    d = ws.providers.show(g.admin, P, "acme-bureau")
    assert d.state.status.value == "current" and d.state.latest == second
    assert [a.assessment_version for a in d.history] == [1, 2]
    assert [k.target for k in d.links] == [f"{P}/bureau"]
    assessed = ws.audit.query(AuditQuery(action="provider.assessed"))
    assert [json.loads(e.details)["sha256"] for e in assessed] == [first.sha256, second.sha256]
    assert ws.audit.query(AuditQuery(action="provider.linked"))
    listed = ws.providers.providers(g.admin, P)
    assert [(s.provider.name, s.status.value) for s in listed] == [("acme-bureau", "current")]


@pytest.mark.parametrize("lookalike", ["Acme-Bureau", "acme_bureau", "acrne-bureau", "acme-8ureau"])
def test_lookalike_provider_name_is_refused_audited_and_changes_nothing(
    governed: Governed, lookalike: str
) -> None:
    ws = governed.ws
    ws.providers.register(governed.admin, P, "acme-bureau", ProviderKind.DATA)
    with pytest.raises(Conflict, match="look-alike of it"):
        ws.providers.register(governed.admin, P, lookalike, ProviderKind.DATA)
    assert [s.provider.name for s in ws.providers.providers(governed.admin, P)] == ["acme-bureau"]
    assert any("look-alike" in d for d in _refusals(governed))


def test_provider_name_with_html_is_refused(governed: Governed) -> None:
    with pytest.raises(InputError, match="invalid provider name"):
        governed.ws.providers.register(governed.admin, P, "<b>acme</b>", ProviderKind.API)
    assert governed.ws.providers.providers(governed.admin, P) == []


@pytest.mark.parametrize(
    ("req", "why"),
    [
        (_req(reviewed=-400, expires=-10), "already past"),  # provider with expiry in the past
        (_req(reviewed=-10, expires=-20), "not after the review date"),
        (_req(reviewed=5, expires=300), "in the future"),
        (_req(risk="negligible"), "unknown risk rating"),
        (_req(data=("gossip",)), "unknown data category"),
        (_req(data=()), "what data is sent"),
    ],
    ids=[
        "expiry-in-the-past",
        "expiry-before-review",
        "review-in-the-future",
        "unknown-risk-rating",
        "unknown-data-category",
        "no-data-category",
    ],
)
def test_bad_assessment_is_refused_audited_and_changes_nothing(
    governed: Governed, req: AssessmentRequest, why: str
) -> None:
    ws = governed.ws
    ws.providers.register(governed.admin, P, "acme-llm", ProviderKind.API)
    with pytest.raises(ProviderInvalid, match=why):
        ws.providers.assess(governed.admin, P, "acme-llm", req)
    assert ws.providers.show(governed.admin, P, "acme-llm").history == ()
    assert any(why in d for d in _refusals(governed))


def test_provider_management_by_an_ml_engineer_is_denied_and_audited(governed: Governed) -> None:
    eng = governed.user("eve-eng", "ml-engineer")
    with pytest.raises(AccessDenied):
        governed.ws.providers.register(eng, P, "shadow-api", ProviderKind.API)
    denied = governed.ws.audit.query(AuditQuery(action="provider.manage", actor="eve-eng"))
    assert denied and denied[-1].outcome == "denied"
    assert governed.ws.providers.providers(governed.admin, P) == []
    governed.ws.providers.providers(eng, P)  # but may read the register


def test_linking_an_unknown_target_or_twice_is_refused(governed: Governed) -> None:
    ws, a = governed.ws, governed.admin
    ws.providers.register(a, P, "acme-bureau", ProviderKind.DATA)
    with pytest.raises(NotFound, match="no source 'nope'"):
        ws.providers.link(a, P, "acme-bureau", LinkTarget.SOURCE, "nope")
    with pytest.raises(NotFound) as near:
        ws.providers.link(a, P, "Acme-Bureau", LinkTarget.SOURCE, "bureau")
    assert "did you mean 'acme-bureau'" in near.value.diagnostics()
    ws.providers.link(a, P, "acme-bureau", LinkTarget.SOURCE, "bureau")
    with pytest.raises(Conflict, match="already linked"):
        ws.providers.link(a, P, "acme-bureau", LinkTarget.SOURCE, "bureau")
    assert len(ws.providers.show(a, P, "acme-bureau").links) == 1


def test_model_whose_lineage_uses_an_expired_provider_is_reported_by_the_port(
    governed: Governed,
) -> None:
    ws, a, m = governed.ws, governed.admin, governed.model
    ws.providers.register(a, P, "acme-bureau", ProviderKind.DATA)
    ws.providers.assess(a, P, "acme-bureau", _req(expires=30))  # valid today, for 30 days
    ws.providers.link(a, P, "acme-bureau", LinkTarget.SOURCE, "bureau")
    ws.providers.register(a, P, "foundation-llm", ProviderKind.MODEL)  # never assessed
    ws.providers.link(a, P, "foundation-llm", LinkTarget.MODEL, m.ref)
    today = ws.provider_check.unassessed_providers(P, m)
    assert today == ["foundation-llm: never assessed"]
    in_60_days = ProviderLineageCheck(
        SqlProviderRepository(ws.engine),
        ws.lineage,
        today=lambda: _today() + dt.timedelta(days=60),
    )
    late = in_60_days.unassessed_providers(P, m)
    assert late[0].startswith("acme-bureau: assessment v1 expired on ")
    assert late[1] == "foundation-llm: never assessed"


def test_lineage_verification_binds_a_linked_provider(governed: Governed) -> None:
    ws, a, m = governed.ws, governed.admin, governed.model
    ws.providers.register(a, P, "acme-bureau", ProviderKind.DATA)
    ws.providers.link(a, P, "acme-bureau", LinkTarget.SOURCE, "bureau")
    check = ws.lineage.verify(Node(NodeKind.MODEL_VERSION, m.lineage_id, m.root_digest))
    assert check.ok
    provider = [v for v in check.checked if v.node.kind == NodeKind.PROVIDER]
    assert provider and provider[0].status is CheckStatus.VERIFIED


def test_provider_edge_written_outside_bastion_fails_lineage_verification(
    governed: Governed,
) -> None:
    ws, a, m = governed.ws, governed.admin, governed.model
    ws.providers.register(a, P, "acme-bureau", ProviderKind.DATA)
    # a database writer adds a provider edge with no provider.linked entry on the log
    ws.lineage.link(
        Node(NodeKind.PROVIDER, f"{P}/acme-bureau"),
        Node(NodeKind.MODEL_VERSION, m.lineage_id, m.root_digest),
        "provides",
    )
    check = ws.lineage.verify(Node(NodeKind.MODEL_VERSION, m.lineage_id, m.root_digest))
    assert not check.ok
    bad = next(v for v in check.checked if v.node.kind == NodeKind.PROVIDER)
    assert bad.status is CheckStatus.FAILED and "no provider.linked entry" in (bad.problem or "")


def test_provider_row_planted_in_the_database_fails_lineage_verification(
    governed: Governed,
) -> None:
    ws, m = governed.ws, governed.model
    with ws.engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO providers (project, name, name_key, kind, description, created_at, "
                "created_by) VALUES (:p, 'ghost-api', 'ghostapl', 'api', '', '2026-01-01', 'x')"
            ),
            {"p": P},
        )
    ws.lineage.link(
        Node(NodeKind.PROVIDER, f"{P}/ghost-api"),
        Node(NodeKind.MODEL_VERSION, m.lineage_id, m.root_digest),
        "provides",
    )
    check = ws.lineage.verify(Node(NodeKind.MODEL_VERSION, m.lineage_id, m.root_digest))
    bad = next(v for v in check.checked if v.node.kind == NodeKind.PROVIDER)
    assert bad.status is CheckStatus.FAILED and "no registration on the audit log" in (
        bad.problem or ""
    )
    assert ws.provider_check.unassessed_providers(P, m) == ["ghost-api: never assessed"]


def test_provider_tables_of_the_adapter_match_the_migration(workspace: Any) -> None:
    from bastion.governance._adapters.sql_providers import assessments, providers

    inspector = sa.inspect(workspace.ws.engine)
    for table in (providers, assessments):
        migrated = {c["name"] for c in inspector.get_columns(table.name)}
        assert migrated == set(table.c.keys()), table.name
    uniques = {u["name"] for u in inspector.get_unique_constraints("providers")}
    assert "uq_provider_lookalike" in uniques
