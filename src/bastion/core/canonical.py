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


__all__ = ["JSON", "JSONScalar", "canonical_json", "sha256_hex"]
