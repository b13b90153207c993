"""Zip and tar containers: every member is scanned by its content.

Zip members are read from their local header with the sizes and method of the
central directory, ignoring flag bits and CRCs the way PyTorch's loader does
(so a member picklescan refuses to open is still scanned); anomalies (CRC
mismatch, encryption flag, local/central name mismatch) are findings in their
own right.  Bombs (ratio, total size, member count), absolute or ``..``
member names, symlink / hardlink members and (tar) device files are refused.
A tar is read header by header with caps on member count, total bytes and, for a
compressed tar, the compression ratio; every regular member is scanned by content
(recursively: a model file inside a tarball is scanned as that model format).

Example::

    scan_zip(fh, Where("model.pt"), ctx, scan_blob)
"""

from __future__ import annotations

import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import PurePosixPath, PureWindowsPath
from typing import BinaryIO

from bastion.model_security.scanning.interface import Blob, BlobScanner, ScanContext, Where
from bastion.model_security.scanning.keras import check_keras_json
from bastion.model_security.scanning.streams import (
    LimitExceeded,
    Source,
    Truncated,
    Window,
    decompressing,
)
from bastion.model_security.scanning.torch_legacy import (
    LEGACY_MEMBERS,
    is_legacy_torch_tar,
    scan_legacy_member,
)

_TORCH_STORAGE = re.compile(r"(^|/)\.?data/\d+$")
_CRC_CHECK_MAX = 64 * 1024 * 1024
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
            zipfile.ZIP_BZIP2: "bz2"}


def unsafe_member_name(name: str) -> bool:
    posix, win = PurePosixPath(name), PureWindowsPath(name)
    return (posix.is_absolute() or win.is_absolute() or bool(win.drive)
            or ".." in posix.parts or ".." in win.parts or "\x00" in name)


def _data_start(fh: BinaryIO, info: zipfile.ZipInfo) -> tuple[int, str]:
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise Truncated(f"bad local header for {info.filename!r}")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    local_name = fh.read(name_len).decode("utf-8", "replace")
    return info.header_offset + 30 + name_len + extra_len, local_name


def _limits_check(infos: list[zipfile.ZipInfo], where: Where, ctx: ScanContext) -> bool:
    lim = ctx.limits
    if len(infos) > lim.max_archive_members:
        ctx.add("archive_too_many_members", f"{len(infos)} members (limit "
                f"{lim.max_archive_members})", file=where.file, member=where.member)
        return False
    total = sum(i.file_size for i in infos)
    if total > lim.max_total_uncompressed:
        ctx.add("zip_bomb", f"declared uncompressed size {total} exceeds the limit",
                file=where.file, member=where.member)
        return False
    return True


def scan_zip(fh: BinaryIO, where: Where, ctx: ScanContext, scan_blob: BlobScanner) -> None:
    try:
        infos = zipfile.ZipFile(fh).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as e:
        ctx.error("malformed_zip", f"zip central directory cannot be read: {e}",
                  file=where.file, member=where.member)
        return
    if not _limits_check(infos, where, ctx):
        return
    names = [i.filename for i in infos]
    is_torch = any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)
    torchscript = any(n.endswith(("/code/", "/constants.pkl")) or "/code/__torch__" in n
                      for n in names)
    if torchscript and not ctx.policy.allow_torchscript:
        ctx.add("torchscript_archive", "TorchScript archive refused by default: it carries "
                "code that torch.jit.load compiles and runs (its pickles are still scanned). "
                "To accept TorchScript in a project an admin runs "
                "'bastion model scan-policy allow --torchscript --project P'",
                file=where.file, member=where.member)
    # Keras reads a root config.json even without metadata.json: always check it
    is_keras = "config.json" in names
    for info in infos:
        _scan_zip_member(fh, info, where, ctx, scan_blob, is_torch=is_torch, is_keras=is_keras)


def _scan_zip_member(fh: BinaryIO, info: zipfile.ZipInfo, where: Where, ctx: ScanContext,
                     scan_blob: BlobScanner, *, is_torch: bool, is_keras: bool) -> None:
    inner = where.inside(info.filename)

    def flag(code: str, msg: str) -> None:
        ctx.add(code, msg, file=inner.file, member=inner.member)

    if unsafe_member_name(info.filename):
        flag("path_traversal", f"member name {info.filename!r} is absolute or contains '..'")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        flag("archive_symlink", f"member {info.filename!r} is a symbolic link")
        return
    if info.is_dir():
        return
    if info.flag_bits & 0x61:
        flag("zip_flag_bits", f"member has flag bits 0x{info.flag_bits:04x} (encryption / "
             "patched data): loaders that ignore them read it, scanners that honour them skip it")
    if info.compress_size and info.file_size > 1024 * 1024 and \
            info.file_size / info.compress_size > ctx.limits.max_compression_ratio:
        flag("zip_bomb", f"compression ratio {info.file_size / info.compress_size:.0f} "
             "exceeds the limit")
        return
    method = _METHODS.get(info.compress_type)
    if method is None:
        ctx.error("zip_method", f"unsupported compression method {info.compress_type}",
                  file=inner.file, member=inner.member)
        return
    try:
        start, local_name = _data_start(fh, info)
    except Truncated as e:
        ctx.error("malformed_zip", str(e), file=inner.file, member=inner.member)
        return
    if local_name != info.filename:
        flag("zip_name_mismatch", f"local header names {local_name!r}, central directory "
             f"{info.filename!r}")

    def opener() -> BinaryIO:
        window = Window(fh, start, info.compress_size)
        if method == "stored":
            return window  # type: ignore[return-value]
        return decompressing(window, method, limit=info.file_size,  # type: ignore[arg-type]
                             compressed_size=info.compress_size)

    hint = "torch-storage" if is_torch and _TORCH_STORAGE.search(info.filename) else (
        "torch" if is_torch else "")
    if hint != "torch-storage" and info.file_size <= _CRC_CHECK_MAX:
        _check_crc(opener, info, inner, ctx)
    if is_keras and info.filename == "config.json":
        with opener() as member:
            check_keras_json(member.read(info.file_size + 1), inner, ctx)
        return
    scan_blob(Blob(inner, info.file_size, opener, None, hint), ctx)


