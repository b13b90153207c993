"""Several processes appending at once, kill -9 mid-append, verify under live writes.

Workers are forked (the parent has already imported Bastion, so they start at
once) and each opens its own ``Bastion`` on the workspace, as a CLI run would.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from pathlib import Path

from bastion.core.audit.entries import AuditQuery, AuditRecord, Outcome
from bastion.core.crypto.keyring import MasterKeySource
from bastion.workspace import Bastion
from conftest import WS

FORK = mp.get_context("fork")


def _fixed_worker(
    home: Path,
    master: MasterKeySource,
    token: str,
    ident: int,
    go: mp.synchronize.Event,
    out: mp.Queue[list[str]],
) -> None:
    errors: list[str] = []
    ws = Bastion.open(home, master)
    try:
        admin = ws.access.authenticate(token).with_request(f"req-{ident}")
        go.wait(60)
        for i in range(25):
            try:
                ws.audit.append(
                    AuditRecord(
                        f"worker-{ident}",
                        "test.append",
                        f"system/test/{i}",
                        Outcome.OK,
                        f"w{ident}",
                    )
                )
                ws.access.authorize(admin, "audit.read", "system/audit")
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")
    finally:
        ws.close()
        out.put(errors)


def _endless_worker(home: Path, master: MasterKeySource, stop: mp.synchronize.Event) -> None:
    ws = Bastion.open(home, master)
    i = 0
    while not stop.is_set():
        ws.audit.append(AuditRecord("writer", "test.append", f"system/test/{i}", Outcome.OK, "w"))
        i += 1
    ws.close()


def _fork(w: WS, target: object, *args: object) -> mp.process.BaseProcess:
    w.ws.engine.dispose()  # no pooled connection may cross the fork
    p = FORK.Process(target=target, args=args, daemon=True)  # type: ignore[arg-type]
    p.start()
    return p


def _wait_for_size(w: WS, size: int, proc: mp.process.BaseProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while w.ws.audit.head().size < size:
        assert time.monotonic() < deadline, "the writer made no progress"
        assert proc.is_alive(), f"the writer died (exit {proc.exitcode})"
        time.sleep(0.02)


def test_four_processes_appending_at_once_lose_nothing(workspace: WS) -> None:
    before = workspace.ws.audit.head().size
    go, out = FORK.Event(), FORK.Queue()
    procs = [
        _fork(
            workspace, _fixed_worker, workspace.home, workspace.master, workspace.token, i, go, out
        )
        for i in range(4)
    ]
    go.set()
    errors = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert errors == [[], [], [], []]  # no "database is locked", no other failure
    entries = workspace.ws.audit.query(AuditQuery(after_seq=before, limit=10_000))
    assert [e.seq for e in entries] == list(range(before + 1, before + 201))  # contiguous, unique
    assert workspace.ws.audit.head().size == before + 200
    for i in range(4):
        assert len([e for e in entries if e.actor == f"worker-{i}"]) == 25
        assert len([e for e in entries if e.request_id == f"req-{i}"]) == 25
    report = workspace.ws.audit.verify()
    assert report.ok, report.problems


def test_kill_9_in_the_middle_of_appending_keeps_log_verifiable(workspace: WS) -> None:
    before = workspace.ws.audit.head().size
    stop = FORK.Event()
    proc = _fork(workspace, _endless_worker, workspace.home, workspace.master, stop)
    try:
        _wait_for_size(workspace, before + 40, proc)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    report = workspace.ws.audit.verify()
    assert report.ok, report.problems
    # Not wedged: the next append works and the log still verifies.
    workspace.ws.access.authorize(workspace.admin, "audit.read", "system/audit")
    assert workspace.ws.audit.verify().ok


def test_verify_during_concurrent_appends_reports_no_tampering(workspace: WS) -> None:
    """`bastion audit verify` on a live system must not cry wolf while others write."""
    before = workspace.ws.audit.head().size
    other = workspace.reopen()
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            other.audit.append(AuditRecord("writer", "test.append", f"t/{i}", Outcome.OK, "w"))
            i += 1

    writer = threading.Thread(target=write)
    writer.start()
    problems = []
    try:
        while workspace.ws.audit.head().size < before + 5:
            time.sleep(0.01)
        for _ in range(15):
            report = workspace.ws.audit.verify()
            if not report.ok:
                problems.append(report.problems)
    finally:
        stop.set()
        writer.join(30)
    assert workspace.ws.audit.verify().ok
    assert not problems, problems[:3]
