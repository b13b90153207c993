"""``bastion compliance``: reports of controls answered by evidence (HTML and JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bastion.cli._context import home_of as _home
from bastion.cli._context import session
from bastion.cli._render import console, print_json, table
from bastion.core.access.values import DEFAULT_PROJECT
from bastion.core.errors import InputError

compliance = typer.Typer(
    help="Compliance evidence: GDPR, HIPAA, SOC 2 and EU AI Act controls, checked.",
    no_args_is_help=True,
)

Project = Annotated[str, typer.Option("--project", "-p", help="project name")]
CatalogueOpt = Annotated[
    Path | None,
    typer.Option("--catalogue", help="a YAML file extending the shipped control catalogue"),
]


def _read(file: Path | None) -> tuple[str | None, str]:
    if file is None:
        return None, "catalogue file"
    try:
        return file.read_text(encoding="utf-8"), file.name
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read catalogue file {file}: {e}") from e


@compliance.command("report")
def report(
    ctx: typer.Context,
    framework: Annotated[
        str, typer.Option("--framework", "-f", help="gdpr, hipaa, soc2, eu-ai-act (or extended)")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the HTML and JSON")] = Path(
        "."
    ),
    catalogue: CatalogueOpt = None,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Check every control of a framework and write compliance-FRAMEWORK.{html,json}.

    Exits 1 when a control fails (the files are written either way)."""
    from bastion.governance.compliance_render import render_report_html, render_report_json

    text, source = _read(catalogue)
    with session(_home(ctx)) as s:
        r = s.ws.compliance.report(
            s.actor, framework, project, catalogue=text, catalogue_source=source
        )
    out.mkdir(parents=True, exist_ok=True)
    html_path, json_path = (
        out / f"compliance-{r.framework}.html",
        out / f"compliance-{r.framework}.json",
    )
    html_path.write_text(render_report_html(r), encoding="utf-8")
    json_path.write_text(render_report_json(r), encoding="utf-8")
    table(
        f"{r.title}, project {r.project}",
        ("control", "status", "failing checks"),
        [
            (escape(c.id), c.status.value,
             ", ".join(k.name for k in c.checks if k.status.value == "fail"))
            for c in r.controls
        ],
    )  # fmt: skip
    counts = r.counts()
    console.print(
        f"{counts['pass']} pass, {counts['fail']} fail, {counts['not-applicable']} not "
        f"applicable; wrote {html_path} and {json_path}",
        highlight=False,
    )
    if counts["fail"]:
        raise typer.Exit(1)


@compliance.command("catalogue")
def show_catalogue(
    ctx: typer.Context,
    catalogue: CatalogueOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """The control catalogue (shipped, merged with --catalogue FILE after validation)."""
    text, source = _read(catalogue)
    with session(_home(ctx)) as s:
        cat = s.ws.compliance.catalogue(s.actor, project, text, source=source)
    if as_json:
        print_json(
            {
                "sha256": cat.sha256,
                "settings": cat.settings.model_dump(),
                "frameworks": {
                    n: {"title": f.title, "controls": [c.model_dump() for c in f.controls]}
                    for n, f in sorted(cat.frameworks.items())
                },
            }
        )
        return
    for name, fw in sorted(cat.frameworks.items()):
        table(
            f"{name}: {escape(fw.title)}",
            ("control", "title", "checks"),
            [(escape(c.id), escape(c.title), ", ".join(c.checks)) for c in fw.controls],
        )
    console.print(f"catalogue sha256 {cat.sha256}", highlight=False)


def register_cmds(app: typer.Typer) -> None:
    app.add_typer(compliance, name="compliance")
