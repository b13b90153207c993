"""A pickle emulator: walks every opcode of protocols 0-5 without executing any.

It keeps the stack and the memo exactly as ``pickle.Unpickler`` would
(``MEMOIZE`` stores at ``len(memo)``, ``STACK_GLOBAL`` takes whatever strings
the stack holds, including ones fetched from the memo), so globals hidden by
memo indirection are still seen.  Every imported global goes through the
allow-list; anything else, extension-registry opcodes, calls of non-global
values and attribute injection into globals are findings.  Truncation,
unknown opcodes and stack errors become ``ERROR`` findings.

Example::

    with path.open("rb") as fh:
        PickleMachine(Source(fh, size=n), Where(str(path)), ctx).run()
"""

from __future__ import annotations

import _compat_pickle
import contextlib
import io
import struct
from collections.abc import Callable

from bastion.model_security.scanning.interface import ScanContext, Where
from bastion.model_security.scanning.pickle_opcodes import DISPATCH, STOP
from bastion.model_security.scanning.pickle_values import (
    Global,
    Mark,
    Obj,
    Opaque,
    PickleError,
    PickleMode,
)
from bastion.model_security.scanning.streams import Source, Truncated

ArrayHook = Callable[["PickleMachine", Obj], object]

_LINE_LIMIT = 64 * 1024
_ALWAYS_REPORTED = frozenset({"disallowed_global"})
_DEFAULT_MODE = PickleMode()

__all__ = ["ArrayHook", "PickleError", "PickleMachine", "PickleMode"]


class PickleMachine:
    """Emulates one pickle (up to its STOP) on a :class:`Source`."""

    def __init__(self, src: Source, where: Where, ctx: ScanContext, *,
                 mode: PickleMode = _DEFAULT_MODE, array_hook: ArrayHook | None = None) -> None:
        self.src = src
        self.where = where
        self.ctx = ctx
        self.mode = mode
        self.array_hook = array_hook
        self.stack: list[object] = []
        self.metastack: list[list[object]] = []
        self.memo: dict[int, object] = {}
        self.proto = 0
        self.op_offset = 0
        self.saw_array_wrapper = False
        self.persistent_ids: list[object] = []
        self.globals_seen: list[tuple[str, str]] = []

    # -- reporting -----------------------------------------------------
    def critical(self, code: str, message: str) -> None:
        if not self.mode.report_errors and code not in _ALWAYS_REPORTED:
            # speculative passes (plain reading of joblib array bytes, bytes that merely
            # look like a pickle) report only real imports, not noise from raw data
            return
        self.ctx.add(code, message, file=self.where.file, member=self.where.member,
                     offset=self.op_offset)

    def fail(self, message: str) -> PickleError:
        return PickleError(message)

    # -- stack helpers ---------------------------------------------------
    def pop(self) -> object:
        if not self.stack:
            raise self.fail("stack underflow")
        value = self.stack.pop()
        if isinstance(value, Mark):
            raise self.fail("unexpected MARK on the stack")
        return value

    def top(self) -> object:
        if not self.stack or isinstance(self.stack[-1], Mark):
            raise self.fail("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[object]:
        if not self.metastack:
            raise self.fail("no MARK to pop to")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    # -- the loop ----------------------------------------------------------
    def run(self) -> object:
        """Run to STOP and return the symbolic top value; raises on malformed input."""
        count = 0
        src, limit, dispatch = self.src, self.ctx.limits.max_pickle_opcodes, DISPATCH
        while True:
            self.op_offset = src.offset
            code = src.read(1)
            if not code:
                raise Truncated(f"pickle ends without STOP at offset {self.op_offset}")
            count += 1
            if count > limit:
                raise self.fail("too many opcodes")
            handler = dispatch.get(code[0])
            if handler is None:
                raise self.fail(f"unknown opcode 0x{code[0]:02x}")
            if handler is STOP:
                return self.pop()
            handler(self)

    # -- globals -----------------------------------------------------------
    def resolve_global(self, module: str, name: str) -> Global:
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        qualified = f"{module}.{name}"
        self.globals_seen.append((module, name))
        plausible = all(p.isidentifier() for p in module.split(".")) and all(
            p.isidentifier() for p in name.split("."))
        allowed = self.ctx.allows(module, name)
        if not allowed and (plausible or self.mode.report_errors):
            self.critical("disallowed_global",
                          f"pickle imports {qualified!r}, which is not on the allow-list")
        if qualified == "joblib.numpy_pickle.NumpyArrayWrapper":
            self.saw_array_wrapper = True
        return Global(module, name)

    def check_callable(self, func: object, how: str) -> None:
        if not isinstance(func, Global):
            self.critical("call_of_non_global",
                          f"{how} calls a computed value ({type(func).__name__}), "
                          "a known way to chain allowed objects into a gadget")

    # -- bytes/str helpers ---------------------------------------------------
    def read_blob(self, n: int, *, text: bool) -> object:
        if n < 0:
            raise self.fail("negative length")
        left = self.src.remaining()
        if left is not None and n > left:
            raise Truncated(f"declared length {n} exceeds the {left} bytes left")
        if n > self.ctx.limits.max_pickle_string:
            head = self.src.read_exact(16)
            self.src.skip(n - 16)
            if head[:1] == b"\x80" and 2 <= head[1] <= 5:
                self.ctx.error("large_nested_pickle",
                               f"embedded {n}-byte blob looks like a pickle and is too large "
                               "to inspect", file=self.where.file, member=self.where.member,
                               offset=self.op_offset)
            return Opaque(f"{n} bytes")
        data = self.src.read_exact(n)
        if text:
            try:
                return data.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as e:
                raise self.fail("invalid UTF-8 string") from e
        self.nested(data)
        return data

    def nested(self, data: bytes) -> None:
        """Scan bytes that look like a pickle: a loader may unpickle them later."""
        if len(data) < 4 or data[0] != 0x80 or not 2 <= data[1] <= 5:
            return
        if self.where.depth >= self.ctx.limits.max_nesting_depth:
            self.ctx.error("nesting_too_deep", "nested pickles exceed the depth limit",
                           file=self.where.file, member=self.where.member, offset=self.op_offset)
            return
        inner = Where(self.where.file, f"{self.where.member or ''}@{self.op_offset}"
                      .lstrip("@"), self.where.depth + 1)
        sub = PickleMachine(Source(io.BytesIO(data), size=len(data), base=self.op_offset),
                            inner, self.ctx, mode=PickleMode(report_errors=False))
        with contextlib.suppress(PickleError, Truncated, ValueError, struct.error):
            sub.run()

    def line(self) -> bytes:
        raw = self.src.readline(_LINE_LIMIT)
        return raw[:-1]
