"""The real ``bastion`` command, run as a subprocess: identity, store, audit, errors."""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.workspace import Bastion
from conftest import CLI

TOKEN_RE = re.compile(r"\bbst_[0-9a-f]+_[A-Za-z0-9-]+\b")


@dataclass
class Shared:
    cli: CLI
    master: MasterKeySource
    token: str

    def open(self) -> Bastion:
        return Bastion.open(self.cli.home, self.master)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """A workspace initialized in-process (fast) that the CLI then works on."""
    key = base64.b64encode(os.urandom(32)).decode()
    home = tmp_path_factory.mktemp("cli") / "ws"
    master = MasterKeySource.from_env_key(key)
    ws, issued = Bastion.init(home, master)
    ws.close()
    yield Shared(CLI(home, key), master, issued.secret)


def test_init_and_identity_flow(cli: CLI) -> None:
    r = cli.run("init")
    assert r.returncode == 0, r.output
    tokens = TOKEN_RE.findall(r.stdout)
    assert len(tokens) == 1
    admin_token = tokens[0]
    creds = cli.home / "credentials"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert creds.read_text().strip() == admin_token
    assert stat.S_IMODE((cli.home / "keyring.json").stat().st_mode) == 0o600

    r = cli.run("whoami")
    assert r.returncode == 0 and "admin (user)" in r.stdout and "admin in *" in r.stdout
    assert cli.run("users", "create", "bob").returncode == 0
    r = cli.run("users", "list")
    assert r.returncode == 0 and "bob" in r.stdout and "admin" in r.stdout
    r = cli.run("roles", "bind", "bob", "auditor", "--project", "*")
    assert r.returncode == 0, r.output
    r = cli.run("roles", "list")
    assert r.returncode == 0 and re.search(r"bob\s*│\s*auditor\s*│\s*\*", r.stdout), r.stdout
    r = cli.run("tokens", "create", "bob", "--description", "ci")
    assert r.returncode == 0, r.output
    (bob_token,) = TOKEN_RE.findall(r.stdout)
    token_id = bob_token.split("_")[1]
    ws = Bastion.open(cli.home, MasterKeySource.from_env_key(cli.master_key_b64))
    try:
        assert ws.access.authenticate(bob_token).name == "bob"  # works before the revoke
    finally:
        ws.close()
    assert cli.run("tokens", "revoke", token_id).returncode == 0
    r = cli.run("whoami", token=bob_token)
    assert r.returncode == 3 and "revoked" in r.stderr
    assert bob_token not in r.output


def test_denied_command_exits_3_and_is_audited(shared: Shared) -> None:
    ws = shared.open()
    try:
        admin = ws.access.authenticate(shared.token)
        ws.access.create_principal(admin, "mallory", PrincipalKind.USER)
        ws.access.bind(admin, "mallory", "consumer", "default")
        mallory = ws.access.create_token(admin, "mallory").secret
    finally:
        ws.close()
    r = shared.cli.run("users", "list", token=mallory)
    assert r.returncode == 3, r.output
    assert "mallory may not principal.read" in r.stderr
    assert "Traceback" not in r.output
    ws = shared.open()
    try:
        denied = ws.audit.query(AuditQuery(actor="mallory", outcome="denied"))
    finally:
        ws.close()
    assert [(e.action, e.resource) for e in denied] == [("principal.read", "system/principals")]


def test_store_put_get_round_trip(shared: Shared, tmp_path: Path) -> None:
    src = tmp_path / "terms.txt"
    src.write_bytes(b"approve if score > 640\n" * 5000)
    r = shared.cli.run("store", "put", str(src), "--name", "policies/terms.txt")
    assert r.returncode == 0, r.output
    out = tmp_path / "out.txt"
    r = shared.cli.run("store", "get", "policies/terms.txt", "-o", str(out))
    assert r.returncode == 0, r.output
    assert out.read_bytes() == src.read_bytes()
    r = shared.cli.run("store", "get", "no/such", "-o", str(tmp_path / "x"))
    assert r.returncode == 2 and not (tmp_path / "x").exists()


def test_decrypted_download_is_not_readable_by_other_local_users(
    shared: Shared, tmp_path: Path
) -> None:
    """Found: ``store get`` wrote decrypted bytes 0644 (umask 022): others could read them."""
    old = os.umask(0o022)
    try:
        src = tmp_path / "secret.txt"
        src.write_bytes(b"customer 4711: income 83,000\n")
        assert shared.cli.run("store", "put", str(src), "--name", "hr/secret.txt").returncode == 0
        out = tmp_path / "got.txt"
        r = shared.cli.run("store", "get", "hr/secret.txt", "-o", str(out))
        assert r.returncode == 0, r.output
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes() == src.read_bytes()


