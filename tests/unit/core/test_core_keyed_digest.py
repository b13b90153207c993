"""The keyring's keyed digest (HMAC-SHA256): the pseudonym of an erased data subject."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from bastion.core.crypto.keyring import LocalKeyring, MasterKeySource


def _master() -> MasterKeySource:
    return MasterKeySource.from_env_key(base64.b64encode(os.urandom(32)).decode())


def test_keyed_digest_is_stable_per_keyring_and_survives_reopen(tmp_path: Path) -> None:
    master = _master()
    ring = LocalKeyring.create(tmp_path / "k.json", master)
    first = ring.keyed_digest("erasure-subject", b"C-1042")
    assert first == ring.keyed_digest("erasure-subject", b"C-1042")
    assert first == LocalKeyring.open(tmp_path / "k.json", master).keyed_digest(
        "erasure-subject", b"C-1042"
    )
    assert first != ring.keyed_digest("erasure-subject", b"C-1043")
    assert first != ring.keyed_digest("other-purpose", b"C-1042")


def test_a_guessable_id_is_not_recoverable_by_hashing_candidates(tmp_path: Path) -> None:
    ring = LocalKeyring.create(tmp_path / "k.json", _master())
    other = LocalKeyring.create(tmp_path / "o.json", _master())
    digest = ring.keyed_digest("erasure-subject", b"1042")
    # a dictionary attack by plain hashing finds nothing; another keyring disagrees
    assert digest not in {hashlib.sha256(str(i).encode()).hexdigest() for i in range(5000)}
    assert digest != other.keyed_digest("erasure-subject", b"1042")
    # the MAC key is stored wrapped by the master key, never in clear
    doc = json.loads((tmp_path / "k.json").read_text())
    (entry,) = doc["mac_keys"]
    assert entry["purpose"] == "erasure-subject" and "key" not in entry
