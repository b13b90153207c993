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
from bastion.core.audit.checkpoint_file import export_text, read_checkpoint_file
from bastion.core.audit.entries import AuditQuery
from bastion.core.audit.log import ConsistencyReport, VerifyReport

audit = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit.command("verify")
def verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    against: Annotated[
        Path | None,
        typer.Option(help="an exported checkpoint: prove the log still extends it"),
    ] = None,
) -> None:
    """Re-check every hash, Merkle root, checkpoint signature and the witness.

    With --against FILE, also prove (RFC 9162 consistency proof) that today's
    log extends a checkpoint exported earlier and kept off the host: a log
    restored from an older backup fails this even when it is self-consistent."""
    anchor = read_checkpoint_file(against) if against is not None else None
    with session(_home(ctx)) as s, Progress(console=console, transient=True) as bar:
        task = bar.add_task("verifying audit log", total=None)
        report, extends = s.ws.audit_trail.verify(
            s.actor,
            against=anchor,
            on_start=lambda size: bar.update(task, total=size),
            progress=lambda n: bar.advance(task, n),
        )
    if as_json:
        doc = report.to_dict()
        if extends is not None:
            doc["against"] = extends.to_dict()
            doc["ok"] = report.ok and extends.ok
        print_json(doc)
    else:
        _render_verify(report, extends)
    if not report.ok or (extends is not None and not extends.ok):
        raise typer.Exit(4)


def _render_verify(report: VerifyReport, extends: ConsistencyReport | None) -> None:
    if report.ok:
        console.print(
            f"[green]audit log intact[/]: {report.entries} entries, "
            f"{report.checkpoints_verified} signed checkpoints verified, "
            f"root {report.root_hash[:16]}…"
        )
    else:
        console.print(f"[bold red]audit log TAMPERED[/]: first bad entry {report.first_bad_seq}")
        for p in report.problems:
            console.print(f"  - {p}")
    if extends is None:
        return
    if extends.ok:
        console.print(
            f"[green]extends the exported checkpoint[/]: size {extends.old_size} -> "
            f"{extends.new_size}, consistency proof of {len(extends.proof)} hashes verified"
        )
    else:
        console.print("[bold red]does NOT extend the exported checkpoint[/]")
        for p in extends.problems:
            console.print(f"  - {p}")


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
        rows = s.ws.audit_trail.query(s.actor, q)
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
        Path | None,
        typer.Option(help="also write the signed checkpoint here (keep a copy off-host)"),
    ] = None,
) -> None:
    """Sign a checkpoint (tree size + root) of the log now; --export keeps a copy."""
    with session(_home(ctx)) as s:
        cp, public = s.ws.audit_trail.checkpoint(s.actor)
    if export:
        export.write_text(export_text(cp, public))
        console.print(f"wrote the signed checkpoint to {export} (copy it off this host)")
    console.print(f"checkpoint: size {cp.tree_size}, root {cp.root_hash}, key {cp.key_id}")


@audit.command("witness-restore")
def witness_restore(
    ctx: typer.Context,
    against: Annotated[
        Path, typer.Option(help="an exported checkpoint the log must extend")
    ],
) -> None:
    """Re-create a LOST witness, only after the log verifies and extends --against."""
    anchor = read_checkpoint_file(against)
    with session(_home(ctx)) as s:
        cp = s.ws.audit_trail.reseed_witness(s.actor, anchor)
    console.print(f"witness re-seeded at size {cp.tree_size} (proven against size "
                  f"{anchor.tree_size})")


@audit.command("prove")
def prove(
    ctx: typer.Context,
    seq: int,
    tree_size: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Print an inclusion proof of entry SEQ in the tree of TREE_SIZE entries."""
    with session(_home(ctx)) as s:
        size, proof = s.ws.audit_trail.inclusion_proof(s.actor, seq, tree_size)
    print_json({"seq": seq, "tree_size": size, "proof": list(proof)})


def register(app: typer.Typer) -> None:
    app.add_typer(audit, name="audit")
