"""Rendering helpers: tables, JSON, and typed errors as human text."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bastion.core.canonical import JSON
from bastion.core.errors import (
    AccessError,
    BastionError,
    InputError,
    IntegrityError,
    KeyUnavailable,
    NotFound,
    PolicyDenied,
    WrongPassphrase,
)

console = Console()
err_console = Console(stderr=True)


def exit_code(e: BastionError) -> int:
    if isinstance(e, InputError | NotFound):
        return 2
    if isinstance(e, AccessError | WrongPassphrase):
        return 3
    # Damaged or missing key material is an integrity failure of the keyring.
    if isinstance(e, IntegrityError | KeyUnavailable):
        return 4
    if isinstance(e, PolicyDenied):
        return 5
    return 1


def print_error(e: BastionError) -> None:
    """Print ``diagnostics()`` (subclasses add detail there, e.g. which files differ)."""
    first, _, rest = e.diagnostics().partition("\n")
    err_console.print(
        Text.assemble(("error", "bold red"), f" ({e.code}): {first}"), highlight=False
    )
    if rest:
        err_console.print(rest, highlight=False, markup=False)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    console.print(t)


def print_json(value: JSON) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


__all__ = ["console", "err_console", "exit_code", "print_error", "print_json", "table"]
