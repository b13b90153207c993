"""Client addresses on a real server on loopback: forwarding headers count only when the
TCP peer is a configured trusted proxy.  The address is observed where the API uses it:
the ``source`` of the audited authentication failure."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.workspace import Bastion
from conftest import Server, start_server, stop_server


def _server(tmp_path_factory: pytest.TempPathFactory, key: str, trusted: str) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("proxies") / "ws"
    ws, issued = Bastion.init(home, MasterKeySource.from_env_key(key))
    ws.close()
    srv = start_server(home, key, issued.secret, env={"BASTION_API_TRUSTED_PROXIES": trusted})
    try:
        yield srv
    finally:
        stop_server(srv.proc)


@pytest.fixture(scope="module")
def key() -> str:
    import base64
    import os

    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module")
def untrusting(tmp_path_factory: pytest.TempPathFactory, key: str) -> Iterator[Server]:
    yield from _server(tmp_path_factory, key, "10.0.0.0/8")  # loopback is not a proxy


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory, key: str) -> Iterator[Server]:
    yield from _server(tmp_path_factory, key, "127.0.0.0/8, 10.0.0.0/8")


def _sources(srv: Server) -> list[str]:
    ws = Bastion.open(srv.home, MasterKeySource.from_env_key(srv.master_key_b64))
    try:
        found = ws.audit.query(AuditQuery(action="auth.failed", limit=1000))
        return [json.loads(e.details)["source"] for e in found]
    finally:
        ws.close()


def _refused(srv: Server, headers: dict[str, str]) -> None:
    r = httpx.get(
        srv.url + "/v1/whoami", headers={"Authorization": "Bearer bst_x_y", **headers}, timeout=10
    )
    assert r.status_code == 401, r.text


def test_spoofed_x_forwarded_for_is_ignored_from_an_untrusted_peer(untrusting: Server) -> None:
    _refused(untrusting, {"X-Forwarded-For": "203.0.113.66"})
    _refused(untrusting, {"Forwarded": "for=203.0.113.67"})
    sources = _sources(untrusting)
    assert sources and set(sources) == {"127.0.0.1"}


def test_the_right_hop_is_taken_behind_a_chain_of_trusted_proxies(behind_proxy: Server) -> None:
    _refused(behind_proxy, {"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.1.1.1"})
    _refused(behind_proxy, {"Forwarded": 'for=6.6.6.6, for="[2001:db8::7]:443"'})
    sources = _sources(behind_proxy)
    assert "203.0.113.9" in sources and "2001:db8::7" in sources
    assert "6.6.6.6" not in sources


def test_malformed_forwarding_headers_do_not_crash_and_fall_back_to_the_peer(
    behind_proxy: Server,
) -> None:
    for value in ("<script>alert(1)</script>", "unknown", ",,,", "1.2.3.4.5", "x" * 4000):
        _refused(behind_proxy, {"X-Forwarded-For": value})
    _refused(behind_proxy, {"Forwarded": 'for="_hidden";by=;;;='})
    assert "127.0.0.1" in _sources(behind_proxy)
    assert httpx.get(behind_proxy.url + "/health", timeout=10).status_code == 200