def test_audit_log_export_verify_and_tamper(shared: Shared, tmp_path: Path) -> None:
    export = tmp_path / "denied.jsonl"
    r = shared.cli.run(
        "audit", "log", "--actor", "mallory", "--outcome", "denied", "--jsonl", str(export)
    )
    assert r.returncode == 0, r.output
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert lines and all(e["actor"] == "mallory" and e["outcome"] == "denied" for e in lines)
    assert {"seq", "ts", "action", "resource", "request_id", "entry_hash"} <= set(lines[0])

    r = shared.cli.run("audit", "verify")
    assert r.returncode == 0 and "intact" in r.stdout, r.output
    con = sqlite3.connect(shared.cli.home / "bastion.db")
    try:
        con.execute("UPDATE audit_entries SET outcome='allowed' WHERE outcome='denied'")
        con.commit()
    finally:
        con.close()
    r = shared.cli.run("audit", "verify", "--json")
    assert r.returncode == 4, r.output
    report = json.loads(r.stdout)
    assert report["ok"] is False and report["first_bad_seq"] == lines[0]["seq"]


def test_missing_workspace_is_a_clear_error(tmp_path: Path, master_key_b64: str) -> None:
    r = CLI(tmp_path / "nowhere", master_key_b64).run("whoami")
    assert r.returncode != 0
    assert "no Bastion workspace" in r.stderr and "bastion init" in r.stderr
    assert "Traceback" not in r.output


def test_wrong_master_key_is_a_clear_error(shared: Shared) -> None:
    wrong = base64.b64encode(os.urandom(32)).decode()
    r = shared.cli.run("whoami", master_key_b64=wrong)
    assert r.returncode != 0
    assert "cannot unlock the keyring" in r.stderr
    assert "Traceback" not in r.output and wrong not in r.output


def test_demo_proves_every_control(tmp_path: Path) -> None:
    r = CLI(tmp_path / "unused", "").run("demo", "--home", str(tmp_path / "demo-ws"), timeout=300)
    assert r.returncode == 0, r.output[-3000:]
    assert "FAIL" not in r.stdout
    assert re.search(r"(\d+)/\1 controls proven", r.stdout)
    out = " ".join(r.stdout.split())  # undo the terminal's line wrapping
    # each step names the control that fired, not just "some failure"
    fired = re.search(r"credit-applications@3: QUARANTINED by ([A-Za-z_, ]+)", out)
    assert fired, out
    assert {"label_distribution_shift", "risk_conditional_label_rate"} <= set(
        fired.group(1).replace(",", " ").split()
    ), out
    assert re.search(r"precision 0\.\d\d, recall 0\.\d\d \(floors", out), out
    assert "QUARANTINED by source_lineage — source 'usb-stick' is not registered" in out
    assert "QUARANTINED by source_lineage — the batch bytes do not match" in out
    assert re.search(r"source_lineage measured sha256:[0-9a-f]{16}", out), out
    assert re.search(r"attack \w+ ran: success rate", out), out
    assert "refused: extra file not covered by the signature: backdoor.py" in out
    assert re.search(r"entry #\d+ edited in the database .* detected", out), out
    # governance: the card, the refused self-approval, the committee, the gate both ways
    assert "refused: self-approval refused: admin registered or trained credit-scorer@1" in out
    assert re.search(r"2/2 signed approvals \(risk tier high\) → stage approved", out), out
    assert re.search(r"gate passed, policy v\d+: signature, scan, training_data", out), out
    for rule in ("evaluation", "fairness", "robustness", "approvals"):
        assert f"{rule}: fail" in out, rule
    assert re.search(r"release_approvals: 1 released model version", out), out
    # serving: a real bastion serve, each control named
    assert re.search(r"credit-scorer@1 on endpoint credit-scoring \(#1\): release gate passed",
                     out), out
    assert re.search(r"POST /v1/endpoints/credit-scoring/predict → 200", out), out
    assert "422 invalid_features: field rows[0].Income — must be a number" in out
    assert re.search(r"\d+/60 requests from flood-bot → 429 rate_limited, Retry-After \d+ s",
                     out), out
    assert "169.254.169.254 is a link-local address" in out
    assert re.search(r"rolled back automatically after \d+ requests \(\d+ answered by the "
                     r"canary\): check prediction_shift fired", out), out
    assert re.search(r"drift alert \w+… \(\w+\): credit-scorer@1: \d+/13 features drifted "
                     r"\([^)]*Income", out), out
