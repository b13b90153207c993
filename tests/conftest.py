"""Shared fixtures: master keys, databases (SQLite and PostgreSQL), workspaces,
the real ``bastion`` CLI and a real API server on loopback.

- ``master_key_b64`` / ``master_key``: a random env-style master key (no scrypt).
- ``db_url``: parametrized ``sqlite`` / ``postgresql``; PostgreSQL gets a fresh
  database on ``BASTION_TEST_POSTGRES_URL`` (skipped when unset, *failed* when CI=true).
- ``workspace`` (both databases) and ``sqlite_workspace``: a ``WS(ws, admin, token)``.
- ``cli``: runs ``.venv/bin/bastion`` as a subprocess against its own workspace folder.
- ``server``: a real ``bastion serve`` on 127.0.0.1 over an initialized workspace.

With ``CI=true`` every skip is a failure (``pytest_runtest_makereport`` /
``pytest_make_collect_report`` below): CI installs every service and optional
dependency the tests need, so a skip there means a control went untested.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from bastion.core.access.values import Actor
from bastion.core.crypto.keyring import MasterKeySource
from bastion.workspace import Bastion

BASTION_BIN = Path(sys.executable).parent / "bastion"
PG_ENV = "BASTION_TEST_POSTGRES_URL"

# DROP DATABASE forces a checkpoint (seconds with fsync=on); drops run in the
# background and are joined once at the end of the session.
_pending_drops: list[threading.Thread] = []


# -- CI: a skip is a failure --------------------------------------------------------
def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Turn a skipped report into a failure that says why (xfail stays as it is)."""
    if not (_in_ci() and report.skipped and not hasattr(report, "wasxfail")):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, where every skip is a failure: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _fail_skip(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _fail_skip(outcome.get_result())  # type: ignore[attr-defined]


# -- keys ------------------------------------------------------------------------
@pytest.fixture
def master_key_b64() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def master_key(master_key_b64: str) -> MasterKeySource:
    return MasterKeySource.from_env_key(master_key_b64)


# -- databases -----------------------------------------------------------------------
def postgres_admin_url() -> str:
    """The PostgreSQL server URL, or skip (fail under CI=true) when there is none."""
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must provide PostgreSQL ({PG_ENV} is not set)")
        pytest.skip(f"{PG_ENV} is not set")
    return url


def _drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def _join_database_drops() -> Iterator[None]:
    yield
    for t in _pending_drops:
        t.join(timeout=60)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped at teardown."""
    import psycopg

    admin = postgres_admin_url()
    name = f"bastion_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    t = threading.Thread(target=_drop_database, args=(admin, name), daemon=True)
    t.start()
    _pending_drops.append(t)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("postgres_url"))


# -- workspaces ------------------------------------------------------------------------
@dataclass
class WS:
    """An initialized workspace, its admin actor and the admin token secret."""

    ws: Bastion
    admin: Actor
    token: str
    master: MasterKeySource
    home: Path
    db_url: str
    extra: list[Bastion] = field(default_factory=list)

    def reopen(self) -> Bastion:
        """Another ``Bastion`` on the same workspace (closed at teardown)."""
        other = Bastion.open(self.home, self.master, database_url=self.db_url)
        self.extra.append(other)
        return other


def _make_ws(tmp_path: Path, master: MasterKeySource, url: str | None) -> Iterator[WS]:
    home = tmp_path / "ws"
    ws, issued = Bastion.init(home, master, database_url=url)
    ws_obj = WS(
        ws,
        ws.access.authenticate(issued.secret),
        issued.secret,
        master,
        ws.home,
        ws.options.database_url,
    )
    try:
        yield ws_obj
    finally:
        for other in ws_obj.extra:
            other.close()
        ws.close()


@pytest.fixture
def workspace(tmp_path: Path, master_key: MasterKeySource, db_url: str) -> Iterator[WS]:
    yield from _make_ws(tmp_path, master_key, db_url)


@pytest.fixture
def sqlite_workspace(tmp_path: Path, master_key: MasterKeySource) -> Iterator[WS]:
    """A workspace with the default SQLite database file ``<home>/bastion.db``."""
    yield from _make_ws(tmp_path, master_key, None)


# -- the real CLI ------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def bastion_env(home: Path, master_key_b64: str | None, token: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update({"BASTION_HOME": str(home), "COLUMNS": "250", "NO_COLOR": "1"})
    if PG_ENV in os.environ:
        env[PG_ENV] = os.environ[PG_ENV]
    if master_key_b64 is not None:
        env["BASTION_MASTER_KEY"] = master_key_b64
    if token is not None:
        env["BASTION_TOKEN"] = token
    return env


@dataclass
class CLI:
    """Runs the installed ``bastion`` entry point against ``home``."""

    home: Path
    master_key_b64: str

    def run(
        self,
        *args: str,
        token: str | None = None,
        master_key_b64: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> Result:
        full_env = bastion_env(self.home, master_key_b64 or self.master_key_b64, token)
        full_env.update(env or {})
        p = subprocess.run(
            [str(BASTION_BIN), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(p.returncode, p.stdout, p.stderr)


@pytest.fixture
def cli(tmp_path: Path, master_key_b64: str) -> CLI:
    return CLI(tmp_path / "cli-ws", master_key_b64)


# -- a real server on loopback ------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    home: Path
    master_key_b64: str
    proc: subprocess.Popen[bytes]
    log: Path

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}


def start_server(
    home: Path,
    master_key_b64: str,
    token: str,
    *,
    extra_args: tuple[str, ...] = (),
    scheme: str = "http",
    verify: bool | str = False,
    env: dict[str, str] | None = None,
) -> Server:
    port = free_port()
    log = home.parent / f"server-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BASTION_BIN), "serve", "--host", "127.0.0.1", "--port", str(port), *extra_args],
            env={**bastion_env(home, master_key_b64), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bastion serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=2, verify=verify).status_code == 200:
                return Server(url, token, home, master_key_b64, proc, log)
        except httpx.HTTPError:
            time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"bastion serve did not become healthy:\n{log.read_text()}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@pytest.fixture
def server(tmp_path: Path, master_key_b64: str) -> Iterator[Server]:
    home = tmp_path / "srv-ws"
    ws, issued = Bastion.init(home, MasterKeySource.from_env_key(master_key_b64))
    ws.close()
    srv = start_server(home, master_key_b64, issued.secret)
    try:
        yield srv
    finally:
        stop_server(srv.proc)
