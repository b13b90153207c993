"""Chunked AES-256-GCM envelope: round trips and every stream manipulation attack."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.core.crypto.envelope import (
    ChunkAuthenticationFailed,
    StreamDecryptor,
    StreamEncryptor,
    parse_header,
)
from bastion.core.errors import BastionError, IntegrityError

CHUNK = 64  # a small chunk size keeps multi-chunk cases tiny


def seal(data: bytes, key: bytes, chunk: int = CHUNK) -> tuple[bytes, list[bytes]]:
    """Return (header bytes, sealed chunks) exactly as the blob store writes them."""
    enc = StreamEncryptor(key, chunk_size=chunk)
    parts = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
    # The store makes an exact multiple end on a full final chunk (no empty tail).
    sealed = [enc.seal(i, p, final=i == len(parts) - 1) for i, p in enumerate(parts)]
    return enc.header_bytes, sealed


def open_stream(key: bytes, blob: bytes) -> bytes:
    """Decrypt a whole stream the way the blob store reads it (chunk by chunk)."""
    header, hlen = parse_header(blob)
    dec = StreamDecryptor(key, blob[:hlen], header)
    body, size = blob[hlen:], dec.sealed_chunk_size
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    return b"".join(dec.open(i, c, final=i == len(chunks) - 1) for i, c in enumerate(chunks))


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK, 3 * CHUNK + 5]
)
def test_round_trip_including_empty_and_exact_chunk_multiples(key: bytes, size: int) -> None:
    data = os.urandom(size)
    header, chunks = seal(data, key)
    assert open_stream(key, header + b"".join(chunks)) == data


def test_ciphertext_reveals_no_plaintext(key: bytes) -> None:
    data = b"CONFIDENTIAL credit policy " * 20
    header, chunks = seal(data, key)
    assert b"CONFIDENTIAL" not in header + b"".join(chunks)


def _expect_detected(key: bytes, blob: bytes) -> None:
    with pytest.raises(IntegrityError):
        open_stream(key, blob)


def test_chunk_reordering_attack_detected(key: bytes) -> None:
    header, c = seal(os.urandom(4 * CHUNK), key)
    _expect_detected(key, header + c[1] + c[0] + c[2] + c[3])


def test_truncation_at_chunk_boundary_attack_detected(key: bytes) -> None:
    header, c = seal(os.urandom(4 * CHUNK), key)
    _expect_detected(key, header + c[0] + c[1])  # whole chunks, looks well formed


def test_dropping_final_chunk_attack_detected(key: bytes) -> None:
    header, c = seal(os.urandom(3 * CHUNK + 10), key)
    _expect_detected(key, header + b"".join(c[:-1]))


def test_truncation_inside_a_chunk_attack_detected(key: bytes) -> None:
    header, c = seal(os.urandom(3 * CHUNK), key)
    _expect_detected(key, (header + b"".join(c))[:-7])


def test_appending_a_chunk_attack_detected(key: bytes) -> None:
    header, c = seal(os.urandom(2 * CHUNK), key)
    _expect_detected(key, header + b"".join(c) + c[-1])


def test_splicing_chunk_from_another_object_attack_detected(key: bytes) -> None:
    # Same key on purpose (worst case): only the header's file_id binds the chunk.
    header_a, a = seal(os.urandom(3 * CHUNK), key)
    _, b = seal(os.urandom(3 * CHUNK), key)
    _expect_detected(key, header_a + a[0] + b[1] + a[2])


def test_swapping_header_of_another_object_attack_detected(key: bytes) -> None:
    _, a = seal(os.urandom(2 * CHUNK), key)
    header_b, _ = seal(os.urandom(2 * CHUNK), key)
    _expect_detected(key, header_b + b"".join(a))


@pytest.mark.parametrize("position", [0, 7, 9, 14, 30, -1])
def test_header_tamper_attack_detected(key: bytes, position: int) -> None:
    header, c = seal(os.urandom(2 * CHUNK), key)
    bad = bytearray(header)
    bad[position] ^= 0x01
    _expect_detected(key, bytes(bad) + b"".join(c))


def test_header_chunk_size_tamper_attack_detected(key: bytes) -> None:
    header, c = seal(os.urandom(2 * CHUNK), key)
    bad = header.replace(b'"chunk":64', b'"chunk":32')
    assert bad != header
    _expect_detected(key, bad + b"".join(c))


@pytest.mark.parametrize("where", ["first", "middle", "tag"])
def test_flipped_ciphertext_bit_attack_detected(key: bytes, where: str) -> None:
    header, c = seal(os.urandom(3 * CHUNK), key)
    body = bytearray(b"".join(c))
    pos = {"first": 0, "middle": len(body) // 2, "tag": len(body) - 1}[where]
    body[pos] ^= 0x80
    _expect_detected(key, header + bytes(body))


def test_wrong_key_detected(key: bytes) -> None:
    header, c = seal(b"secret", key)
    _expect_detected(os.urandom(32), header + b"".join(c))


@pytest.mark.parametrize(
    "blob",
    [b"", b"NOTMAGIC" + b"\x00" * 20, b"BSTNENC1\xff\xff\xff\xff{}", b"BSTNENC1\x00\x00\x00\x02[]"],
)
def test_garbage_header_is_an_integrity_error(blob: bytes) -> None:
    with pytest.raises(ChunkAuthenticationFailed) as e:
        parse_header(blob)
    assert isinstance(e.value, BastionError)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=5 * 16), chunk=st.integers(min_value=1, max_value=40))
def test_property_envelope_round_trip(data: bytes, chunk: int) -> None:
    key = os.urandom(32)
    header, chunks = seal(data, key, chunk)
    assert open_stream(key, header + b"".join(chunks)) == data
