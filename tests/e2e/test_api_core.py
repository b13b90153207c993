"""The REST API on a real server (``bastion serve`` on loopback): auth, errors, objects, TLS."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.workspace import Bastion
from conftest import CLI, Server, start_server, stop_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    key = base64.b64encode(os.urandom(32)).decode()
    home = tmp_path_factory.mktemp("api") / "ws"
    ws, issued = Bastion.init(home, MasterKeySource.from_env_key(key))
    ws.close()
    server = start_server(home, key, issued.secret)
    try:
        yield server
    finally:
        stop_server(server.proc)


@pytest.fixture(scope="module")
def local(srv: Server) -> Iterator[Bastion]:
    """The same workspace opened in-process (to arrange users and read the audit log)."""
    ws = Bastion.open(srv.home, MasterKeySource.from_env_key(srv.master_key_b64))
    try:
        yield ws
    finally:
        ws.close()


@pytest.fixture(scope="module")
def client(srv: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        yield c


def v1_routes(ws: Bastion) -> list[tuple[str, str]]:
    """Every /v1 operation the app serves, with path parameters filled in."""
    from bastion.api.app import create_app

    routes = [("GET", "/v1/openapi.json")]
    for path, operations in create_app(ws).openapi()["paths"].items():
        if path.startswith("/v1"):
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            routes += [(m.upper(), concrete) for m in operations]
    return routes


def assert_clean_error(r: httpx.Response, srv: Server, *secrets: str) -> None:
    body = r.text
    assert r.headers["content-type"].startswith("application/json"), body
    assert "error" in r.json()
    assert "Traceback" not in body and str(srv.home) not in body and srv.token not in body
    for s in secrets:
        assert s not in body


def test_health_is_public(client: httpx.Client) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_every_v1_route_without_token_is_401(
    client: httpx.Client, srv: Server, local: Bastion
) -> None:
    routes = v1_routes(local)
    assert len(routes) >= 20
    wrong = []
    for method, path in routes:
        r = client.request(method, path)
        if r.status_code != 401:
            wrong.append((method, path, r.status_code))
            continue
        assert_clean_error(r, srv)
        assert r.json()["error"] == "unauthenticated"
        assert r.headers.get("www-authenticate") == "Bearer"
    assert not wrong, wrong


def test_garbage_expired_and_revoked_tokens_are_401(
    client: httpx.Client, srv: Server, local: Bastion
) -> None:
    admin = local.access.authenticate(srv.token)
    local.access.create_principal(admin, "svc-old", PrincipalKind.SERVICE)
    local.access.bind(admin, "svc-old", "auditor", "*")
    expired = local.access.create_token(admin, "svc-old")
    revoked = local.access.create_token(admin, "svc-old")
    local.access.revoke_token(admin, revoked.record.id)
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat(timespec="seconds")
    with local.engine.begin() as c:
        c.execute(
            sa.text("UPDATE tokens SET expires_at=:p WHERE id=:i"),
            {"p": past, "i": expired.record.id},
        )
    headers = [
        {"Authorization": "Bearer garbage"},
        {"Authorization": "Bearer bst_0123456789abcdef_nope"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": srv.token},  # no scheme
        {"Authorization": "Bearer bst_abc_\xe9t\xe9".encode("latin-1")},  # type: ignore[dict-item]
        {"Authorization": f"Bearer {expired.secret}"},
        {"Authorization": f"Bearer {revoked.secret}"},
    ]
    for h in headers:
        r = client.get("/v1/principals", headers=h)
        assert r.status_code == 401, (h, r.status_code, r.text)
        assert_clean_error(r, srv, expired.secret, revoked.secret)
    assert "expired" in client.get("/v1/audit/entries", headers=headers[5]).json()["message"]
    assert "revoked" in client.get("/v1/audit/entries", headers=headers[6]).json()["message"]


def test_valid_token_without_permission_is_403_and_audited(
    client: httpx.Client, srv: Server, local: Bastion
) -> None:
    admin = local.access.authenticate(srv.token)
    local.access.create_principal(admin, "carol", PrincipalKind.USER)
    local.access.bind(admin, "carol", "consumer", "default")
    carol = local.access.create_token(admin, "carol").secret
    r = client.get(
        "/v1/audit/entries",
        headers={"Authorization": f"Bearer {carol}", "X-Request-ID": "req-carol-1"},
    )
    assert r.status_code == 403
    assert_clean_error(r, srv, carol)
    assert r.json()["error"] == "forbidden" and r.json()["request_id"] == "req-carol-1"
    denied = local.audit.query(AuditQuery(actor="carol", outcome="denied"))
    assert [(e.action, e.resource, e.request_id) for e in denied] == [
        ("audit.read", "system/audit", "req-carol-1")
    ]


def test_roleless_probe_gets_the_same_404_for_existing_and_missing_names(
    client: httpx.Client, srv: Server, local: Bastion
) -> None:
    """A principal with no role where a resource lives learns nothing from probing it."""
    admin = local.access.authenticate(srv.token)
    local.access.create_principal(admin, "mallory", PrincipalKind.USER)
    mallory = local.access.create_token(admin, "mallory").secret
    local.access.create_principal(admin, "dora", PrincipalKind.USER)
    local.access.bind(admin, "dora", "consumer", "default")
    dora = local.access.create_token(admin, "dora").secret

    def probe(token: str, path: str) -> tuple[int, dict[str, object]]:
        r = client.get(path, headers={"Authorization": f"Bearer {token}"})
        body = r.json()
        body.pop("request_id")
        return r.status_code, body

    pairs = [
        ("/v1/principals/admin/tokens", "/v1/principals/ghost-user/tokens"),
        ("/v1/projects/default/datasets", "/v1/projects/ghost-project/datasets"),
    ]
    for real, ghost in pairs:
        (s1, b1), (s2, b2) = probe(mallory, real), probe(mallory, ghost)
        assert s1 == s2 == 404, (real, s1, s2)
        assert b1["error"] == b2["error"] == "not_found"
        assert str(b1["message"]).replace("admin", "X").replace("default", "X") == str(
            b2["message"]
        ).replace("ghost-user", "X").replace("ghost-project", "X")
    # Every probe is audited as a denial.
    denied = local.audit.query(AuditQuery(actor="mallory", outcome="denied"))
    assert len(denied) == 4
    # A member of the project who lacks the action is told so: 403.
    s, b = probe(dora, "/v1/projects/default/datasets")
    assert (s, b["error"]) == (403, "forbidden")


def test_unknown_routes_are_json_404(client: httpx.Client, srv: Server) -> None:
    for path in [
        "/nope",
        "/v1/nope",
        "/v2/principals",
        "/health/../etc/passwd",
        "/docs",
        "/openapi.json",
    ]:
        r = client.get(path, headers=srv.auth())
        assert r.status_code == 404, (path, r.status_code)
        assert_clean_error(r, srv)
    r = client.post("/health")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_client_errors_are_4xx_with_clean_bodies(client: httpx.Client, srv: Server) -> None:
    cases = [
        client.post("/v1/principals", json={"name": "Bad Name!"}, headers=srv.auth()),
        client.post("/v1/principals", content=b"{not json", headers=srv.auth()),
        client.post(
            "/v1/role-bindings", json={"principal": "admin", "role": "auditor"}, headers=srv.auth()
        ),
        client.get("/v1/audit/proofs/inclusion?seq=999999&tree_size=999999", headers=srv.auth()),
        client.get("/v1/projects/default/objects/missing", headers=srv.auth()),
        client.put("/v1/projects/no-such/objects/x", content=b"x", headers=srv.auth()),
    ]
    for r in cases:
        assert 400 <= r.status_code < 500, (r.request.url, r.status_code, r.text)
        assert_clean_error(r, srv)


def test_object_put_get_round_trip_with_digest_header(client: httpx.Client, srv: Server) -> None:
    body = os.urandom(3 * 1024 * 1024 + 17)
    r = client.put(
        "/v1/projects/default/objects/models/weights.bin", content=body, headers=srv.auth()
    )
    assert r.status_code == 201, r.text
    digest = hashlib.sha256(body).hexdigest()
    assert r.json()["digest"] == digest and r.json()["size"] == len(body)
    r = client.get("/v1/projects/default/objects/models/weights.bin", headers=srv.auth())
    assert r.status_code == 200
    assert r.headers["x-content-sha256"] == digest
    assert hashlib.sha256(r.content).hexdigest() == digest
    r = client.put(
        "/v1/projects/default/objects/models/weights.bin", content=b"other", headers=srv.auth()
    )
    assert r.status_code == 409


def test_cli_and_server_writing_at_once_lose_nothing(
    client: httpx.Client, srv: Server, local: Bastion
) -> None:
    before = local.audit.head().size
    cli = CLI(srv.home, srv.master_key_b64)
    commands = [("users", "list"), ("roles", "list"), ("projects", "list"), ("store", "list")]

    def api_call(_: int) -> int:
        return client.get("/v1/principals", headers=srv.auth()).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        cli_runs = [pool.submit(cli.run, *c, token=srv.token) for c in commands]
        statuses = list(pool.map(api_call, range(100)))
        results = [f.result() for f in cli_runs]
    assert statuses == [200] * 100
    for r in results:
        assert r.returncode == 0, r.output
        assert "database is locked" not in r.output
    entries = local.audit.query(AuditQuery(after_seq=before, limit=10_000))
    assert len(entries) == 100 + len(commands)
    assert [e.seq for e in entries] == list(range(before + 1, before + 1 + len(entries)))
    report = local.audit.verify()
    assert report.ok, report.problems


def test_tls_serve_with_init_certificate(tmp_path: Path, master_key_b64: str) -> None:
    cli = CLI(tmp_path / "tls-ws", master_key_b64)
    r = cli.run("init", "--tls")
    assert r.returncode == 0, r.output
    cert = cli.home / "tls" / "cert.pem"
    assert cert.exists()
    assert oct((cli.home / "tls" / "key.pem").stat().st_mode & 0o777) == "0o600"
    token = (cli.home / "credentials").read_text().strip()
    context = ssl.create_default_context(cafile=str(cert))
    server = start_server(cli.home, master_key_b64, token, scheme="https", verify=context)
    try:
        r = httpx.get(server.url + "/health", verify=context, timeout=10)
        assert r.status_code == 200
        r = httpx.get(server.url + "/v1/whoami", verify=context, headers=server.auth(), timeout=10)
        assert r.status_code == 200 and r.json()["principal"]["name"] == "admin"
        with pytest.raises(httpx.HTTPError):  # an unknown certificate is refused by default
            httpx.get(server.url + "/health", timeout=10)
        with pytest.raises(httpx.HTTPError):  # no plaintext on the TLS port
            httpx.get(server.url.replace("https", "http") + "/health", timeout=10)
    finally:
        stop_server(server.proc)
    assert server.proc.returncode is not None
