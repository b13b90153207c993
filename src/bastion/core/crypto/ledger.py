"""The signing-key ledger: rotations and revocations as the audit log records them.

The keyring file says which key is active, rotated or revoked, but anyone who
can write that file could flip a revoked key back to active.  Every rotation
and revocation is therefore also an audit entry (``keys.signing_rotated`` with
``{"key_id": new, "rotated": [old, ...]}``, ``keys.signing_revoked`` with
``{"key_id": id}``), and verification reads its key status from *both*: the
stricter one wins.  A key the log says is revoked is revoked whatever the
keyring says; a key the log says was rotated signs nothing after that entry.
Deleting those entries breaks ``bastion audit verify``.

``signed_at`` answers "when did the log record that this key signed this
digest": the time of the registration entry, which the rotation time is
compared with, so a back-dated row in a table cannot make an old key's new
signature look old.

Example::

    ledger = SigningKeyLedger(audit)
    events = ledger.events()            # {key_id: KeyEvents(rotated_at, revoked_at)}
    when = ledger.signed_at("model.registered", "project/p/model/m", digest, key_id)
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from bastion.core.audit.entries import AuditEntry, AuditQuery
from bastion.core.audit.log import AuditLog

ROTATED = "keys.signing_rotated"
REVOKED = "keys.signing_revoked"
RESOURCE = "system/keys"


@dataclass(frozen=True)
class KeyEvents:
    """When the audit log says a key was rotated out / revoked (ISO times)."""

    rotated_at: str | None = None
    revoked_at: str | None = None

    @property
    def rotated_time(self) -> dt.datetime | None:
        return dt.datetime.fromisoformat(self.rotated_at) if self.rotated_at else None


class SigningKeyLedger:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def events(self) -> dict[str, KeyEvents]:
        rotated: dict[str, str] = {}
        revoked: dict[str, str] = {}
        for e in self._entries(ROTATED):
            for old in _strings(_details(e).get("rotated")):
                rotated.setdefault(old, e.ts)
        for e in self._entries(REVOKED):
            key_id = _details(e).get("key_id")
            if isinstance(key_id, str):
                revoked.setdefault(key_id, e.ts)
        return {
            k: KeyEvents(rotated.get(k), revoked.get(k)) for k in sorted({*rotated, *revoked})
        }

    def signed_at(
        self, action: str, resource: str, digest: str, key_id: str
    ) -> dt.datetime | None:
        """Time of the first ``action`` entry on ``resource`` recording ``key_id``
        signing ``digest`` (details ``root_digest`` and ``signer``), if any."""
        after = 0
        while True:
            page = self._audit.query(
                AuditQuery(action=action, resource=resource, after_seq=after, limit=10_000)
            )
            for e in page:
                d = _details(e)
                if (e.resource == resource and e.outcome == "ok"
                        and d.get("root_digest") == digest and d.get("signer") == key_id):
                    return dt.datetime.fromisoformat(e.ts)
            if len(page) < 10_000:
                return None
            after = page[-1].seq

    def _entries(self, action: str) -> list[AuditEntry]:
        out: list[AuditEntry] = []
        after = 0
        while True:
            page = self._audit.query(
                AuditQuery(action=action, resource=RESOURCE, after_seq=after, limit=10_000)
            )
            out.extend(e for e in page if e.resource == RESOURCE and e.outcome == "ok")
            if len(page) < 10_000:
                return out
            after = page[-1].seq


def _details(e: AuditEntry) -> dict[str, object]:
    try:
        doc = json.loads(e.details)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


__all__ = ["REVOKED", "ROTATED", "KeyEvents", "SigningKeyLedger"]
