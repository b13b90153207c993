"""Opening the workspace and resolving the acting principal for a command."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bastion.core.errors import KeyUnavailable

if TYPE_CHECKING:
    # Imported when a command runs, not to print help (pydantic-settings, the keyring).
    from bastion.core.access.values import Actor
    from bastion.core.crypto.keyring import MasterKeySource
    from bastion.core.settings import BastionSettings
    from bastion.workspace import Bastion


@dataclass(frozen=True)
class Session:
    ws: Bastion
    actor: Actor


def home_of(ctx: typer.Context) -> Path | None:
    """The ``--home`` given to the root command, if any."""
    home = (ctx.obj or {}).get("home")
    return Path(home) if home else None


def split_csv(text: str | None) -> tuple[str, ...]:
    """``"a, b,c"`` -> ``("a", "b", "c")``."""
    return tuple(c.strip() for c in text.split(",") if c.strip()) if text else ()


def settings(home: Path | None = None) -> BastionSettings:
    from bastion.core.settings import BastionSettings

    s = BastionSettings()
    if home is not None:
        s = s.model_copy(update={"home": home})
    return s


def master_source(s: BastionSettings, *, confirm: bool = False) -> MasterKeySource:
    try:
        return s.master_source()
    except KeyUnavailable:
        if not sys.stdin.isatty():
            raise
    from bastion.core.crypto.keyring import MasterKeySource

    first = getpass.getpass("Keyring passphrase: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise KeyUnavailable("the two passphrases differ")
    return MasterKeySource.from_passphrase(first)


def open_workspace(home: Path | None = None) -> Bastion:
    # The composition root pulls in SQLAlchemy and Alembic: imported when a
    # command needs the workspace, so `bastion --help` and `model scan` start fast.
    from bastion.workspace import Bastion

    s = settings(home)
    return Bastion.open(
        s.resolved_home(), master_source(s), database_url=s.database_url,
        witness_path=s.audit_witness,
    )


@contextmanager
def session(home: Path | None = None) -> Iterator[Session]:
    """Open the workspace and authenticate with BASTION_TOKEN or the credentials file."""
    s = settings(home)
    ws = open_workspace(home)
    try:
        token = s.token.get_secret_value() if s.token else ws.stored_token()
        actor = ws.access.authenticate(token)
        yield Session(ws, actor)
    finally:
        ws.close()


__all__ = [
    "Session",
    "home_of",
    "master_source",
    "open_workspace",
    "session",
    "settings",
    "split_csv",
]
