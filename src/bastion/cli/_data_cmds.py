"""``bastion data`` and ``bastion lineage``: datasets, ingestion audits, lineage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bastion.cli._context import home_of as _home
from bastion.cli._context import session
from bastion.cli._context import split_csv as _split
from bastion.cli._render import console, print_json, table
from bastion.core.access.values import DEFAULT_PROJECT
from bastion.core.lineage.graph import CheckStatus, Node, NodeKind
from bastion.data_security.values import DatasetRef

data = typer.Typer(help="Encrypted, versioned, audited datasets.", no_args_is_help=True)
sources = typer.Typer(help="Registered, trusted data sources.", no_args_is_help=True)
contract = typer.Typer(help="A dataset's data contract.", no_args_is_help=True)
policy = typer.Typer(help="A dataset's audit thresholds.", no_args_is_help=True)
lineage = typer.Typer(help="Provenance from source to model.", no_args_is_help=True)
data.add_typer(sources, name="sources")
data.add_typer(contract, name="contract")
data.add_typer(policy, name="policy")

Project = Annotated[str, typer.Option("--project", "-p", help="project name")]

#: exit status of a quarantined ingest, by the report's verdict (docs/design.md)
QUARANTINE_EXIT = {
    "poisoning_suspected": 5,
    "contract_violation": 6,
    "quality_violation": 6,
    "policy_violation": 7,
    "unverified": 8,
}


@data.command("ingest")
def ingest(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON Lines file")],
    dataset: Annotated[str, typer.Option("--dataset", "-d")],
    source: Annotated[str, typer.Option("--source", "-s", help="registered source name")],
    sha256: Annotated[
        str | None, typer.Option("--sha256", help="checksum the source declared for this file")
    ] = None,
    label: Annotated[str | None, typer.Option(help="label column")] = None,
    sensitive: Annotated[
        str | None, typer.Option(help="sensitive columns, comma separated")
    ] = None,
    positive_label: Annotated[str | None, typer.Option(help="favourable label value")] = None,
    allow_formulas: Annotated[
        bool, typer.Option("--unsafe-allow-formula-cells", help="accept = + - @ cells as text")
    ] = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Ingest a batch: read strictly, audit everything, store encrypted, accept or quarantine.

    Exit status: 0 accepted; quarantined with 5 poisoning suspected (or source
    lineage), 6 contract or quality violation, 7 PII or bias policy, 8 unverified
    (no pinned trusted reference, poisoning could not be checked)."""
    from bastion.data_security.readers import ReadOptions
    from bastion.data_security.service import IngestRequest

    if sha256 is None and file.with_name(file.name + ".sha256").exists():
        sha256 = file.with_name(file.name + ".sha256").read_text().split()[0]
    req = IngestRequest(
        project,
        dataset,
        file,
        source,
        sha256,
        label,
        _split(sensitive),
        positive_label,
        ReadOptions(unsafe_allow_formula_cells=allow_formulas),
    )
    with (
        session(_home(ctx)) as s,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("ingesting", total=None)
        result = s.ws.datasets.ingest(
            s.actor, req, progress=lambda stage: bar.update(task, description=stage)
        )
    v = result.version
    colour = "green" if result.accepted else "bold red"
    console.print(
        f"[{colour}]{v.status.value.upper()}[/] {v.dataset}@{v.version}: {v.rows} rows, "
        f"sha256:{v.raw_digest[:16]}…"
    )
    console.print(result.report.render_text(), highlight=False)
    if not result.accepted:
        console.print(
            "[yellow]The batch is quarantined: stored encrypted, never usable for training.[/]\n"
            f"A data steward can review it: bastion data release {v.dataset}@{v.version} "
            "--reason '…' (or reject)."
        )
        raise typer.Exit(QUARANTINE_EXIT.get(result.report.verdict.value, 5))


@data.command("list")
def list_datasets(ctx: typer.Context, project: Project = DEFAULT_PROJECT) -> None:
    with session(_home(ctx)) as s:
        rows = s.ws.datasets.datasets(s.actor, project)
    table(
        "Datasets",
        ["name", "label", "sensitive", "pinned reference", "created"],
        [
            (d.name, d.label, ", ".join(d.sensitive), d.reference_version, d.created_at)
            for d in rows
        ],
    )


@data.command("versions")
def versions(ctx: typer.Context, dataset: str, project: Project = DEFAULT_PROJECT) -> None:
    with session(_home(ctx)) as s:
        rows = s.ws.datasets.versions(s.actor, project, dataset)
    table(
        f"Versions of {dataset}",
        ["version", "status", "rows", "source", "parent", "by", "at"],
        [
            (
                v.version,
                v.status.value,
                v.rows,
                v.source,
                v.parent_version,
                v.created_by,
                v.created_at,
            )
            for v in rows
        ],
    )


@data.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """A version's metadata and its full audit report."""
    with session(_home(ctx)) as s:
        v = s.ws.datasets.version(s.actor, project, ref)
    if as_json:
        print_json(v.to_dict(with_report=True))
        return
    console.print(f"{v.dataset}@{v.version} [{v.status.value}] {v.rows} rows from {v.source}")
    report = json.loads(v.report)
    for c in report.get("checks", []):
        mark = "PASS" if c["passed"] else ("FAIL" if c["blocking"] else "WARN")
        console.print(f"  [{mark}] {c['category']}/{c['name']}: {c['summary']}", highlight=False)


@data.command("export")
def export(
    ctx: typer.Context,
    ref: str,
    output: Annotated[Path, typer.Option("--output", "-o", help=".csv, .parquet or .jsonl")],
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Decrypt a version to a file (needs dataset.read; audited)."""
    with session(_home(ctx)) as s:
        v = s.ws.datasets.export(s.actor, project, ref, output)
    console.print(f"exported {v.dataset}@{v.version} ({v.rows} rows) to {output}")


def _review(ctx: typer.Context, ref: str, reason: str, project: str, release: bool) -> None:
    with session(_home(ctx)) as s:
        v = s.ws.datasets.review(s.actor, project, ref, release=release, reason=reason)
    console.print(f"{v.dataset}@{v.version} is now {v.status.value} (by {v.reviewed_by})")


@data.command("release")
def release(
    ctx: typer.Context,
    ref: str,
    reason: Annotated[str, typer.Option()],
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Release a quarantined batch (data steward; reason required; audited)."""
    _review(ctx, ref, reason, project, True)


@data.command("reject")
def reject(
    ctx: typer.Context,
    ref: str,
    reason: Annotated[str, typer.Option()],
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Reject a quarantined batch for good (kept encrypted for forensics)."""
    _review(ctx, ref, reason, project, False)


@data.command("repin")
def repin(ctx: typer.Context, dataset: str, project: Project = DEFAULT_PROJECT) -> None:
    """Re-pin the trusted reference on the whole accepted history."""
    with session(_home(ctx)) as s:
        version = s.ws.datasets.repin(s.actor, project, dataset)
    console.print(f"trusted reference of {dataset} pinned at version {version}")


@data.command("access-report")
def access_report(
    ctx: typer.Context,
    dataset: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Who read, wrote or was refused, and unusual access."""
    with session(_home(ctx)) as s:
        report = s.ws.access_reports.access_report(s.actor, project, dataset)
    if as_json:
        print_json(report.to_dict())
        return
    table(
        f"Access to {report.dataset}",
        ["principal", "reads", "rows read", "writes", "denied", "first", "last"],
        [
            (
                p.principal,
                p.reads,
                p.rows_read,
                p.writes,
                p.denials,
                p.first_seen[:19],
                p.last_seen[:19],
            )
            for p in report.principals
        ],
    )
    for f in report.flags:
        console.print(f"[yellow]FLAG[/] {f.kind}: {f.principal} — {f.detail}")


@sources.command("register")
def sources_register(
    ctx: typer.Context,
    name: str,
    dataset: Annotated[list[str], typer.Option("--dataset", "-d", help="dataset it may feed")] = [],  # noqa: B006
    description: Annotated[str, typer.Option()] = "",
    no_checksum: Annotated[
        bool, typer.Option("--no-checksum", help="batches need no declared SHA-256")
    ] = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    with session(_home(ctx)) as s:
        src = s.ws.datasets.register_source(
            s.actor,
            project,
            name,
            description=description,
            datasets=tuple(dataset),
            require_checksum=not no_checksum,
        )
    console.print(
        f"source {src.name} registered (trusted) for {', '.join(dataset) or 'any dataset'}"
    )


@sources.command("list")
def sources_list(ctx: typer.Context, project: Project = DEFAULT_PROJECT) -> None:
    with session(_home(ctx)) as s:
        rows = s.ws.datasets.sources(s.actor, project)
    table(
        "Sources",
        ["name", "trusted", "checksum required", "by", "at"],
        [(x.name, x.trusted, x.require_checksum, x.created_by, x.created_at) for x in rows],
    )


@contract.command("show")
def contract_show(ctx: typer.Context, dataset: str, project: Project = DEFAULT_PROJECT) -> None:
    with session(_home(ctx)) as s:
        c = s.ws.datasets.contract(s.actor, project, dataset)
    console.print(
        c.to_json() if c else "no contract yet (inferred from the first accepted batch)",
        highlight=False,
    )


@contract.command("set")
def contract_set(
    ctx: typer.Context, dataset: str, file: Path, project: Project = DEFAULT_PROJECT
) -> None:
    """Store a reviewed contract (JSON) as the next version."""
    with session(_home(ctx)) as s:
        c = s.ws.datasets.set_contract(s.actor, project, dataset, file.read_text())
    console.print(f"contract v{c.version} of {dataset} stored")


@policy.command("show")
def policy_show(ctx: typer.Context, dataset: str, project: Project = DEFAULT_PROJECT) -> None:
    with session(_home(ctx)) as s:
        p = s.ws.datasets.policy(s.actor, project, dataset)
    console.print(p.to_json(), highlight=False)


@policy.command("set")
def policy_set(
    ctx: typer.Context, dataset: str, file: Path, project: Project = DEFAULT_PROJECT
) -> None:
    with session(_home(ctx)) as s:
        s.ws.datasets.set_policy(s.actor, project, dataset, file.read_text())
    console.print(f"audit policy of {dataset} updated")


def _node(kind: str, ref: str, project: str) -> Node:
    if kind == NodeKind.DATASET_VERSION:
        r = DatasetRef.parse(ref)
        return Node(kind, f"{project}/{r}")
    return Node(kind, ref if "/" in ref else f"{project}/{ref}")


@lineage.command("show")
def lineage_show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="e.g. loans@3 (a dataset version) or a model ref")],
    kind: Annotated[str, typer.Option(help="node kind")] = NodeKind.DATASET_VERSION.value,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Print the upstream and downstream tree of a node."""
    with session(_home(ctx)) as s:
        up, down = s.ws.provenance.show(s.actor, project, _node(kind, ref, project))
    if as_json:
        print_json({"upstream": up.to_dict(), "downstream": down.to_dict()})
        return
    console.print("[bold]upstream[/]\n" + up.render(), highlight=False)
    console.print("[bold]downstream[/]\n" + down.render(), highlight=False)


@lineage.command("verify")
def lineage_verify(
    ctx: typer.Context,
    ref: str,
    kind: Annotated[str, typer.Option()] = NodeKind.DATASET_VERSION.value,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Verify the node and everything upstream: re-hash artifacts, check sources and
    training runs against what binds them; fail on a missing node or any mismatch.
    Nodes nothing can check are listed as unverifiable, never counted as verified."""
    with session(_home(ctx)) as s:
        result = s.ws.provenance.verify(s.actor, project, _node(kind, ref, project))
    marks = {
        CheckStatus.VERIFIED: "[green]ok[/]",
        CheckStatus.UNVERIFIABLE: "[yellow]unverifiable[/]",
        CheckStatus.MISSING: "[bold red]MISSING[/]",
        CheckStatus.FAILED: "[bold red]MISMATCH[/]",
    }
    for v in result.checked:
        note = v.method if v.ok else v.problem
        console.print(f"{marks[v.status]} {v.node.kind} {v.node.id} {note or ''}", highlight=False)
    console.print(
        f"{result.verified} verified, {len(result.unverifiable)} unverifiable, "
        f"{len(result.checked) - result.verified - len(result.unverifiable)} mismatched or missing"
    )
    if not result.ok:
        raise typer.Exit(4)


@lineage.command("export")
def lineage_export(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option(help="append OpenLineage events (JSON Lines)")
    ] = None,
    url: Annotated[str | None, typer.Option(help="OpenLineage HTTP endpoint")] = None,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Export the lineage graph as OpenLineage run events."""
    from bastion.core.lineage.openlineage_export import export_events

    with session(_home(ctx)) as s:
        edges = s.ws.provenance.edges(s.actor, project)
    count = export_events(edges, file=file, url=url)
    console.print(f"emitted {count} OpenLineage run events")


def register(app: typer.Typer) -> None:
    from bastion.cli import _erasure_cmds

    _erasure_cmds.register_cmds(data)
    app.add_typer(data, name="data")
    app.add_typer(lineage, name="lineage")
