"""The local keyring: unlocking, file protection, KEK rotation/retirement, signing keys."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from bastion.core.crypto.interface import KeyAlgorithm, KeyStatus
from bastion.core.crypto.keyring import LocalKeyring, MasterKeySource
from bastion.core.crypto.signers import KeyringSigner, KeyringVerifier
from bastion.core.errors import (
    ConfigurationError,
    CryptoError,
    KeyUnavailable,
    NotFound,
    WrongPassphrase,
)

FAST_N = 2**14


@pytest.fixture
def ring_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "keyring.json"


@pytest.fixture
def ring(ring_path: Path, master_key: MasterKeySource) -> LocalKeyring:
    return LocalKeyring.create(ring_path, master_key)


def test_passphrase_keyring_opens_with_right_passphrase(ring_path: Path) -> None:
    created = LocalKeyring.create(
        ring_path, MasterKeySource.from_passphrase("correct horse"), scrypt_n=FAST_N
    )
    wrapped = created.wrap(b"k" * 32, b"ctx")
    reopened = LocalKeyring.open(ring_path, MasterKeySource.from_passphrase("correct horse"))
    assert reopened.unwrap(wrapped, b"ctx") == b"k" * 32


def test_wrong_passphrase_attack_refused(ring_path: Path) -> None:
    LocalKeyring.create(
        ring_path, MasterKeySource.from_passphrase("correct horse"), scrypt_n=FAST_N
    )
    with pytest.raises(WrongPassphrase) as e:
        LocalKeyring.open(ring_path, MasterKeySource.from_passphrase("battery staple"))
    assert "correct horse" not in e.value.diagnostics()


def test_wrong_env_master_key_refused(ring: LocalKeyring, ring_path: Path) -> None:
    other = MasterKeySource.from_env_key(base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(WrongPassphrase):
        LocalKeyring.open(ring_path, other)


def test_env_keyring_needs_env_key_not_passphrase(ring: LocalKeyring, ring_path: Path) -> None:
    with pytest.raises(KeyUnavailable):
        LocalKeyring.open(ring_path, MasterKeySource.from_passphrase("anything"))


def test_passphrase_keyring_needs_passphrase(ring_path: Path, master_key: MasterKeySource) -> None:
    LocalKeyring.create(ring_path, MasterKeySource.from_passphrase("pw"), scrypt_n=FAST_N)
    with pytest.raises(KeyUnavailable):
        LocalKeyring.open(ring_path, master_key)


def test_env_key_mode_round_trip(
    ring: LocalKeyring, ring_path: Path, master_key: MasterKeySource
) -> None:
    doc = json.loads(ring_path.read_text())
    assert doc["master"]["source"] == "env" and "kdf" not in doc["master"]
    wrapped = ring.wrap(b"d" * 32, b"blob:1")
    assert LocalKeyring.open(ring_path, master_key).unwrap(wrapped, b"blob:1") == b"d" * 32


@pytest.mark.parametrize("bad", ["", "not base64!!", base64.b64encode(b"short").decode()])
def test_malformed_env_master_key_is_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        MasterKeySource.from_env_key(bad)


def test_empty_passphrase_is_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        MasterKeySource.from_passphrase("")


def test_missing_keyring_is_key_unavailable(tmp_path: Path, master_key: MasterKeySource) -> None:
    with pytest.raises(KeyUnavailable) as e:
        LocalKeyring.open(tmp_path / "nope.json", master_key)
    assert e.value.hint


def test_create_refuses_to_overwrite_existing_keyring(
    ring: LocalKeyring, ring_path: Path, master_key: MasterKeySource
) -> None:
    with pytest.raises(ConfigurationError):
        LocalKeyring.create(ring_path, master_key)


def test_keyring_file_is_mode_0600(ring: LocalKeyring, ring_path: Path) -> None:
    assert stat.S_IMODE(ring_path.stat().st_mode) == 0o600
    ring.rotate_kek()  # rewrites the file: still 0600
    assert stat.S_IMODE(ring_path.stat().st_mode) == 0o600


def test_keyring_file_holds_no_plaintext_key_material(
    ring: LocalKeyring, ring_path: Path, master_key_b64: str
) -> None:
    ring.ed25519_key("audit")
    text = ring_path.read_text()
    assert master_key_b64 not in text
    assert "PRIVATE KEY" not in text


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"\xff\xfe garbage",
        b"[1, 2]",
        b'{"format": "something-else/9"}',
    ],
)
def test_corrupted_keyring_json_is_key_unavailable(
    ring: LocalKeyring, ring_path: Path, master_key: MasterKeySource, content: bytes
) -> None:
    ring_path.write_bytes(content)
    with pytest.raises(KeyUnavailable):
        LocalKeyring.open(ring_path, master_key)


@pytest.mark.parametrize("damage", ["drop_master", "garble_check", "drop_keks_field"])
def test_structurally_corrupted_keyring_is_a_typed_error(
    ring: LocalKeyring, ring_path: Path, master_key: MasterKeySource, damage: str
) -> None:
    """A keyring that is valid JSON but damaged must fail with a CryptoError, not a KeyError."""
    doc = json.loads(ring_path.read_text())
    if damage == "drop_master":
        del doc["master"]
    elif damage == "garble_check":
        doc["master"]["check"] = "!!not base64!!"
    else:
        del doc["keks"]
    ring_path.write_text(json.dumps(doc))
    with pytest.raises(CryptoError):
        opened = LocalKeyring.open(ring_path, master_key)
        opened.wrap(b"x" * 32, b"ctx")


def test_tampered_wrapped_key_fails_authentication(ring: LocalKeyring) -> None:
    wrapped = ring.wrap(b"d" * 32, b"blob:1")
    with pytest.raises(CryptoError):
        ring.unwrap(wrapped, b"blob:2")  # context substitution
    bad = type(wrapped)(wrapped.kek_id, wrapped.kek_version, wrapped.blob[:-1] + b"\x00")
    with pytest.raises(CryptoError):
        ring.unwrap(bad, b"blob:1")


def test_kek_rotation_keeps_old_data_readable(
    ring: LocalKeyring, ring_path: Path, master_key: MasterKeySource
) -> None:
    old = ring.wrap(b"a" * 32, b"c1")
    new_version = ring.rotate_kek()
    assert new_version == 2 and ring.active_kek_version() == 2
    new = ring.wrap(b"b" * 32, b"c2")
    assert new.kek_version == 2 and old.kek_version == 1
    reopened = LocalKeyring.open(ring_path, master_key)
    assert reopened.unwrap(old, b"c1") == b"a" * 32
    assert reopened.unwrap(new, b"c2") == b"b" * 32
    statuses = {k.version: k.status for k in reopened.kek_versions()}
    assert statuses == {1: KeyStatus.ROTATED, 2: KeyStatus.ACTIVE}


def test_retired_kek_no_longer_unwraps(
    ring: LocalKeyring, ring_path: Path, master_key: MasterKeySource
) -> None:
    old = ring.wrap(b"a" * 32, b"c1")
    ring.rotate_kek()
    ring.retire_kek(1)
    with pytest.raises(KeyUnavailable):
        ring.unwrap(old, b"c1")
    with pytest.raises(KeyUnavailable):
        LocalKeyring.open(ring_path, master_key).unwrap(old, b"c1")
    assert "wrapped" not in json.loads(ring_path.read_text())["keks"][0]


def test_active_kek_cannot_be_retired(ring: LocalKeyring) -> None:
    with pytest.raises(CryptoError):
        ring.retire_kek(ring.active_kek_version())


def test_unknown_kek_version_is_key_unavailable(ring: LocalKeyring) -> None:
    wrapped = ring.wrap(b"a" * 32, b"c")
    with pytest.raises(KeyUnavailable):
        ring.unwrap(type(wrapped)(wrapped.kek_id, 99, wrapped.blob), b"c")
    with pytest.raises(KeyUnavailable):
        ring.unwrap(type(wrapped)("kms", wrapped.kek_version, wrapped.blob), b"c")


def test_signing_key_created_on_first_use_and_rotates(ring: LocalKeyring) -> None:
    signer = KeyringSigner(ring, "audit")
    verifier = KeyringVerifier(ring, "audit")
    old_id, sig = signer.key_id, signer.sign(b"statement")
    assert verifier.verify(old_id, sig, b"statement")
    assert not verifier.verify(old_id, sig, b"statement!")
    new_id = ring.rotate_signing_key("audit")
    assert new_id != old_id
    infos = {k.key_id: k for k in ring.signing_keys("audit")}
    assert infos[old_id].status == KeyStatus.ROTATED and infos[new_id].status == KeyStatus.ACTIVE
    assert infos[new_id].algorithm == KeyAlgorithm.ED25519
    # Rotated keys still verify what they signed; new signatures use the new key.
    assert verifier.verify(old_id, sig, b"statement")
    fresh = KeyringSigner(ring, "audit")
    assert fresh.key_id == new_id
    assert verifier.verify(new_id, fresh.sign(b"later"), b"later")


def test_revoked_signing_key_no_longer_verifies(ring: LocalKeyring) -> None:
    signer = KeyringSigner(ring, "audit")
    key_id, sig = signer.key_id, signer.sign(b"s")
    ring.revoke_signing_key(key_id)
    assert not KeyringVerifier(ring, "audit").verify(key_id, sig, b"s")
    with pytest.raises(NotFound):
        ring.revoke_signing_key("audit#unknown")


def test_signature_from_other_purpose_key_is_rejected(ring: LocalKeyring) -> None:
    other = KeyringSigner(ring, "statements")
    sig = other.sign(b"data")
    assert not KeyringVerifier(ring, "audit").verify(other.key_id, sig, b"data")


def test_rotation_by_another_process_is_seen_after_reload(
    ring: LocalKeyring, ring_path: Path, master_key: MasterKeySource
) -> None:
    other = LocalKeyring.open(ring_path, master_key)
    other.rotate_kek()
    ring.reload()
    assert ring.active_kek_version() == 2
