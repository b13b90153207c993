"""PyTorch's legacy tar format (``torch.save`` before 0.4): four tar members.

``sys_info`` and ``pickle`` are pickles (the latter with persistent ids);
``storages`` is a pickled count, then per storage a pickled
``(key, location, storage_type)`` followed by an int64 element count and the raw
bytes, then a pickled list of views; ``tensors`` is a pickled count, then per
tensor a pickled record followed by ndim, sizes, strides and an offset.  Raw
parts are skipped by their declared sizes; every pickle is emulated; trailing
data is an error.

Example::

    if is_legacy_torch_tar(names):
        scan_legacy_member(name, opener, where, ctx)
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from bastion.model_security.scanning.interface import ScanContext, Where
from bastion.model_security.scanning.pickle_scan import element_size, scan_pickle_stream
from bastion.model_security.scanning.pickle_values import PickleError, PickleMode
from bastion.model_security.scanning.pickle_vm import PickleMachine
from bastion.model_security.scanning.streams import LimitExceeded, Source, Truncated

LEGACY_MEMBERS = frozenset({"sys_info", "pickle", "storages", "tensors"})
_MAX_RECORDS = 10_000_000


def is_legacy_torch_tar(names: set[str]) -> bool:
    return {"pickle", "storages", "tensors"} <= names


def _value(src: Source, where: Where, ctx: ScanContext) -> object:
    return PickleMachine(src, where, ctx, mode=PickleMode(torch=True)).run()


def _count(src: Source, where: Where, ctx: ScanContext) -> int:
    n = _value(src, where, ctx)
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= _MAX_RECORDS:
        raise PickleError(f"record count {n!r} is not a valid count")
    return n


def _storages(src: Source, where: Where, ctx: ScanContext) -> None:
    for _ in range(_count(src, where, ctx)):
        record = _value(src, where, ctx)
        if not (isinstance(record, tuple) and len(record) == 3):
            raise PickleError("storage record is not (key, location, storage_type)")
        (numel,) = struct.unpack("<q", src.read_exact(8))
        if numel < 0:
            raise PickleError("negative storage size")
        src.skip(numel * element_size(record[2]))
    _value(src, where, ctx)  # storage views


def _tensors(src: Source, where: Where, ctx: ScanContext) -> None:
    for _ in range(_count(src, where, ctx)):
        _value(src, where, ctx)
        (ndim,) = struct.unpack("<i", src.read_exact(4))
        if not 0 <= ndim <= 64:
            raise PickleError(f"tensor with {ndim} dimensions")
        src.skip(4 + 16 * ndim + 8)


def scan_legacy_member(name: str, opener: Callable[[], Source], where: Where,
                       ctx: ScanContext) -> None:
    """Scan one member of a legacy torch tar; malformed data is an ERROR finding."""
    if name not in ("storages", "tensors"):
        scan_pickle_stream(opener, where, ctx, torch=True, legacy_tar=True)
        return
    src = opener()
    try:
        (_storages if name == "storages" else _tensors)(src, where, ctx)
        if not src.at_eof():
            raise PickleError("data after the last record")
    except (PickleError, Truncated, LimitExceeded, ValueError, struct.error) as e:
        ctx.error("malformed_torch_tar", f"legacy torch member {name!r}: {e}",
                  file=where.file, member=where.member, offset=src.offset)
