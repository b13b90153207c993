"""A workspace is a folder you can move, back up and restore (the real CLI).

Attacks and accidents covered: a copied workspace silently writing to the
original's database; a backup taken while writers run; a backup edited, truncated
or salted with a symbolic link; a restore aimed at a live workspace.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import pytest

from bastion.core.crypto.keyring import MasterKeySource
from bastion.workspace import Bastion
from conftest import CLI

CSV = "age,income,status\n" + "".join(
    f"{20 + i % 50},{1000 + 37 * i},{'good' if i % 3 else 'bad'}\n" for i in range(300)
)


def _init(cli: CLI, tmp_path: Path) -> str:
    assert cli.run("init").returncode == 0
    token = (cli.home / "credentials").read_text().strip()
    data = tmp_path / "batch.csv"
    data.write_text(CSV)
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    r = cli.run("data", "sources", "register", "bureau", "--dataset", "loans")
    assert r.returncode == 0, r.output
    r = cli.run(
        "data",
        "ingest",
        str(data),
        "--dataset",
        "loans",
        "--source",
        "bureau",
        "--sha256",
        digest,
        "--label",
        "status",
    )
    assert r.returncode == 0, r.output
    return token


def _at(cli: CLI, home: Path) -> CLI:
    return CLI(home, cli.master_key_b64)


def test_copied_workspace_writes_its_own_database_not_the_originals(
    cli: CLI, tmp_path: Path
) -> None:
    assert cli.run("init").returncode == 0
    copy = tmp_path / "copy"
    shutil.copytree(cli.home, copy)
    assert json.loads((cli.home / "workspace.json").read_text()) == {"database": "embedded"}
    assert _at(cli, copy).run("users", "create", "only-in-copy").returncode == 0
    assert "only-in-copy" not in cli.run("users", "list").stdout
    assert "only-in-copy" in _at(cli, copy).run("users", "list").stdout


def test_legacy_workspace_json_with_absolute_sqlite_path_uses_the_moved_database(
    cli: CLI, tmp_path: Path
) -> None:
    assert cli.run("init").returncode == 0
    # Workspaces made before the "embedded" marker stored the absolute path.
    legacy = {"database_url": f"sqlite:///{cli.home / 'bastion.db'}"}
    (cli.home / "workspace.json").write_text(json.dumps(legacy))
    moved = tmp_path / "moved"
    shutil.copytree(cli.home, moved)
    assert _at(cli, moved).run("users", "create", "only-in-moved").returncode == 0
    assert "only-in-moved" not in cli.run("users", "list").stdout


def test_backup_taken_while_writers_run_restores_elsewhere_and_verifies(
    cli: CLI, tmp_path: Path
) -> None:
    _init(cli, tmp_path)
    master = MasterKeySource.from_env_key(cli.master_key_b64)
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:  # a second process-like writer on the live workspace
        ws = Bastion.open(cli.home, master)
        try:
            admin = ws.access.authenticate((cli.home / "credentials").read_text().strip())
            i = 0
            while not stop.is_set() and i < 200:
                f = tmp_path / f"obj{i}.txt"
                f.write_text(f"object {i}\n" * 100)
                ws.objects.put(admin, "default", f"obj{i}.txt", f)
                written.append(f.name)
                i += 1
        finally:
            ws.close()

    t = threading.Thread(target=writer)
    t.start()
    try:
        r = cli.run("backup", str(tmp_path / "backup"))
    finally:
        stop.set()
        t.join(timeout=120)
    assert r.returncode == 0, r.output
    assert written, "the writer never ran alongside the backup"
    assert not (tmp_path / "backup" / "credentials").exists(), "the API token is never backed up"

    restored = tmp_path / "restored"
    r = cli.run("restore", str(tmp_path / "backup"), str(restored))
    assert r.returncode == 0, r.output
    there = _at(cli, restored)
    for args in (("audit", "verify"), ("store", "fsck")):
        r = there.run(*args, token=(cli.home / "credentials").read_text().strip())
        assert r.returncode == 0, r.output
    out = tmp_path / "export.csv"
    r = there.run(
        "data",
        "export",
        "loans@1",
        "--output",
        str(out),
        token=(cli.home / "credentials").read_text().strip(),
    )
    assert r.returncode == 0, r.output
    assert out.read_text().splitlines()[1:] == CSV.splitlines()[1:]


@pytest.fixture
def backup(cli: CLI, tmp_path: Path) -> Path:
    _init(cli, tmp_path)
    dest = tmp_path / "backup"
    assert cli.run("backup", str(dest)).returncode == 0
    return dest


def test_backup_with_a_flipped_byte_is_refused_before_anything_is_restored(
    cli: CLI, backup: Path, tmp_path: Path
) -> None:
    blob = next(p for p in (backup / "blobs").rglob("*.enc"))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 1
    blob.write_bytes(bytes(data))
    r = cli.run("restore", str(backup), str(tmp_path / "restored"))
    assert r.returncode == 4 and "backup_corrupted" in r.stderr and "changed: blobs/" in r.stderr
    assert not (tmp_path / "restored").exists()


def test_backup_with_edited_manifest_is_refused_by_its_signature(
    cli: CLI, backup: Path, tmp_path: Path
) -> None:
    # The attacker edits a file *and* updates its digest in the manifest.
    (backup / "workspace.json").write_text('{"database_url": "postgresql://evil/db"}')
    doc = json.loads((backup / "manifest.json").read_text())
    for f in doc["files"]:
        if f["path"] == "workspace.json":
            body = (backup / "workspace.json").read_bytes()
            f["sha256"], f["size"] = hashlib.sha256(body).hexdigest(), len(body)
    (backup / "manifest.json").write_text(json.dumps(doc, indent=1, sort_keys=True))
    r = cli.run("restore", str(backup), str(tmp_path / "restored"))
    assert r.returncode == 4 and "signature does not verify" in r.stderr
    assert not (tmp_path / "restored").exists()


def test_backup_salted_with_a_symlink_to_a_host_file_is_refused(
    cli: CLI, backup: Path, tmp_path: Path
) -> None:
    (backup / "blobs" / "passwd").symlink_to("/etc/passwd")
    r = cli.run("restore", str(backup), str(tmp_path / "restored"))
    assert r.returncode == 4 and "symbolic links" in r.stderr
    assert not (tmp_path / "restored").exists()


def test_restore_over_a_live_workspace_is_refused(cli: CLI, backup: Path) -> None:
    before = (cli.home / "bastion.db").read_bytes()
    r = cli.run("restore", str(backup), str(cli.home))
    assert r.returncode == 2 and "exists and is not empty" in r.stderr
    assert (cli.home / "bastion.db").read_bytes() == before


def test_backup_into_a_non_empty_folder_is_refused(cli: CLI, tmp_path: Path) -> None:
    assert cli.run("init").returncode == 0
    dest = tmp_path / "occupied"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    r = cli.run("backup", str(dest))
    assert r.returncode == 2 and (dest / "keep.txt").read_text() == "mine"


def test_backup_by_an_auditor_is_refused_and_audited(cli: CLI, tmp_path: Path) -> None:
    assert cli.run("init").returncode == 0
    assert cli.run("users", "create", "aud").returncode == 0
    assert cli.run("roles", "bind", "aud", "auditor", "--project", "*").returncode == 0
    r = cli.run("tokens", "create", "aud")
    token = next(w for w in r.stdout.split() if w.startswith("bst_"))
    r = cli.run("backup", str(tmp_path / "stolen"), token=token)
    assert r.returncode == 3
    assert not (tmp_path / "stolen").exists()
    log = cli.run("audit", "log", "--action", "workspace.backup").stdout
    assert "aud" in log and "denied" in log.lower()
