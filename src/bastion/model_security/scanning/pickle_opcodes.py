"""Opcode handlers of the pickle emulator (one small function per opcode).

Each handler mutates the :class:`PickleMachine` stack/memo exactly as
``pickle.Unpickler`` would, with symbolic values instead of real objects.

Example::

    DISPATCH[ord("N")](machine)   # pushes None
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from bastion.model_security.scanning.pickle_values import (
    Global,
    Obj,
    PDict,
    PersRef,
    PList,
    PSet,
)
from bastion.model_security.scanning.streams import Truncated

if TYPE_CHECKING:
    from bastion.model_security.scanning.pickle_vm import PickleMachine

def _decode_str(raw: bytes) -> str:
    return raw.decode("latin-1")


# ---------------------------------------------------------------------------
# opcode handlers
# ---------------------------------------------------------------------------
def _stop(m: PickleMachine) -> None:  # sentinel; handled in run()
    raise AssertionError


def _mark(m: PickleMachine) -> None:
    m.metastack.append(m.stack)
    m.stack = []


def _pop(m: PickleMachine) -> None:
    if m.stack:
        m.pop()
    else:
        m.pop_mark()


def _pop_mark(m: PickleMachine) -> None:
    m.pop_mark()


def _dup(m: PickleMachine) -> None:
    m.stack.append(m.top())


def _proto(m: PickleMachine) -> None:
    m.proto = m.src.read_exact(1)[0]
    if m.proto > 5:
        raise m.fail(f"unsupported pickle protocol {m.proto}")


def _frame(m: PickleMachine) -> None:
    (n,) = struct.unpack("<Q", m.src.read_exact(8))
    left = m.src.remaining()
    if left is not None and n > left:
        raise Truncated(f"FRAME of {n} bytes exceeds the {left} bytes left")


def _int(m: PickleMachine) -> None:
    data = m.line()
    if data == b"00":
        m.stack.append(False)
    elif data == b"01":
        m.stack.append(True)
    else:
        m.stack.append(int(data, 0) if data.strip() else _bad(m, "empty INT"))


def _bad(m: PickleMachine, msg: str) -> int:
    raise m.fail(msg)


def _long(m: PickleMachine) -> None:
    data = m.line()
    if data.endswith(b"L"):
        data = data[:-1]
    m.stack.append(int(data, 0))


def _float(m: PickleMachine) -> None:
    m.stack.append(float(m.line()))


def _fixed(fmt: str) -> Callable[[PickleMachine], None]:
    size = struct.calcsize(fmt)

    def handler(m: PickleMachine) -> None:
        m.stack.append(struct.unpack(fmt, m.src.read_exact(size))[0])

    return handler


def _long_n(width: int) -> Callable[[PickleMachine], None]:
    def handler(m: PickleMachine) -> None:
        (n,) = struct.unpack("<B" if width == 1 else "<i", m.src.read_exact(width))
        if n < 0:
            raise m.fail("negative LONG length")
        if n > 1024 * 1024:
            raise m.fail("LONG too large")
        m.stack.append(int.from_bytes(m.src.read_exact(n), "little", signed=True))

    return handler


def _const(value: object) -> Callable[[PickleMachine], None]:
    def handler(m: PickleMachine) -> None:
        m.stack.append(value)

    return handler


def _string(m: PickleMachine) -> None:
    data = m.line()
    if len(data) < 2 or data[0] != data[-1] or data[:1] not in (b'"', b"'"):
        raise m.fail("STRING opcode argument must be quoted")
    raw = cast(bytes, codecs.escape_decode(data[1:-1])[0])
    m.stack.append(_decode_str(raw))
    m.nested(raw)


def _sized(width: str, *, text: bool, as_str: bool = False) -> Callable[[PickleMachine], None]:
    size = struct.calcsize(width)

    def handler(m: PickleMachine) -> None:
        (n,) = struct.unpack(width, m.src.read_exact(size))
        value = m.read_blob(n, text=text)
        if as_str and isinstance(value, bytes):
            value = _decode_str(value)
        m.stack.append(value)

    return handler


def _bytearray8(m: PickleMachine) -> None:
    (n,) = struct.unpack("<Q", m.src.read_exact(8))
    value = m.read_blob(n, text=False)
    m.stack.append(bytearray(value) if isinstance(value, bytes) else value)


def _unicode(m: PickleMachine) -> None:
    m.stack.append(m.line().decode("raw-unicode-escape"))


def _next_buffer(m: PickleMachine) -> None:
    raise m.fail("out-of-band buffers (NEXT_BUFFER) cannot be verified")


def _readonly_buffer(m: PickleMachine) -> None:
    m.top()


# NB: ``m.stack.append(m.pop_mark())`` would bind ``append`` to the list *before*
# pop_mark() swaps the stack, so every mark-consuming handler pops first.
def _tuple(m: PickleMachine) -> None:
    items = m.pop_mark()
    m.stack.append(tuple(items))


def _tuple_n(n: int) -> Callable[[PickleMachine], None]:
    def handler(m: PickleMachine) -> None:
        items = [m.pop() for _ in range(n)][::-1]
        m.stack.append(tuple(items))

    return handler


def _list(m: PickleMachine) -> None:
    items = m.pop_mark()
    m.stack.append(PList(items))


def _dict(m: PickleMachine) -> None:
    items = m.pop_mark()
    if len(items) % 2:
        raise m.fail("DICT with odd number of items")
    m.stack.append(PDict(list(zip(items[::2], items[1::2], strict=True))))


def _append(m: PickleMachine) -> None:
    value = m.pop()
    _extend(m, m.top(), [value])


def _appends(m: PickleMachine) -> None:
    items = m.pop_mark()
    _extend(m, m.top(), items)


def _extend(m: PickleMachine, target: object, items: list[object]) -> None:
    if isinstance(target, PList):
        target.items.extend(items)
    elif not isinstance(target, Obj):
        # list subclasses are Objs whose class was already checked
        raise m.fail(f"APPEND(S) on {type(target).__name__}")


def _setitem(m: PickleMachine) -> None:
    value = m.pop()
    key = m.pop()
    _set_items(m, m.top(), [key, value])


def _setitems(m: PickleMachine) -> None:
    items = m.pop_mark()
    if len(items) % 2:
        raise m.fail("SETITEMS with odd number of items")
    _set_items(m, m.top(), items)


def _set_items(m: PickleMachine, target: object, items: list[object]) -> None:
    if isinstance(target, PDict):
        target.items.extend(zip(items[::2], items[1::2], strict=True))
    elif not isinstance(target, Obj):
        # dict subclasses (Bunch, OrderedDict) are Objs whose class was already checked
        raise m.fail(f"SETITEM(S) on {type(target).__name__}")


def _additems(m: PickleMachine) -> None:
    items = m.pop_mark()
    target = m.top()
    if not isinstance(target, PSet):
        raise m.fail("ADDITEMS on a non-set")
    target.items.extend(items)


def _frozenset(m: PickleMachine) -> None:
    items = m.pop_mark()
    m.stack.append(PSet(items, frozen=True))


def _get(m: PickleMachine, key: int) -> None:
    if key not in m.memo:
        raise m.fail(f"memo key {key} not found")
    m.stack.append(m.memo[key])


def _get_line(m: PickleMachine) -> None:
    _get(m, int(m.line()))


def _get_fixed(fmt: str) -> Callable[[PickleMachine], None]:
    size = struct.calcsize(fmt)

    def handler(m: PickleMachine) -> None:
        _get(m, struct.unpack(fmt, m.src.read_exact(size))[0])

    return handler


def _put_line(m: PickleMachine) -> None:
    key = int(m.line())
    if key < 0:
        raise m.fail("negative PUT index")
    m.memo[key] = m.top()


def _put_fixed(fmt: str) -> Callable[[PickleMachine], None]:
    size = struct.calcsize(fmt)

    def handler(m: PickleMachine) -> None:
        key = struct.unpack(fmt, m.src.read_exact(size))[0]
        if key < 0:
            raise m.fail("negative PUT index")
        m.memo[key] = m.top()

    return handler


def _memoize(m: PickleMachine) -> None:
    m.memo[len(m.memo)] = m.top()


def _global(m: PickleMachine) -> None:
    module = m.line().decode("utf-8")
    name = m.line().decode("utf-8")
    m.stack.append(m.resolve_global(module, name))


def _stack_global(m: PickleMachine) -> None:
    name = m.pop()
    module = m.pop()
    if not isinstance(module, str) or not isinstance(name, str):
        m.critical("stack_global_non_string",
                   "STACK_GLOBAL operands are not strings (computed import target)")
        m.stack.append(Global(repr(module), repr(name)))
        return
    m.stack.append(m.resolve_global(module, name))


def _inst(m: PickleMachine) -> None:
    module = m.line().decode("utf-8")
    name = m.line().decode("utf-8")
    cls = m.resolve_global(module, name)
    args = tuple(m.pop_mark())
    m.stack.append(Obj(cls, args, "inst"))


def _obj(m: PickleMachine) -> None:
    items = m.pop_mark()
    if not items:
        raise m.fail("OBJ without class")
    m.check_callable(items[0], "OBJ")
    m.stack.append(Obj(items[0], tuple(items[1:]), "obj"))


def _newobj(m: PickleMachine) -> None:
    args = m.pop()
    cls = m.pop()
    m.check_callable(cls, "NEWOBJ")
    m.stack.append(Obj(cls, args, "newobj"))


def _newobj_ex(m: PickleMachine) -> None:
    kwargs = m.pop()
    args = m.pop()
    cls = m.pop()
    m.check_callable(cls, "NEWOBJ_EX")
    m.stack.append(Obj(cls, (args, kwargs), "newobj_ex"))


def _reduce(m: PickleMachine) -> None:
    args = m.pop()
    func = m.pop()
    m.check_callable(func, "REDUCE")
    m.stack.append(Obj(func, args, "reduce"))


def _build(m: PickleMachine) -> None:
    state = m.pop()
    target = m.top()
    if isinstance(target, Global):
        m.critical("build_on_global",
                   f"BUILD sets attributes on {target.qualified!r} itself (attribute injection)")
    if isinstance(target, Obj):
        target.state = state
        cls = target.cls
        if (m.mode.joblib and m.array_hook is not None and isinstance(cls, Global)
                and cls.qualified == "joblib.numpy_pickle.NumpyArrayWrapper"):
            m.stack.pop()
            m.stack.append(m.array_hook(m, target))


def _persid(m: PickleMachine) -> None:
    pid = m.line().decode("ascii", "replace")
    _persistent(m, pid)


def _binpersid(m: PickleMachine) -> None:
    _persistent(m, m.pop())


def _torch_pid_ok(pid: object, *, legacy_tar: bool) -> bool:
    """Persistent ids torch writes: storage records, module-source records (legacy
    formats: the class is a Global already checked), plain keys (legacy tar)."""
    if isinstance(pid, tuple) and pid:
        if pid[0] == "storage":
            return True
        if pid[0] == "module" and len(pid) == 4 and isinstance(pid[1], Global):
            return True
        return legacy_tar and isinstance(pid[0], Global)
    return legacy_tar and isinstance(pid, str | int)


def _persistent(m: PickleMachine, pid: object) -> None:
    if not m.mode.torch:
        m.critical("persistent_id",
                   "persistent id outside a PyTorch checkpoint: the loader's persistent_load "
                   "decides what it becomes")
    elif not _torch_pid_ok(pid, legacy_tar=m.mode.torch_legacy_tar):
        m.critical("torch_persistent_id",
                   f"PyTorch persistent id is not a storage record: {pid!r:.80}")
    m.persistent_ids.append(pid)
    m.stack.append(PersRef(pid))


def _ext(width: int) -> Callable[[PickleMachine], None]:
    def handler(m: PickleMachine) -> None:
        code = int.from_bytes(m.src.read_exact(width), "little")
        m.critical("extension_registry",
                   f"EXT{width} opcode (extension code {code}) imports a global through the "
                   "copyreg extension registry")
        m.stack.append(Global("<ext>", str(code)))

    return handler


DISPATCH: dict[int, Callable[[PickleMachine], None]] = {
    ord("."): _stop, ord("("): _mark, ord("0"): _pop, ord("1"): _pop_mark, ord("2"): _dup,
    0x80: _proto, 0x95: _frame,
    ord("I"): _int, ord("L"): _long, ord("F"): _float,
    ord("J"): _fixed("<i"), ord("K"): _fixed("<B"), ord("M"): _fixed("<H"),
    ord("G"): _fixed(">d"), 0x8A: _long_n(1), 0x8B: _long_n(4),
    ord("N"): _const(None), 0x88: _const(True), 0x89: _const(False),
    ord("S"): _string, ord("V"): _unicode,
    ord("T"): _sized("<i", text=False, as_str=True),
    ord("U"): _sized("<B", text=False, as_str=True),
    ord("B"): _sized("<I", text=False), ord("C"): _sized("<B", text=False),
    0x8E: _sized("<Q", text=False), 0x96: _bytearray8,
    ord("X"): _sized("<I", text=True), 0x8C: _sized("<B", text=True),
    0x8D: _sized("<Q", text=True),
    0x97: _next_buffer, 0x98: _readonly_buffer,
    ord(")"): _const(()), ord("t"): _tuple, 0x85: _tuple_n(1), 0x86: _tuple_n(2),
    0x87: _tuple_n(3),
    ord("]"): lambda m: m.stack.append(PList()), ord("l"): _list,
    ord("}"): lambda m: m.stack.append(PDict()), ord("d"): _dict,
    0x8F: lambda m: m.stack.append(PSet()), 0x90: _additems, 0x91: _frozenset,
    ord("a"): _append, ord("e"): _appends, ord("s"): _setitem, ord("u"): _setitems,
    ord("g"): _get_line, ord("h"): _get_fixed("<B"), ord("j"): _get_fixed("<I"),
    ord("p"): _put_line, ord("q"): _put_fixed("<B"), ord("r"): _put_fixed("<I"),
    0x94: _memoize,
    ord("c"): _global, 0x93: _stack_global, ord("i"): _inst, ord("o"): _obj,
    0x81: _newobj, 0x92: _newobj_ex, ord("R"): _reduce, ord("b"): _build,
    ord("P"): _persid, ord("Q"): _binpersid,
    0x82: _ext(1), 0x83: _ext(2), 0x84: _ext(4),
}

STOP = _stop
