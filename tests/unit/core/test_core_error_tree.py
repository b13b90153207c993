"""Every exception class anywhere in the bastion package derives from BastionError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import bastion
from bastion.core.errors import BastionError

# Modules that run code when imported (alembic's migration env) are not libraries.
_NOT_IMPORTABLE = ("bastion.core.store._adapters.sql.migrations",)


def _all_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(bastion.__path__, "bastion."):
        if not info.name.startswith(_NOT_IMPORTABLE):
            names.append(info.name)
    return names


def test_every_module_imports() -> None:
    failures = {}
    for name in _all_modules():
        try:
            importlib.import_module(name)
        except Exception as e:  # report them all at once
            failures[name] = f"{type(e).__name__}: {e}"
    assert not failures, failures


def test_every_exception_class_derives_from_bastion_error() -> None:
    offenders = []
    seen = 0
    for name in _all_modules():
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
            ):
                seen += 1
                if not issubclass(obj, BastionError):
                    offenders.append(f"{name}.{attr}")
    assert seen >= 19  # the core tree alone has 19 classes: the walk found them
    assert not offenders, offenders


def test_every_error_has_a_code_and_diagnostics() -> None:
    from bastion.core import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        e = cls("what went wrong", hint="how to fix")
        assert e.code and e.code.replace("_", "").isalpha()
        assert e.diagnostics() == "what went wrong\n  hint: how to fix"
