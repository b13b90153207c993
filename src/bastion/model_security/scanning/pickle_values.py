"""Symbolic values the pickle emulator pushes instead of real objects.

Nothing here is ever imported or called: a :class:`Global` is just the pair of
strings a ``GLOBAL``/``STACK_GLOBAL`` named, an :class:`Obj` records which
callable would have been applied to which arguments.

Example::

    >>> Global("collections", "OrderedDict").qualified
    'collections.OrderedDict'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bastion.model_security.errors import ModelSecurityError


class Mark:
    """The MARK sentinel on the emulated stack."""

    def __repr__(self) -> str:
        return "MARK"


MARK = Mark()


@dataclass(eq=False)
class Global:
    module: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class Obj:
    """Result of REDUCE / NEWOBJ / INST / OBJ: ``cls(*args)`` never evaluated."""

    cls: object
    args: object
    kind: str
    state: object = None


@dataclass(eq=False)
class PList:
    items: list[object] = field(default_factory=list)


@dataclass(eq=False)
class PDict:
    items: list[tuple[object, object]] = field(default_factory=list)

    def get(self, key: str) -> object:
        for k, v in self.items:
            if k == key:
                return v
        return None

    def has(self, key: str) -> bool:
        return any(k == key for k, _ in self.items)


@dataclass(eq=False)
class PSet:
    items: list[object] = field(default_factory=list)
    frozen: bool = False


@dataclass(eq=False)
class PersRef:
    pid: object


@dataclass(eq=False)
class Opaque:
    """A value whose content the scanner skipped (large bytes, array data)."""

    what: str


class PickleError(ModelSecurityError):
    """The stream is not a well-formed pickle (internal; becomes a finding)."""


@dataclass(frozen=True)
class PickleMode:
    """How the stream is loaded: plain pickle, joblib, or torch (persistent ids)."""

    joblib: bool = False
    torch: bool = False
    torch_legacy_tar: bool = False
    report_errors: bool = True
