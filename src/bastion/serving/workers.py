"""One sandboxed worker process per deployed model version, seen from the gateway.

``SandboxedWorker`` starts the worker program inside the bubblewrap sandbox with one
end of a Unix socket pair (no path on any file system), waits for ``ready``, and then
serves predictions through **adaptive micro-batching**: requests queue while the worker
is busy and the next exchange sends every queued row at once (up to ``max_batch_rows``),
so one ``predict`` call of the model answers many concurrent requests and a quiet
endpoint still answers a lone request at once (no fixed wait).

When the worker dies, breaks the frame format or misses the request deadline, the
requests of that batch fail (``WorkerUnavailable``, 503), the event is reported through
``on_event`` (the gateway audits it), the process is killed and a fresh one is started
from the same verified bytes (their digest is checked again before each start).

Example::

    worker = SandboxedWorker(spec, Sandbox(), on_event=audit)
    await worker.start()
    labels, scores = await worker.predict([[35, 1200.0, "owner"]])
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion.core.canonical import JSON
from bastion.serving.errors import WireError, WorkerUnavailable
from bastion.serving.sandbox import MODEL_MOUNT, Sandbox, next_worker_uid
from bastion.serving.wire import HEADER_SIZE, decode, encode, frame_length

#: the worker program for a socket fd: argv run inside the sandbox
Program = Callable[[int], list[str]]
#: (event, details): the gateway audits these (``serving.worker.crashed`` ...)
EventSink = Callable[[str, dict[str, JSON]], None]


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker serves: a verified artifact folder and the model file in it."""

    name: str  # shown in events: "<project>/<endpoint>#<deployment id>"
    artifact_dir: Path
    model_file: str
    digest: str  # SHA-256 of the model file, checked before every start
    columns: tuple[str, ...]
    extra_globals: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkerOptions:
    max_batch_rows: int = 512
    request_timeout: float = 10.0
    start_timeout: float = 60.0


@dataclass
class _Pending:
    rows: list[list[Any]]
    future: asyncio.Future[tuple[list[Any], list[list[float]] | None]]


@dataclass
class WorkerStats:
    batches: int = 0
    rows: int = 0
    restarts: int = 0
    largest_batch: int = 0
    events: list[str] = field(default_factory=list)


def default_program(spec: WorkerSpec) -> Program:
    def argv(fd: int) -> list[str]:
        return [sys.executable, "-I", "-m", "bastion.serving.worker", "--fd", str(fd),
                "--model", f"{MODEL_MOUNT}/{spec.model_file}",
                "--globals", json.dumps(list(spec.extra_globals))]
    return argv


