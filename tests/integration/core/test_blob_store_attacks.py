"""The encrypted blob store on real files: every tamper, substitution and truncation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bastion.core.access.values import PrincipalKind
from bastion.core.crypto.envelope import CHUNK_SIZE
from bastion.core.crypto.keyring import LocalKeyring, MasterKeySource
from bastion.core.errors import AccessDenied, BlobCorrupted, InputError, NotFound
from bastion.core.store._adapters.local_folder import LocalFolderBackend
from bastion.core.store.blobs import EncryptedBlobStore
from conftest import WS


@pytest.fixture
def store(tmp_path: Path, master_key: MasterKeySource) -> EncryptedBlobStore:
    ring = LocalKeyring.create(tmp_path / "keyring.json", master_key)
    return EncryptedBlobStore(LocalFolderBackend(tmp_path / "blobs"), ring)


def enc_path(store: EncryptedBlobStore, digest: str) -> Path:
    return store._backend.root / "objects" / digest[:2] / f"{digest}.enc"  # type: ignore[attr-defined]


def key_path(store: EncryptedBlobStore, digest: str) -> Path:
    return enc_path(store, digest).with_suffix(".key")


def flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def assert_corrupted(store: EncryptedBlobStore, digest: str, tmp_path: Path) -> None:
    """Nothing is returned: reads raise BlobCorrupted naming the digest, no file appears."""
    with pytest.raises(BlobCorrupted) as e:
        store.read_bytes(digest)
    assert digest in e.value.message
    dest = tmp_path / "out" / "restored.bin"
    dest.parent.mkdir(exist_ok=True)
    with pytest.raises(BlobCorrupted):
        store.copy_to(digest, dest)
    assert list(dest.parent.iterdir()) == []


def test_round_trip_multi_chunk_and_dedup(store: EncryptedBlobStore) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 12345)
    info = store.put_bytes(data)
    assert store.read_bytes(info.digest) == data
    assert store.put_bytes(data).digest == info.digest  # same content, same object
    assert len(list(store.digests())) == 1
    assert data[:4096] not in enc_path(store, info.digest).read_bytes()


@pytest.mark.parametrize("size", [0, CHUNK_SIZE, 2 * CHUNK_SIZE])
def test_round_trip_empty_and_exact_chunk_multiples(store: EncryptedBlobStore, size: int) -> None:
    data = os.urandom(size)
    assert store.read_bytes(store.put_bytes(data).digest) == data


@pytest.mark.parametrize("where", ["magic", "header_json", "first_chunk", "middle", "last_tag"])
def test_flipped_byte_in_ciphertext_attack_detected(
    store: EncryptedBlobStore, tmp_path: Path, where: str
) -> None:
    info = store.put_bytes(os.urandom(2 * CHUNK_SIZE + 777))
    path = enc_path(store, info.digest)
    size = path.stat().st_size
    position = {
        "magic": 3,
        "header_json": 20,
        "first_chunk": 200,
        "middle": size // 2,
        "last_tag": size - 1,
    }[where]
    flip(path, position)
    assert_corrupted(store, info.digest, tmp_path)


def test_flipped_byte_anywhere_in_key_record_attack_detected(
    store: EncryptedBlobStore, tmp_path: Path
) -> None:
    info = store.put_bytes(b"loan terms v7" * 100)
    path = key_path(store, info.digest)
    original = path.read_bytes()
    # The unused format marker '"v": 1' is the only part a flip may leave harmless.
    v_at = original.index(b'"v": 1')
    escaped = []
    for position in range(len(original)):
        if v_at <= position < v_at + 6:
            continue
        data = bytearray(original)
        data[position] ^= 0x01
        path.write_bytes(bytes(data))
        try:
            store.read_bytes(info.digest)
            escaped.append((position, "no error"))
        except BlobCorrupted:
            pass
        except Exception as e:  # anything untyped is a defect
            escaped.append((position, f"{type(e).__name__}: {e}"))
    path.write_bytes(original)
    assert store.read_bytes(info.digest) == b"loan terms v7" * 100
    assert not escaped, escaped[:10]


def test_blob_substitution_attack_detected(store: EncryptedBlobStore, tmp_path: Path) -> None:
    a = store.put_bytes(b"approve if score > 640")
    b = store.put_bytes(b"approve everyone")
    enc_path(store, a.digest).write_bytes(enc_path(store, b.digest).read_bytes())
    assert_corrupted(store, a.digest, tmp_path)


def test_key_record_substitution_attack_detected(store: EncryptedBlobStore, tmp_path: Path) -> None:
    a = store.put_bytes(b"approve if score > 640")
    b = store.put_bytes(b"approve everyone")
    key_path(store, a.digest).write_bytes(key_path(store, b.digest).read_bytes())
    assert_corrupted(store, a.digest, tmp_path)


def test_whole_object_renamed_over_another_attack_detected(
    store: EncryptedBlobStore, tmp_path: Path
) -> None:
    a = store.put_bytes(b"approve if score > 640")
    b = store.put_bytes(b"approve everyone")
    enc_path(store, a.digest).write_bytes(enc_path(store, b.digest).read_bytes())
    key_path(store, a.digest).write_bytes(key_path(store, b.digest).read_bytes())
    assert_corrupted(store, a.digest, tmp_path)


def test_key_record_rewritten_to_claim_another_digest_attack_detected(
    store: EncryptedBlobStore, tmp_path: Path
) -> None:
    a = store.put_bytes(b"approve if score > 640")
    b = store.put_bytes(b"approve everyone")
    doc = json.loads(key_path(store, b.digest).read_text())
    doc["digest"] = a.digest  # the wrapped key is bound to b's digest: unwrap fails
    key_path(store, a.digest).write_text(json.dumps(doc))
    enc_path(store, a.digest).write_bytes(enc_path(store, b.digest).read_bytes())
    assert_corrupted(store, a.digest, tmp_path)


@pytest.mark.parametrize("cut", ["header_only", "mid_chunk", "chunk_boundary", "one_byte", "empty"])
def test_truncated_blob_attack_detected(
    store: EncryptedBlobStore, tmp_path: Path, cut: str
) -> None:
    info = store.put_bytes(os.urandom(2 * CHUNK_SIZE + 100))
    path = enc_path(store, info.digest)
    data = path.read_bytes()
    header_len = len(data) - (2 * (CHUNK_SIZE + 16) + 100 + 16)
    keep = {
        "header_only": header_len,
        "mid_chunk": header_len + CHUNK_SIZE // 2,
        "chunk_boundary": header_len + 2 * (CHUNK_SIZE + 16),
        "one_byte": len(data) - 1,
        "empty": 0,
    }[cut]
    path.write_bytes(data[:keep])
    assert_corrupted(store, info.digest, tmp_path)


def test_copy_to_failure_keeps_existing_destination_untouched(
    store: EncryptedBlobStore, tmp_path: Path
) -> None:
    info = store.put_bytes(os.urandom(CHUNK_SIZE + 5))
    path = enc_path(store, info.digest)
    flip(path, path.stat().st_size - 3)  # in the second (final) chunk: the first was fine
    dest = tmp_path / "keep.bin"
    dest.write_bytes(b"previous content")
    with pytest.raises(BlobCorrupted):
        store.copy_to(info.digest, dest)
    assert dest.read_bytes() == b"previous content"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".keep")] == []


def test_fsck_names_corrupted_objects(store: EncryptedBlobStore) -> None:
    good = store.put_bytes(b"good")
    bad = store.put_bytes(b"bad")
    flip(enc_path(store, bad.digest), 40)
    report = store.fsck()
    assert not report.ok
    assert report.corrupted == (bad.digest,)
    assert report.checked == 2 and good.digest not in report.corrupted


def test_missing_and_malformed_digests(store: EncryptedBlobStore) -> None:
    with pytest.raises(NotFound):
        store.read_bytes("0" * 64)
    for bad in ["../../etc/passwd", "sha256:xyz", "g" * 64, ""]:
        with pytest.raises(InputError):
            store.read_bytes(bad)
    assert store.read_bytes("sha256:" + store.put_bytes(b"x").digest.upper()) == b"x"


def test_rotation_rewraps_keys_without_reencrypting(store: EncryptedBlobStore) -> None:
    info = store.put_bytes(b"payload" * 1000)
    before = enc_path(store, info.digest).read_bytes()
    ring: LocalKeyring = store._keys  # type: ignore[assignment,attr-defined]
    ring.rotate_kek()
    assert store.rewrap() == 1
    assert store.info(info.digest).kek_version == 2
    assert enc_path(store, info.digest).read_bytes() == before
    ring.retire_kek(1)
    assert store.read_bytes(info.digest) == b"payload" * 1000


def test_retired_kek_makes_unrewrapped_blob_unreadable(
    store: EncryptedBlobStore, tmp_path: Path
) -> None:
    info = store.put_bytes(b"old data")
    ring: LocalKeyring = store._keys  # type: ignore[assignment,attr-defined]
    ring.rotate_kek()
    ring.retire_kek(1)  # without rewrap: the data key is lost (crypto-shredded)
    assert_corrupted(store, info.digest, tmp_path)


def test_delete_crypto_shreds(store: EncryptedBlobStore) -> None:
    info = store.put_bytes(b"erase me")
    store.delete(info.digest)
    assert not store.exists(info.digest)
    with pytest.raises(NotFound):
        store.read_bytes(info.digest)


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/etc/passwd", "a\\b", "report\u202efdp.exe", "nul\x00", "x" * 301],
)
def test_object_name_path_traversal_and_spoofing_refused(sqlite_workspace: WS, name: str) -> None:
    src = sqlite_workspace.home.parent / "payload.txt"
    src.write_text("payload")
    with pytest.raises(InputError, match="invalid object name"):
        sqlite_workspace.ws.objects.put(sqlite_workspace.admin, "default", name, src)
    assert sqlite_workspace.ws.objects.list(sqlite_workspace.admin, "default") == []


def test_object_put_into_unknown_project_by_roleless_principal_reveals_nothing(
    sqlite_workspace: WS,
) -> None:
    # Authorize first: to a principal without a role, a missing project and an
    # existing one both answer "access denied", and both are audited.
    w = sqlite_workspace
    w.ws.access.create_principal(w.admin, "nobody", PrincipalKind.USER)
    nobody = w.ws.access.authenticate(w.ws.access.create_token(w.admin, "nobody").secret)
    src = w.home.parent / "payload.txt"
    src.write_text("payload")
    errors = []
    for project in ("default", "no-such-project"):
        with pytest.raises(AccessDenied) as e:
            w.ws.objects.put(nobody, project, "x.txt", src)
        errors.append(str(e.value).replace(project, "P"))
    assert errors[0] == errors[1]
