"""The model worker sandbox, for real: bubblewrap, rlimits, the uid drop, the socket pair.

A hostile pickle never gets as far as a worker (the scanner and the restricted loader
refuse it); the containment tests then run ``hostile_worker.py`` — a test fixture that
attacks from inside exactly the worker's sandbox — and check each attack fails, the
gateway side survives, the crash is audited and the worker comes back.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import socket
import time
from pathlib import Path

import pandas as pd
import pytest
from serving_fixtures import Toy, hostile_program, hostile_spec

from bastion.core.audit.entries import AuditQuery
from bastion.model_security.errors import MaliciousArtifact
from bastion.model_security.registry import RegisterRequest
from bastion.model_security.values import Framework
from bastion.serving.artifact import stage_artifact
from bastion.serving.errors import WorkerUnavailable
from bastion.serving.events import audited
from bastion.serving.sandbox import Sandbox, SandboxLimits
from bastion.serving.workers import SandboxedWorker, WorkerOptions, WorkerSpec

LIMITS = SandboxLimits(memory_bytes=768 * 1024 * 1024, max_processes=12)


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/bastion-pwned",))


def _toy_worker(toy: Toy, folder: Path) -> SandboxedWorker:
    staged = stage_artifact(toy.ws.models, "default", toy.version.ref, folder)
    spec = WorkerSpec("toy", staged.folder, staged.model_file, staged.digest, ("a", "b"))
    sink = audited(toy.ws.access, "project/default/endpoint/toy")
    return SandboxedWorker(spec, Sandbox(), on_event=sink)


def _hostile(toy: Toy, folder: Path, **opts: float) -> SandboxedWorker:
    return SandboxedWorker(hostile_spec(folder), Sandbox(LIMITS),
                           on_event=audited(toy.ws.access, "project/default/endpoint/hostile"),
                           options=WorkerOptions(**opts), program=hostile_program)  # type: ignore[arg-type]


async def _attack(worker: SandboxedWorker, attack: str, arg: str = "") -> str:
    (label,), _ = await worker.predict([[attack, arg]])
    return str(label)


def test_pickle_that_runs_code_is_refused_before_any_worker(toy: Toy, tmp_path: Path) -> None:
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "model.pkl").write_bytes(pickle.dumps(_RunsCode()))
    with pytest.raises(MaliciousArtifact):
        toy.ws.models.register(
            toy.admin, RegisterRequest("default", "evil", tmp_path / "evil", Framework.SKLEARN))
    assert not Path("/tmp/bastion-pwned").exists()


def test_worker_predicts_what_the_verified_model_predicts(toy: Toy, tmp_path: Path) -> None:
    rows = [[0.9, 0.1], [0.1, 0.9], [0.5, 0.4]]

    async def run() -> tuple[list[object], list[list[float]] | None]:
        w = _toy_worker(toy, tmp_path / "d")
        await w.start()
        try:
            return await w.predict(rows)
        finally:
            await w.close()

    labels, scores = asyncio.run(run())
    local = toy.model.predict(pd.DataFrame(rows, columns=["a", "b"])).tolist()
    assert labels == local
    assert scores is not None and len(scores) == 3 and abs(sum(scores[0]) - 1) < 1e-9


def test_sandboxed_code_runs_unprivileged_without_secrets_or_network(
    toy: Toy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_MASTER_KEY", "secret-that-must-not-leak")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    home = toy.ws.home
    marker = f"/tmp/bastion-escape-{os.getpid()}"

    async def run() -> dict[str, str]:
        w = _hostile(toy, tmp_path / "h")
        await w.start()
        try:
            probes = {
                "id": ("id", ""), "env": ("env", ""),
                "socket_loopback": ("socket", f"127.0.0.1:{port}"),
                "socket_internet": ("socket", "1.1.1.1:80"),
                "write_model": ("write", "/model/planted.py"),
                "write_usr": ("write", "/usr/lib/planted"),
                "write_root": ("write", "/planted"),
                "write_tmp": ("write", marker),
                "read_keyring": ("read", str(home / "keyring.json")),
                "read_db": ("read", str(home / "bastion.db")),
                "read_credentials": ("read", str(home / "credentials")),
                "read_shadow": ("read", "/etc/shadow"),
            }
            return {k: await _attack(w, *v) for k, v in probes.items()}
        finally:
            await w.close()

    try:
        out = asyncio.run(run())
    finally:
        listener.close()
    uid, cap = out["id"].removeprefix("escaped:").split()
    assert 61000 <= int(uid.removeprefix("uid=")) < 65000 and cap == "cap=0000000000000000"
    # only the thread counts and PATH we set (Python adds LC_CTYPE, the shell PWD)
    names = set(json.loads(out["env"].removeprefix("escaped:")))
    assert names <= {"MKL_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PATH",
                     "LC_CTYPE", "PWD"}, names
    for name, result in out.items():
        if name.startswith(("socket", "write_model", "write_usr", "write_root", "read_")):
            assert result.startswith("contained:"), (name, result)
    # /tmp is writable but private: nothing appears on the host
    assert out["write_tmp"].startswith("escaped:") and not Path(marker).exists()


def test_fork_bomb_is_contained(toy: Toy, tmp_path: Path) -> None:
    async def run() -> tuple[str, str]:
        w = _hostile(toy, tmp_path / "h")
        await w.start()
        try:
            return await _attack(w, "fork"), await _attack(w, "id")
        finally:
            await w.close()

    bomb, after = asyncio.run(run())
    assert bomb.startswith("contained:OSError:fork refused after"), bomb
    children = int(bomb.split("after ")[1].split()[0])
    assert children < LIMITS.max_processes
    assert after.startswith("escaped:uid=")  # still answering


def test_memory_exhaustion_is_contained(toy: Toy, tmp_path: Path) -> None:
    async def run() -> str:
        w = _hostile(toy, tmp_path / "h")
        await w.start()
        try:
            return await _attack(w, "memory")
        finally:
            await w.close()

    assert asyncio.run(run()).startswith("contained:MemoryError")


def test_crashed_worker_is_restarted_audited_and_others_keep_serving(
    toy: Toy, tmp_path: Path
) -> None:
    async def run() -> tuple[list[object], str, str, int]:
        good = _toy_worker(toy, tmp_path / "good")
        bad = _hostile(toy, tmp_path / "bad")
        await asyncio.gather(good.start(), bad.start())
        first_pid = bad.pid
        try:
            async def steady() -> list[object]:
                out: list[object] = []
                for _ in range(60):
                    labels, _ = await good.predict([[0.9, 0.1]])
                    out += labels
                    await asyncio.sleep(0.01)
                return out

            async def crash() -> str:
                try:
                    await _attack(bad, "die")
                except WorkerUnavailable as e:
                    return e.message
                return "no failure"

            served, crashed = await asyncio.gather(steady(), crash())
            back = await _attack(bad, "id")  # the restarted worker answers
            assert bad.pid != first_pid
            return served, crashed, back, bad.stats.restarts
        finally:
            await asyncio.gather(good.close(), bad.close())

    served, crashed, back, restarts = asyncio.run(run())
    assert len(served) == 60 and set(served) == {True}
    assert "failed" in crashed and restarts == 1 and back.startswith("escaped:uid=")
    events = toy.ws.audit.query(AuditQuery(resource="project/default/endpoint/hostile"))
    actions = [e.action for e in events]
    assert "serving.worker.crashed" in actions and "serving.worker.restarted" in actions
    crash = next(e for e in events if e.action == "serving.worker.crashed")
    assert crash.actor == "system:gateway" and json.loads(crash.details)["worker"] == "hostile"


def test_hung_worker_misses_its_deadline_and_is_replaced(toy: Toy, tmp_path: Path) -> None:
    async def run() -> tuple[str, str, float]:
        w = _hostile(toy, tmp_path / "h", request_timeout=1.0)
        await w.start()
        try:
            t0 = time.monotonic()
            with pytest.raises(WorkerUnavailable) as e:
                await _attack(w, "hang")
            waited = time.monotonic() - t0
            return e.value.message, await _attack(w, "id"), waited
        finally:
            await w.close()

    message, after, waited = asyncio.run(run())
    assert "deadline" in message and after.startswith("escaped:") and waited < 5


def test_concurrent_requests_are_micro_batched(toy: Toy, tmp_path: Path) -> None:
    async def run() -> tuple[int, int, int]:
        w = _toy_worker(toy, tmp_path / "d")
        await w.start()
        try:
            results = await asyncio.gather(*(w.predict([[0.2 * (i % 5), 0.5]]) for i in range(400)))
            assert all(len(labels) == 1 for labels, _ in results)
            return w.stats.batches, w.stats.rows, w.stats.largest_batch
        finally:
            await w.close()

    batches, rows, largest = asyncio.run(run())
    assert rows == 400 and batches < 100 and largest > 1


def test_tampered_staged_bytes_are_never_started(toy: Toy, tmp_path: Path) -> None:
    async def run() -> str:
        w = _toy_worker(toy, tmp_path / "d")
        path = w.spec.artifact_dir / w.spec.model_file
        os.chmod(path, 0o644)
        path.write_bytes(path.read_bytes() + b"\0")
        with pytest.raises(WorkerUnavailable) as e:
            await w.start()
        return e.value.message

    assert "changed on disk" in asyncio.run(run())

