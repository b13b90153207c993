"""NumPy ``.npy``: the header is a Python literal; object arrays hold a pickle.

The header is parsed with :func:`ast.literal_eval` (no code runs); an
``object`` dtype means ``numpy.load(allow_pickle=True)`` unpickles the rest of
the file, so that part is scanned as a pickle stream.

Example::

    scan_npy(opener, Where("weights.npy"), ctx)
"""

from __future__ import annotations

import ast
import struct

from bastion.model_security.scanning.interface import ScanContext, Where
from bastion.model_security.scanning.pickle_scan import Opener, scan_pickle_stream
from bastion.model_security.scanning.streams import Source, Truncated


def _header(src: Source) -> dict[str, object]:
    magic = src.read_exact(8)
    major = magic[6]
    if major == 1:
        (n,) = struct.unpack("<H", src.read_exact(2))
    elif major in (2, 3):
        (n,) = struct.unpack("<I", src.read_exact(4))
    else:
        raise ValueError(f"unknown .npy version {major}")
    if n > 1024 * 1024:
        raise ValueError("header too large")
    text = src.read_exact(n).decode("latin-1" if major < 3 else "utf-8")
    value = ast.literal_eval(text)
    if not isinstance(value, dict):
        raise ValueError("header is not a dict")
    return value


def _has_object(descr: object) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list | tuple):
        return any(_has_object(d) for d in descr)
    return False


def scan_npy(opener: Opener, where: Where, ctx: ScanContext) -> None:
    src = opener()
    try:
        header = _header(src)
    except (Truncated, ValueError, SyntaxError, UnicodeDecodeError, MemoryError,
            RecursionError) as e:
        ctx.error("malformed_npy", f".npy header cannot be parsed: {e}",
                  file=where.file, member=where.member)
        return
    if not _has_object(header.get("descr")):
        return
    start = src.tell()

    def after_header() -> Source:
        inner = opener()
        inner.skip(start)
        return inner

    scan_pickle_stream(after_header, where, ctx)
