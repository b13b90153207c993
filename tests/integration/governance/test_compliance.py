"""Compliance reports on real workspaces (SQLite and PostgreSQL, the real audit log):
controls pass and fail with the evidence behind them; every refusal (unknown
framework, a catalogue naming an unknown check) is audited; names are escaped."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from governed_ws import Governed, P

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import AccessDenied
from bastion.core.lineage.graph import Node, NodeKind
from bastion.data_security.service import IngestRequest
from bastion.demo.data_steps import credit_data
from bastion.governance.compliance import ComplianceReport
from bastion.governance.compliance_checks import CheckOutcome
from bastion.governance.compliance_render import render_report_html, render_report_json
from bastion.governance.errors import CatalogueInvalid
from bastion.governance.provider_values import ProviderKind


def _check(r: ComplianceReport, control: str, name: str) -> CheckOutcome:
    c = next(c for c in r.controls if c.id == control)
    return next(k for k in c.checks if k.name == name)


def _status(r: ComplianceReport) -> dict[str, str]:
    return {c.id: c.status.value for c in r.controls}


def test_soc2_report_on_a_registered_model_shows_pass_and_fail_with_evidence(
    governed: Governed,
) -> None:
    g, ws = governed, governed.ws
    ws.providers.register(g.admin, P, "acme-llm", ProviderKind.API)  # registered, never assessed
    r = ws.compliance.report(g.admin, "soc2", P)
    assert _status(r) == {"CC6": "pass", "CC7": "fail", "CC8": "fail"}
    admins = _check(r, "CC6", "least_privilege")
    assert admins.status.value == "pass" and "1 global admin(s): admin" in admins.evidence[0].what
    audit = _check(r, "CC7", "audit_log_intact")
    assert audit.status.value == "pass" and audit.evidence[0].sha256  # the log's root hash
    providers = _check(r, "CC7", "providers_assessed")
    assert providers.status.value == "fail" and "acme-llm: never assessed" in providers.summary
    assert providers.remedy and "bastion provider assess" in providers.remedy
    cards = _check(r, "CC8", "model_cards_complete")
    assert cards.summary == "scorer@1 has no model card" and "card-set" in (cards.remedy or "")
    lineage = _check(r, "CC8", "lineage_complete")
    assert lineage.status.value == "pass"
    registered = lineage.evidence[0]
    assert registered.audit_seq is not None and registered.sha256 == g.model.root_digest
    assert _check(r, "CC8", "release_approvals").status.value == "not-applicable"
    doc = json.loads(render_report_json(r))
    assert doc["summary"] == {"pass": 1, "fail": 2, "not-applicable": 0}
    reported = ws.audit.query(AuditQuery(action="compliance.reported"))
    assert json.loads(reported[-1].details)["report_sha256"] == r.sha256()
    html = render_report_html(r)
    assert "CC8" in html and "scorer@1 has no model card" in html and "<script" not in html


def test_unknown_framework_is_refused_with_the_valid_ones_and_audited(governed: Governed) -> None:
    with pytest.raises(CatalogueInvalid) as e:
        governed.ws.compliance.report(governed.admin, "pci-dss", P)
    assert "unknown compliance framework 'pci-dss'" in e.value.message
    assert e.value.hint == "use one of: eu-ai-act, gdpr, hipaa, soc2"
    refused = governed.ws.audit.query(AuditQuery(action="compliance.refused"))
    assert refused and "pci-dss" in refused[-1].details
    assert not governed.ws.audit.query(AuditQuery(action="compliance.reported"))


def test_catalogue_naming_an_unknown_check_is_refused_and_audited(governed: Governed) -> None:
    ext = (
        "version: 1\nframeworks:\n  soc2:\n    controls:\n      - id: CC9\n"
        "        title: Risk mitigation\n        checks: [vendor_vibes]\n"
    )
    with pytest.raises(CatalogueInvalid, match="unknown check 'vendor_vibes'"):
        governed.ws.compliance.report(governed.admin, "soc2", P, catalogue=ext)
    refused = governed.ws.audit.query(AuditQuery(action="compliance.refused"))
    assert refused and "vendor_vibes" in refused[-1].details


@pytest.mark.parametrize(
    ("ext", "why"),
    [
        ("version: 1\nsurprise: true\n", "surprise: unknown field"),
        (
            "version: 1\nframeworks:\n  soc2:\n    controls:\n"
            "      - {id: CC6, title: again, checks: [key_rotation]}\n",
            "already has a control 'CC6'",
        ),
        (
            "version: 1\nframeworks:\n  iso:\n    controls:\n"
            "      - {id: A1, title: t, checks: [key_rotation]}\n",
            "has no title",
        ),
        ("version: 1\nsettings: {key_rotation_days: 0}\n", "key_rotation_days"),
        ("- just a list\n", "must be a mapping"),
    ],
    ids=[
        "unknown-field",
        "duplicate-control",
        "untitled-framework",
        "setting-out-of-range",
        "not-a-mapping",
    ],
)
def test_bad_catalogue_extension_is_refused(governed: Governed, ext: str, why: str) -> None:
    with pytest.raises(CatalogueInvalid, match=why):
        governed.ws.compliance.report(governed.admin, "soc2", P, catalogue=ext)


def test_catalogue_extension_adds_a_framework_and_its_text_is_rendered_escaped(
    governed: Governed,
) -> None:
    ext = (
        "version: 1\nsettings: {key_rotation_days: 30}\nframeworks:\n  iso-42001:\n"
        "    title: 'ISO/IEC 42001 <img src=x onerror=alert(1)>'\n    controls:\n"
        "      - {id: A.6, title: '<script>alert(1)</script>', checks: [model_cards_complete]}\n"
    )
    r = governed.ws.compliance.report(
        governed.admin, "iso-42001", P, catalogue=ext, catalogue_source="officer.yaml"
    )
    assert _status(r) == {"A.6": "fail"} and r.catalogue_sources[-1] == "officer.yaml"
    html = render_report_html(r)
    assert "<script>alert" not in html and "<img src" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_html_in_a_planted_provider_name_is_rendered_escaped_in_the_report(
    governed: Governed,
) -> None:
    g, ws = governed, governed.ws
    # nobody can register such a name; a database writer plants a lineage edge instead
    evil = "<script>alert(1)</script>"
    ws.lineage.link(
        Node(NodeKind.PROVIDER, f"{P}/{evil}"),
        Node(NodeKind.MODEL_VERSION, g.model.lineage_id, g.model.root_digest),
        "provides",
    )
    r = ws.compliance.report(g.admin, "eu-ai-act", P)
    providers = _check(r, "Art. 10", "providers_assessed")
    assert providers.status.value == "fail" and evil in providers.summary
    assert _check(r, "Art. 10", "lineage_complete").status.value == "fail"
    html = render_report_html(r)
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_tampered_audit_log_fails_the_audit_control(governed: Governed) -> None:
    g, ws = governed, governed.ws
    with ws.engine.begin() as c:
        c.execute(sa.text("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 3"))
    r = ws.compliance.report(g.admin, "hipaa", P)
    audit = _check(r, "§164.312(b)", "audit_log_intact")
    assert audit.status.value == "fail" and "entry 3" in audit.summary
    assert audit.remedy and "restore" in audit.remedy
    assert _status(r)["§164.312(b)"] == "fail"


def test_binding_of_a_disabled_principal_fails_least_privilege(governed: Governed) -> None:
    g, ws = governed, governed.ws
    ws.access.create_principal(g.admin, "old-steward", PrincipalKind.USER)
    ws.access.bind(g.admin, "old-steward", "data-steward", P)
    ws.access.disable_principal(g.admin, "old-steward")
    r = ws.compliance.report(g.admin, "soc2", P)
    least = _check(r, "CC6", "least_privilege")
    assert least.status.value == "fail"
    assert "old-steward is disabled but keeps role data-steward" in least.summary


def test_compliance_report_is_for_auditors_not_engineers(governed: Governed) -> None:
    auditor = governed.user("audrey", "auditor")
    assert governed.ws.compliance.report(auditor, "gdpr", P).generated_by == "audrey"
    eng = governed.user("eve-eng", "ml-engineer")
    with pytest.raises(AccessDenied):
        governed.ws.compliance.report(eng, "gdpr", P)
    denied = governed.ws.audit.query(AuditQuery(action="compliance.report", actor="eve-eng"))
    assert denied and denied[-1].outcome == "denied"


def test_undeclared_personal_data_fails_pii_handled(governed: Governed, tmp_path: Path) -> None:
    g, ws = governed, governed.ws
    n = 200
    frame = pl.DataFrame(
        {
            "email": [f"person{i}@example.com" for i in range(n)],
            "income": [1e3 + i for i in range(n)],
        }
    )
    path = tmp_path / "contacts.csv"
    frame.write_csv(path)
    ws.datasets.register_source(g.admin, P, "crm", datasets=("contacts",))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    res = ws.datasets.ingest(g.admin, IngestRequest(P, "contacts", path, "crm", digest))
    assert res.accepted  # undeclared PII warns by default; the report must catch it
    r = ws.compliance.report(g.admin, "gdpr", P)
    pii = _check(r, "Art. 25", "pii_handled")
    assert pii.status.value == "fail" and "undeclared personal data in email" in pii.summary
    assert pii.evidence[-1].sha256 == res.version.data_digest


def test_model_marked_approved_in_the_database_without_approvals_fails_release_controls(
    governed: Governed,
) -> None:
    g, ws, m = governed, governed.ws, governed.model
    ws._model_repo.set_stage(P, m.name, m.version, "approved")  # promoted outside the gate
    r = ws.compliance.report(g.admin, "soc2", P)
    approvals = _check(r, "CC8", "release_approvals")
    assert approvals.status.value == "fail"
    assert "no model card" in approvals.summary
    assert "no release-gate verdict" in approvals.summary
    drift = _check(r, "CC7", "drift_monitoring")
    assert drift.status.value == "fail" and "no drift run" in drift.summary
    live = credit_data().drop_nulls().slice(600, 300)
    ws.lab.drift(g.admin, P, "credit@1", live)
    again = ws.compliance.report(g.admin, "soc2", P)
    drift = _check(again, "CC7", "drift_monitoring")
    assert drift.status.value == "pass" and drift.evidence[0].audit_seq is not None
