"""Defence in depth: unpickle through the scanner's allow-list, never a plain ``pickle.load``.

The scanner decides *before* loading; this module makes the loader enforce the
same decision *while* loading, so that a scanner miss can never become code
execution.  Every global a pickle imports goes through ``find_class``, which
asks the same :class:`ScanPolicy` the scanner used (built-in allow-list plus
the project's admin-approved extras) and raises :class:`DisallowedGlobal`
before anything is imported.

joblib files are read with a subclass of joblib's ``NumpyUnpickler`` (arrays
stored after their wrapper are read as joblib does); object-dtype arrays, which
joblib unpickles as a nested pickle, are read by the restricted unpickler too.
Compressed joblib files are decompressed by the scanner's bounded decompressor.

Example::

    model = restricted_joblib_load(Path("model.joblib"), policy)
    obj = restricted_pickle_load(io.BytesIO(data), policy)
"""

from __future__ import annotations

import _compat_pickle
import importlib
import inspect
import pickle
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

from bastion.model_security.errors import DisallowedGlobal
from bastion.model_security.scanning.interface import ScanLimits
from bastion.model_security.scanning.joblib_format import joblib_compression
from bastion.model_security.scanning.policy import DEFAULT_POLICY, ScanPolicy
from bastion.model_security.scanning.streams import decompressing


def _checked_global(policy: ScanPolicy, module: str, name: str) -> Any:
    """Map Python 2 names, check the name that will be imported, then import it."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    if "." in name or not policy.allows(module, name):
        raise DisallowedGlobal(
            f"refused to load: the pickle imports {module}.{name!s}, which is not on the "
            "allow-list (nothing was imported or run)",
            hint="if this global is needed and safe, an admin can allow it for the project: "
                 f"bastion model scan-policy allow --project P {module}.{name}",
        )
    return getattr(importlib.import_module(module), name)


class RestrictedUnpickler(pickle._Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` enforces the scan policy."""

    def __init__(self, file: BinaryIO, policy: ScanPolicy = DEFAULT_POLICY) -> None:
        super().__init__(file, fix_imports=False)  # names are mapped (and checked) below
        self._policy = policy

    def find_class(self, module: str, name: str) -> Any:
        return _checked_global(self._policy, module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise DisallowedGlobal("refused to load: the pickle uses persistent ids "
                               "(only PyTorch's own loader gives them a meaning)")


def restricted_pickle_load(fh: BinaryIO, policy: ScanPolicy = DEFAULT_POLICY) -> Any:
    """Unpickle one object from *fh* through the allow-list."""
    return RestrictedUnpickler(fh, policy).load()


@cache
def _joblib_unpickler() -> type[Any]:
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    accepts_order = "ensure_native_byte_order" in inspect.signature(NumpyUnpickler).parameters

    class RestrictedNumpyUnpickler(NumpyUnpickler):  # type: ignore[misc]
        """joblib's unpickler with the allow-list in ``find_class`` (and nested pickles)."""

        dispatch = NumpyUnpickler.dispatch.copy()

        def __init__(self, fh: BinaryIO, policy: ScanPolicy) -> None:
            if accepts_order:
                super().__init__("", fh, ensure_native_byte_order=True)
            else:
                super().__init__("", fh)
            self._policy = policy

        def find_class(self, module: str, name: str) -> Any:
            return _checked_global(self._policy, module, name)

        def persistent_load(self, pid: Any) -> Any:
            return RestrictedUnpickler.persistent_load(self, pid)

        def load_build(self) -> None:
            # BUILD applies stack[-1] (state) to stack[-2]; an object-dtype array is a
            # nested pickle on the same stream: read it restricted too, whatever the
            # joblib version does with it
            target, state = self.stack[-2], self.stack[-1]
            if isinstance(target, NumpyArrayWrapper) and isinstance(state, dict) \
                    and getattr(state.get("dtype"), "hasobject", False):
                pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
                self.stack.pop()
                self.stack.append(RestrictedUnpickler(self.file_handle, self._policy).load())
                return
            NumpyUnpickler.load_build(self)

        dispatch[pickle.BUILD[0]] = load_build

    return RestrictedNumpyUnpickler


def restricted_joblib_load(source: Path | BinaryIO, policy: ScanPolicy = DEFAULT_POLICY,
                           *, limits: ScanLimits | None = None) -> Any:
    """Load a joblib (or plain pickle) file, compressed or not, through the allow-list."""
    if isinstance(source, Path):
        with source.open("rb") as fh:
            return restricted_joblib_load(fh, policy, limits=limits)
    head = source.read(16)
    source.seek(0)
    kind = joblib_compression(head)
    if kind is not None and not head.startswith(b"\x80"):
        if kind == "zfile":
            raise DisallowedGlobal("refused to load: the pre-0.10 joblib format is not "
                                   "supported (re-save the model with a current joblib)")
        limit = (limits or ScanLimits()).max_decompressed_bytes
        with decompressing(source, kind, limit=limit) as stream:
            return _joblib_unpickler()(stream, policy).load()
    return _joblib_unpickler()(source, policy).load()


__all__ = [
    "RestrictedUnpickler",
    "restricted_joblib_load",
    "restricted_pickle_load",
]
