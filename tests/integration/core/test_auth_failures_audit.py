"""Failed authentications are audited, aggregated so a flood cannot bloat the log."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
import sqlalchemy as sa

from bastion.core.access.auth_failures import FailedAuthentications
from bastion.core.audit.entries import AuditEntry, AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.core.errors import AuthenticationFailed
from bastion.workspace import Bastion
from conftest import WS, Server, stop_server


def failures(w: WS) -> list[AuditEntry]:
    return w.ws.audit.query(AuditQuery(action="auth.failed", limit=10_000))


def counts(w: WS) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in failures(w):
        d = json.loads(e.details)
        out[d["reason"]] = out.get(d["reason"], 0) + int(d["count"])
    return out


def refuse(w: WS, token: str | None, n: int = 1, source: str = "") -> None:
    for _ in range(n):
        with pytest.raises(AuthenticationFailed):
            w.ws.access.authenticate(token, source=source)


def test_revoked_expired_and_unknown_token_attempts_are_audited(workspace: WS) -> None:
    access = workspace.ws.access
    revoked = access.create_token(workspace.admin, "admin")
    access.revoke_token(workspace.admin, revoked.record.id)
    expired = access.create_token(workspace.admin, "admin", expires_in=dt.timedelta(seconds=60))
    with workspace.ws.engine.begin() as c:
        c.execute(
            sa.text("UPDATE tokens SET expires_at = :t WHERE id = :i"),
            {"t": "2020-01-01T00:00:00+00:00", "i": expired.record.id},
        )
    refuse(workspace, revoked.secret)
    refuse(workspace, expired.secret)
    refuse(workspace, "bst_0123456789abcdef_nope")
    entries = {json.loads(e.details)["reason"]: e for e in failures(workspace)}
    assert set(entries) == {"revoked", "expired", "unknown"}
    revoked_entry = json.loads(entries["revoked"].details)
    assert revoked_entry["token_id_prefix"] == revoked.record.id[:8]
    assert entries["revoked"].outcome == "denied"
    assert entries["unknown"].actor == "unauthenticated"
    assert workspace.ws.audit.verify().ok


def test_flood_of_unknown_tokens_cannot_bloat_the_audit_log_attack(workspace: WS) -> None:
    """1000 refused tokens (random ids, one source) add two entries, not 1000,
    and the count of every attempt is still on record."""
    before = workspace.ws.audit.head().size
    for i in range(1000):
        with pytest.raises(AuthenticationFailed):
            workspace.ws.access.authenticate(f"bst_{i:016x}_guess", source="203.0.113.9")
    assert workspace.ws.audit.head().size - before == 1  # the first, at once
    workspace.ws.access.flush_failed_authentications()
    assert workspace.ws.audit.head().size - before == 2  # plus one summary
    assert counts(workspace) == {"unknown": 1000}
    summary = json.loads(failures(workspace)[-1].details)
    assert summary["phase"] == "repeats" and summary["source"] == "203.0.113.9"


def test_failure_windows_close_and_new_ones_open(workspace: WS) -> None:
    now = [0.0]
    agg = FailedAuthentications(workspace.ws.audit, window_seconds=60, clock=lambda: now[0])
    before = workspace.ws.audit.head().size
    for _ in range(5):
        agg.record("revoked", "aaaaaaaabbbbbbbb", "cli")
    now[0] = 61.0
    agg.record("revoked", "aaaaaaaabbbbbbbb", "cli")  # closes the first window, opens one
    added = workspace.ws.audit.query(AuditQuery(after_seq=before, limit=100))
    phases = [(json.loads(e.details)["phase"], json.loads(e.details)["count"]) for e in added]
    assert phases == [("first", 1), ("repeats", 4), ("first", 1)]


def test_spraying_many_sources_is_bounded_by_max_keys(workspace: WS) -> None:
    agg = FailedAuthentications(workspace.ws.audit, max_keys=10)
    before = workspace.ws.audit.head().size
    for i in range(500):
        agg.record("unknown", "", f"198.51.100.{i}")
    agg.flush()
    assert workspace.ws.audit.head().size - before <= 12  # 10 keys + overflow + its summary


def test_flood_of_bad_tokens_against_the_server_is_audited_by_source(server: Server) -> None:
    """A real server on loopback: 300 bad bearer tokens, a bounded number of entries,
    keyed by the client address; the counts are written when the server stops."""
    for i in range(300):
        bad = {"Authorization": f"Bearer bst_{i:016x}_x"}
        r = httpx.get(server.url + "/v1/whoami", headers=bad, timeout=10)
        assert r.status_code == 401
    stop_server(server.proc)  # SIGTERM: a clean shutdown flushes the open windows
    ws = Bastion.open(server.home, MasterKeySource.from_env_key(server.master_key_b64))
    try:
        entries = ws.audit.query(AuditQuery(action="auth.failed", limit=10_000))
        assert 1 <= len(entries) <= 4
        details = [json.loads(e.details) for e in entries]
        assert {d["source"] for d in details} == {"127.0.0.1"}
        assert sum(int(d["count"]) for d in details) == 300
        assert ws.audit.verify().ok
    finally:
        ws.close()
