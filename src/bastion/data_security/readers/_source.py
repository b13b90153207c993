"""A binary file handle that hashes (SHA-256) and counts every byte read through it.

The CSV and JSON Lines readers consume the file strictly sequentially through this
handle, so ``hexdigest()`` after EOF is the digest of exactly the bytes that were parsed,
without a second pass.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

_QUOTE = ord('"')


class HashingSource:
    """Sequential reader over a file that hashes, counts bytes and counts ``"`` quotes."""

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("rb")
        self._sha = hashlib.sha256()
        self.bytes_read = 0
        self.quotes = 0
        self.at_eof = False

    # The file-like surface pyarrow needs (it wraps any object with read()).
    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        if data:
            self._sha.update(data)
            self.bytes_read += len(data)
            self.quotes += data.count(b'"')
        elif size != 0:
            self.at_eof = True
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.bytes_read

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        self._file.close()

    def drain(self) -> None:
        """Read (and hash) whatever is left, so the digest always covers the whole file."""
        while self.read(1 << 20):
            pass

    def hexdigest(self) -> str | None:
        """SHA-256 of the whole file, or ``None`` until EOF has been reached."""
        return self._sha.hexdigest() if self.at_eof else None
