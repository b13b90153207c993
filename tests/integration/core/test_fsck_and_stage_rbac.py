"""Repairs are admin actions: ``store fsck --repair`` needs ``store.repair``, and a
model's stage change needs ``model.approve``."""

from __future__ import annotations

import json
import os

import pytest

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import AccessDenied
from conftest import CLI, WS


def actor(w: WS, name: str, role: str, project: str = "*") -> Actor:
    w.ws.access.create_principal(w.admin, name, PrincipalKind.USER)
    w.ws.access.bind(w.admin, name, role, project)
    return w.ws.access.authenticate(w.ws.access.create_token(w.admin, name).secret)


def leftover(w: WS) -> str:
    """An orphaned ciphertext, as an interrupted write leaves it."""
    digest = "ab" * 32
    path = w.home / "blobs" / "objects" / digest[:2] / f"{digest}.enc"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half a write")
    return str(path)


def test_auditor_fsck_repair_deletion_attack_denied(workspace: WS) -> None:
    """The read-only auditor held ``audit.verify``, which was all fsck's deletions needed."""
    auditor = actor(workspace, "olga", "auditor")
    path = leftover(workspace)
    with pytest.raises(AccessDenied, match=r"store\.repair"):
        workspace.ws.objects.fsck(auditor, repair=True)
    assert os.path.exists(path)
    # Read-only fsck is still the auditor's: it counts, deletes nothing.
    report = workspace.ws.objects.fsck(auditor)
    assert report.orphans_found == 1 and report.orphans_removed == 0 and not report.repaired
    assert os.path.exists(path)
    # The admin repairs; every run is on the audit log.
    fixed = workspace.ws.objects.fsck(workspace.admin, repair=True)
    assert fixed.orphans_removed == 1 and fixed.repaired and not os.path.exists(path)
    runs = workspace.ws.audit.query(AuditQuery(action="store.fsck"))
    assert [json.loads(e.details)["repair"] for e in runs] == [False, True]
    denied = workspace.ws.audit.query(AuditQuery(action="store.repair", outcome="denied"))
    assert [e.actor for e in denied] == ["olga"]


def test_cli_store_fsck_repair_requires_store_repair(cli: CLI) -> None:
    assert cli.run("init").returncode == 0
    from bastion.core.crypto.keyring import MasterKeySource
    from bastion.workspace import Bastion

    ws = Bastion.open(cli.home, MasterKeySource.from_env_key(cli.master_key_b64))
    try:
        admin = ws.access.authenticate(ws.stored_token())
        ws.access.create_principal(admin, "olga", PrincipalKind.USER)
        ws.access.bind(admin, "olga", "auditor", "*")
        token = ws.access.create_token(admin, "olga").secret
    finally:
        ws.close()
    r = cli.run("store", "fsck", token=token)
    assert r.returncode == 0, r.output
    assert json.loads(r.stdout)["repaired"] is False
    r = cli.run("store", "fsck", "--repair", token=token)
    assert r.returncode != 0 and "store.repair" in r.output
    r = cli.run("store", "fsck", "--repair")
    assert r.returncode == 0 and json.loads(r.stdout)["repaired"] is True, r.output


def test_stage_change_by_registering_engineer_attack_denied(workspace: WS) -> None:
    """``set_stage`` checked only ``model.register``: the model's own author could
    move it to approved or deployed without a reviewer."""
    from bastion.model_security.values import Stage

    engineer = actor(workspace, "eve", "ml-engineer", "default")
    with pytest.raises(AccessDenied, match=r"model\.approve"):
        workspace.ws.models.set_stage(engineer, "default", "scorer@1", Stage.APPROVED)
    denied = workspace.ws.audit.query(AuditQuery(action="model.approve", outcome="denied"))
    assert [e.actor for e in denied] == ["eve"]
