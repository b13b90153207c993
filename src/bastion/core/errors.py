"""The error tree shared by every Bastion layer.

Every exception Bastion raises derives from :class:`BastionError`, which carries
a one-line ``message`` plus a ``hint`` (how to fix) and ``diagnostics()``: the
human text the CLI prints and the API returns.  Layers add their own bases.

::

    BastionError
    ├── ConfigurationError          bad settings, missing workspace
    ├── InputError                  bad user input (file, argument, payload)
    ├── NotFound                    an object that does not exist
    ├── Conflict                    an object that already exists / wrong state
    ├── AccessError
    │   ├── AuthenticationFailed    missing / garbage / expired / revoked token
    │   └── AccessDenied            authenticated but not permitted (audited)
    ├── CryptoError
    │   ├── WrongPassphrase         the keyring cannot be unlocked
    │   └── KeyUnavailable          missing keyring, retired or unknown key
    │       └── KeyringDamaged      a sealed entry of the keyring is damaged
    ├── IntegrityError              stored bytes or records fail verification
    │   ├── BlobCorrupted           a blob fails authentication or digest check
    │   ├── AuditLogTampered        the audit log fails verification
    │   └── VerificationFailed      a signature / digest check on an artifact
    ├── StorageError                I/O faults: disk full, corrupt database
    │   └── StorageFull
    ├── PolicyDenied                a policy / gate refuses an action
    └── RateLimited                 too many requests

Layer bases (``DataSecurityError`` …) live in their layers and derive from
``BastionError`` too; a test asserts every exception class in the package does.

Example::

    try:
        store.get(digest)
    except BlobCorrupted as e:
        print(e.diagnostics())
"""

from __future__ import annotations


class BastionError(Exception):
    """Root of every error Bastion raises."""

    #: short machine-readable code used in API bodies and CLI output
    code: str = "bastion_error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """Human text: what went wrong and, when known, how to fix it."""
        text = self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigurationError(BastionError):
    code = "configuration_error"


class InputError(BastionError):
    """The caller's input is invalid; the message names what and where."""

    code = "invalid_input"


class NotFound(BastionError):
    code = "not_found"


class Conflict(BastionError):
    code = "conflict"


class AccessError(BastionError):
    code = "access_error"


class AuthenticationFailed(AccessError):
    code = "unauthenticated"


class AccessDenied(AccessError):
    code = "forbidden"


class NotVisible(AccessDenied):
    """Denied on a resource the caller may not even see: answered as "not found".

    Raised when no role binding of the caller covers the resource's project (or,
    for system resources, no global binding). Authorization runs before any
    lookup, so the answer is the same whether the resource exists or not: a
    probe learns nothing (the denial is audited all the same).
    """

    code = "not_found"


class CryptoError(BastionError):
    code = "crypto_error"


class WrongPassphrase(CryptoError):
    code = "wrong_passphrase"


class KeyUnavailable(CryptoError):
    code = "key_unavailable"


class KeyringDamaged(KeyUnavailable):
    """An entry of the keyring itself is damaged: no data it protects can be trusted."""


class IntegrityError(BastionError):
    code = "integrity_error"


class BlobCorrupted(IntegrityError):
    code = "blob_corrupted"


class AuditLogTampered(IntegrityError):
    code = "audit_log_tampered"


class VerificationFailed(IntegrityError):
    code = "verification_failed"


class StorageError(BastionError):
    code = "storage_error"


class StorageFull(StorageError):
    code = "storage_full"


class PolicyDenied(BastionError):
    code = "policy_denied"


class RateLimited(BastionError):
    code = "rate_limited"


__all__ = [
    "AccessDenied",
    "AccessError",
    "AuditLogTampered",
    "AuthenticationFailed",
    "BastionError",
    "BlobCorrupted",
    "ConfigurationError",
    "Conflict",
    "CryptoError",
    "InputError",
    "IntegrityError",
    "KeyUnavailable",
    "KeyringDamaged",
    "NotFound",
    "NotVisible",
    "PolicyDenied",
    "RateLimited",
    "StorageError",
    "StorageFull",
    "VerificationFailed",
    "WrongPassphrase",
]
