"""Detect a table file's format from its content, not its name.

Parquet starts (and ends) with ``PAR1``; JSON Lines starts with ``{`` (after an optional
UTF-8 BOM and whitespace); anything else that looks like UTF-8 text is CSV. Compressed
archives, spreadsheets, UTF-16 text and binary garbage are refused with a hint. A declared
format (argument or file extension) that disagrees with the content is an error.

Example::

    from pathlib import Path
    from bastion.data_security.readers.detect import detect_format

    fmt = detect_format(Path("loans.csv"))   # TableFormat.CSV, or raises FormatMismatch
"""

from __future__ import annotations

import json
from pathlib import Path

from bastion.data_security.errors import (
    EmptyTable,
    FormatMismatch,
    UnsupportedInput,
)
from bastion.data_security.readers.types import TableFormat

_HEAD_BYTES = 8192
UTF8_BOM = b"\xef\xbb\xbf"

_EXTENSIONS: dict[str, TableFormat] = {
    ".csv": TableFormat.CSV,
    ".parquet": TableFormat.PARQUET,
    ".pq": TableFormat.PARQUET,
    ".jsonl": TableFormat.JSONL,
    ".ndjson": TableFormat.JSONL,
}

# (magic prefix, what it is, how to fix)
_REFUSED_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first: gunzip -k FILE"),
    (b"PK\x03\x04", "a zip archive (or an .xlsx/.ods spreadsheet)",
     "unzip it, or export the sheet as CSV (UTF-8)"),
    (b"BZh", "a bzip2-compressed file", "decompress it first: bunzip2 -k FILE"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it first: unxz -k FILE"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "decompress it first: unzstd FILE"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "extract it first"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Excel/OLE2 document",
     "export the sheet as CSV (UTF-8)"),
    (b"%PDF", "a PDF document", "export the table as CSV"),
    (b"\x7fELF", "an executable (ELF)", "pass the data file, not a program"),
    (b"ARROW1", "an Arrow IPC file", "convert it to Parquet"),
    (b"\xff\xfe", "UTF-16/32 text", "convert it: iconv -f UTF-16 -t UTF-8 FILE > out.csv"),
    (b"\xfe\xff", "UTF-16 text", "convert it: iconv -f UTF-16 -t UTF-8 FILE > out.csv"),
)


def format_from_extension(path: Path) -> TableFormat | None:
    """The format a file's extension claims, or ``None`` for unknown extensions (``.txt``)."""
    return _EXTENSIONS.get(path.suffix.lower())


def _looks_like_json_object(text: bytes) -> bool:
    """A first line that is a JSON object (or, if cut off, starts like one with a
    quoted key); a CSV whose first header cell merely starts with "{" is CSV."""
    if not text.startswith(b"{"):
        return False
    first = text.split(b"\n", 1)[0].strip()
    try:
        return isinstance(json.loads(first), dict)
    except (ValueError, RecursionError):  # RecursionError: a line nested thousands deep
        return text[1:].lstrip()[:1] == b'"' and b'":' in first


def sniff_content(path: Path) -> TableFormat:
    """The format the bytes of ``path`` actually have; refuses what is not a table."""
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    name = str(path)
    if not head:
        raise EmptyTable("the file is empty (0 bytes)", path=name,
                         hint="check the export or download that produced it")
    if head.startswith(b"PAR1"):
        return TableFormat.PARQUET
    for magic, what, hint in _REFUSED_MAGIC:
        if head.startswith(magic):
            raise UnsupportedInput(f"this is {what}, not a table", path=name, hint=hint)
    text = head[len(UTF8_BOM):] if head.startswith(UTF8_BOM) else head
    _refuse_binary(text, name)
    stripped = text.lstrip()
    if not stripped:
        raise EmptyTable("the file holds only whitespace", path=name,
                         hint="check the export that produced it")
    if _looks_like_json_object(stripped):
        return TableFormat.JSONL
    # A JSON array of records (``[{...}, ...]`` or ``[]``); a CSV whose first
    # header cell merely starts with "[" is still CSV.
    if stripped.startswith(b"[") and stripped[1:].lstrip()[:1] in (b"{", b"]"):
        raise UnsupportedInput(
            "this is a JSON array, not JSON Lines (one object per line)", path=name,
            hint="convert it: jq -c '.[]' FILE > out.jsonl")
    return TableFormat.CSV


def _refuse_binary(head: bytes, name: str) -> None:
    # NUL never occurs in UTF-8 text tables; a high share of other control bytes means
    # the content is not text at all (images, encrypted blobs, random bytes).
    nul = head.find(b"\x00")
    if nul >= 0:
        raise UnsupportedInput(
            f"binary content (NUL byte at offset {nul}), not a text table",
            path=name, hint="pass a CSV, Parquet or JSON Lines file")
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    if controls > max(8, len(head) // 100):
        raise UnsupportedInput(
            "binary content (many control bytes), not a text table", path=name,
            hint="pass a CSV, Parquet or JSON Lines file")


def detect_format(path: Path, declared: TableFormat | None = None) -> TableFormat:
    """Detect the format of ``path`` and check it against ``declared`` or the extension.

    An explicit ``declared`` format takes precedence over the extension; either way the
    content decides, and a disagreement raises :class:`FormatMismatch`.
    """
    actual = sniff_content(path)
    claimed = declared if declared is not None else format_from_extension(path)
    if claimed is None or claimed is actual:
        return actual
    source = "was declared" if declared is not None else "is named like"
    if claimed is TableFormat.PARQUET:
        what = (f"the file {source} a Parquet file but is not a Parquet file "
                f"(no PAR1 magic; the content looks like {_article(actual)} file)")
    else:
        what = f"the file {source} {_article(claimed)} file but is {_article(actual)} file"
    raise FormatMismatch(
        what, path=str(path),
        hint=f"rename it to {path.stem}{_SUFFIX[actual]} or declare format={actual.value!r}",
    )


_SUFFIX = {TableFormat.CSV: ".csv", TableFormat.PARQUET: ".parquet", TableFormat.JSONL: ".jsonl"}


def _article(fmt: TableFormat) -> str:
    return {TableFormat.CSV: "a CSV", TableFormat.PARQUET: "a Parquet",
            TableFormat.JSONL: "a JSON Lines"}[fmt]
