"""A key rotated while a backup is written: the backup is refused, not kept half-usable.

The accident: the keyring is copied first; if a KEK rotation then re-wraps blob
keys before the blobs are copied, the backup holds blob keys wrapped by a KEK
its own keyring lacks, and would fail only at restore time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.core.errors import Conflict
from bastion.core.store.backup import BackupSources, write_backup
from conftest import WS


def test_kek_rotated_during_backup_refuses_the_backup(sqlite_workspace: WS, tmp_path: Path) -> None:
    w = sqlite_workspace
    src = tmp_path / "obj.txt"
    src.write_text("data\n" * 100)
    w.ws.objects.put(w.admin, "default", "obj.txt", src)
    sources = BackupSources(
        home=w.home,
        keyring=w.home / "keyring.json",
        witness=w.home / "audit-head.json",
        blobs=w.home / "blobs",
        sqlite_db=w.home / "bastion.db",
        database_url=None,
    )

    def sign_after_a_rotation(body: bytes) -> tuple[str, bytes]:
        # The rotation lands after the keyring was copied (a concurrent admin).
        w.ws.keys.rotate(w.admin)
        return "audit#x", b"sig"

    dest = tmp_path / "backup"
    with pytest.raises(Conflict, match="keyring changed"):
        write_backup(sources, dest, sign_after_a_rotation)
    assert not dest.exists()
    # Without a rotation the same backup is written.
    ok = write_backup(sources, tmp_path / "backup2", lambda b: ("audit#x", b"sig"))
    assert any(f.path == "keyring.json" for f in ok.files)