class SandboxedWorker:
    """See the module docstring."""

    def __init__(self, spec: WorkerSpec, sandbox: Sandbox, *, on_event: EventSink,
                 options: WorkerOptions | None = None, program: Program | None = None,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.spec = spec
        self._on_batch = on_batch or (lambda _rows: None)
        self._closed = False
        self._busy = False
        self._sandbox = sandbox
        self._on_event = on_event
        self.options = options or WorkerOptions()
        self._program = program or default_program(spec)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._seq = 0
        self.stats = WorkerStats()
        self.classes: list[Any] | None = None
        self.uid = 0

    # -- life cycle -------------------------------------------------------------------
    async def start(self) -> None:
        await self._spawn()
        self._loop_task = asyncio.create_task(self._serve(), name=f"worker {self.spec.name}")

    async def drain(self, timeout: float = 30.0) -> None:
        """Answer what is queued or in flight, then stop (a switch fails no request)."""
        deadline = time.monotonic() + timeout
        while (self._busy or not self._queue.empty()) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self.close()

    async def close(self) -> None:
        self._closed = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        while not self._queue.empty():
            self._queue.get_nowait().future.set_exception(
                WorkerUnavailable(f"worker {self.spec.name} was stopped"))
        await self._kill()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _check_artifact(self) -> None:
        path = self.spec.artifact_dir / self.spec.model_file
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != self.spec.digest:
            raise WorkerUnavailable(
                f"the artifact of {self.spec.name} changed on disk since it was verified",
                hint="redeploy the version; the worker is not started on unverified bytes")

    async def _spawn(self) -> None:
        self._check_artifact()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.uid = next_worker_uid()
        argv = self._sandbox.command(self.spec.artifact_dir, uid=self.uid,
                                     program=self._program(child.fileno()))
        log = self.spec.artifact_dir.parent / "worker.log"
        try:
            with open(log, "ab") as err:
                self._proc = await asyncio.create_subprocess_exec(
                    *argv, pass_fds=(child.fileno(),), stdin=asyncio.subprocess.DEVNULL,
                    stdout=err, stderr=err)
        finally:
            child.close()
        self._reader, self._writer = await asyncio.open_unix_connection(sock=parent)
        try:
            hello = await asyncio.wait_for(self._read(), self.options.start_timeout)
        except (TimeoutError, WireError, asyncio.IncompleteReadError) as e:
            await self._kill()
            raise WorkerUnavailable(
                f"worker {self.spec.name} did not start: {type(e).__name__}",
                hint=f"see {log}") from None
        if hello.get("type") != "ready":
            await self._kill()
            raise WorkerUnavailable(
                f"worker {self.spec.name} refused to load the model: "
                f"{str(hello.get('message', ''))[:300]}")
        classes = hello.get("classes")
        self.classes = classes if isinstance(classes, list) else None

    async def _kill(self) -> int | None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        return await proc.wait()

    # -- the exchange ----------------------------------------------------------------
    async def _read(self) -> dict[str, Any]:
        assert self._reader is not None
        header = await self._reader.readexactly(HEADER_SIZE)
        return decode(await self._reader.readexactly(frame_length(header)))

    async def predict(self, rows: list[list[Any]]) -> tuple[list[Any], list[list[float]] | None]:
        """Labels (and class scores when the model has them) for ``rows``, in order."""
        if self._closed:
            raise WorkerStopped(f"worker {self.spec.name} was stopped")
        future: asyncio.Future[tuple[list[Any], list[list[float]] | None]] = (
            asyncio.get_running_loop().create_future())
        await self._queue.put(_Pending(rows, future))
        return await future

    def _take_batch(self, first: _Pending) -> list[_Pending]:
        batch, count = [first], len(first.rows)
        while count < self.options.max_batch_rows and not self._queue.empty():
            item = self._queue.get_nowait()
            batch.append(item)
            count += len(item.rows)
        return batch

    async def _serve(self) -> None:
        while True:
            batch = self._take_batch(await self._queue.get())
            rows = [r for item in batch for r in item.rows]
            self._busy = True
            self._on_batch(len(rows))
            try:
                labels, scores = await asyncio.wait_for(
                    self._exchange(rows), self.options.request_timeout)
            except _ModelError as e:  # the model raised: answer so, the worker is fine
                self._fail(batch, f"the model of {self.spec.name} failed: {e.message}")
                self._busy = False
                continue
            except (TimeoutError, WireError, asyncio.IncompleteReadError, ConnectionError,
                    WorkerUnavailable) as e:
                reason = "deadline" if isinstance(e, TimeoutError) else type(e).__name__
                self._fail(batch, f"worker {self.spec.name} failed ({reason})")
                await self._restart(reason)
                self._busy = False
                continue
            self.stats.batches += 1
            self.stats.rows += len(rows)
            self.stats.largest_batch = max(self.stats.largest_batch, len(rows))
            at = 0
            for item in batch:
                n = len(item.rows)
                if not item.future.done():
                    item.future.set_result(
                        (labels[at:at + n], scores[at:at + n] if scores is not None else None))
                at += n
            self._busy = False

    async def _exchange(self, rows: list[list[Any]]) -> tuple[list[Any], list[Any] | None]:
        if self._writer is None:
            raise WorkerUnavailable(f"worker {self.spec.name} is not running")
        self._seq += 1
        self._writer.write(encode({"type": "predict", "id": self._seq,
                                   "columns": list(self.spec.columns), "rows": rows}))
        await self._writer.drain()
        reply = await self._read()
        if reply.get("type") == "error":
            raise _ModelError(str(reply.get("message", ""))[:500])
        labels, scores = reply.get("labels"), reply.get("scores")
        if (reply.get("type") != "result" or reply.get("id") != self._seq
                or not isinstance(labels, list) or len(labels) != len(rows)
                or (scores is not None and (not isinstance(scores, list)
                                            or len(scores) != len(rows)))):
            raise WireError("the worker's answer does not match the request")
        return labels, scores

    def _fail(self, batch: Sequence[_Pending], message: str) -> None:
        for item in batch:
            if not item.future.done():
                item.future.set_exception(WorkerUnavailable(
                    message, hint="retry; the worker is being restarted"))

    async def _restart(self, reason: str) -> None:
        started = time.monotonic()
        code = await self._kill()
        self.stats.restarts += 1
        self.stats.events.append(reason)
        self._on_event("serving.worker.crashed", {
            "worker": self.spec.name, "reason": reason, "exit_code": code,
            "restarts": self.stats.restarts})
        delay = min(5.0, 0.1 * 2 ** min(self.stats.restarts, 6))
        while True:
            try:
                await self._spawn()
            except WorkerUnavailable as e:
                self._on_event("serving.worker.start_failed",
                               {"worker": self.spec.name, "message": e.message[:300]})
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
                continue
            break
        self._on_event("serving.worker.restarted", {
            "worker": self.spec.name, "seconds": round(time.monotonic() - started, 3)})


class _ModelError(WorkerUnavailable):
    """The model raised while predicting (the worker itself is fine)."""


class WorkerStopped(WorkerUnavailable):
    """The worker was stopped (replaced by a switch): the caller may use the new one."""


__all__ = ["EventSink", "Program", "SandboxedWorker", "WorkerOptions", "WorkerSpec", "WorkerStats",
           "WorkerStopped", "default_program"]
