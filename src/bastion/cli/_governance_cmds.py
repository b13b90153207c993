"""``bastion model card`` and ``bastion model card-set``: model cards (governance layer)."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli._context import home_of as _home
from bastion.cli._context import session
from bastion.cli._render import console
from bastion.core.access.values import DEFAULT_PROJECT
from bastion.core.errors import InputError

Project = Annotated[str, typer.Option("--project", "-p", help="project name")]


class CardFormat(enum.StrEnum):
    MD = "md"
    HTML = "html"
    JSON = "json"
    CYCLONEDX = "cyclonedx"


def card(
    ctx: typer.Context,
    ref: str,
    fmt: Annotated[CardFormat, typer.Option("--format", "-f")] = CardFormat.MD,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write to FILE")] = None,
    card_version: Annotated[int | None, typer.Option("--card-version")] = None,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Show a model version's card: what its engineer wrote plus verified evidence."""
    from bastion.governance.render import render_html, render_json, render_markdown

    with session(_home(ctx)) as s:
        mc = s.ws.cards.card(s.actor, project, ref, card_version=card_version)
        if fmt is CardFormat.CYCLONEDX:
            from bastion.governance.mlbom import ml_bom

            text = ml_bom(mc)
        else:
            render = {CardFormat.MD: render_markdown, CardFormat.HTML: render_html}
            text = render.get(fmt, render_json)(mc)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"[green]wrote[/] {output}")


def card_set(ctx: typer.Context, ref: str, file: Path, project: Project = DEFAULT_PROJECT) -> None:
    """Write a new card version for MODEL@V from a YAML file (every edit audited)."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read card file {file}: {e}") from e
    with session(_home(ctx)) as s:
        cv = s.ws.cards.edit(s.actor, project, ref, text, source=file.name)
    console.print(
        f"[green]card[/] {cv.model}@{cv.version} is now card version {cv.card_version} "
        f"(sha256 {cv.spec_sha256[:16]}…)"
    )


def register_cmds(model: typer.Typer) -> None:
    model.command("card")(card)
    model.command("card-set")(card_set)
