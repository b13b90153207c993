"""The local keyring: one 0600 JSON file holding every key, wrapped.

Layout of trust::

    master key  (scrypt(passphrase) or 32 raw bytes from the environment)
      ├── KEK v1, v2, ...     AES-256 key-encryption keys, wrapped by the master key
      │     └── data keys     one per blob, wrapped by a KEK (stored beside the blob)
      ├── signing keys        Ed25519 (audit checkpoints, statements) and
      │                       ECDSA P-256 (model signing), wrapped by the master key
      └── MAC keys            random HMAC-SHA256 keys, one per purpose (e.g. the
                              keyed pseudonym of an erased data subject), wrapped
                              by the master key; they never leave the keyring

Rotation adds a KEK version and re-wraps data keys (the blob store does the
walk); data is never re-encrypted.  A retired KEK no longer unwraps.

Example::

    ring = LocalKeyring.create(path, MasterKeySource.from_passphrase("correct horse"))
    wrapped = ring.wrap(data_key, b"blob:abc")
    assert ring.unwrap(wrapped, b"blob:abc") == data_key
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bastion.core.crypto.interface import (
    KekInfo,
    KeyAlgorithm,
    KeyStatus,
    SigningKeyInfo,
    WrappedKey,
)
from bastion.core.errors import (
    ConfigurationError,
    CryptoError,
    KeyringDamaged,
    KeyUnavailable,
    NotFound,
    WrongPassphrase,
)

FORMAT = "bastion-keyring/1"
_CHECK_PLAINTEXT = b"bastion keyring check v1"
#: scrypt cost (2**17, r=8: 128 MiB, the OWASP recommendation)
DEFAULT_SCRYPT_N = 2**17


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    nonce = os.urandom(12)
    return _b64(nonce + AESGCM(key).encrypt(nonce, plaintext, aad))


def _open(key: bytes, sealed: object, aad: bytes) -> bytes:
    """Open a sealed value: ``ValueError`` if it is malformed, ``InvalidTag`` if forged."""
    if not isinstance(sealed, str):
        raise ValueError("a sealed value is not text")
    raw = _unb64(sealed)
    if len(raw) < 12 + 16:
        raise ValueError("a sealed value is too short")
    return AESGCM(key).decrypt(raw[:12], raw[12:], aad)


def _open_entry(key: bytes, sealed: object, aad: bytes) -> bytes:
    # The master key already opened the check value, so any failure here is a
    # damaged entry: one error for every way (not text, not base64, too short
    # for a nonce, failed tag), never a raw ValueError or a traceback.
    try:
        return _open(key, sealed, aad)
    except (ValueError, InvalidTag) as e:
        raise KeyringDamaged(
            "a sealed key in the keyring is damaged",
            hint="restore the keyring file from your backup",
        ) from e


@dataclass(frozen=True)
class MasterKeySource:
    """Where the master key comes from: a passphrase or raw bytes from the environment."""

    passphrase: str | None = None
    raw_key: bytes | None = None

    @classmethod
    def from_passphrase(cls, passphrase: str) -> MasterKeySource:
        if not passphrase:
            raise ConfigurationError(
                "the keyring passphrase is empty",
                hint="set BASTION_PASSPHRASE or type a passphrase when asked",
            )
        return cls(passphrase=passphrase)

    @classmethod
    def from_env_key(cls, encoded: str) -> MasterKeySource:
        try:
            raw = base64.b64decode(encoded.strip(), validate=True)
        except ValueError as e:
            raise ConfigurationError(
                "BASTION_MASTER_KEY is not valid base64",
                hint="generate one with: python -c 'import os,base64;"
                "print(base64.b64encode(os.urandom(32)).decode())'",
            ) from e
        if len(raw) != 32:
            raise ConfigurationError(
                f"BASTION_MASTER_KEY must decode to 32 bytes, got {len(raw)}",
                hint="use a base64-encoded 256-bit random key",
            )
        return cls(raw_key=raw)

    @property
    def mode(self) -> str:
        return "env" if self.raw_key is not None else "passphrase"


class LocalKeyring:
    """A keyring kept in one file, implementing ``KeyManager`` and ``SigningKeys``."""

    kek_id = "local"

    def __init__(self, path: Path, master: bytes, doc: dict[str, Any]) -> None:
        self._path = path
        self._master = master
        self._doc = doc
        self._mtime = self._stamp()

    def _stamp(self) -> int:
        try:
            return self._path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def _fresh(self) -> None:
        """Re-read the file if another process changed it (rotation, revocation).

        A long-running server must not keep wrapping data keys under a KEK that
        the CLI retired, nor sign with a revoked key."""
        stamp = self._stamp()
        if stamp != self._mtime:
            self._doc = _read_doc(self._path)
            self._mtime = stamp

    # -- life cycle ---------------------------------------------------------
    @classmethod
    def create(
        cls, path: Path, source: MasterKeySource, *, scrypt_n: int = DEFAULT_SCRYPT_N
    ) -> LocalKeyring:
        if path.exists():
            raise ConfigurationError(
                f"a keyring already exists at {path}",
                hint="open it instead, or choose another workspace folder",
            )
        master_doc: dict[str, Any] = {"source": source.mode}
        if source.passphrase is not None:
            salt = os.urandom(16)
            master_doc["kdf"] = {
                "name": "scrypt",
                "salt": _b64(salt),
                "n": scrypt_n,
                "r": 8,
                "p": 1,
            }
            master = _derive(source.passphrase, master_doc["kdf"])
        else:
            assert source.raw_key is not None
            master = source.raw_key
        master_doc["check"] = _seal(master, _CHECK_PLAINTEXT, b"check")
        doc: dict[str, Any] = {"format": FORMAT, "master": master_doc, "keks": [], "signing": []}
        ring = cls(path, master, doc)
        ring._add_kek()
        path.parent.mkdir(parents=True, exist_ok=True)
        ring._write()
        return ring

    @classmethod
    def open(cls, path: Path, source: MasterKeySource) -> LocalKeyring:
        doc = _read_doc(path)
        master_doc = doc["master"]
        if master_doc["source"] == "passphrase":
            if source.passphrase is None:
                raise KeyUnavailable(
                    f"the keyring at {path} is protected by a passphrase",
                    hint="set BASTION_PASSPHRASE (or type it when asked)",
                )
            master = _derive(source.passphrase, master_doc["kdf"])
        else:
            if source.raw_key is None:
                raise KeyUnavailable(
                    f"the keyring at {path} expects its master key from the environment",
                    hint="set BASTION_MASTER_KEY to the base64 key used at init",
                )
            master = source.raw_key
        try:
            _open(master, master_doc["check"], b"check")
        except ValueError:
            raise KeyUnavailable(
                f"the keyring at {path} is damaged: its check value is unreadable",
                hint="restore the keyring file from your backup",
            ) from None
        except InvalidTag:
            raise WrongPassphrase(
                f"cannot unlock the keyring at {path}: wrong passphrase or master key",
                hint="check BASTION_PASSPHRASE / BASTION_MASTER_KEY",
            ) from None
        return cls(path, master, doc)

    # -- KeyManager ---------------------------------------------------------
    def active_kek_version(self) -> int:
        self._fresh()
        for k in self._doc["keks"]:
            if k["status"] == KeyStatus.ACTIVE:
                return int(k["version"])
        raise KeyUnavailable("the keyring has no active key-encryption key")

    def kek_versions(self) -> list[KekInfo]:
        return [
            KekInfo(int(k["version"]), KeyStatus(k["status"]), str(k["created_at"]))
            for k in self._doc["keks"]
        ]

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        version = self.active_kek_version()
        kek = self._kek(version)
        nonce = os.urandom(12)
        blob = nonce + AESGCM(kek).encrypt(nonce, data_key, _wrap_aad(version, context))
        return WrappedKey(self.kek_id, version, blob)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        self._fresh()
        if wrapped.kek_id != self.kek_id:
            raise KeyUnavailable(f"data key was wrapped by key manager {wrapped.kek_id!r}")
        kek = self._kek(wrapped.kek_version)
        try:
            return AESGCM(kek).decrypt(
                wrapped.blob[:12], wrapped.blob[12:], _wrap_aad(wrapped.kek_version, context)
            )
        except InvalidTag:
            raise CryptoError("a wrapped data key failed authentication") from None

    def rotate_kek(self) -> int:
        """Add a new active KEK version; older ones stay readable until retired."""
        with self._locked():
            for k in self._doc["keks"]:
                if k["status"] == KeyStatus.ACTIVE:
                    k["status"] = KeyStatus.ROTATED.value
            version = self._add_kek()
            self._write()
        return version

    def retire_kek(self, version: int) -> None:
        """Retire a non-active KEK; data keys still wrapped by it become unreadable."""
        with self._locked():
            entry = self._kek_entry(version)
            if entry["status"] == KeyStatus.ACTIVE:
                raise CryptoError(
                    f"KEK v{version} is the active key", hint="rotate first, then retire"
                )
            entry["status"] = KeyStatus.RETIRED.value
            entry.pop("wrapped", None)
            self._write()

    # -- signing keys ---------------------------------------------------------
    def ed25519_key(self, purpose: str) -> tuple[str, Ed25519PrivateKey]:
        key_id, der = self._active_signing(purpose, KeyAlgorithm.ED25519)
        key = serialization.load_der_private_key(der, password=None)
        return key_id, cast(Ed25519PrivateKey, key)

    def ecdsa_key(self, purpose: str) -> tuple[str, ec.EllipticCurvePrivateKey]:
        key_id, der = self._active_signing(purpose, KeyAlgorithm.ECDSA_P256)
        key = serialization.load_der_private_key(der, password=None)
        return key_id, cast(ec.EllipticCurvePrivateKey, key)

    def signing_keys(self, purpose: str | None = None) -> list[SigningKeyInfo]:
        self._fresh()
        return [
            SigningKeyInfo(
                key_id=s["key_id"],
                purpose=s["purpose"],
                algorithm=KeyAlgorithm(s["algorithm"]),
                status=KeyStatus(s["status"]),
                public_pem=s["public_pem"],
                created_at=s["created_at"],
            )
            for s in self._doc["signing"]
            if purpose is None or s["purpose"] == purpose
        ]

    def rotate_signing_key(self, purpose: str) -> str:
        """Mark the active key for ``purpose`` rotated and create a new one.

        The rotated key's private half is destroyed: it can never sign again,
        and its public half verifies only what it signed before the rotation
        (the time the audit log records, see ``bastion.core.crypto.ledger``)."""
        with self._locked():
            algorithm = None
            for s in self._doc["signing"]:
                if s["purpose"] == purpose and s["status"] == KeyStatus.ACTIVE:
                    s["status"] = KeyStatus.ROTATED.value
                    s["rotated_at"] = _now()
                    s.pop("wrapped_private", None)
                    algorithm = KeyAlgorithm(s["algorithm"])
            if algorithm is None:
                raise NotFound(f"no active signing key for {purpose!r}")
            key_id = self._new_signing(purpose, algorithm)
            self._write()
        return key_id

    def revoke_signing_key(self, key_id: str) -> None:
        with self._locked():
            for s in self._doc["signing"]:
                if s["key_id"] == key_id:
                    s["status"] = KeyStatus.REVOKED.value
                    s.pop("wrapped_private", None)
                    self._write()
                    return
        raise NotFound(f"no signing key {key_id!r}", hint="list keys with: bastion keys list")

    # -- keyed digests --------------------------------------------------------
    def keyed_digest(self, purpose: str, message: bytes) -> str:
        """HMAC-SHA256 of ``message`` under this keyring's MAC key for ``purpose`` (hex).

        A pseudonym that cannot be recomputed without the keyring: a plain hash
        of a guessable identifier (an account number, an e-mail) is reversed by
        hashing every candidate; this is not.  The key is created on first use
        and kept for good (rotating it would change every pseudonym)."""
        key = self._mac_key(purpose)
        mac = hmac.HMAC(key, hashes.SHA256())
        mac.update(message)
        return mac.finalize().hex()

    def _mac_key(self, purpose: str) -> bytes:
        self._fresh()
        entry = self._find_mac(purpose)
        if entry is None:
            with self._locked():
                entry = self._find_mac(purpose)
                if entry is None:
                    self._doc.setdefault("mac_keys", []).append(
                        {
                            "purpose": purpose,
                            "created_at": _now(),
                            "wrapped": _seal(
                                self._master, os.urandom(32), b"mac|" + purpose.encode()
                            ),
                        }
                    )
                    self._write()
                    entry = self._find_mac(purpose)
        assert entry is not None
        return _open_entry(self._master, entry.get("wrapped"), b"mac|" + purpose.encode())

    def _find_mac(self, purpose: str) -> dict[str, Any] | None:
        for m in self._doc.get("mac_keys", []):
            if m.get("purpose") == purpose:
                return cast(dict[str, Any], m)
        return None

    # -- internals ----------------------------------------------------------
    def _active_signing(self, purpose: str, algorithm: KeyAlgorithm) -> tuple[str, bytes]:
        self._fresh()
        entry = self._find_active_signing(purpose)
        if entry is None:
            with self._locked():
                entry = self._find_active_signing(purpose)
                if entry is None:
                    self._new_signing(purpose, algorithm)
                    self._write()
                    entry = self._find_active_signing(purpose)
        assert entry is not None
        if entry["algorithm"] != algorithm:
            raise KeyUnavailable(f"signing key for {purpose!r} is {entry['algorithm']}")
        aad = b"signing|" + entry["key_id"].encode()
        return entry["key_id"], _open_entry(self._master, entry.get("wrapped_private"), aad)

    def _find_active_signing(self, purpose: str) -> dict[str, Any] | None:
        for s in self._doc["signing"]:
            if s["purpose"] == purpose and s["status"] == KeyStatus.ACTIVE:
                return cast(dict[str, Any], s)
        return None

    def _new_signing(self, purpose: str, algorithm: KeyAlgorithm) -> str:
        private: Ed25519PrivateKey | ec.EllipticCurvePrivateKey
        if algorithm is KeyAlgorithm.ED25519:
            private = Ed25519PrivateKey.generate()
        else:
            private = ec.generate_private_key(ec.SECP256R1())
        der = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key_id = f"{purpose}#{secrets.token_hex(4)}"
        self._doc["signing"].append(
            {
                "key_id": key_id,
                "purpose": purpose,
                "algorithm": algorithm.value,
                "status": KeyStatus.ACTIVE.value,
                "created_at": _now(),
                "public_pem": public_pem.decode("ascii"),
                "wrapped_private": _seal(self._master, der, b"signing|" + key_id.encode()),
            }
        )
        return key_id

    def _add_kek(self) -> int:
        version = 1 + max((int(k["version"]) for k in self._doc["keks"]), default=0)
        kek = AESGCM.generate_key(bit_length=256)
        self._doc["keks"].append(
            {
                "version": version,
                "status": KeyStatus.ACTIVE.value,
                "created_at": _now(),
                "wrapped": _seal(self._master, kek, b"kek|%d" % version),
            }
        )
        return version

    def _kek_entry(self, version: int) -> dict[str, Any]:
        for k in self._doc["keks"]:
            if int(k["version"]) == version:
                return cast(dict[str, Any], k)
        raise KeyUnavailable(f"the keyring has no KEK version {version}")

    def _kek(self, version: int) -> bytes:
        entry = self._kek_entry(version)
        if entry["status"] == KeyStatus.RETIRED:
            raise KeyUnavailable(
                f"KEK v{version} is retired; data wrapped by it can no longer be read",
                hint="re-wrap data with `bastion keys rotate` before retiring a version",
            )
        return _open_entry(self._master, entry.get("wrapped"), b"kek|%d" % version)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialize keyring mutations across processes; reload before mutating."""
        lock_path = self._path.with_suffix(".lock")
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._doc = _read_doc(self._path)
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def reload(self) -> None:
        self._doc = _read_doc(self._path)
        self._mtime = self._stamp()

    def _write(self) -> None:
        tmp = self._path.with_name(self._path.name + f".{secrets.token_hex(4)}.tmp")
        data = json.dumps(self._doc, indent=2, sort_keys=True).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path)
        self._mtime = self._stamp()
        dir_fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _check_structure(doc: dict[str, Any]) -> None:
    """Refuse a keyring whose shape is damaged before any field is used."""
    master = doc.get("master")
    if not isinstance(master, dict) or master.get("source") not in ("passphrase", "env"):
        raise ValueError("the master-key section is missing or damaged")
    if not isinstance(master.get("check"), str):
        raise ValueError("the master-key check value is missing")
    if master["source"] == "passphrase" and not isinstance(master.get("kdf"), dict):
        raise ValueError("the passphrase KDF parameters are missing")
    for section in ("keks", "signing"):
        entries = doc.get(section)
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError(f"the {section!r} section is missing or damaged")
    macs = doc.get("mac_keys", [])
    if not isinstance(macs, list) or not all(
        isinstance(m, dict) and isinstance(m.get("purpose"), str) for m in macs
    ):
        raise ValueError("the 'mac_keys' section is damaged")
    statuses = {s.value for s in KeyStatus}
    for kek in doc["keks"]:
        if not isinstance(kek.get("version"), int) or kek.get("status") not in statuses:
            raise ValueError("a key-encryption key entry is damaged")
    algorithms = {a.value for a in KeyAlgorithm}
    for key in doc["signing"]:
        fields = ("key_id", "purpose", "public_pem", "created_at")
        if (
            not all(isinstance(key.get(f), str) for f in fields)
            or key.get("status") not in statuses
            or key.get("algorithm") not in algorithms
        ):
            raise ValueError("a signing key entry is damaged")


