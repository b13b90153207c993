"""``bastion data erase`` and ``bastion data erasures``: GDPR Art. 17 erasure."""

from __future__ import annotations

from typing import Annotated

import typer

from bastion.cli._context import home_of as _home
from bastion.cli._context import session
from bastion.cli._render import console, print_json
from bastion.core.access.values import DEFAULT_PROJECT

Project = Annotated[str, typer.Option("--project", "-p", help="project name")]


def erase(
    ctx: typer.Context,
    dataset: str,
    where: Annotated[str, typer.Option("--where", help="COLUMN=VALUE: the subject's identifier")],
    reason: Annotated[str, typer.Option(help="the request being honoured (not the identifier)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Erase a data subject's rows: new versions without them, old data keys shredded
    (unless the dataset's policy retains them), affected models listed for retraining."""
    from bastion.data_security.erasure.values import ErasureRequest

    req = ErasureRequest.parse(project, dataset, where, reason=reason)
    with session(_home(ctx)) as s:
        report = s.ws.erasures.erase(s.actor, req, progress=lambda _stage: None)
    if as_json:
        print_json(report.to_dict())
        return
    console.print(report.render_text(), highlight=False, markup=False)


def erasures(
    ctx: typer.Context,
    dataset: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Every erasure of a dataset (subjects by keyed pseudonym only)."""
    with session(_home(ctx)) as s:
        reports = s.ws.erasures.history(s.actor, project, dataset)
    if as_json:
        print_json([r.to_dict() for r in reports])
        return
    for r in reports:
        console.print(r.render_text(), highlight=False, markup=False)
    if not reports:
        console.print(f"no erasure of {dataset}")


def register_cmds(data: typer.Typer) -> None:
    data.command("erase")(erase)
    data.command("erasures")(erasures)


__all__ = ["register_cmds"]
