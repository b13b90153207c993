"""Which model-signing keys to trust, from the keyring *and* the audit log.

The keyring file alone cannot be the authority: whoever can write it could set
a revoked key back to ``active``.  ``trusted_keys`` merges each key's keyring
status with the events the audit log records for it
(:mod:`bastion.core.crypto.ledger`) and keeps the stricter:

- revoked in either -> ``REVOKED`` (refuses every signature);
- rotated in either -> ``ROTATED`` with ``not_after`` = the rotation time the
  audit log records (else the keyring's, else the successor key's creation),
  so it verifies only what the audit log shows it signed before then;
- otherwise ``ACTIVE``.

Example::

    keys = trusted_keys(keyring.signing_keys(purpose), ledger.events(), identity)
    verify_model(path, bundle, trusted_keys=keys, policy=..., signed_at=when)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from bastion.core.crypto.interface import KeyStatus as CoreKeyStatus
from bastion.core.crypto.interface import SigningKeyInfo
from bastion.core.crypto.ledger import KeyEvents
from bastion.model_security.signing.types import KeyStatus, TrustedKey

_BEGINNING = dt.datetime.min.replace(tzinfo=dt.UTC)


def trusted_keys(
    infos: Sequence[SigningKeyInfo], events: Mapping[str, KeyEvents], identity: str
) -> list[TrustedKey]:
    ordered = sorted(infos, key=lambda i: i.created_at)
    out = []
    for n, info in enumerate(ordered):
        ev = events.get(info.key_id, KeyEvents())
        pem = info.public_pem.encode()
        if info.status == CoreKeyStatus.REVOKED or ev.revoked_at is not None:
            out.append(TrustedKey(info.key_id, pem, identity, KeyStatus.REVOKED))
        elif info.status == CoreKeyStatus.ROTATED or ev.rotated_at is not None:
            successor = ordered[n + 1].created_at if n + 1 < len(ordered) else None
            # No known rotation time at all: trust nothing it signed (fail closed).
            not_after = ev.rotated_time or _time(successor) or _BEGINNING
            out.append(TrustedKey(info.key_id, pem, identity, KeyStatus.ROTATED, not_after))
        else:
            out.append(TrustedKey(info.key_id, pem, identity, KeyStatus.ACTIVE))
    return out


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


__all__ = ["trusted_keys"]
