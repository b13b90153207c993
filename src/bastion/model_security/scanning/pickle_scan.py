"""Scan a whole pickle stream: every pickle in it, joblib arrays, legacy torch files.

After a STOP the stream must end or hold another well-formed pickle (a second
pickle hidden after the first is scanned, garbage is an error).  A legacy
``torch.save(..., _use_new_zipfile_serialization=False)`` file is five
pickles followed by raw storages, which are skipped by their declared sizes.
When joblib arrays were skipped, the file is scanned a second time the way a
plain ``pickle.load`` would read it, so the two loaders cannot disagree.

Example::

    scan_pickle_stream(opener, Where("model.pkl"), ctx)
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from bastion.model_security.scanning.interface import ScanContext, Where
from bastion.model_security.scanning.joblib_format import read_joblib_array
from bastion.model_security.scanning.pickle_values import Global, PickleError, PickleMode, PList
from bastion.model_security.scanning.pickle_vm import PickleMachine
from bastion.model_security.scanning.streams import LimitExceeded, Source, Truncated

Opener = Callable[[], Source]
LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_PARSE_ERRORS = (PickleError, Truncated, ValueError, UnicodeDecodeError, struct.error,
                 OverflowError, EOFError)

_ELEMENT_SIZE = {"Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4,
                 "Short": 2, "Char": 1, "Byte": 1, "Bool": 1, "ComplexFloat": 8,
                 "ComplexDouble": 16, "Untyped": 1, "QInt8": 1, "QUInt8": 1, "QInt32": 4}


def element_size(storage_type: object) -> int:
    if isinstance(storage_type, Global) and storage_type.name.endswith("Storage"):
        size = _ELEMENT_SIZE.get(storage_type.name[: -len("Storage")])
        if size:
            return size
    raise PickleError(f"unknown legacy torch storage type {storage_type!r}")


def _skip_legacy_storages(src: Source, keys: object, pids: list[object]) -> None:
    if not isinstance(keys, PList):
        raise PickleError("legacy torch storage key list is not a list")
    sizes = {}
    for pid in pids:
        if isinstance(pid, tuple) and len(pid) >= 3:
            sizes[pid[2]] = element_size(pid[1])
    for key in keys.items:
        if key not in sizes:
            raise PickleError(f"legacy torch storage {key!r} has no persistent id")
        (numel,) = struct.unpack("<q", src.read_exact(8))
        if numel < 0:
            raise PickleError("negative storage size")
        src.skip(numel * sizes[key])


def scan_pickle_stream(opener: Opener, where: Where, ctx: ScanContext, *,
                       torch: bool = False, legacy_tar: bool = False) -> None:
    """Scan every pickle in the stream; malformed input becomes an ERROR finding."""
    src = opener()
    saw_wrapper = _scan_all(src, where, ctx, torch=torch, legacy_tar=legacy_tar)
    if saw_wrapper:
        _plain_pass(opener(), where, ctx, torch=torch)


def _scan_all(src: Source, where: Where, ctx: ScanContext, *, torch: bool,
              legacy_tar: bool = False) -> bool:
    index = 0
    saw_wrapper = False
    legacy_left = 0
    pids: list[object] = []
    while True:
        mode = PickleMode(joblib=True, torch=torch or legacy_left > 0,
                          torch_legacy_tar=legacy_tar)
        m = PickleMachine(src, where, ctx, mode=mode, array_hook=read_joblib_array)
        try:
            value = m.run()
            saw_wrapper = saw_wrapper or m.saw_array_wrapper
            pids.extend(m.persistent_ids)
            if index == 0 and value == LEGACY_TORCH_MAGIC and not isinstance(value, bool):
                legacy_left = 5
            if legacy_left:
                legacy_left -= 1
                if legacy_left == 0:
                    _skip_legacy_storages(src, value, pids)
        except LimitExceeded as e:
            ctx.error("limit_exceeded", str(e), file=where.file, member=where.member)
            return saw_wrapper
        except _PARSE_ERRORS as e:
            what = "pickle" if index == 0 else f"data after pickle #{index} (hidden second pickle?)"
            ctx.error("malformed_pickle", f"{what} cannot be parsed: {e}",
                      file=where.file, member=where.member, offset=m.op_offset)
            return saw_wrapper
        index += 1
        try:
            if src.at_eof() and not legacy_left:
                return saw_wrapper
        except LimitExceeded as e:
            ctx.error("limit_exceeded", str(e), file=where.file, member=where.member)
            return saw_wrapper


def _plain_pass(src: Source, where: Where, ctx: ScanContext, *, torch: bool) -> None:
    """Read the stream as plain ``pickle.load`` would (array bytes become opcodes)."""
    m = PickleMachine(src, where, ctx, mode=PickleMode(torch=torch, report_errors=False))
    try:
        m.run()
    except (*_PARSE_ERRORS, LimitExceeded):
        # pickle.load stops here too: everything it could run before was checked
        return
