"""Rolling the audit log back: a deleted witness, a restored older backup, a forged anchor.

Each test is named after the attack; each attack passed ``audit verify`` before
the witness stopped being re-created and before ``verify --against``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bastion.core.audit import merkle
from bastion.core.audit.checkpoint_file import export_text, read_checkpoint_file
from bastion.core.audit.entries import AuditRecord, Outcome
from bastion.core.errors import AuditLogTampered, Conflict, InputError
from bastion.workspace import Bastion
from conftest import CLI, WS

_TABLES = ("audit_entries", "audit_head", "audit_checkpoints")


def fill(w: WS, n: int) -> int:
    for i in range(n):
        w.ws.audit.append(
            AuditRecord("svc", "dataset.ingest", f"project/default/d/{i}", Outcome.OK, f"r{i}")
        )
    return w.ws.audit.head().size


def export(w: WS, path: Path) -> Path:
    cp = w.ws.audit.checkpoint()
    public = next(k.public_pem for k in w.ws.keyring.signing_keys("audit") if k.key_id == cp.key_id)
    path.write_text(export_text(cp, public))
    return path


class Backup:
    """A copy of the audit tables and the witness file, as an old backup holds them."""

    def __init__(self, w: WS) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        with w.ws.engine.begin() as c:
            for t in _TABLES:
                self.rows[t] = [dict(r._mapping) for r in c.execute(sa.text(f"SELECT * FROM {t}"))]
        self.witness = w.ws.options.witness_path.read_bytes()

    def restore(self, w: WS) -> None:
        with w.ws.engine.begin() as c:
            for t in _TABLES:
                c.execute(sa.text(f"DELETE FROM {t}"))
                rows = self.rows[t]
                if rows:
                    cols = list(rows[0])
                    c.execute(
                        sa.text(
                            f"INSERT INTO {t} ({', '.join(cols)}) "
                            f"VALUES ({', '.join(':' + k for k in cols)})"
                        ),
                        rows,
                    )
        w.ws.options.witness_path.write_bytes(self.witness)


# -- the witness ----------------------------------------------------------------------
def test_deleted_witness_is_not_recreated_by_the_next_action_attack_detected(
    workspace: WS,
) -> None:
    """Deleting the witness used to be undone by the next commit, at whatever
    (truncated) size the log had then, and ``audit verify`` passed."""
    fill(workspace, 6)
    witness = workspace.ws.options.witness_path
    witness.unlink()
    workspace.ws.access.authorize(workspace.admin, "audit.read", "system/audit")
    workspace.ws.audit.checkpoint()
    fill(workspace, 2)
    assert not witness.exists(), "a missing witness must never be silently re-created"
    report = workspace.ws.audit.verify()
    assert not report.ok
    assert any("witness file is missing" in p for p in report.problems)
    # Another process opening the workspace does not re-create it either.
    other = workspace.reopen()
    other.access.authorize(workspace.admin, "audit.read", "system/audit")
    assert not witness.exists()
    assert not other.audit.verify().ok


def test_garbled_witness_is_not_overwritten_by_the_next_action_attack_detected(
    workspace: WS,
) -> None:
    """An unreadable witness used to be replaced by the next commit's head."""
    fill(workspace, 6)
    witness = workspace.ws.options.witness_path
    witness.write_text("{garbage")
    fill(workspace, 2)
    workspace.ws.audit.checkpoint()
    assert witness.read_text() == "{garbage"
    report = workspace.ws.audit.verify()
    assert not report.ok and any("unreadable" in p for p in report.problems)


def test_witness_restore_only_after_proof_against_exported_checkpoint(
    workspace: WS, tmp_path: Path
) -> None:
    fill(workspace, 5)
    anchor = read_checkpoint_file(export(workspace, tmp_path / "cp.json"))
    fill(workspace, 3)
    with pytest.raises(Conflict, match="never replaced"):
        workspace.ws.audit.reseed_witness(anchor)  # an existing witness is evidence
    workspace.ws.options.witness_path.unlink()
    assert not workspace.ws.audit.verify().ok
    cp = workspace.ws.audit.reseed_witness(anchor)
    assert cp.tree_size == workspace.ws.audit.head().size
    assert workspace.ws.audit.verify().ok


