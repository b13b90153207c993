"""Bounded, streaming byte sources used by every format scanner.

A :class:`Source` never reads more than asked, knows how many bytes are left
when the underlying stream has a size, and turns short reads into
:class:`Truncated` so that a cut file is an error, not an early "clean".

Example::

    with path.open("rb") as fh:
        src = Source(fh, size=path.stat().st_size)
        head = src.peek(8)
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from typing import Any, BinaryIO

from bastion.model_security.errors import ModelSecurityError

_CHUNK = 1024 * 1024


class Truncated(ModelSecurityError):
    """The stream ended before a declared length (internal; becomes a finding)."""


class LimitExceeded(ModelSecurityError):
    """A decompression produced more bytes than the scan limits allow."""


class Source:
    """Sequential reader over a binary stream with an optional known size."""

    def __init__(self, fh: BinaryIO, *, size: int | None = None, base: int = 0) -> None:
        self._fh = fh
        self.size = size
        self._pos = 0
        self._base = base
        self._peeked = b""

    def tell(self) -> int:
        return self._pos

    @property
    def offset(self) -> int:
        """Absolute offset in the outer file (for findings)."""
        return self._base + self._pos

    def remaining(self) -> int | None:
        return None if self.size is None else self.size - self._pos

    def _raw(self, n: int) -> bytes:
        out = bytearray()
        if self._peeked:
            out += self._peeked[:n]
            self._peeked = self._peeked[n:]
        while len(out) < n:
            chunk = self._fh.read(min(n - len(out), _CHUNK))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def peek(self, n: int) -> bytes:
        if len(self._peeked) < n:
            self._peeked += self._fh_read_more(n - len(self._peeked))
        return self._peeked[:n]

    def _fh_read_more(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self._fh.read(n - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def read(self, n: int) -> bytes:
        """Read up to *n* bytes (fewer only at end of stream)."""
        if not self._peeked and n <= _CHUNK:
            # fast path: one opcode byte or a short argument from a buffered stream
            data = self._fh.read(n)
            if len(data) < n:
                data += self._raw(n - len(data))
        else:
            data = self._raw(n)
        self._pos += len(data)
        return data

    def read_exact(self, n: int) -> bytes:
        left = self.remaining()
        if left is not None and n > left:
            raise Truncated(f"needs {n} bytes at offset {self.offset}, only {left} left")
        data = self.read(n)
        if len(data) != n:
            raise Truncated(f"needs {n} bytes at offset {self.offset - len(data)}")
        return data

    def readline(self, limit: int) -> bytes:
        """Read up to and including ``\\n``; a missing newline within *limit* is truncation."""
        out = bytearray()
        while len(out) < limit:
            b = self.read(1)
            if not b:
                raise Truncated(f"unterminated line at offset {self.offset}")
            out += b
            if b == b"\n":
                return bytes(out)
        raise Truncated(f"line longer than {limit} bytes at offset {self.offset}")

    def skip(self, n: int) -> None:
        """Skip *n* bytes without keeping them (seeks when the stream allows it)."""
        left = self.remaining()
        if left is not None and n > left:
            raise Truncated(f"needs {n} bytes at offset {self.offset}, only {left} left")
        if not self._peeked and self._fh.seekable() and left is not None:
            self._fh.seek(n, io.SEEK_CUR)
            self._pos += n
            return
        todo = n
        while todo:
            got = self.read(min(todo, _CHUNK))
            if not got:
                raise Truncated(f"needs {n} bytes at offset {self.offset}")
            todo -= len(got)

    def at_eof(self) -> bool:
        left = self.remaining()
        if left is not None:
            return left <= 0
        return self.peek(1) == b""


class _Decompressor(io.RawIOBase):
    """Streaming decompression with an output cap (zip/joblib bombs)."""

    def __init__(self, fh: BinaryIO, kind: str, limit: int, compressed_size: int | None) -> None:
        self._fh = fh
        self._left_in = compressed_size
        self._limit = limit
        self._out = 0
        self._buf = b""
        self._eof = False
        self._dec: Any
        if kind == "deflate":
            self._dec = zlib.decompressobj(-15)
        elif kind == "zlib":
            self._dec = zlib.decompressobj(15)
        elif kind == "gzip":
            self._dec = zlib.decompressobj(31)
        elif kind == "bz2":
            self._dec = bz2.BZ2Decompressor()
        elif kind == "xz":
            self._dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        elif kind == "lzma":
            self._dec = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)
        elif kind == "lz4":
            self._dec = _lz4_decompressor()
        else:
            raise ValueError(f"unsupported compression {kind!r}")

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._buf and not self._eof:
            want = _CHUNK if self._left_in is None else min(_CHUNK, self._left_in)
            raw = self._fh.read(want) if want else b""
            if self._left_in is not None:
                self._left_in -= len(raw)
            if not raw:
                self._eof = True
                if not getattr(self._dec, "eof", True):
                    raise Truncated("compressed stream ends before its end marker")
                break
            try:
                out = self._dec.decompress(raw)
            except (zlib.error, OSError, lzma.LZMAError, EOFError, RuntimeError) as e:
                raise Truncated(f"corrupt compressed stream: {e}") from e
            self._buf = out
            if getattr(self._dec, "eof", False):
                self._eof = True
        self._out += len(self._buf)
        if self._out > self._limit:
            raise LimitExceeded(f"decompressed size exceeds {self._limit} bytes")

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._buf:
            self._fill()
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def lz4_available() -> bool:
    """lz4-compressed joblib files are scanned only when the ``lz4`` package is installed."""
    try:
        import lz4.frame  # noqa: F401
    except ImportError:
        return False
    return True


def _lz4_decompressor() -> Any:
    import lz4.frame

    return lz4.frame.LZ4FrameDecompressor()


def decompressing(fh: BinaryIO, kind: str, *, limit: int,
                  compressed_size: int | None = None) -> BinaryIO:
    """Wrap *fh* so reads return decompressed bytes, capped at *limit* bytes."""
    raw = _Decompressor(fh, kind, limit, compressed_size)
    return io.BufferedReader(raw, buffer_size=_CHUNK)


class Window(io.RawIOBase):
    """A read-only window ``[start, start+length)`` over a seekable file."""

    def __init__(self, fh: BinaryIO, start: int, length: int) -> None:
        self._fh = fh
        self._start = start
        self._len = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._len}[whence]
        self._pos = max(0, min(self._len, base + offset))
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self._len - self._pos)
        if n <= 0:
            return 0
        self._fh.seek(self._start + self._pos)
        data = self._fh.read(n)
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)
