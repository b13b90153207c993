"""Chunked AES-256-GCM: the on-disk format of every encrypted blob.

Layout::

    b"BSTNENC1" | u32 header length | header (canonical JSON) | chunk_0 | ... | chunk_n

Each chunk is ``AES-256-GCM(data_key, nonce_i, plaintext_i, aad=SHA-256(header))``
with ``nonce_i = u64(i) || u24(0) || u8(final)`` (the STREAM construction).
The header carries a random ``file_id``, so a chunk is bound to its index, to
its object and to whether it is the last one: reordering, truncation (even at
a chunk boundary) and splicing chunks between objects all fail authentication.
The data key is random per object, so nonces never repeat under one key.

Example::

    enc = StreamEncryptor(data_key)
    out = enc.header() + b"".join(enc.seal(i, c, final=...) for i, c in ...)
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bastion.core.canonical import canonical_json
from bastion.core.errors import IntegrityError

MAGIC = b"BSTNENC1"
CHUNK_SIZE = 1024 * 1024
TAG_SIZE = 16
_MAX_HEADER = 4096


class ChunkAuthenticationFailed(IntegrityError):
    """A chunk, the header or the stream's end failed authentication."""

    code = "chunk_authentication_failed"


@dataclass(frozen=True)
class EnvelopeHeader:
    file_id: str
    chunk_size: int

    def encode(self) -> bytes:
        body = canonical_json(
            {"v": 1, "alg": "AES-256-GCM-STREAM", "chunk": self.chunk_size, "file_id": self.file_id}
        )
        return MAGIC + struct.pack(">I", len(body)) + body


def _nonce(index: int, final: bool) -> bytes:
    return struct.pack(">Q", index) + b"\x00\x00\x00" + (b"\x01" if final else b"\x00")


class StreamEncryptor:
    """Seals plaintext chunks of one object under its data key."""

    def __init__(self, data_key: bytes, *, chunk_size: int = CHUNK_SIZE) -> None:
        self._aead = AESGCM(data_key)
        self.header = EnvelopeHeader(file_id=os.urandom(16).hex(), chunk_size=chunk_size)
        self.header_bytes = self.header.encode()
        self._aad = hashlib.sha256(self.header_bytes).digest()

    def seal(self, index: int, chunk: bytes, *, final: bool) -> bytes:
        return self._aead.encrypt(_nonce(index, final), chunk, self._aad)


class StreamDecryptor:
    """Opens the chunks of one object; call ``parse_header`` first."""

    def __init__(self, data_key: bytes, header_bytes: bytes, header: EnvelopeHeader) -> None:
        self._aead = AESGCM(data_key)
        self.header = header
        self._aad = hashlib.sha256(header_bytes).digest()

    @property
    def sealed_chunk_size(self) -> int:
        return self.header.chunk_size + TAG_SIZE

    def open(self, index: int, sealed: bytes, *, final: bool) -> bytes:
        try:
            return self._aead.decrypt(_nonce(index, final), sealed, self._aad)
        except InvalidTag:
            raise ChunkAuthenticationFailed(
                f"chunk {index} failed authentication"
                + (" (or the stream was truncated)" if final else "")
            ) from None


def parse_header(prefix: bytes) -> tuple[EnvelopeHeader, int]:
    """Parse the header at the start of ``prefix``; return it and its total length."""
    if len(prefix) < 12 or prefix[:8] != MAGIC:
        raise ChunkAuthenticationFailed("not a Bastion encrypted object (bad magic)")
    (length,) = struct.unpack(">I", prefix[8:12])
    if length > _MAX_HEADER or len(prefix) < 12 + length:
        raise ChunkAuthenticationFailed("encrypted object header is truncated or oversized")
    try:
        doc = json.loads(prefix[12 : 12 + length])
        header = EnvelopeHeader(file_id=str(doc["file_id"]), chunk_size=int(doc["chunk"]))
    except (ValueError, KeyError, TypeError) as e:
        raise ChunkAuthenticationFailed("encrypted object header is unreadable") from e
    if not 0 < header.chunk_size <= 64 * 1024 * 1024:
        raise ChunkAuthenticationFailed("encrypted object header has an invalid chunk size")
    return header, 12 + length


def header_prefix_size() -> int:
    return 12 + _MAX_HEADER


__all__ = [
    "CHUNK_SIZE",
    "MAGIC",
    "ChunkAuthenticationFailed",
    "EnvelopeHeader",
    "StreamDecryptor",
    "StreamEncryptor",
    "header_prefix_size",
    "parse_header",
]
