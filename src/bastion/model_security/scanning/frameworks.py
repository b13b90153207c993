"""Check a declared framework against what an artifact's content is.

``--framework keras`` on a pickle, or ``--framework onnx`` on a torch zip, is a
mislabelled artifact: a loader picked by the label would read bytes of another
format.  The check looks at content (magic bytes, zip member names), never at
file extensions.

Example::

    check_framework(Path("model.keras"), "keras")   # raises FrameworkMismatch
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from bastion.model_security.errors import FrameworkMismatch
from bastion.model_security.scanning.detect import HEAD_SIZE, detect
from bastion.model_security.scanning.interface import ArtifactFormat

_F = ArtifactFormat
#: content kinds that hold a model of each framework (``torch-zip``/``keras-zip``
#: refine ZIP by member names)
MODEL_KINDS: dict[str, frozenset[str]] = {
    "sklearn": frozenset({"pickle", "joblib-compressed"}),
    "xgboost": frozenset({"json", "pickle", "joblib-compressed", "unknown"}),
    "lightgbm": frozenset({"text", "pickle", "joblib-compressed"}),
    "onnx": frozenset({"onnx"}),
    "pytorch": frozenset({"torch-zip", "pickle", "tar", "safetensors"}),
    "keras": frozenset({"keras-zip", "hdf5"}),
}


def content_kind(path: Path) -> str:
    """The format of one file, with zips told apart by their members."""
    with path.open("rb") as fh:
        fmt = detect(fh.read(HEAD_SIZE), path.stat().st_size)
    if fmt is not _F.ZIP:
        return str(fmt.value)
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return str(fmt.value)
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return "torch-zip"
    if "config.json" in names and ("metadata.json" in names
                                   or any(n.endswith(".weights.h5") for n in names)):
        return "keras-zip"
    return str(fmt.value)


def _files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    out: list[Path] = []
    for root, _dirs, files in os.walk(path, followlinks=False):
        out.extend(Path(root) / f for f in files)
    return [p for p in out if p.is_file() and not p.is_symlink()]


def check_framework(path: Path, framework: str) -> str:
    """Return the matching content kind, or raise :class:`FrameworkMismatch`."""
    wanted = MODEL_KINDS.get(framework)
    if wanted is None:
        raise FrameworkMismatch(f"unknown framework {framework!r}",
                                hint=f"choose one of: {', '.join(MODEL_KINDS)}")
    kinds = {p.name: content_kind(p) for p in _files(path)}
    for kind in kinds.values():
        if kind in wanted:
            return kind
    seen = ", ".join(f"{n}: {k}" for n, k in sorted(kinds.items())[:8]) or "no files"
    raise FrameworkMismatch(
        f"{path} was declared as a {framework} model, but its content is not: {seen}",
        hint=f"a {framework} model is one of: {', '.join(sorted(wanted))}; pass the "
             "framework the file really is (content decides, not the extension)",
    )


__all__ = ["MODEL_KINDS", "check_framework", "content_kind"]