def _check_crc(opener: object, info: zipfile.ZipInfo, where: Where, ctx: ScanContext) -> None:
    assert callable(opener)
    crc = 0
    size = 0
    try:
        with opener() as member:
            while chunk := member.read(1024 * 1024):
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
    except (LimitExceeded, Truncated) as e:
        ctx.add("zip_size_mismatch", f"member data exceeds its declared size: {e}",
                file=where.file, member=where.member)
        return
    if crc != info.CRC or size != info.file_size:
        ctx.add("zip_crc_mismatch", "member bytes do not match the CRC/size in the central "
                "directory (loaders that skip the check and scanners that stop disagree)",
                file=where.file, member=where.member)


def _tar_members(fh: BinaryIO, where: Where, ctx: ScanContext,
                 compressed_size: int | None) -> list[tarfile.TarInfo] | None:
    """Read every header, stopping at the first exceeded limit (count, bytes, ratio)."""
    lim = ctx.limits
    members: list[tarfile.TarInfo] = []
    total = 0
    try:
        with tarfile.open(fileobj=fh, mode="r:") as tar:
            while (m := tar.next()) is not None:
                members.append(m)
                total += max(m.size, 0)
                if len(members) > lim.max_archive_members:
                    ctx.add("archive_too_many_members", f"more than {lim.max_archive_members} "
                            "members", file=where.file, member=where.member)
                    return None
                if total > lim.max_total_uncompressed:
                    ctx.add("tar_bomb", f"members hold more than {lim.max_total_uncompressed} "
                            "bytes", file=where.file, member=where.member)
                    return None
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        ctx.error("malformed_tar", f"tar archive cannot be read: {e}",
                  file=where.file, member=where.member)
        return None
    if compressed_size and total > 1024 * 1024 and \
            total / compressed_size > lim.max_compression_ratio:
        ctx.add("tar_bomb", f"compression ratio {total / compressed_size:.0f} exceeds the "
                f"limit {lim.max_compression_ratio:.0f}", file=where.file, member=where.member)
        return None
    return members


def scan_tar(fh: BinaryIO, where: Where, ctx: ScanContext, scan_blob: BlobScanner, *,
             compressed_size: int | None = None) -> None:
    """Scan a tar (already decompressed) member by member; *compressed_size* caps the ratio."""
    members = _tar_members(fh, where, ctx, compressed_size)
    if members is None:
        return
    legacy = is_legacy_torch_tar({m.name for m in members})
    for m in members:
        inner = where.inside(m.name)

        def flag(code: str, msg: str, inner: Where = inner) -> None:
            ctx.add(code, msg, file=inner.file, member=inner.member)

        if unsafe_member_name(m.name):
            flag("path_traversal", f"member name {m.name!r} is absolute or contains '..'")
        if m.issym() or m.islnk():
            flag("archive_symlink", f"member {m.name!r} is a "
                 f"{'symlink' if m.issym() else 'hardlink'} to {m.linkname!r}")
            continue
        if m.ischr() or m.isblk() or m.isfifo():
            flag("archive_special_file", f"member {m.name!r} is a device or FIFO "
                 "(extracting it creates a special file)")
            continue
        if m.isdir():
            continue
        if not m.isfile() or m.issparse():
            ctx.error("tar_member_type", f"member {m.name!r} has an unsupported type "
                      f"{m.type!r}", file=inner.file, member=inner.member)
            continue
        data_offset = m.offset_data
        size = m.size

        def opener(start: int = data_offset, length: int = size) -> BinaryIO:
            return Window(fh, start, length)  # type: ignore[return-value]

        if legacy and m.name in LEGACY_MEMBERS:
            scan_legacy_member(m.name, _sized_source(opener, size), inner, ctx)
            continue
        scan_blob(Blob(inner, size, opener), ctx)


def _sized_source(opener: Callable[[], BinaryIO], size: int) -> Callable[[], Source]:
    return lambda: Source(opener(), size=size)
