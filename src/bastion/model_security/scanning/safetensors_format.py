"""safetensors: validate the header without reading any tensor bytes.

Checks: the 8-byte header length (not 2^63, not past the end of the file,
within limits), a JSON object header, ``__metadata__`` of strings only, known
dtypes, ``shape`` x element size == ``data_offsets`` span, offsets inside the
data area, non-overlapping and covering it.

Example::

    scan_safetensors(fh, size, Where("model.safetensors"), ctx)
"""

from __future__ import annotations

import json
import math
from typing import BinaryIO

from bastion.model_security.scanning.interface import ScanContext, Where

DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
               "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4,
               "I64": 8, "U64": 8, "F64": 8, "C64": 8, "F4": 1, "F6_E2M3": 1, "F6_E3M2": 1}


def scan_safetensors(fh: BinaryIO, size: int, where: Where, ctx: ScanContext) -> None:
    def bad(code: str, msg: str) -> None:
        ctx.add(code, msg, file=where.file, member=where.member, offset=0)

    raw = fh.read(8)
    if len(raw) < 8:
        ctx.error("truncated", "safetensors file shorter than its 8-byte header length",
                  file=where.file, member=where.member)
        return
    n = int.from_bytes(raw, "little")
    if n > ctx.limits.max_json_header or n > size - 8:
        bad("safetensors_header_size",
            f"declared header length {n} exceeds the file ({size} bytes) or the limit")
        return
    try:
        header = json.loads(fh.read(n))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        ctx.error("safetensors_header_json", f"header is not valid JSON: {e}",
                  file=where.file, member=where.member, offset=8)
        return
    if not isinstance(header, dict):
        bad("safetensors_header_json", "header is not a JSON object")
        return
    _check_entries(header, size - 8 - n, bad)


def _check_entries(header: dict[str, object], data_size: int, bad: object) -> None:
    assert callable(bad)
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in entry.items()):
                bad("safetensors_metadata", "__metadata__ must map strings to strings")
            continue
        if not isinstance(entry, dict):
            bad("safetensors_entry", f"tensor {name!r} is not an object")
            continue
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPE_SIZES:
            bad("safetensors_dtype", f"tensor {name!r} has unknown dtype {dtype!r}")
            continue
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            bad("safetensors_shape", f"tensor {name!r} has an invalid shape")
            continue
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(o) is int for o in offsets) and 0 <= offsets[0] <= offsets[1]):
            bad("safetensors_offsets", f"tensor {name!r} has invalid data_offsets")
            continue
        begin, end = offsets
        if end > data_size:
            bad("safetensors_offsets", f"tensor {name!r} ends at {end}, past the data area "
                f"({data_size} bytes)")
        expected = math.prod(shape) * DTYPE_SIZES[str(dtype)]
        if dtype in ("F4", "F6_E2M3", "F6_E3M2"):
            expected = end - begin  # sub-byte types: packed, size checked loosely
        if end - begin != expected:
            bad("safetensors_size_mismatch",
                f"tensor {name!r}: shape x dtype = {expected} bytes but offsets span {end - begin}")
        spans.append((begin, end, name))
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin < cursor:
            bad("safetensors_overlap", f"tensor {name!r} overlaps the previous tensor")
        elif begin > cursor:
            bad("safetensors_gap", f"unreferenced bytes before tensor {name!r}")
        cursor = max(cursor, end)
    if cursor != data_size:
        bad("safetensors_trailing", f"{data_size - cursor} bytes after the last tensor")
