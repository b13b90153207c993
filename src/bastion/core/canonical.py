"""Canonical encodings: the exact bytes that hashes and signatures cover.

JSON values are encoded with RFC 8785 (JSON Canonicalization Scheme), so the
same logical value always hashes to the same digest, whatever produced it.

Example::

    >>> canonical_json({"b": 1, "a": [True, None]})
    b'{"a":[true,null],"b":1}'
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import rfc8785

from bastion.core.errors import InputError

JSONScalar: TypeAlias = str | int | float | bool | None
JSON: TypeAlias = JSONScalar | Sequence["JSON"] | Mapping[str, "JSON"]


def canonical_json(value: JSON) -> bytes:
    """Encode ``value`` as RFC 8785 canonical JSON bytes (UTF-8)."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise InputError(
            f"value cannot be canonically encoded as JSON: {e}",
            hint="use only str, int, finite float, bool, None, lists and string-keyed maps",
        ) from e


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def nesting_depth(raw: bytes, limit: int) -> int:
    """The bracket nesting depth of a JSON text, counted up to ``limit + 1`` (then it stops).

    Brackets inside strings do not count. Most lines have fewer brackets than the limit
    and are answered by a count, without the byte-by-byte scan.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


__all__ = ["JSON", "JSONScalar", "canonical_json", "nesting_depth", "sha256_hex"]
