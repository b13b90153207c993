"""The scan policy: the built-in allow-list plus what a project's admin added.

One :class:`ScanPolicy` value decides, for the scanner *and* for the loader
(:mod:`bastion.model_security.scanning.restricted`), which pickle globals may be
imported, and whether two refused-by-default constructs are accepted:
TorchScript archives (they carry code that ``torch.jit.load`` compiles and runs)
and opaque data files (content that is none of the known formats).

Extra globals are exact ``module.name`` strings, reviewed like code.  A few
modules can never be allowed, whatever an admin asks (``os``, ``subprocess``,
``builtins.eval`` ...): allowing them is refusing to scan.

Example::

    policy = ScanPolicy(extra_globals=frozenset({"pandas.core.frame.DataFrame"}))
    policy.allows("pandas.core.frame", "DataFrame")   # True
    validate_global("os.system")                       # raises ScanPolicyInvalid
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core.canonical import JSON
from bastion.model_security.errors import ScanPolicyInvalid
from bastion.model_security.scanning.allowlist import is_allowed

#: modules whose globals are code execution or process control by design
_NEVER_MODULES = frozenset({
    "os", "posix", "nt", "subprocess", "sys", "importlib", "runpy", "pty", "socket", "ctypes",
    "pickle", "_pickle", "marshal", "code", "codeop", "shutil", "pdb", "webbrowser",
    "multiprocessing", "asyncio", "threading", "_thread", "signal", "commands", "popen2",
    "platform", "pip", "ensurepip", "setuptools", "pkgutil", "timeit", "cProfile", "profile",
    "torch.hub", "torch.jit", "torch._C",
})
_NEVER_BUILTINS = frozenset({
    "eval", "exec", "compile", "__import__", "getattr", "setattr", "delattr", "open",
    "breakpoint", "input", "globals", "locals", "vars", "apply", "execfile", "file", "reload",
    "__builtins__",
})

#: policy switches an admin may turn on (``bastion model scan-policy allow --torchscript``)
FLAG_TORCHSCRIPT = "torchscript"
FLAG_OPAQUE_DATA = "opaque-data"
FLAGS = (FLAG_TORCHSCRIPT, FLAG_OPAQUE_DATA)


def validate_global(qualified: str) -> tuple[str, str]:
    """Split ``module.name`` and refuse malformed or never-allowable globals."""
    module, _, name = qualified.rpartition(".")
    parts = qualified.split(".")
    if not module or not all(p.isidentifier() for p in parts):
        raise ScanPolicyInvalid(
            f"{qualified!r} is not an exact 'module.name' global",
            hint="name one importable global, e.g. pandas.core.frame.DataFrame "
                 "(the scanner's findings print the names a model needs)",
        )
    top = module.split(".")[0]
    never = (top in _NEVER_MODULES or any(module == m or module.startswith(m + ".")
                                          for m in _NEVER_MODULES)
             or (module in ("builtins", "__builtin__") and name in _NEVER_BUILTINS))
    if never:
        raise ScanPolicyInvalid(
            f"{qualified!r} gives code execution or process control and can never be allowed",
            hint="export the model to a code-free format (safetensors, ONNX) instead",
        )
    return module, name


@dataclass(frozen=True)
class ScanPolicy:
    """What a project accepts beyond the built-in allow-list (nothing, by default)."""

    extra_globals: frozenset[str] = frozenset()
    allow_torchscript: bool = False
    allow_opaque_data: bool = False

    def allows(self, module: str, name: str) -> bool:
        """True when a pickle may import ``module.name`` (scanner and loader alike)."""
        return is_allowed(module, name) or f"{module}.{name}" in self.extra_globals

    def describe(self) -> dict[str, JSON]:
        return {
            "extra_globals": sorted(self.extra_globals),
            "allow_torchscript": self.allow_torchscript,
            "allow_opaque_data": self.allow_opaque_data,
        }


DEFAULT_POLICY = ScanPolicy()

__all__ = [
    "DEFAULT_POLICY",
    "FLAGS",
    "FLAG_OPAQUE_DATA",
    "FLAG_TORCHSCRIPT",
    "ScanPolicy",
    "validate_global",
]
