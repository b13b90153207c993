"""``bastion backup`` and ``bastion restore``: a workspace you can move, back up and restore."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bastion.cli._context import home_of as _home
from bastion.cli._context import master_source, session, settings
from bastion.cli._render import console


def backup(
    ctx: typer.Context,
    dest: Annotated[Path, typer.Argument(help="a new (or empty) folder for the backup")],
) -> None:
    """Write a consistent, signed snapshot of the workspace (safe while a server runs)."""
    with session(_home(ctx)) as s:
        manifest = s.ws.backup(s.actor, dest)
    size = sum(f.size for f in manifest.files)
    console.print(
        f"[green]backup written[/] to {dest.expanduser().resolve()}: "
        f"{len(manifest.files)} files, {size:,} bytes, manifest signed"
    )
    if not manifest.embedded_database:
        console.print(
            "[yellow]the metadata database is external[/]: back it up with "
            "`pg_dump --format=custom` at the same time and restore it with `pg_restore` "
            "before `bastion restore` (see docs/operations.md)"
        )


def restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="a folder written by `bastion backup`")],
    dest: Annotated[Path, typer.Argument(help="a new (or empty) folder for the workspace")],
) -> None:
    """Check a backup against its signed manifest, restore it to a new folder, verify it."""
    from bastion.workspace import Bastion

    ws, fsck = Bastion.restore(source, dest, master_source(settings(_home(ctx))))
    try:
        head = ws.audit.head()
    finally:
        ws.close()
    console.print(
        f"[green]restored[/] to {dest.expanduser().resolve()}: manifest and signature checked, "
        f"audit log intact ({head.size} entries), {fsck.checked} blobs verified"
    )
    console.print(f"use it with: export BASTION_HOME={dest.expanduser().resolve()}")


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)


__all__ = ["register"]
