"""Faults while writing: kill -9 mid-write and a full disk leave nothing half-visible."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import signal
import time
from pathlib import Path

import pytest

from bastion.core.crypto.keyring import MasterKeySource
from bastion.core.errors import Conflict, InputError, NotFound, StorageFull
from bastion.workspace import Bastion
from conftest import WS

FORK = mp.get_context("fork")


def _fork(w: WS, target: object, *args: object) -> mp.process.BaseProcess:
    w.ws.engine.dispose()  # no pooled connection may cross the fork
    p = FORK.Process(  # type: ignore[attr-defined]
        target=target, args=(w.home, w.master, w.token, *args), daemon=True
    )
    p.start()
    return p  # type: ignore[no-any-return]


def _big_writer(home: Path, master: MasterKeySource, token: str) -> None:
    ws = Bastion.open(home, master)
    admin = ws.access.authenticate(token)
    ws.access.authorize(admin, "blob.write", "project/default/objects/big.bin")
    block = os.urandom(1 << 20)
    ws.blobs.put_iter(i.to_bytes(8, "big") + block[8:] for i in range(200))  # ~200 MiB
    os._exit(3)  # finishing means the test failed to interrupt it


def _full_disk_writer(
    home: Path, master: MasterKeySource, token: str, out: mp.Queue[dict[str, object]]
) -> None:
    result: dict[str, object] = {}
    try:
        ws = Bastion.open(home, master)
        admin = ws.access.authenticate(token)
        ws.access.authorize(admin, "blob.write", "project/default/objects/big.bin")
        ws.blobs.put_bytes(b"fits")
        # Files may not grow past 3 MiB from now on; with SIGXFSZ ignored writes fail (EFBIG).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 20, 3 << 20))
        try:
            ws.blobs.put_bytes(os.urandom(6 << 20))
            result["raised"] = None
        except StorageFull as e:
            result["raised"], result["message"] = "StorageFull", e.message
        result["digests"] = len(list(ws.blobs.digests()))
    except BaseException as e:
        result["raised"] = f"{type(e).__name__}: {e}"
    out.put(result)


def test_object_put_get_round_trip_is_audited(workspace: WS, tmp_path: Path) -> None:
    src = tmp_path / "terms.txt"
    src.write_bytes(b"approve if score > 640\n" * 1000)
    obj = workspace.ws.objects.put(workspace.admin, "default", "policies/terms.txt", src)
    out = tmp_path / "out.txt"
    workspace.ws.objects.get(workspace.admin, "default", "policies/terms.txt", out)
    assert out.read_bytes() == src.read_bytes()
    assert [o.name for o in workspace.ws.objects.list(workspace.admin, "default")] == [
        "policies/terms.txt"
    ]
    with pytest.raises(Conflict):  # objects are immutable
        workspace.ws.objects.put(workspace.admin, "default", "policies/terms.txt", src)
    with pytest.raises(NotFound):
        workspace.ws.objects.get(workspace.admin, "default", "nope", tmp_path / "nope")
    with pytest.raises(NotFound):
        workspace.ws.objects.put(workspace.admin, "no-such-project", "x", src)
    with pytest.raises(InputError):
        workspace.ws.objects.put(workspace.admin, "default", "bad\nname", src)
    from bastion.core.audit.entries import AuditQuery

    stored = workspace.ws.audit.query(AuditQuery(action="blob.stored"))
    assert [json.loads(e.details) for e in stored] == [{"digest": obj.digest}]
    assert workspace.ws.audit.verify().ok


def test_kill_9_during_large_write_leaves_no_visible_object(workspace: WS) -> None:
    proc = _fork(workspace, _big_writer)
    tmp_dir = workspace.home / "blobs" / "tmp"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            parts = list(tmp_dir.glob("*.part")) if tmp_dir.exists() else []
            if parts and parts[0].stat().st_size > 20 * 1024 * 1024:
                break
            assert proc.is_alive(), f"writer exited with {proc.exitcode}"
            time.sleep(0.02)
        else:
            pytest.fail("the writer never got going")
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    blobs = workspace.ws.blobs
    assert list(blobs.digests()) == []
    assert list(tmp_dir.glob("*.part"))  # the leftover exists until fsck
    seen = blobs.fsck()  # read-only: counted, left in place
    assert seen.ok and seen.incomplete_found == 1 and seen.incomplete_removed == 0
    assert list(tmp_dir.glob("*.part"))
    report = blobs.fsck(repair=True)
    assert report.ok and report.checked == 0 and report.incomplete_removed == 1
    assert list(tmp_dir.glob("*.part")) == []
    assert workspace.ws.audit.verify().ok


def test_disk_full_during_write_raises_storage_full(workspace: WS) -> None:
    out: mp.Queue[dict[str, object]] = FORK.Queue()
    proc = _fork(workspace, _full_disk_writer, out)
    result = out.get(timeout=120)
    proc.join(30)
    assert result["raised"] == "StorageFull", result
    assert "no space" in str(result["message"])
    assert result["digests"] == 1  # only the small object that fit
    blobs = workspace.ws.blobs
    assert list((workspace.home / "blobs" / "tmp").glob("*.part")) == []
    report = blobs.fsck()
    assert report.ok and report.checked == 1 and report.orphans_removed == 0
    assert blobs.read_bytes(next(iter(blobs.digests()))) == b"fits"
    assert workspace.ws.audit.verify().ok
