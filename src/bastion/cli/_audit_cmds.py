"""``bastion audit``: verify, query and export the tamper-evident log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from bastion.cli._context import home_of as _home
from bastion.cli._context import session
from bastion.cli._render import console, print_json, table
from bastion.core.audit.entries import AuditQuery

audit = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit.command("verify")
def verify(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Re-check every hash, Merkle root, checkpoint signature and the witness."""
    with session(_home(ctx)) as s:
        s.ws.access.authorize(s.actor, "audit.verify", "system/audit")
        size = s.ws.audit.head().size
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("verifying audit log", total=size)
            report = s.ws.audit.verify(progress=lambda n: bar.advance(task, n))
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        console.print(
            f"[green]audit log intact[/]: {report.entries} entries, "
            f"{report.checkpoints_verified} signed checkpoints verified, "
            f"root {report.root_hash[:16]}…"
        )
    else:
        console.print(f"[bold red]audit log TAMPERED[/]: first bad entry {report.first_bad_seq}")
        for p in report.problems:
            console.print(f"  - {p}")
    if not report.ok:
        raise typer.Exit(4)


@audit.command("log")
def log(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option()] = None,
    action: Annotated[str | None, typer.Option()] = None,
    resource: Annotated[str | None, typer.Option(help="resource prefix")] = None,
    outcome: Annotated[str | None, typer.Option(help="allowed, denied, ok, failed")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time, inclusive")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time, exclusive")] = None,
    limit: Annotated[int, typer.Option()] = 100,
    jsonl: Annotated[
        Path | None, typer.Option(help="export matching entries as JSON Lines")
    ] = None,
) -> None:
    """Query the audit log; export JSON Lines with --jsonl."""
    q = AuditQuery(actor, action, resource, outcome, since, until, limit)
    with session(_home(ctx)) as s:
        s.ws.access.authorize(s.actor, "audit.read", "system/audit")
        rows = s.ws.audit.query(q)
    if jsonl is not None:
        with open(jsonl, "w") as fh:
            for e in rows:
                fh.write(json.dumps(e.to_dict(), sort_keys=True) + "\n")
        console.print(f"wrote {len(rows)} entries to {jsonl}")
        return
    table(
        "Audit log",
        ["seq", "time", "actor", "action", "resource", "outcome"],
        [(e.seq, e.ts[:19], e.actor, e.action, e.resource, e.outcome) for e in rows],
    )


@audit.command("checkpoint")
def checkpoint(
    ctx: typer.Context,
    export: Annotated[
        Path | None, typer.Option(help="also write it here (keep a copy off-host)")
    ] = None,
) -> None:
    """Sign a checkpoint (tree size + root) of the log now."""
    with session(_home(ctx)) as s:
        s.ws.access.authorize(s.actor, "audit.checkpoint", "system/audit")
        cp = s.ws.audit.checkpoint()
    if export:
        export.write_text(json.dumps(cp.to_dict(), indent=2))
    console.print(f"checkpoint: size {cp.tree_size}, root {cp.root_hash}, key {cp.key_id}")


@audit.command("prove")
def prove(
    ctx: typer.Context,
    seq: int,
    tree_size: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Print an inclusion proof of entry SEQ in the tree of TREE_SIZE entries."""
    with session(_home(ctx)) as s:
        s.ws.access.authorize(s.actor, "audit.read", "system/audit")
        size = tree_size or s.ws.audit.head().size
        proof = s.ws.audit.inclusion_proof(seq, size)
    print_json({"seq": seq, "tree_size": size, "proof": list(proof)})


def register(app: typer.Typer) -> None:
    app.add_typer(audit, name="audit")
