"""The dependency rules of ARCHITECTURE.md, checked on the source with ``ast``.

- Domain code (``bastion.core`` outside ``_adapters``, ``bastion.data_security``,
  ``bastion.model_security`` outside their ``_adapters``) never imports fastapi,
  typer, click, sqlalchemy or boto3.
- Layers point one way: core <- data_security <- model_security <- ... <- cli / api.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
FRAMEWORKS = ("fastapi", "starlette", "typer", "click", "sqlalchemy", "alembic", "boto3", "uvicorn")
DOMAINS = (
    "bastion.core",
    "bastion.data_security",
    "bastion.model_security",
    "bastion.governance",
    "bastion.serving",
)
FORBIDDEN_LAYERS = {
    "bastion.core": (
        "bastion.data_security",
        "bastion.model_security",
        "bastion.governance",
        "bastion.serving",
        "bastion.cli",
        "bastion.api",
        "bastion.web",
        "bastion.demo",
        "bastion.workspace",
    ),
    "bastion.data_security": (
        "bastion.model_security",
        "bastion.governance",
        "bastion.serving",
        "bastion.cli",
        "bastion.api",
        "bastion.web",
        "bastion.demo",
        "bastion.workspace",
    ),
    "bastion.model_security": (
        "bastion.governance",
        "bastion.serving",
        "bastion.cli",
        "bastion.api",
        "bastion.web",
        "bastion.demo",
        "bastion.workspace",
    ),    "bastion.governance": (
        "bastion.serving",
        "bastion.cli",
        "bastion.api",
        "bastion.web",
        "bastion.demo",
        "bastion.workspace",
    ),
    "bastion.serving": (
        "bastion.cli",
        "bastion.api",
        "bastion.web",
        "bastion.demo",
        "bastion.workspace",
    ),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str | None = None) -> list[tuple[int, str]]:
    """Every module ``path`` imports (relative imports resolved), with line numbers."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
    return found


def files_of(package: str, *, skip_adapters: bool) -> list[Path]:
    root = SRC / package.replace(".", "/")
    files = sorted(root.rglob("*.py"))
    if skip_adapters:
        files = [f for f in files if "_adapters" not in f.relative_to(root).parts]
    return files


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_walk_finds_the_source() -> None:
    assert len(files_of("bastion.core", skip_adapters=True)) > 15
    assert any("_adapters" in str(f) for f in files_of("bastion.core", skip_adapters=False))


@pytest.mark.parametrize("package", DOMAINS)
def test_domain_code_never_imports_frameworks(package: str) -> None:
    assert (SRC / package.replace(".", "/")).is_dir(), f"{package} is listed but missing"
    offenders = [
        f"{f.relative_to(SRC)}:{line} imports {name}"
        for f in files_of(package, skip_adapters=True)
        for line, name in imports_of(f)
        if any(_within(name, fw) for fw in FRAMEWORKS)
    ]
    assert not offenders, offenders


@pytest.mark.parametrize("package", sorted(FORBIDDEN_LAYERS))
def test_layers_only_import_inwards(package: str) -> None:
    assert (SRC / package.replace(".", "/")).is_dir(), f"{package} is listed but missing"
    offenders = [
        f"{f.relative_to(SRC)}:{line} imports {name}"
        for f in files_of(package, skip_adapters=False)
        for line, name in imports_of(f)
        if any(_within(name, bad) for bad in FORBIDDEN_LAYERS[package])
    ]
    assert not offenders, offenders


def test_checker_catches_a_violation(tmp_path: Path) -> None:
    """A planted import is reported (a check that cannot fail is no check)."""
    planted = tmp_path / "probe.py"
    planted.write_text("from ..cli import main\nimport sqlalchemy.orm\nfrom . import values\n")
    names = [n for _, n in imports_of(planted, "bastion.core.probe")]
    assert "bastion.cli" in names and "sqlalchemy.orm" in names
    assert "bastion.core.values" in names