def test_witness_restore_over_a_rolled_back_log_attack_refused(
    workspace: WS, tmp_path: Path
) -> None:
    fill(workspace, 4)
    old = Backup(workspace)
    fill(workspace, 4)
    anchor = read_checkpoint_file(export(workspace, tmp_path / "cp.json"))
    old.restore(workspace)
    workspace.ws.options.witness_path.unlink()
    with pytest.raises(AuditLogTampered, match="rolled back"):
        workspace.ws.audit.reseed_witness(anchor)
    assert not workspace.ws.options.witness_path.exists()


def test_witness_on_another_volume_is_used_and_its_loss_detected(
    tmp_path: Path, master_key: Any
) -> None:
    elsewhere = tmp_path / "other-volume" / "bastion-witness.json"
    ws, issued = Bastion.init(tmp_path / "ws", master_key, witness_path=elsewhere)
    try:
        admin = ws.access.authenticate(issued.secret)
        ws.access.authorize(admin, "audit.read", "system/audit")
        assert elsewhere.exists() and not (ws.home / "audit-head.json").exists()
        assert json.loads(elsewhere.read_text())["tree_size"] == ws.audit.head().size
    finally:
        ws.close()
    reopened = Bastion.open(tmp_path / "ws", master_key)  # recorded in workspace.json
    try:
        assert reopened.options.witness_path == elsewhere.resolve()
        assert reopened.audit.verify().ok
        elsewhere.unlink()
        reopened.audit.checkpoint()
        assert not elsewhere.exists()
        assert not reopened.audit.verify().ok
    finally:
        reopened.close()


# -- exported checkpoints ----------------------------------------------------------------
def test_log_extending_an_exported_checkpoint_proves_consistency(
    workspace: WS, tmp_path: Path
) -> None:
    fill(workspace, 7)
    path = export(workspace, tmp_path / "cp.json")
    anchor = read_checkpoint_file(path)
    fill(workspace, 13)
    result = workspace.ws.audit.prove_extends(anchor)
    assert result.ok, result.problems
    assert result.old_size == anchor.tree_size < result.new_size
    # The proof checks out independently of the log (RFC 9162 §2.1.4.2).
    assert merkle.verify_consistency(
        result.old_size,
        result.new_size,
        [bytes.fromhex(h) for h in result.proof],
        bytes.fromhex(anchor.root_hash),
        bytes.fromhex(result.new_root),
    )
    assert "BEGIN PUBLIC KEY" in json.loads(path.read_text())["public_key"]


def test_restored_older_backup_of_audit_tables_and_witness_attack_detected(
    workspace: WS, tmp_path: Path
) -> None:
    """The old attack: restore the audit tables and the witness from an older
    backup, erasing the record of an admin grant; ``audit verify`` passed."""
    fill(workspace, 4)
    old = Backup(workspace)
    workspace.ws.access.create_principal(workspace.admin, "eve", _user())
    workspace.ws.access.bind(workspace.admin, "eve", "admin", "*")
    anchor = read_checkpoint_file(export(workspace, tmp_path / "cp.json"))
    old.restore(workspace)
    assert workspace.ws.audit.verify().ok  # internally consistent: this is the rollback
    result = workspace.ws.audit.prove_extends(anchor)
    assert not result.ok
    assert any("rolled back" in p for p in result.problems)


def test_rolled_back_log_regrown_past_the_checkpoint_attack_detected(
    workspace: WS, tmp_path: Path
) -> None:
    """After the rollback the attacker appends until the log is longer than the
    exported checkpoint: the consistency proof still fails."""
    fill(workspace, 4)
    old = Backup(workspace)
    fill(workspace, 6)
    anchor = read_checkpoint_file(export(workspace, tmp_path / "cp.json"))
    old.restore(workspace)
    fill(workspace, 30)
    assert workspace.ws.audit.head().size > anchor.tree_size
    assert workspace.ws.audit.verify().ok
    result = workspace.ws.audit.prove_extends(anchor)
    assert not result.ok
    assert any("does not extend" in p for p in result.problems)


@pytest.mark.parametrize("field,value", [("root_hash", "00" * 32), ("tree_size", 3)])
def test_forged_exported_checkpoint_attack_refused(
    workspace: WS, tmp_path: Path, field: str, value: object
) -> None:
    fill(workspace, 5)
    path = export(workspace, tmp_path / "cp.json")
    doc = json.loads(path.read_text())
    doc[field] = value
    path.write_text(json.dumps(doc))
    result = workspace.ws.audit.prove_extends(read_checkpoint_file(path))
    assert not result.ok and any("signature" in p for p in result.problems)


