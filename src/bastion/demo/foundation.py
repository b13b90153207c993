"""Foundation steps of the demo: workspace, encrypted store, RBAC, audit log."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bastion.core.access.values import Actor, PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.errors import AccessDenied, BlobCorrupted
from bastion.demo.runner import DemoFailed, Runner, expect
from bastion.workspace import Bastion


@dataclass
class DemoState:
    ws: Bastion
    admin: Actor
    work: Path


def _blob_file(ws: Bastion, digest: str) -> Path:
    return ws.home / "blobs" / "objects" / digest[:2] / f"{digest}.enc"


def run_foundation(r: Runner, st: DemoState) -> None:
    ws, admin = st.ws, st.admin
    secret = st.work / "loan-terms.txt"
    secret.write_text("CONFIDENTIAL: credit policy v7, approve if score > 640\n" * 50)

    def store_roundtrip() -> list[str]:
        obj = ws.objects.put(admin, "default", "policies/loan-terms.txt", secret)
        out = st.work / "readback.txt"
        ws.objects.get(admin, "default", "policies/loan-terms.txt", out)
        expect(out.read_bytes() == secret.read_bytes(), "read-back differs from the original")
        raw = _blob_file(ws, obj.digest).read_bytes()
        expect(b"CONFIDENTIAL" not in raw, "plaintext visible in the stored blob")
        return [
            f"stored {obj.size} bytes as sha256:{obj.digest[:16]}… (AES-256-GCM, per-object key)",
            "on-disk bytes contain no plaintext; read-back verified against the digest",
        ]

    def denied_access() -> list[str]:
        ws.access.create_principal(admin, "mallory", PrincipalKind.USER)
        ws.access.bind(admin, "mallory", "consumer", "default")
        token = ws.access.create_token(admin, "mallory")
        mallory = ws.access.authenticate(token.secret)
        try:
            ws.objects.get(mallory, "default", "policies/loan-terms.txt", st.work / "stolen.txt")
        except AccessDenied as e:
            denied = [e2 for e2 in ws.audit.query(_q("mallory")) if e2.outcome == "denied"]
            expect(bool(denied), "the denial was not audited")
            expect(not (st.work / "stolen.txt").exists(), "data leaked despite the denial")
            return [
                f"mallory (consumer) refused: {e.message}",
                f"audited as entry #{denied[-1].seq}",
            ]
        raise DemoFailed("mallory could read a confidential object")

    def tampered_blob() -> list[str]:
        obj = ws.objects.get(admin, "default", "policies/loan-terms.txt", st.work / "again.txt")
        path = _blob_file(ws, obj.digest)
        original = path.read_bytes()
        flipped = bytearray(original)
        flipped[len(flipped) // 2] ^= 0x01
        path.write_bytes(bytes(flipped))
        try:
            ws.blobs.read_bytes(obj.digest)
            raise DemoFailed("a flipped byte went unnoticed")
        except BlobCorrupted as e:
            evidence = [f"one flipped bit detected: {e.message}"]
        finally:
            path.write_bytes(original)
        return evidence

    def key_rotation() -> list[str]:
        result = ws.keys.rotate(admin)
        data = ws.blobs.read_bytes(ws.objects.list(admin, "default")[0].digest)
        expect(data == secret.read_bytes(), "object unreadable after rotation")
        return [
            f"KEK v{result.new_version} active, {result.rewrapped} data keys re-wrapped, "
            "data intact"
        ]

    def audit_tamper() -> list[str]:
        before = ws.audit.verify()
        expect(before.ok, f"audit log not intact before the test: {before.problems}")
        db = ws.home / "bastion.db"
        if not db.exists():
            return [f"audit log intact: {before.entries} entries (tamper test needs SQLite)"]
        victim = before.entries // 2
        con = sqlite3.connect(db)
        try:
            (orig,) = con.execute(
                "SELECT outcome FROM audit_entries WHERE seq=?", (victim,)
            ).fetchone()
            forged = "allowed" if orig != "allowed" else "denied"
            con.execute("UPDATE audit_entries SET outcome=? WHERE seq=?", (forged, victim))
            con.commit()
            after = ws.audit.verify()
        finally:
            con.execute("UPDATE audit_entries SET outcome=? WHERE seq=?", (orig, victim))
            con.commit()
            con.close()
        expect(not after.ok and after.first_bad_seq == victim, "edited audit entry not detected")
        expect(ws.audit.verify().ok, "audit log not intact after restoring")
        return [
            f"intact: {before.entries} entries, {before.checkpoints_verified} signed checkpoints",
            f"edited entry #{victim} detected: {after.problems[0]}",
        ]

    r.step("foundation", "encrypted store round trip", store_roundtrip)
    r.step("foundation", "unauthorized read is denied and audited", denied_access)
    r.step("foundation", "tampered blob is detected", tampered_blob)
    r.step("foundation", "key rotation re-wraps without re-encrypting", key_rotation)
    r.step("foundation", "tampered audit log is detected", audit_tamper)


def _q(actor: str) -> AuditQuery:
    return AuditQuery(actor=actor, limit=1000)


__all__ = ["DemoState", "run_foundation"]
