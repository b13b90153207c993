"""Blobs nothing references are reclaimed by `store fsck --repair`, never live ones.

The attack/accident: an ingest killed after its blobs were written but before its
version was committed (a crash, or a full disk) left encrypted blobs that nothing
references; no command ever reclaimed them, so the space was lost for good.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from conftest import CLI

ROWS = "age,income,status\n" + "".join(
    f"{20 + i % 50},{1000 + 37 * i},{'good' if i % 3 else 'bad'}\n" for i in range(400)
)


def _blob_keys(home: Path) -> set[str]:
    return {p.name.removesuffix(".key") for p in (home / "blobs" / "objects").rglob("*.key")}


def _age(home: Path, digests: set[str], seconds: float) -> None:
    then = time.time() - seconds
    for p in (home / "blobs" / "objects").rglob("*"):
        if p.is_file() and p.name.split(".")[0] in digests:
            os.utime(p, (then, then))


def _fsck(cli: CLI, *args: str) -> dict[str, object]:
    r = cli.run("store", "fsck", *args)
    assert r.returncode == 0, r.output
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict)
    return doc


def test_ingest_killed_after_its_blobs_leaves_nothing_fsck_repair_cannot_reclaim(
    cli: CLI, tmp_path: Path
) -> None:
    assert cli.run("init").returncode == 0
    assert cli.run("data", "sources", "register", "bureau", "--dataset", "loans").returncode == 0
    good = tmp_path / "good.csv"
    good.write_text(ROWS)
    sha = hashlib.sha256(good.read_bytes()).hexdigest()
    ingest = ("data", "ingest", str(good), "-d", "loans", "-s", "bureau", "--sha256", sha)
    assert cli.run(*ingest, "--label", "status").returncode == 0
    live = _blob_keys(cli.home)

    other = tmp_path / "other.csv"
    other.write_text(ROWS.replace("good", "bad", 20))
    osha = hashlib.sha256(other.read_bytes()).hexdigest()
    killed = cli.run(
        "data", "ingest", str(other), "-d", "loans", "-s", "bureau", "--sha256", osha,
        env={"BASTION_TEST_CRASH_AT": "ingest.after_blobs"},
    )  # fmt: skip
    assert killed.returncode == -9, killed.output
    leftovers = _blob_keys(cli.home) - live
    assert leftovers, "the killed ingest wrote no blob before dying"

    # Young leftovers are spared (a write may still be committing) ...
    assert _fsck(cli, "--repair")["unreferenced_removed"] == 0
    # ... and once past the grace period they are found read-only, then reclaimed.
    _age(cli.home, _blob_keys(cli.home), 2 * 3600)
    report = _fsck(cli)
    assert report["unreferenced_found"] == len(leftovers) and report["unreferenced_removed"] == 0
    report = _fsck(cli, "--repair")
    assert report["unreferenced_removed"] == len(leftovers)
    assert _blob_keys(cli.home) == live
    # Everything still referenced reads back and verifies.
    out = tmp_path / "export.csv"
    assert cli.run("data", "export", "loans@1", "--output", str(out)).returncode == 0
    assert out.read_text().splitlines()[1:] == ROWS.splitlines()[1:]
    assert _fsck(cli)["corrupted"] == []


def test_blob_of_an_operation_still_running_is_spared_however_old(
    cli: CLI, tmp_path: Path
) -> None:
    assert cli.run("init").returncode == 0
    payload = tmp_path / "p.txt"
    payload.write_text("in flight\n" * 100)
    # A long-running ingest holds its locked work folder; the blob it already
    # wrote is 90 minutes old but the operation started two hours ago.
    from bastion.core.store.scratch import Scratch

    scratch = Scratch(cli.home / "tmp")
    with scratch.workdir("ingest") as work:
        lock = work.with_name(work.name + ".lock")
        then = time.time() - 2 * 3600
        os.utime(lock, (then, then))
        from bastion.core.crypto.keyring import MasterKeySource
        from bastion.workspace import Bastion

        ws = Bastion.open(cli.home, MasterKeySource.from_env_key(cli.master_key_b64))
        try:
            info = ws.blobs.put_file(payload)
        finally:
            ws.close()
        _age(cli.home, {info.digest}, 90 * 60)
        report = _fsck(cli, "--repair", "--grace-minutes", "10")
        assert report["unreferenced_removed"] == 0
        assert info.digest in _blob_keys(cli.home)
    # Once the operation is gone (and the blob still unreferenced) it is reclaimed.
    report = _fsck(cli, "--repair", "--grace-minutes", "10")
    assert report["unreferenced_removed"] == 1
    assert info.digest not in _blob_keys(cli.home)
