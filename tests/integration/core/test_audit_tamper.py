"""Tampering with the audit log in a real database; proofs that verify independently."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from bastion.core.audit import merkle
from bastion.core.audit.entries import AuditQuery, AuditRecord, Outcome
from bastion.core.errors import AuditLogTampered, InputError
from conftest import WS


def sql(w: WS, statement: str, **params: object) -> None:
    with w.ws.engine.begin() as c:
        c.execute(sa.text(statement), params)


def fill(w: WS, n: int) -> int:
    """Append ``n`` entries (half decisions, half events); return the log size."""
    for i in range(n):
        if i % 2:
            w.ws.access.authorize(w.admin, "audit.read", "system/audit")
        else:
            w.ws.audit.append(
                AuditRecord(
                    "svc",
                    "dataset.ingest",
                    f"project/default/d/{i}",
                    Outcome.OK,
                    f"r{i}",
                    {"rows": i},
                )
            )
    return w.ws.audit.head().size


def test_intact_log_verifies(workspace: WS) -> None:
    size = fill(workspace, 12)
    report = workspace.ws.audit.verify()
    assert report.ok, report.problems
    assert report.entries == size and report.first_bad_seq is None
    assert report.checkpoints_verified >= 1  # the one signed at init
    assert workspace.ws.audit.require_intact().ok


@pytest.mark.parametrize(
    "column,value",
    [
        ("outcome", "allowed"),
        ("actor", "mallory"),
        ("details", '{"rows":999}'),
        ("ts", "2020-01-01T00:00:00+00:00"),
        ("resource", "project/default/d/other"),
    ],
)
def test_edited_entry_field_attack_detected(workspace: WS, column: str, value: str) -> None:
    fill(workspace, 10)
    sql(workspace, f"UPDATE audit_entries SET {column} = :v WHERE seq = 6", v=value)
    report = workspace.ws.audit.verify()
    assert not report.ok and report.first_bad_seq == 6
    with pytest.raises(AuditLogTampered, match="entry 6"):
        workspace.ws.audit.require_intact()


def test_edit_with_recomputed_hash_chain_attack_detected(workspace: WS) -> None:
    """The attacker edits entry 5 and rewrites every later hash and the head: the
    signed checkpoint and the witness still disagree."""
    fill(workspace, 10)
    workspace.ws.audit.checkpoint()
    fill(workspace, 4)
    entries = list(workspace.ws.audit._repo.iter_entries())  # type: ignore[attr-defined]
    assert entries[4].outcome == "allowed"
    prev, frontier = "0" * 64, merkle.Frontier()
    from bastion.core.audit.entries import seal

    for e in entries:
        outcome = Outcome.DENIED if e.seq == 5 else Outcome(e.outcome)
        record = AuditRecord(
            e.actor, e.action, e.resource, outcome, e.request_id, json.loads(e.details), e.ts
        )
        forged = seal(record, e.seq, prev)
        sql(
            workspace,
            "UPDATE audit_entries SET outcome=:o, prev_hash=:p, entry_hash=:h WHERE seq=:s",
            o=forged.outcome,
            p=forged.prev_hash,
            h=forged.entry_hash,
            s=e.seq,
        )
        frontier.append(merkle.leaf_hash(forged.leaf_data()))
        prev = forged.entry_hash
    sql(
        workspace,
        "UPDATE audit_head SET last_hash=:h, frontier=:f WHERE id=1",
        h=prev,
        f=frontier.to_text(),
    )
    report = workspace.ws.audit.verify()
    assert not report.ok
    assert report.first_bad_seq is not None and report.first_bad_seq >= 5


def test_deleted_entry_in_the_middle_attack_detected(workspace: WS) -> None:
    fill(workspace, 10)
    sql(workspace, "DELETE FROM audit_entries WHERE seq = 7")
    report = workspace.ws.audit.verify()
    assert not report.ok and report.first_bad_seq == 7


def test_reordered_entries_attack_detected(workspace: WS) -> None:
    fill(workspace, 10)
    sql(workspace, "UPDATE audit_entries SET seq = -1 WHERE seq = 4")
    sql(workspace, "UPDATE audit_entries SET seq = 4 WHERE seq = 8")
    sql(workspace, "UPDATE audit_entries SET seq = 8 WHERE seq = -1")
    report = workspace.ws.audit.verify()
    assert not report.ok and report.first_bad_seq == 4


def _truncate_to(w: WS, cut: int) -> None:
    """Delete every entry after ``cut`` and make head and checkpoints agree with it."""
    sql(w, "DELETE FROM audit_entries WHERE seq > :c", c=cut)
    sql(w, "DELETE FROM audit_checkpoints WHERE tree_size > :c", c=cut)
    kept = list(w.ws.audit._repo.iter_entries())  # type: ignore[attr-defined]
    frontier = merkle.Frontier()
    for e in kept:
        frontier.append(merkle.leaf_hash(e.leaf_data()))
    sql(
        w,
        "UPDATE audit_head SET size=:s, last_hash=:h, frontier=:f WHERE id=1",
        s=cut,
        h=kept[-1].entry_hash,
        f=frontier.to_text(),
    )


def test_tail_truncation_after_last_checkpoint_attack_detected_by_witness(workspace: WS) -> None:
    fill(workspace, 6)
    cut = workspace.ws.audit.checkpoint().tree_size
    size = fill(workspace, 9)
    _truncate_to(workspace, cut)
    report = workspace.ws.audit.verify()
    assert not report.ok
    assert report.first_bad_seq == cut + 1
    assert report.witness_size == size
    assert any("witness" in p for p in report.problems)


def test_tail_truncation_with_witness_deleted_attack_detected(workspace: WS) -> None:
    """Removing the witness too must not turn a truncated log into a clean one."""
    fill(workspace, 6)
    cut = workspace.ws.audit.checkpoint().tree_size
    fill(workspace, 9)
    _truncate_to(workspace, cut)
    (workspace.home / "audit-head.json").unlink()
    assert not workspace.ws.audit.verify().ok


def test_garbled_witness_file_attack_detected(workspace: WS) -> None:
    fill(workspace, 4)
    (workspace.home / "audit-head.json").write_text("{garbage")
    report = workspace.ws.audit.verify()
    assert not report.ok


def test_forged_checkpoint_signature_attack_detected(workspace: WS) -> None:
    fill(workspace, 5)
    cp = workspace.ws.audit.checkpoint()
    fill(workspace, 3)
    forged = ("00" if cp.signature[:2] != "00" else "11") + cp.signature[2:]
    sql(
        workspace,
        "UPDATE audit_checkpoints SET signature=:s WHERE tree_size=:t",
        s=forged,
        t=cp.tree_size,
    )
    report = workspace.ws.audit.verify()
    assert not report.ok and report.first_bad_seq == cp.tree_size


def test_forged_checkpoint_root_and_key_attack_detected(workspace: WS) -> None:
    fill(workspace, 5)
    cp = workspace.ws.audit.checkpoint()
    fill(workspace, 3)
    sql(
        workspace,
        "UPDATE audit_checkpoints SET root_hash=:r WHERE tree_size=:t",
        r="ab" * 32,
        t=cp.tree_size,
    )
    assert workspace.ws.audit.verify().first_bad_seq == cp.tree_size
    sql(
        workspace,
        "UPDATE audit_checkpoints SET root_hash=:r, key_id='audit#attacker', "
        "signature='zz' WHERE tree_size=:t",
        r=cp.root_hash,
        t=cp.tree_size,
    )
    assert workspace.ws.audit.verify().first_bad_seq == cp.tree_size


def test_checkpoint_signed_by_revoked_key_no_longer_verifies(workspace: WS) -> None:
    fill(workspace, 3)
    cp = workspace.ws.audit.checkpoint()
    workspace.ws.keyring.revoke_signing_key(cp.key_id)
    report = workspace.ws.audit.verify()
    assert not report.ok


def test_inclusion_and_consistency_proofs_verify(workspace: WS) -> None:
    fill(workspace, 7)
    old = workspace.ws.audit.checkpoint()
    fill(workspace, 6)
    new = workspace.ws.audit.checkpoint()
    entries = workspace.ws.audit.query(AuditQuery(limit=1000))
    leaves = [merkle.leaf_hash(e.leaf_data()) for e in entries]
    assert len(leaves) == new.tree_size
    for seq in (1, old.tree_size, new.tree_size):
        proof = [bytes.fromhex(h) for h in workspace.ws.audit.inclusion_proof(seq, new.tree_size)]
        assert merkle.verify_inclusion(
            leaves[seq - 1], seq - 1, new.tree_size, proof, bytes.fromhex(new.root_hash)
        )
        assert not merkle.verify_inclusion(
            leaves[seq % len(leaves)], seq - 1, new.tree_size, proof, bytes.fromhex(new.root_hash)
        )
    proof = [
        bytes.fromhex(h) for h in workspace.ws.audit.consistency_proof(old.tree_size, new.tree_size)
    ]
    assert merkle.verify_consistency(
        old.tree_size,
        new.tree_size,
        proof,
        bytes.fromhex(old.root_hash),
        bytes.fromhex(new.root_hash),
    )
    assert not merkle.verify_consistency(
        old.tree_size, new.tree_size, proof, bytes.fromhex("cd" * 32), bytes.fromhex(new.root_hash)
    )
    with pytest.raises(InputError):
        workspace.ws.audit.inclusion_proof(new.tree_size + 5, new.tree_size + 5)
    with pytest.raises(InputError):
        workspace.ws.audit.consistency_proof(0, new.tree_size)
