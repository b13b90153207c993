"""``bastion demo``: replay the story and prove every control."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bastion.cli._render import console

if TYPE_CHECKING:
    from bastion.demo.runner import StepResult


def demo(
    home: Annotated[
        Path | None, typer.Option(help="workspace folder to create (default: a temp folder)")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="metadata database for the demo workspace, e.g. postgresql://user@host/db "
            "(default: embedded SQLite)"
        ),
    ] = None,
) -> None:
    """Replay the poisoned credit-model story end to end; exit non-zero if a control fails."""
    from bastion.demo.story import run_demo  # heavy (polars, scikit-learn): load on use

    console.rule("[bold]Bastion demo: the poisoned credit-scoring model")

    def show(r: StepResult) -> None:
        mark = "[green]PASS[/]" if r.ok else "[bold red]FAIL[/]"
        console.print(f"{mark} [cyan]{r.layer}[/] {r.name}")
        for line in r.evidence:
            console.print(f"      {line}", highlight=False)

    runner = run_demo(home, show, database_url)
    passed = sum(r.ok for r in runner.results)
    console.rule(f"{passed}/{len(runner.results)} controls proven")
    if not runner.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(demo)
