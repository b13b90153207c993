"""Recognise an artifact's format from its first bytes, never from its name.

A ``.bin`` that is really a pickle is scanned as a pickle; a ``.safetensors``
that is really a zip is scanned as a zip.

Example::

    >>> detect(b"\\x80\\x04\\x95", size=100)
    <ArtifactFormat.PICKLE: 'pickle'>
"""

from __future__ import annotations

from bastion.model_security.scanning.interface import ArtifactFormat
from bastion.model_security.scanning.joblib_format import joblib_compression

HEAD_SIZE = 4096
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


def _looks_like_safetensors(head: bytes, size: int | None) -> bool:
    if len(head) < 10 or head[8:9] != b"{":
        return False
    n = int.from_bytes(head[:8], "little")
    # a real header is small; an absurd one is still safetensors (and refused later)
    return n > 1 and (head[9:10] in (b'"', b"}", b" ", b"\n") or (size is not None and n > size))


def _looks_like_onnx(head: bytes) -> bool:
    # ModelProto starts with field 1 (ir_version, varint) then a length-delimited field
    return (len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 30
            and head[2] in (0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A, 0x42, 0x4A, 0x52, 0x5A, 0x62,
                            0x72, 0x7A, 0x82))


def is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        # a multi-byte character cut by the head boundary is still text
        return len(head) == HEAD_SIZE and e.start >= len(head) - 3
    return True


def looks_like_tar(head: bytes) -> bool:
    """A tar header block: ``ustar`` magic or a valid header checksum (v7 tar).

    Checked on raw and decompressed bytes *alongside* other formats: one byte
    stream can be both a tar and a pickle (a member name made of pickle opcodes).
    """
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    field = head[148:156].split(b"\x00", 1)[0].strip()
    if not field or any(c not in b"01234567" for c in field):
        return False
    block = head[:148] + b" " * 8 + head[156:512]
    return int(field, 8) in (sum(block), sum(b - 256 if b > 127 else b for b in block)) \
        and head[:1] != b"\x00"


def detect(head: bytes, size: int | None) -> ArtifactFormat:
    """Classify the bytes *head* (the first :data:`HEAD_SIZE` bytes of a file)."""
    if head.startswith(_ZIP_MAGICS):
        return ArtifactFormat.ZIP
    if _looks_like_safetensors(head, size):
        return ArtifactFormat.SAFETENSORS
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return ArtifactFormat.PICKLE
    if head.startswith(b"\x93NUMPY"):
        return ArtifactFormat.NUMPY
    if any(head[o:o + 8] == HDF5_MAGIC for o in (0, 512, 1024, 2048)):
        return ArtifactFormat.HDF5
    if looks_like_tar(head):
        return ArtifactFormat.TAR
    if head.startswith((b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07")):
        return ArtifactFormat.SEVEN_ZIP
    if _looks_like_onnx(head):
        return ArtifactFormat.ONNX
    kind = joblib_compression(head)
    if kind is not None and (kind != "zlib" or head[1] in (0x01, 0x5E, 0x9C, 0xDA)):
        return ArtifactFormat.JOBLIB_COMPRESSED
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return ArtifactFormat.JSON
    if is_text(head):
        return ArtifactFormat.TEXT
    return ArtifactFormat.UNKNOWN
