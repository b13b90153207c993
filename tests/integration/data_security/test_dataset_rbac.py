"""Who may ingest, read and audit a dataset — and every decision is in the audit log."""

from __future__ import annotations

import json

import pytest
from data_security_support import (
    DATASET,
    PROJECT,
    CreditWS,
    audit_entries,
    blob_files,
    ingest_csv,
    make_actor,
)

from bastion.core.errors import AccessDenied
from bastion.data_security.access_report import AccessThresholds

RESOURCE = f"project/{PROJECT}/dataset/{DATASET}"


def _decisions(credit: CreditWS, actor: str, action: str) -> list[str]:
    return [e.outcome for e in audit_entries(credit.ws, actor=actor, action=action)]


def test_consumer_cannot_ingest(credit: CreditWS) -> None:
    before = credit.ws.datasets.versions(credit.admin, PROJECT, DATASET)
    blobs = blob_files(credit.home)
    with pytest.raises(AccessDenied, match=r"dataset\.ingest"):
        ingest_csv(credit.ws, credit.consumer, credit.split.batch(0), credit.path("consumer"))
    assert credit.ws.datasets.versions(credit.admin, PROJECT, DATASET) == before
    assert blob_files(credit.home) == blobs
    assert "denied" in _decisions(credit, "carl", "dataset.ingest")


def test_consumer_cannot_read_or_export(credit: CreditWS) -> None:
    with pytest.raises(AccessDenied):
        credit.ws.datasets.read_frame(credit.consumer, PROJECT, credit.history.ref)
    with pytest.raises(AccessDenied):
        credit.ws.datasets.export(
            credit.consumer, PROJECT, credit.history.ref, credit.path("c", ".csv")
        )
    with pytest.raises(AccessDenied):
        credit.ws.datasets.versions(credit.consumer, PROJECT, DATASET)
    assert _decisions(credit, "carl", "dataset.read").count("denied") >= 2
    assert "denied" in _decisions(credit, "carl", "dataset.list")


def test_auditor_can_run_access_report_but_not_read_rows(credit: CreditWS) -> None:
    report = credit.ws.access_reports.access_report(credit.auditor, PROJECT, DATASET)
    assert report.dataset == f"{PROJECT}/{DATASET}" and report.entries > 0
    assert "dana" in {p.principal for p in report.principals}
    # metadata yes, rows no
    assert credit.ws.datasets.version(credit.auditor, PROJECT, credit.history.ref).rows > 0
    with pytest.raises(AccessDenied):
        credit.ws.datasets.read_frame(credit.auditor, PROJECT, credit.history.ref)
    with pytest.raises(AccessDenied):
        credit.ws.datasets.export(
            credit.auditor, PROJECT, credit.history.ref, credit.path("a", ".parquet")
        )
    assert _decisions(credit, "olga", "access.report") == ["allowed"]
    assert _decisions(credit, "olga", "dataset.read") == ["denied", "denied"]


def test_ml_engineer_can_read_accepted_data_but_not_ingest_or_edit(credit: CreditWS) -> None:
    _, frame = credit.ws.datasets.read_frame(credit.engineer, PROJECT, credit.history.ref)
    assert frame.height == credit.history.rows
    with pytest.raises(AccessDenied):
        ingest_csv(credit.ws, credit.engineer, credit.split.batch(0), credit.path("eng"))
    with pytest.raises(AccessDenied):
        credit.ws.datasets.set_policy(credit.engineer, PROJECT, DATASET, "{}")
    with pytest.raises(AccessDenied):
        credit.ws.datasets.register_source(credit.engineer, PROJECT, "side-channel")


def test_every_decision_is_in_the_audit_log(credit: CreditWS) -> None:
    ws = credit.ws
    who = make_actor(ws, credit.admin, "rbac-probe", "ml-engineer")
    head = ws.audit.head().size
    ws.datasets.read_frame(who, PROJECT, credit.history.ref)
    with pytest.raises(AccessDenied):
        ingest_csv(ws, who, credit.split.batch(0), credit.path("probe"))
    with pytest.raises(AccessDenied):
        ws.access_reports.access_report(who, PROJECT, DATASET)
    new = [e for e in audit_entries(ws, actor="rbac-probe") if e.seq > head]
    got = [(e.action, e.outcome) for e in new]
    assert got == [
        ("dataset.read", "allowed"),
        ("dataset.read", "ok"),  # the read itself, with its row count
        ("dataset.ingest", "denied"),
        ("access.report", "denied"),
    ]
    assert json.loads(new[1].details)["rows"] == credit.history.rows
    assert all(e.resource == RESOURCE for e in new)
    assert ws.audit.verify().ok


def test_access_report_counts_and_flags(credit: CreditWS) -> None:
    ws = credit.ws
    reader = make_actor(ws, credit.admin, "rhea", "ml-engineer")
    prober = make_actor(ws, credit.admin, "mallory", "consumer")
    ref = credit.history.ref
    ws.datasets.read_frame(reader, PROJECT, ref)
    ws.datasets.read_frame(reader, PROJECT, ref, purpose="training")
    ws.datasets.export(reader, PROJECT, ref, credit.path("rhea", ".parquet"))
    for _ in range(3):
        with pytest.raises(AccessDenied):
            ws.datasets.read_frame(prober, PROJECT, ref)
    report = ws.access_reports.access_report(
        credit.auditor, PROJECT, DATASET, AccessThresholds(bulk_rows=1_000)
    )
    by = {p.principal: p for p in report.principals}
    assert by["rhea"].reads == 3 and by["rhea"].denials == 0 and by["rhea"].writes == 0
    assert by["rhea"].rows_read >= 3 * credit.history.rows
    assert by["mallory"].reads == 0 and by["mallory"].denials == 3
    assert by["dana"].writes >= 1  # the steward's ingests
    flags = {(f.kind, f.principal) for f in report.flags}
    assert ("first_time_reader", "rhea") in flags
    assert ("bulk_export", "rhea") in flags
    assert ("repeated_denials", "mallory") in flags
    assert ("repeated_denials", "rhea") not in flags
    # with the default thresholds a 2,827-row read is no bulk export
    default = ws.access_reports.access_report(credit.auditor, PROJECT, DATASET)
    assert ("bulk_export", "rhea") not in {(f.kind, f.principal) for f in default.flags}
    assert json.loads(json.dumps(report.to_dict()))["dataset"] == f"{PROJECT}/{DATASET}"
