"""Live-window blobs are never orphaned: a real process writing a window (or sweeping)
is SIGKILLed at each named step (``BASTION_TEST_CRASH_AT``), on SQLite and PostgreSQL;
the next housekeeping round past the grace period leaves no blob without its index row
and no ready row without its blob, and never touches a window younger than the grace
period or a window whose flush outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from live_child import deployment

from bastion.serving._adapters.sql_alerts import windows
from bastion.serving.live import LiveSampler, LiveStore, sweep
from bastion.serving.monitor import MonitorOptions

CHILD = Path(__file__).with_name("live_child.py")


def _child(ws: Any, key: str, action: str, crash_at: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update(BASTION_MASTER_KEY=key,
               PYTHONPATH=os.pathsep.join([str(CHILD.parent), env.get("PYTHONPATH", "")]))
    if crash_at:
        env["BASTION_TEST_CRASH_AT"] = crash_at
    p = subprocess.run([sys.executable, str(CHILD), str(ws.home), ws.db_url, action],
                       env=env, capture_output=True, text=True, timeout=120)
    assert crash_at or p.returncode == 0, p.stderr
    return p.returncode


def _rows(ws: Any) -> list[dict[str, Any]]:
    with ws.ws.engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(sa.select(windows)).all()]


@pytest.mark.parametrize("point", ["live.flush.after_intent", "live.flush.after_blob"])
def test_crash_between_blob_and_index_row_leaves_no_orphan(
        workspace: Any, master_key_b64: str, point: str) -> None:
    ws = workspace.ws
    assert _child(workspace, master_key_b64, "flush", point) == -signal.SIGKILL
    [row] = _rows(workspace)
    assert row["state"] == "writing"  # the intent names the blob before it is written
    assert ws.blobs.exists(row["blob_digest"]) == (point == "live.flush.after_blob")
    assert ws.monitor.live.index.latest(row["deployment_id"], 10_000) == []  # readers never see it
    ws.monitor.housekeeping()  # within the grace period: a flush may still be running
    assert [r["id"] for r in _rows(workspace)] == [row["id"]]
    _child(workspace, master_key_b64, "sweep", None)  # past the grace period
    assert _rows(workspace) == []
    assert not ws.blobs.exists(row["blob_digest"])
    # and a window written whole afterwards is ready, readable, and left alone
    _child(workspace, master_key_b64, "flush", None)
    _child(workspace, master_key_b64, "sweep", None)
    [ready] = _rows(workspace)
    assert ready["state"] == "ready" and ws.blobs.exists(ready["blob_digest"])


def test_crash_mid_sweep_is_finished_by_the_next_sweep(sqlite_workspace: Any,
                                                       master_key_b64: str) -> None:
    ws = sqlite_workspace.ws
    _child(sqlite_workspace, master_key_b64, "flush", "live.flush.after_blob")
    [row] = _rows(sqlite_workspace)
    code = _child(sqlite_workspace, master_key_b64, "sweep", "live.sweep.after_blob")
    assert code == -signal.SIGKILL
    [left] = _rows(sqlite_workspace)
    assert left["state"] == "sweeping" and not ws.blobs.exists(row["blob_digest"])
    _child(sqlite_workspace, master_key_b64, "sweep", None)
    assert _rows(sqlite_workspace) == []


def test_flush_outliving_the_grace_period_leaves_no_orphan_blob(sqlite_workspace: Any) -> None:
    """The sweep runs (grace 0) while a flush is between its blob and marking it ready:
    the sweep takes the row, the flush then finds it gone and deletes its own blob."""
    ws = sqlite_workspace.ws
    base = ws.monitor.live
    written: list[str] = []

    def put_then_sweep(data: bytes) -> str:
        digest = base.put(data)
        written.append(digest)
        assert sweep(base, "9999") == 1  # every unfinished window is past this "grace"
        return digest

    store = LiveStore(base.index, put_then_sweep, base.get, base.delete)
    sampler = LiveSampler(capacity=10, seed=1)
    sampler.observe(deployment(), [[1.0, 2.0]] * 5, ["a"] * 5)
    sampler.flush(store)
    assert _rows(sqlite_workspace) == [] and not ws.blobs.exists(written[0])


def test_grace_period_spares_a_window_being_written(sqlite_workspace: Any) -> None:
    ws = sqlite_workspace.ws
    base = ws.monitor.live
    seen: list[int] = []

    def put_while_housekeeping(data: bytes) -> str:
        digest = base.put(data)
        seen.append(len(_rows(sqlite_workspace)))
        ws.monitor.with_alerts(ws.alerts, MonitorOptions()).housekeeping()  # default grace
        return digest

    store = LiveStore(base.index, put_while_housekeeping, base.get, base.delete)
    sampler = LiveSampler(capacity=10, seed=1)
    sampler.observe(deployment(), [[1.0, 2.0]] * 5, ["a"] * 5)
    sampler.flush(store)
    [row] = _rows(sqlite_workspace)
    assert seen == [1] and row["state"] == "ready" and ws.blobs.exists(row["blob_digest"])