def _wrap_aad(version: int, context: bytes) -> bytes:
    return b"bastion/dk|v%d|" % version + context


def _derive(passphrase: str, kdf: dict[str, Any]) -> bytes:
    try:
        scrypt = Scrypt(
            salt=_unb64(kdf["salt"]), length=32, n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"])
        )
    except (KeyError, ValueError, TypeError) as e:
        raise KeyUnavailable(
            "the keyring's passphrase KDF parameters are damaged",
            hint="restore the keyring file from your backup",
        ) from e
    return scrypt.derive(passphrase.encode("utf-8"))


def _read_doc(path: Path) -> dict[str, Any]:
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise ConfigurationError(
                f"the keyring at {path} is readable or writable by other users "
                f"(mode {mode & 0o777:o})",
                hint=f"restrict it: chmod 600 {path}",
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyUnavailable(
            f"no keyring at {path}",
            hint="create a workspace with `bastion init`, or point BASTION_HOME at one",
        ) from None
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise ValueError(f"unknown format {doc.get('format')!r}")
        _check_structure(doc)
        return cast(dict[str, Any], doc)
    except (ValueError, AttributeError, TypeError) as e:
        raise KeyUnavailable(
            f"the keyring at {path} is unreadable: {e}",
            hint="restore the keyring file from your backup",
        ) from e


__all__ = ["DEFAULT_SCRYPT_N", "LocalKeyring", "MasterKeySource"]
