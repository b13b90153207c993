"""Resources are bounded before anyone is trusted (issue 9, section 1), on a real server.

``bastion serve`` (uvicorn) runs on loopback in a subprocess; the attacks of the issue are
replayed against it with raw sockets (so the test controls exactly how much of a body is
sent) while the server's resident memory (``/proc/PID/status`` VmRSS) and the latency of
``/health`` are watched. Short deadlines and a small upload limit are set through the
environment variables documented in docs/security.md, which also proves they are read.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import select
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.workspace import Bastion
from conftest import Server, start_server, stop_server

MIB = 1024 * 1024
RSS_BUDGET = 300 * MIB
UPLOAD_LIMIT = 8 * MIB
ENV = {
    "BASTION_API_HEADER_TIMEOUT": "2",
    "BASTION_API_BODY_TIMEOUT": "2",
    "BASTION_API_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
}


class Bounds:
    def __init__(self, srv: Server, nobody: str) -> None:
        self.srv = srv
        self.nobody = nobody
        self.port = int(srv.url.rsplit(":", 1)[1])
        self.baseline = self.rss()

    def rss(self) -> int:
        for line in Path(f"/proc/{self.srv.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def assert_rss_bounded(self) -> None:
        grown = self.rss() - self.baseline
        assert grown < RSS_BUDGET, f"server RSS grew by {grown // MIB} MB"


@pytest.fixture(scope="module")
def b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bounds]:
    key = base64.b64encode(os.urandom(32)).decode()
    home = tmp_path_factory.mktemp("bounds") / "ws"
    ws, issued = Bastion.init(home, MasterKeySource.from_env_key(key))
    admin = ws.access.authenticate(issued.secret)
    ws.access.create_principal(admin, "nobody", PrincipalKind.USER)
    nobody = ws.access.create_token(admin, "nobody").secret
    ws.close()
    srv = start_server(home, key, issued.secret, env=ENV)
    try:
        b = Bounds(srv, nobody)
        yield b
        b.assert_rss_bounded()
    finally:
        stop_server(srv.proc)


# -- a raw HTTP client that sends only what the test says ---------------------------------
def _head(method: str, path: str, token: str | None, length: int | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    chunked = "Transfer-Encoding: chunked"
    lines.append(f"Content-Length: {length}" if length is not None else chunked)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data.split()[1]), data


def send(
    b: Bounds, method: str, path: str, token: str | None, *, length: int | None,
    chunk: bytes = b"a" * 65536, max_send: int = 400 * MIB, stall: bool = False,
) -> tuple[int, int]:
    """Send a head then body chunks until the server answers; (status, body bytes sent)."""
    with socket.create_connection(("127.0.0.1", b.port), timeout=2) as sock:
        sock.sendall(_head(method, path, token, length))
        sent = 0
        try:
            if stall:
                sock.sendall(chunk[:1024])
                sent = 1024
            while sent < max_send and not stall:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered: stop sending
                framed = chunk if length is not None else b"%x\r\n%s\r\n" % (len(chunk), chunk)
                sock.sendall(framed)  # blocks (then times out) once the server stops reading
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        sock.settimeout(20)
        return _status(sock)[0], sent


class HealthWatch:
    """Polls /health in a thread; records the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.slowest = 0.0
        self.failures = 0
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as c:
            while not self._stop.is_set():
                t = time.monotonic()
                try:
                    ok = c.get(self.url + "/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.failures += 0 if ok else 1
                self.slowest = max(self.slowest, time.monotonic() - t)
                self.polls += 1
                time.sleep(0.05)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        deadline = time.monotonic() + 5
        while self.polls < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # an attack answered at once still gets /health polled
        self._stop.set()
        self._thread.join(timeout=10)
        assert self.polls >= 2, "/health was never answered"
        assert self.failures == 0, f"/health failed {self.failures} times"
        assert self.slowest < 1.0, f"/health took {self.slowest:.2f} s"


def _scratch_files(b: Bounds) -> list[Path]:
    return [p for p in (b.srv.home / "tmp").rglob("*") if p.is_file() and p.suffix != ".lock"]


# -- the attacks ---------------------------------------------------------------------------
def test_300mb_json_bodies_without_token_are_401_before_the_body_is_read(b: Bounds) -> None:
    results: list[tuple[int, int]] = []

    def attack() -> None:
        results.append(send(b, "POST", "/v1/principals", None, length=300 * MIB))

    with HealthWatch(b.srv.url):
        threads = [threading.Thread(target=attack) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert [status for status, _ in results] == [401, 401, 401]
    assert all(sent < 64 * MIB for _, sent in results), results  # answered long before the end
    b.assert_rss_bounded()


def test_chunked_json_body_over_the_limit_is_413_while_streaming(b: Bounds) -> None:
    status, sent = send(b, "POST", "/v1/principals", b.srv.token, length=None)
    assert status == 413
    assert sent < 64 * MIB
    b.assert_rss_bounded()


def test_principal_without_role_uploading_400mb_is_404_before_a_byte_is_spooled(
    b: Bounds,
) -> None:
    for path in (
        "/v1/projects/default/objects/big.bin",
        "/v1/projects/default/datasets/loans/ingest?source=s",
        "/v1/projects/default/models/m/versions?framework=sklearn",
        "/v1/projects/default/monitor/drift?reference=loans@1",
    ):
        method = "PUT" if "objects" in path else "POST"
        status, sent = send(b, method, path, b.nobody, length=400 * MIB)
        assert status == 404, path  # no role in the project: not even told it exists
        assert sent < 64 * MIB
    assert _scratch_files(b) == []
    ws = Bastion.open(b.srv.home, MasterKeySource.from_env_key(b.srv.master_key_b64))
    try:
        denied = ws.audit.query(AuditQuery(actor="nobody", outcome="denied", limit=100))
        assert {e.action for e in denied} >= {"blob.write", "dataset.ingest", "model.register",
                                              "monitor.run"}
        assert all(json.loads(e.details).get("stage") == "before-body" for e in denied)
    finally:
        ws.close()
    b.assert_rss_bounded()


def test_upload_declared_over_the_limit_is_413_up_front(b: Bounds) -> None:
    status, sent = send(b, "PUT", "/v1/projects/default/objects/too-big.bin", b.srv.token,
                        length=UPLOAD_LIMIT + 1)
    assert status == 413
    assert sent < UPLOAD_LIMIT


def test_chunked_upload_over_the_limit_is_413_and_leaves_no_scratch_file(b: Bounds) -> None:
    status, sent = send(b, "PUT", "/v1/projects/default/objects/chunked.bin", b.srv.token,
                        length=None, max_send=4 * UPLOAD_LIMIT)
    assert status == 413
    assert sent <= 4 * UPLOAD_LIMIT
    assert _scratch_files(b) == []
    r = httpx.get(b.srv.url + "/v1/projects/default/objects", headers=b.srv.auth())
    assert "chunked.bin" not in r.text


def test_stalled_upload_body_is_408_after_the_body_deadline(b: Bounds) -> None:
    t = time.monotonic()
    status, _ = send(b, "PUT", "/v1/projects/default/objects/slow.bin", b.srv.token,
                     length=1 * MIB, stall=True)
    assert status == 408
    assert time.monotonic() - t < 10
    assert _scratch_files(b) == []


def _tar_bomb(expanded: int) -> bytes:
    """A tar.gz whose one member is ``expanded`` zero bytes (gzip shrinks it ~1000x)."""
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as gz:
        info = tarfile.TarInfo("model/weights.bin")
        info.size = expanded
        gz.write(info.tobuf(format=tarfile.GNU_FORMAT))
        zeros = bytes(MIB)
        for _ in range(expanded // MIB):
            gz.write(zeros)
        gz.write(bytes(1024))  # end-of-archive blocks
    return raw.getvalue()


def test_tar_bomb_model_archive_is_refused_before_expanding_and_health_stays_fast(
    b: Bounds,
) -> None:
    bomb = _tar_bomb(1024 * MIB)
    assert len(bomb) < 8 * MIB  # 1 GiB of zeros, within the upload limit
    path = "/v1/projects/default/models/bomb/versions?framework=sklearn&archive=true"
    with httpx.Client(base_url=b.srv.url, timeout=30) as c, HealthWatch(b.srv.url):
        denied = c.post(path, content=bomb, headers=b.srv.auth(b.nobody))
        refused = c.post(path, content=bomb, headers=b.srv.auth())
    assert denied.status_code == 404
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"] == "archive_too_large"
    assert _scratch_files(b) == []
    b.assert_rss_bounded()


def test_parquet_zstd_dictionary_bomb_ingest_is_refused_and_memory_stays_bounded(
    b: Bounds, tmp_path: Path,
) -> None:
    column = pa.DictionaryArray.from_arrays(pa.array([0] * 2_000_000, pa.int32()),
                                            pa.array(["x" * 1000]))
    pq.write_table(pa.table({"note": column}), tmp_path / "bomb.parquet", compression="zstd")
    bomb = (tmp_path / "bomb.parquet").read_bytes()
    assert len(bomb) < 1 * MIB  # 2 GB of strings once decoded
    with httpx.Client(base_url=b.srv.url, timeout=60) as c, HealthWatch(b.srv.url):
        c.post("/v1/projects/default/sources", json={"name": "s", "require_checksum": False},
               headers=b.srv.auth())
        r = c.post("/v1/projects/default/datasets/bomb/ingest?source=s&filename=b.parquet",
                   content=bomb, headers=b.srv.auth())
    assert r.status_code == 400, r.text
    assert "decodes to more than" in r.json()["message"]
    b.assert_rss_bounded()


def test_300_slow_header_connections_are_closed_after_the_header_deadline(b: Bounds) -> None:
    socks = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the head never ends
        socks.append(s)
    try:
        with HealthWatch(b.srv.url):
            deadline = time.monotonic() + 8
            open_ = list(socks)
            while open_ and time.monotonic() < deadline:
                time.sleep(0.5)
                for s in list(open_):
                    try:
                        s.sendall(b"X-Slow: 1\r\n")  # trickle: each byte resets nothing
                    except OSError:
                        open_.remove(s)
                        continue
                    s.setblocking(False)
                    try:
                        if s.recv(1) == b"":
                            open_.remove(s)
                    except BlockingIOError:
                        pass
                    except OSError:
                        open_.remove(s)
                    s.setblocking(True)
        assert open_ == [], f"{len(open_)} slow-header connections still open"
    finally:
        for s in socks:
            s.close()


def test_contract_and_policy_nested_100000_deep_are_400_not_500(b: Bounds) -> None:
    rows = "".join(f"{i},{i % 7}\n" for i in range(200))
    with httpx.Client(base_url=b.srv.url, timeout=60) as c:
        c.post("/v1/projects/default/sources", json={"name": "s2", "require_checksum": False},
               headers=b.srv.auth())
        r = c.post("/v1/projects/default/datasets/small/ingest?source=s2&filename=s.csv",
                   content=f"a,b\n{rows}".encode(), headers=b.srv.auth())
        assert r.status_code == 201, r.text
        deep = "[" * 100_000 + "]" * 100_000
        for doc in ("contract", "policy"):
            r = c.put(f"/v1/projects/default/datasets/small/{doc}", json={"body": deep},
                      headers=b.srv.auth())
            assert r.status_code == 400, (doc, r.status_code, r.text)
