"""Faults while writing: kill -9 mid-write and a full disk leave nothing half-visible."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import WS

from bastion.core.errors import Conflict, InputError, NotFound


def _master_b64(w: WS) -> str:
    assert w.master.raw_key is not None
    return base64.b64encode(w.master.raw_key).decode()


def _spawn(w: WS, script: str, tmp_path: Path) -> subprocess.Popen[str]:
    path = tmp_path / "worker.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "WS_HOME": str(w.home), "WS_KEY": _master_b64(w), "WS_TOKEN": w.token}
    return subprocess.Popen(
        [sys.executable, str(path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


_OPEN = """
import json, os, sys
from pathlib import Path
from bastion.core.crypto.keyring import MasterKeySource
from bastion.workspace import Bastion
ws = Bastion.open(Path(os.environ["WS_HOME"]), MasterKeySource.from_env_key(os.environ["WS_KEY"]))
admin = ws.access.authenticate(os.environ["WS_TOKEN"])
"""


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


def test_kill_9_during_large_write_leaves_no_visible_object(workspace: WS, tmp_path: Path) -> None:
    proc = _spawn(workspace, _OPEN + """
ws.access.authorize(admin, "blob.write", "project/default/objects/big.bin")
def parts():
    block = os.urandom(1 << 20)
    for i in range(200):  # ~200 MiB
        yield i.to_bytes(8, "big") + block[8:]
print("writing", flush=True)
ws.blobs.put_iter(parts())
print("finished", flush=True)
""", tmp_path)
    tmp_dir = workspace.home / "blobs" / "tmp"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            parts = list(tmp_dir.glob("*.part")) if tmp_dir.exists() else []
            if parts and parts[0].stat().st_size > 20 * 1024 * 1024:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the writer never got going")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        out, err = proc.communicate(timeout=30)
    assert "finished" not in out
    blobs = workspace.ws.blobs
    assert list(blobs.digests()) == []
    assert list(tmp_dir.glob("*.part"))  # the leftover exists until fsck
    report = blobs.fsck()
    assert report.ok and report.checked == 0 and report.incomplete_removed == 1
    assert list(tmp_dir.glob("*.part")) == []
    assert workspace.ws.audit.verify().ok


def test_disk_full_during_write_raises_storage_full(workspace: WS, tmp_path: Path) -> None:
    proc = _spawn(workspace, _OPEN + """
import resource, signal
from bastion.core.errors import StorageFull
ws.access.authorize(admin, "blob.write", "project/default/objects/big.bin")
ws.blobs.put_bytes(b"fits")
# Files may not grow past 3 MiB from now on; ignoring SIGXFSZ makes writes fail with EFBIG.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 20, 3 << 20))
result = {}
try:
    ws.blobs.put_bytes(os.urandom(6 << 20))
    result["raised"] = None
except StorageFull as e:
    result["raised"] = "StorageFull"
    result["message"] = e.message
except BaseException as e:
    result["raised"] = type(e).__name__ + ": " + str(e)
result["digests"] = len(list(ws.blobs.digests()))
print(json.dumps(result), flush=True)
""", tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["raised"] == "StorageFull", result
    assert "no space" in result["message"]
    assert result["digests"] == 1  # only the small object that fit
    blobs = workspace.ws.blobs
    assert list((workspace.home / "blobs" / "tmp").glob("*.part")) == []
    report = blobs.fsck()
    assert report.ok and report.checked == 1 and report.orphans_removed == 0
    assert blobs.read_bytes(next(iter(blobs.digests()))) == b"fits"
    assert workspace.ws.audit.verify().ok
