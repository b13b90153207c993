"""``bastion provider``: the third-party register (register, assess, link, list, show)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from bastion.cli._context import home_of as _home
from bastion.cli._context import session
from bastion.cli._context import split_csv as _split
from bastion.cli._render import console, print_json, table
from bastion.core.access.values import DEFAULT_PROJECT
from bastion.core.errors import InputError
from bastion.governance.provider_values import AssessmentRequest, ProviderKind
from bastion.governance.providers import LinkTarget

provider = typer.Typer(
    help="Third-party register: external models, APIs and data sources, assessed.",
    no_args_is_help=True,
)

Project = Annotated[str, typer.Option("--project", "-p", help="project name")]


@provider.command("register")
def register(
    ctx: typer.Context,
    name: str,
    kind: Annotated[ProviderKind, typer.Option("--kind", "-k", help="model, api or data")],
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Register a provider (a name that looks like a registered one is refused)."""
    with session(_home(ctx)) as s:
        p = s.ws.providers.register(s.actor, project, name, kind, description)
    console.print(f"[green]registered[/] provider {p.name} ({p.kind.value}); assess it next")


@provider.command("assess")
def assess(
    ctx: typer.Context,
    name: str,
    data_sent: Annotated[
        str, typer.Option("--data-sent", help="categories sent, comma separated (or 'none')")
    ],
    reviewed: Annotated[str, typer.Option("--reviewed", help="review date, YYYY-MM-DD")],
    expires: Annotated[str, typer.Option("--expires", help="expiry date, YYYY-MM-DD")],
    risk: Annotated[str, typer.Option("--risk", help="low, medium, high or critical")],
    dpa: Annotated[bool, typer.Option("--dpa/--no-dpa", help="a DPA (or BAA) is in place")] = False,
    certifications: Annotated[
        str | None, typer.Option("--certifications", help="comma separated, e.g. 'ISO 27001'")
    ] = None,
    notes: Annotated[str, typer.Option("--notes")] = "",
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Record the next assessment of a provider (versioned and audited)."""
    req = AssessmentRequest(
        _split(data_sent), dpa, _split(certifications), reviewed, expires, risk, notes
    )
    with session(_home(ctx)) as s:
        a = s.ws.providers.assess(s.actor, project, name, req)
    console.print(
        f"[green]assessed[/] {a.provider}: assessment v{a.assessment_version}, risk "
        f"{a.risk.value}, valid until {a.expires_on} (sha256 {a.sha256[:16]}…)"
    )


@provider.command("link")
def link(
    ctx: typer.Context,
    name: str,
    source: Annotated[str | None, typer.Option("--source", help="a registered source")] = None,
    model: Annotated[str | None, typer.Option("--model", help="MODEL@VERSION")] = None,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Record in lineage that the provider supplies a source or provides a model version."""
    if (source is None) == (model is None):
        raise InputError("give exactly one of --source SOURCE or --model MODEL@V")
    kind, target = (LinkTarget.SOURCE, source) if source else (LinkTarget.MODEL, model)
    assert target is not None
    with session(_home(ctx)) as s:
        k = s.ws.providers.link(s.actor, project, name, kind, target)
    console.print(f"[green]linked[/] provider {name} -[{k.relation}]-> {k.target_kind} {k.target}")


@provider.command("list")
def list_providers(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Every provider of the project with its assessment status today."""
    with session(_home(ctx)) as s:
        states = s.ws.providers.providers(s.actor, project)
    if as_json:
        print_json([st.to_dict() for st in states])
        return
    rows = [
        (
            st.provider.name,
            st.provider.kind.value,
            st.status.value,
            st.latest.risk.value if st.latest else "",
            "yes" if st.latest and st.latest.dpa else "no",
            st.latest.expires_on if st.latest else "",
            escape(st.reason),
        )
        for st in states
    ]
    table(
        f"Providers in {project}",
        ("name", "kind", "status", "risk", "DPA", "expires", "why"),
        rows,
    )


@provider.command("show")
def show(
    ctx: typer.Context,
    name: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """A provider: its latest assessment, the assessment history and its lineage links."""
    with session(_home(ctx)) as s:
        d = s.ws.providers.show(s.actor, project, name)
    if as_json:
        print_json(d.to_dict())
        return
    p, latest = d.state.provider, d.state.latest
    console.print(f"provider {p.name} ({p.kind.value}): {escape(p.description) or '-'}")
    console.print(f"status: {d.state.status.value} ({escape(d.state.reason)})", highlight=False)
    if latest is not None:
        console.print(
            f"data sent: {', '.join(c.value for c in latest.data_sent)}; DPA: "
            f"{'yes' if latest.dpa else 'no'}; certifications: "
            f"{escape(', '.join(latest.certifications)) or 'none'}; risk: {latest.risk.value}; "
            f"reviewed {latest.reviewed_on}, expires {latest.expires_on}",
            highlight=False,
        )
    table(
        "Assessments",
        ("v", "risk", "reviewed", "expires", "by", "sha256"),
        [
            (a.assessment_version, a.risk.value, a.reviewed_on, a.expires_on, a.created_by,
             a.sha256[:16])
            for a in d.history
        ],
    )  # fmt: skip
    table("Lineage links", ("relation", "kind", "target", "at"),
          [(k.relation, k.target_kind, k.target, k.linked_at) for k in d.links])  # fmt: skip


def register_cmds(app: typer.Typer) -> None:
    app.add_typer(provider, name="provider")
