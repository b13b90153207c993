"""A damaged metadata database fails with a clear StorageError, never a raw traceback."""

from __future__ import annotations

import os

import pytest

from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import StorageError
from bastion.workspace import Bastion
from conftest import WS


def test_corrupted_sqlite_header_is_a_clear_storage_error(sqlite_workspace: WS) -> None:
    w = sqlite_workspace
    w.ws.audit.query(AuditQuery())
    w.ws.close()
    db = w.home / "bastion.db"
    data = bytearray(db.read_bytes())
    data[:100] = os.urandom(100)
    db.write_bytes(bytes(data))
    with pytest.raises(StorageError) as e:
        other = w.reopen()
        other.access.authenticate(w.token)
    assert "corrupted" in e.value.message
    assert e.value.hint and "backup" in e.value.hint
    assert "Traceback" not in e.value.diagnostics()


def test_database_replaced_by_empty_file_attack_detected_by_witness(sqlite_workspace: WS) -> None:
    """Swapping bastion.db for an empty one yields a fresh schema; the witness notices."""
    w = sqlite_workspace
    w.ws.access.authorize(w.admin, "audit.read", "system/audit")
    size = w.ws.audit.head().size
    w.ws.close()
    for suffix in ("", "-wal", "-shm"):
        path = w.home / f"bastion.db{suffix}"
        if path.exists():
            path.unlink()
    (w.home / "bastion.db").write_bytes(b"")
    other: Bastion = w.reopen()
    report = other.audit.verify()
    assert not report.ok
    assert report.witness_size == size and report.first_bad_seq == 1
