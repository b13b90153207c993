"""Keras: the model config (``config.json`` in ``.keras``, ``model_config`` in ``.h5``).

Refused: ``Lambda`` layers (marshalled Python bytecode), objects whose
``module`` is not Keras (Keras imports that module and looks the class up,
CVE-2024-3660 / CVE-2025-1550 style), and custom ``registered_name`` objects.

Example::

    check_keras_config(json.loads(text), Where("model.keras", "config.json"), ctx)
"""

from __future__ import annotations

import json
from pathlib import Path

from bastion.model_security.scanning.interface import ScanContext, Where

_LAMBDA_CLASSES = frozenset({"Lambda", "TFOpLambda", "__lambda__", "SlicingOpLambda"})
_SAFE_BUILTIN_CLASSES = frozenset({"tuple", "list", "dict", "set"})


def _module_ok(module: str, class_name: object) -> bool:
    if module == "keras" or module.startswith("keras."):
        return True
    return module == "builtins" and class_name in _SAFE_BUILTIN_CLASSES


def check_keras_config(config: object, where: Where, ctx: ScanContext, depth: int = 0) -> None:
    """Walk a Keras config tree and report code-carrying or foreign objects."""
    if depth > 200:
        ctx.error("keras_config_depth", "Keras config nesting is too deep",
                  file=where.file, member=where.member)
        return
    if isinstance(config, list):
        for item in config:
            check_keras_config(item, where, ctx, depth + 1)
        return
    if not isinstance(config, dict):
        return
    class_name = config.get("class_name")
    if class_name in _LAMBDA_CLASSES or config.get("function_type") == "lambda":
        ctx.add("keras_lambda", f"Keras layer {class_name!r} carries serialized Python code",
                file=where.file, member=where.member)
    module = config.get("module")
    if isinstance(module, str) and not _module_ok(module, class_name):
        ctx.add("keras_foreign_module",
                f"Keras object {class_name!r} comes from module {module!r}, which Keras "
                "would import", file=where.file, member=where.member)
    registered = config.get("registered_name")
    if isinstance(registered, str) and registered not in (class_name, "function") and (
            ">" in registered or not registered.startswith("keras")):
        ctx.add("keras_custom_object",
                f"Keras custom object {registered!r} needs user code to load",
                file=where.file, member=where.member)
    for value in config.values():
        check_keras_config(value, where, ctx, depth + 1)


def check_keras_json(data: bytes, where: Where, ctx: ScanContext) -> None:
    try:
        config = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        ctx.error("malformed_keras_config", f"Keras config is not valid JSON: {e}",
                  file=where.file, member=where.member)
        return
    check_keras_config(config, where, ctx)


def scan_hdf5(path: Path, where: Where, ctx: ScanContext) -> None:
    """Read ``model_config`` / ``training_config`` attributes of an HDF5 model."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            for key in ("model_config", "training_config"):
                if key in h5.attrs:
                    raw = h5.attrs[key]
                    data = raw if isinstance(raw, bytes) else str(raw).encode()
                    check_keras_json(data, where, ctx)
    except (OSError, KeyError, ValueError, TypeError) as e:
        ctx.error("malformed_hdf5", f"HDF5 file cannot be read: {e}",
                  file=where.file, member=where.member)
