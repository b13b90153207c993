"""Crash mid-erasure: a real ``bastion data erase`` process killed with SIGKILL at every
named erasure step (``BASTION_TEST_CRASH_AT``), on SQLite and PostgreSQL.

After each kill the workspace is opened again (``Bastion.open`` rolls a committed
erasure forward) and must hold: either nothing changed and no erasure is claimed
(killed before the commit), or no usable version holds the subject's rows, the
erasure is done, the superseded keys are shredded and its audit record is on the
log exactly once.  Re-running the same erasure then finishes or changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_erasure import DS, SUBJECT, P, Rig, _frames, _ingest

from bastion.core.audit.entries import AuditQuery
from bastion.data_security.values import VersionStatus
from bastion.workspace import Bastion

BASTION_BIN = Path(sys.executable).parent / "bastion"
POINTS = [
    "erasure.after_blobs",
    "erasure.after_commit",
    "erasure.after_versions",
    "erasure.mid_shred",
    "erasure.after_audit",
]


def _run(
    home: Path, key: str, token: str, crash_at: str | None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update(BASTION_HOME=str(home), BASTION_MASTER_KEY=key, BASTION_TOKEN=token, NO_COLOR="1")
    if crash_at:
        env["BASTION_TEST_CRASH_AT"] = crash_at
    args = [
        str(BASTION_BIN),
        "data",
        "erase",
        DS,
        "--where",
        f"customer_id={SUBJECT}",
        "--reason",
        "DSR-2026-077 Art. 17",
        "--json",
        "--project",
        P,
    ]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def _subject_in_usable_versions(ws: Bastion, admin: Any) -> list[int]:
    found = []
    for v in ws.datasets.versions(admin, P, DS):
        if v.status is VersionStatus.ACCEPTED:
            _, frame = ws.datasets.read_frame(admin, P, f"{DS}@{v.version}")
            if SUBJECT in frame.get_column("customer_id").to_list():
                found.append(v.version)
    return found


# every point on SQLite; on PostgreSQL the two that roll forward the most (bounded runtime)
CASES = [("sqlite", p) for p in POINTS] + [
    ("postgresql", "erasure.after_commit"),
    ("postgresql", "erasure.mid_shred"),
]


@pytest.mark.parametrize(("db_url", "point"), CASES, indirect=["db_url"])
def test_crash_mid_erasure_never_claims_done_with_the_subject_still_usable(
    workspace: Any, master_key_b64: str, tmp_path: Path, point: str
) -> None:
    ws, admin = workspace.ws, workspace.admin
    rig = Rig(ws, admin, admin, admin, workspace.home, tmp_path)
    ws.datasets.register_source(admin, P, "crm", datasets=(DS,))
    for n, frame in enumerate(_frames(), start=1):
        assert _ingest(rig, frame, n).accepted
    before = [(v.version, v.status) for v in ws.datasets.versions(admin, P, DS)]
    old = ws.datasets.versions(admin, P, DS)

    killed = _run(workspace.home, master_key_b64, workspace.token, point)
    assert killed.returncode == -9, killed.stderr[-2000:]

    after = workspace.reopen()  # Bastion.open rolls a committed erasure forward
    claimed = after.audit.query(AuditQuery(action="dataset.erased", limit=100))
    history = after.erasures.history(admin, P, DS)
    if point == "erasure.after_blobs":
        assert [(v.version, v.status) for v in after.datasets.versions(admin, P, DS)] == before
        assert not claimed and not history
    else:
        assert _subject_in_usable_versions(after, admin) == []
        assert [h.state for h in history] == ["done"] and len(claimed) == 1
        assert all(not after.blobs.exists(v.data_digest) for v in old)
    assert not [v for v in after.datasets.versions(admin, P, DS) if v.status.value == "pending"]

    rerun = _run(workspace.home, master_key_b64, workspace.token, None)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    report = json.loads(rerun.stdout)
    assert report["already_done"] is (point != "erasure.after_blobs")
    again = json.loads(_run(workspace.home, master_key_b64, workspace.token, None).stdout)
    assert again["already_done"] is True and again["id"] == report["id"]

    final = workspace.reopen()
    assert _subject_in_usable_versions(final, admin) == []
    assert len(final.audit.query(AuditQuery(action="dataset.erased", limit=100))) >= 1
    assert final.audit.verify().ok
    assert final.blobs.fsck(deep=True).ok
    assert SUBJECT not in killed.stdout + killed.stderr + rerun.stdout + rerun.stderr
