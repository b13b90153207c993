"""joblib's pickle dialect: raw array bytes inside the pickle stream.

``joblib.dump`` pickles a ``NumpyArrayWrapper`` and, right after its BUILD,
writes the array's raw bytes (after one padding-length byte and padding when
``numpy_array_alignment_bytes`` is set), or a nested pickle when the dtype
holds objects.  :func:`read_joblib_array` skips exactly those bytes so the
scan resumes on the next opcode — payloads placed after or between arrays are
seen (picklescan 1.0.5 and modelscan 0.8.8 stop at the first array).
Compressed joblib files are recognised by their magic bytes.

Example::

    kind = joblib_compression(head)   # "zlib", "gzip", "bz2", "xz", "lzma", "lz4" or None
"""

from __future__ import annotations

import math
import re

from bastion.model_security.scanning.pickle_values import (
    Global,
    Obj,
    Opaque,
    PDict,
    PickleError,
    PickleMode,
)
from bastion.model_security.scanning.pickle_vm import PickleMachine

_CODE = re.compile(r"^[<>|=]?([a-zA-Z?])(\d*)$")
_FIXED = {"?": 1, "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8,
          "Q": 8, "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16, "G": 32, "O": 8}


def joblib_compression(head: bytes) -> str | None:
    """The compressor a joblib file was written with, from its first bytes."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if re.match(rb"BZh[1-9]", head[:4]):
        return "bz2"
    if head.startswith(b"\xfd7zXZ"):
        return "xz"
    if head.startswith(b"\x5d\x00\x00"):
        return "lzma"
    if head.startswith(b"\x04\x22\x4d\x18"):
        return "lz4"
    if head.startswith(b"ZF"):
        return "zfile"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib"
    return None


def _dtype_parts(dtype: object) -> tuple[str, tuple[object, ...]]:
    if not (isinstance(dtype, Obj) and isinstance(dtype.cls, Global)
            and dtype.cls.qualified == "numpy.dtype" and isinstance(dtype.args, tuple)
            and dtype.args and isinstance(dtype.args[0], str)):
        raise PickleError("joblib array dtype is not a numpy.dtype record")
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    return dtype.args[0], state


def dtype_itemsize(dtype: object) -> int:
    code, state = _dtype_parts(dtype)
    if len(state) > 5 and isinstance(state[5], int) and state[5] > 0:
        return state[5]
    match = _CODE.match(code)
    if not match:
        raise PickleError(f"unknown dtype code {code!r}")
    char, digits = match.groups()
    if digits:
        return int(digits)
    if char in _FIXED:
        return _FIXED[char]
    raise PickleError(f"cannot size dtype {code!r}")


def dtype_hasobject(dtype: object, depth: int = 0) -> bool:
    code, state = _dtype_parts(dtype)
    if code.lstrip("<>|=").startswith("O"):
        return True
    if depth > 8:
        raise PickleError("dtype nesting too deep")
    fields = state[4] if len(state) > 4 else None
    if isinstance(fields, PDict):
        for _, spec in fields.items:
            if isinstance(spec, tuple) and spec and dtype_hasobject(spec[0], depth + 1):
                return True
    if len(state) > 2 and isinstance(state[2], tuple) and state[2]:
        return dtype_hasobject(state[2][0], depth + 1)
    return False


def read_joblib_array(m: PickleMachine, wrapper: Obj) -> object:
    """Skip (or scan, for object dtypes) the array bytes that follow a wrapper's BUILD."""
    state = wrapper.state
    if not isinstance(state, PDict):
        raise PickleError("NumpyArrayWrapper state is not a dict")
    shape = state.get("shape")
    dtype = state.get("dtype")
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise PickleError("NumpyArrayWrapper shape is not a tuple of sizes")
    count = math.prod(shape)
    if dtype_hasobject(dtype):
        # joblib unpickles object arrays with a fresh Unpickler on the same stream
        inner = PickleMachine(m.src, m.where, m.ctx, mode=PickleMode())
        inner.run()
        return Opaque("object array")
    if isinstance(state.get("numpy_array_alignment_bytes"), int):
        padding = m.src.read_exact(1)[0]
        m.src.skip(padding)
    m.src.skip(count * dtype_itemsize(dtype))
    return Opaque(f"array of {count} items")