def test_checkpoint_from_another_workspace_attack_refused(
    workspace: WS, tmp_path: Path, master_key: Any
) -> None:
    other, _ = Bastion.init(tmp_path / "other", master_key)
    try:
        cp = other.audit.checkpoint()
    finally:
        other.close()
    result = workspace.ws.audit.prove_extends(cp)
    assert not result.ok and any("signature" in p for p in result.problems)


def test_garbage_checkpoint_file_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "cp.json"
    bad.write_text('{"tree_size": "many"}')
    with pytest.raises(InputError):
        read_checkpoint_file(bad)


# -- the CLI ----------------------------------------------------------------------------
def test_cli_verify_against_detects_restore_from_older_backup(cli: CLI, tmp_path: Path) -> None:
    assert cli.run("init").returncode == 0
    cp = tmp_path / "offhost" / "cp.json"
    cp.parent.mkdir()
    db = cli.home / "bastion.db"
    witness = cli.home / "audit-head.json"
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    r = cli.run("audit", "checkpoint")
    assert r.returncode == 0, r.output
    _sqlite_copy(db, snapshot / "bastion.db")
    (snapshot / "audit-head.json").write_bytes(witness.read_bytes())
    assert cli.run("users", "create", "eve").returncode == 0
    r = cli.run("roles", "bind", "eve", "admin", "--project", "*")
    assert r.returncode == 0, r.output
    r = cli.run("audit", "checkpoint", "--export", str(cp))
    assert r.returncode == 0 and cp.exists(), r.output
    r = cli.run("audit", "verify", "--against", str(cp))
    assert r.returncode == 0 and "extends the exported checkpoint" in r.output, r.output
    # Restore the database and the witness from the older snapshot.
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    _sqlite_copy(snapshot / "bastion.db", db)
    witness.write_bytes((snapshot / "audit-head.json").read_bytes())
    assert cli.run("audit", "verify").returncode == 0  # self-consistent
    r = cli.run("audit", "verify", "--against", str(cp))
    assert r.returncode == 4, r.output
    assert "does NOT extend" in r.output and "rolled back" in r.output


def _sqlite_copy(src: Path, dest: Path) -> None:
    import sqlite3

    dest.unlink(missing_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dest) as b:
        a.backup(b)


def _user() -> Any:
    from bastion.core.access.values import PrincipalKind

    return PrincipalKind.USER


def test_restore_of_workspace_with_external_witness_is_proven_rolled_back(
    tmp_path: Path, master_key: Any
) -> None:
    """docs/operations.md: a restore is a rollback, and the off-host export says so."""
    elsewhere = tmp_path / "other-volume" / "witness.json"
    ws, issued = Bastion.init(tmp_path / "ws", master_key, witness_path=elsewhere)
    try:
        admin = ws.access.authenticate(issued.secret)
        before = read_checkpoint_file(_export_ws(ws, tmp_path / "before.json"))
        ws.backup(admin, tmp_path / "backup")
        ws.access.create_principal(admin, "eve", _user())
        after = read_checkpoint_file(_export_ws(ws, tmp_path / "after.json"))
    finally:
        ws.close()
    restored, _ = Bastion.restore(tmp_path / "backup", tmp_path / "restored", master_key)
    try:
        assert "audit_witness" not in json.loads((restored.home / "workspace.json").read_text())
        assert restored.options.witness_path == restored.home / "audit-head.json"
        assert restored.audit.verify().ok
        assert restored.audit.prove_extends(before).ok
        lost = restored.audit.prove_extends(after)
        assert not lost.ok and any("rolled back" in p for p in lost.problems)
    finally:
        restored.close()


def _export_ws(ws: Bastion, path: Path) -> Path:
    path.write_text(export_text(ws.audit.checkpoint()))
    return path


def test_cli_lost_witness_fails_verify_until_restored_against_an_export(
    cli: CLI, tmp_path: Path
) -> None:
    assert cli.run("init").returncode == 0
    cp = tmp_path / "cp.json"
    assert cli.run("audit", "checkpoint", "--export", str(cp)).returncode == 0
    (cli.home / "audit-head.json").unlink()
    assert cli.run("users", "create", "eve").returncode == 0
    r = cli.run("audit", "verify")
    assert r.returncode == 4 and "witness file is missing" in r.output, r.output
    r = cli.run("audit", "witness-restore", "--against", str(cp))
    assert r.returncode == 0 and "re-seeded" in r.output, r.output
    r = cli.run("audit", "verify", "--against", str(cp))
    assert r.returncode == 0, r.output
    r = cli.run("audit", "witness-restore", "--against", str(cp))
    assert r.returncode != 0 and "never replaced" in r.output, r.output
