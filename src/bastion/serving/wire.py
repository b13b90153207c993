"""The gateway <-> worker frame format: never pickle.

A frame is a 4-byte big-endian unsigned length followed by that many bytes of
UTF-8 JSON (one object).  Both sides refuse a frame over ``MAX_FRAME`` bytes
before reading it, and refuse NaN/Infinity (strict JSON), so a hostile model
cannot make the gateway allocate without bound or smuggle non-JSON values.

Messages (``type`` field)::

    worker -> gateway  {"type": "ready", "classes": [...], "pid": 12}
    gateway -> worker  {"type": "predict", "id": 7, "columns": [...], "rows": [[...], ...]}
    worker -> gateway  {"type": "result", "id": 7, "labels": [...], "scores": [[...]] | null}
    worker -> gateway  {"type": "error", "id": 7, "message": "..."}

Example::

    data = encode({"type": "ready"})
    assert decode(data[4:]) == {"type": "ready"}
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from bastion.serving.errors import WireError

#: the largest frame either side accepts (a batch of rows or its predictions)
MAX_FRAME = 16 * 1024 * 1024
_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size


def _refuse_constant(name: str) -> Any:
    raise WireError(f"the frame holds {name}, which strict JSON does not allow")


def encode(message: dict[str, Any]) -> bytes:
    """One frame: length prefix + strict JSON; refuses NaN/Infinity and oversize."""
    try:
        body = json.dumps(message, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as e:
        raise WireError(f"the message cannot be written as strict JSON: {e}") from e
    if len(body) > MAX_FRAME:
        raise WireError(f"a frame of {len(body)} bytes exceeds the limit of {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


def frame_length(header: bytes) -> int:
    """The body length a header announces; refuses one over ``MAX_FRAME``."""
    (length,) = _HEADER.unpack(header)
    if length > MAX_FRAME:
        raise WireError(f"the peer announced a frame of {length} bytes (limit {MAX_FRAME})")
    return int(length)


def decode(body: bytes) -> dict[str, Any]:
    """Parse one frame body: a JSON object, strict (no NaN/Infinity)."""
    try:
        doc = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as e:
        raise WireError(f"the frame is not strict JSON: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise WireError("the frame is not a JSON object with a 'type'")
    return doc


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


__all__ = ["HEADER_SIZE", "MAX_FRAME", "decode", "encode", "finite", "frame_length"]
