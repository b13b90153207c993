"""Foundation steps of the demo: workspace, encrypted store, RBAC, audit log.

One function per control; each returns its evidence lines or raises
``DemoFailed`` naming what did not hold.  The audit-tamper step edits the
metadata database the way an attacker with database access would (SQLite or
PostgreSQL alike) and requires verification to name the edited entry.

Example::

    st = DemoState(ws, admin, work)
    run_foundation(Runner(print), st)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import sqlalchemy as sa

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import AccessDenied, BlobCorrupted
from bastion.demo.runner import DemoFailed, Runner, expect
from bastion.workspace import Bastion

OBJECT = "policies/loan-terms.txt"


@dataclass
class DemoState:
    ws: Bastion
    admin: Actor
    work: Path

    @property
    def secret(self) -> Path:
        """The confidential file the foundation steps store and attack."""
        return self.work / "loan-terms.txt"


def _blob_file(ws: Bastion, digest: str) -> Path:
    return ws.home / "blobs" / "objects" / digest[:2] / f"{digest}.enc"


def store_roundtrip(st: DemoState) -> list[str]:
    st.secret.write_text("CONFIDENTIAL: credit policy v7, approve if score > 640\n" * 50)
    obj = st.ws.objects.put(st.admin, "default", OBJECT, st.secret)
    out = st.work / "readback.txt"
    st.ws.objects.get(st.admin, "default", OBJECT, out)
    expect(out.read_bytes() == st.secret.read_bytes(), "read-back differs from the original")
    raw = _blob_file(st.ws, obj.digest).read_bytes()
    expect(b"CONFIDENTIAL" not in raw, "plaintext visible in the stored blob")
    return [
        f"stored {obj.size} bytes as sha256:{obj.digest[:16]}… (AES-256-GCM, per-object key)",
        "on-disk bytes contain no plaintext; read-back verified against the digest",
    ]


def denied_access(st: DemoState) -> list[str]:
    ws, admin = st.ws, st.admin
    ws.access.create_principal(admin, "mallory", PrincipalKind.USER)
    ws.access.bind(admin, "mallory", "consumer", "default")
    mallory = ws.access.authenticate(ws.access.create_token(admin, "mallory").secret)
    stolen = st.work / "stolen.txt"
    try:
        ws.objects.get(mallory, "default", OBJECT, stolen)
    except AccessDenied as e:
        denied = [
            x
            for x in ws.audit.query(AuditQuery(actor="mallory", limit=1000))
            if x.outcome == "denied" and x.action == "blob.read"
        ]
        expect(bool(denied), "the denial of blob.read was not audited")
        expect(not stolen.exists(), "data leaked despite the denial")
        return [f"mallory (consumer) refused: {e.message}", f"audited as entry #{denied[-1].seq}"]
    raise DemoFailed("mallory could read a confidential object")


def tampered_blob(st: DemoState) -> list[str]:
    obj = st.ws.objects.get(st.admin, "default", OBJECT, st.work / "again.txt")
    path = _blob_file(st.ws, obj.digest)
    original = path.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    path.write_bytes(bytes(flipped))
    try:
        st.ws.blobs.read_bytes(obj.digest)
    except BlobCorrupted as e:
        expect(obj.digest in e.message, f"the corruption report names another blob: {e.message}")
        return [f"one flipped bit detected: {e.message}"]
    finally:
        path.write_bytes(original)
    raise DemoFailed("a flipped byte went unnoticed")


def key_rotation(st: DemoState) -> list[str]:
    result = st.ws.keys.rotate(st.admin)
    expect(result.rewrapped >= 1, "rotation re-wrapped no data key")
    data = st.ws.blobs.read_bytes(st.ws.objects.list(st.admin, "default")[0].digest)
    expect(data == st.secret.read_bytes(), "object unreadable after rotation")
    return [
        f"KEK v{result.new_version} active, {result.rewrapped} data keys re-wrapped, data intact"
    ]


def _attacker_engine(url: str) -> sa.Engine:
    """A raw connection to the metadata database, as an attacker holding its password."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return sa.create_engine(url)


def audit_tamper(st: DemoState) -> list[str]:
    before = st.ws.audit.verify()
    expect(before.ok, f"audit log not intact before the test: {before.problems}")
    victim = before.entries // 2
    engine = _attacker_engine(st.ws.options.database_url)
    select = sa.text("SELECT outcome FROM audit_entries WHERE seq = :s")
    update = sa.text("UPDATE audit_entries SET outcome = :o WHERE seq = :s")
    try:
        with engine.begin() as con:
            orig: str = con.execute(select, {"s": victim}).scalar_one()
            forged = "allowed" if orig != "allowed" else "denied"
            con.execute(update, {"o": forged, "s": victim})
        try:
            after = st.ws.audit.verify()
        finally:
            with engine.begin() as con:
                con.execute(update, {"o": orig, "s": victim})
    finally:
        engine.dispose()
    expect(not after.ok, f"entry #{victim} edited ({orig} -> {forged}) and verify still passed")
    expect(
        after.first_bad_seq == victim,
        f"verify blamed entry {after.first_bad_seq}, but #{victim} was edited",
    )
    expect(st.ws.audit.verify().ok, "audit log not intact after restoring")
    backend = st.ws.options.database_url.split(":", 1)[0]
    return [
        f"intact: {before.entries} entries, {before.checkpoints_verified} signed checkpoints "
        f"({backend})",
        f"entry #{victim} edited in the database ({orig} -> {forged}); "
        f"detected: {after.problems[0]}",
    ]


FOUNDATION: tuple[tuple[str, Callable[[DemoState], list[str]]], ...] = (
    ("encrypted store round trip", store_roundtrip),
    ("unauthorized read is denied and audited", denied_access),
    ("tampered blob is detected", tampered_blob),
    ("key rotation re-wraps without re-encrypting", key_rotation),
    ("tampered audit log is detected", audit_tamper),
)


def run_foundation(r: Runner, st: DemoState) -> None:
    for name, control in FOUNDATION:
        r.step("foundation", name, partial(control, st))


__all__ = ["FOUNDATION", "DemoState", "audit_tamper", "run_foundation"]
