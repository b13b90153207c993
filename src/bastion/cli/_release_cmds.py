"""Approvals and the release gate: ``bastion model approve|reject|approvals`` and ``bastion gate``.

``approve``/``reject`` bind what the reviewer is shown: the CLI prints the
model's current root digest and card version and sends exactly those (or the
ones given with ``--digest``/``--card-version``, e.g. copied from the card the
reviewer read); if the model or its card changed meanwhile, the approval is
refused.  ``gate check`` exits 5 (policy) when any rule fails.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli._context import home_of as _home
from bastion.cli._context import session
from bastion.cli._render import console, print_json, table
from bastion.core.access.values import DEFAULT_PROJECT
from bastion.core.errors import InputError

Project = Annotated[str, typer.Option("--project", "-p", help="project name")]
Reason = Annotated[str, typer.Option("--reason", "-r", help="why (at least 10 characters)")]
Digest = Annotated[
    str | None, typer.Option("--digest", help="the root digest you reviewed (default: current)")
]
CardV = Annotated[
    int | None,
    typer.Option("--card-version", help="the card version you reviewed (default: current)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
POLICY_EXIT = 5

gate = typer.Typer(help="The release gate: CEL policy over signed evidence, waivers.",
                   no_args_is_help=True)  # fmt: skip
policy = typer.Typer(help="A project's release policy (versioned; set: admin only).",
                     no_args_is_help=True)  # fmt: skip
gate.add_typer(policy, name="policy")


def _decide(
    ctx: typer.Context, ref: str, reason: str, digest: str | None, card_version: int | None,
    project: str, as_json: bool, *, approve: bool,
) -> None:  # fmt: skip
    from bastion.governance.approvals import approval_to_dict

    with session(_home(ctx)) as s:
        shown = s.ws.cards.card(s.actor, project, ref)
        root = digest or shown.facts.root_digest
        cv = card_version if card_version is not None else (
            shown.card.card_version if shown.card else 0
        )  # fmt: skip
        if not as_json:
            console.print(
                f"{'approving' if approve else 'rejecting'} {shown.facts.model}: digest "
                f"{root[:16]}…, card version {cv}", highlight=False,
            )  # fmt: skip
        decide = s.ws.approvals.approve if approve else s.ws.approvals.reject
        result = decide(s.actor, project, ref, reason=reason, expected_root_digest=root,
                        expected_card_version=cv, nonce=uuid.uuid4().hex)  # fmt: skip
    if as_json:
        print_json(approval_to_dict(result))
        return
    a = result.approval
    console.print(
        f"[green]{a.decision.value}d[/] {a.model}@{a.version} (statement sha256 "
        f"{a.statement_digest[:16]}…, expires {a.expires_at}); approvals {result.counted}/"
        f"{result.required}; stage {result.stage}", highlight=False,
    )  # fmt: skip
    if result.gate is not None and not result.gate.passed:
        console.print(
            f"[yellow]not promoted[/]: the release gate failed "
            f"{', '.join(result.gate.failed)} (bastion gate check {a.model}@{a.version})"
        )


def approve(
    ctx: typer.Context, ref: str, reason: Reason, digest: Digest = None, card_version: CardV = None,
    project: Project = DEFAULT_PROJECT, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Approve MODEL@V: a signed statement binding its digest, card version and evidence."""
    _decide(ctx, ref, reason, digest, card_version, project, as_json, approve=True)


def reject(
    ctx: typer.Context, ref: str, reason: Reason, digest: Digest = None, card_version: CardV = None,
    project: Project = DEFAULT_PROJECT, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Reject MODEL@V with a reason (a counted rejection fails the gate's approvals rule)."""
    _decide(ctx, ref, reason, digest, card_version, project, as_json, approve=False)


def promote(
    ctx: typer.Context, ref: str, project: Project = DEFAULT_PROJECT, as_json: AsJson = False
) -> None:
    """Promote MODEL@V to approved once approvals are complete and the gate passes (exit 5
    with the failing rules otherwise), e.g. after a waiver."""
    with session(_home(ctx)) as s:
        result = s.ws.approvals.promote(s.actor, project, ref)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(f"[green]approved[/] {result.model}: the release gate passed (audit entry "
                  f"#{result.audit_seq})", highlight=False)  # fmt: skip


def approvals(
    ctx: typer.Context, ref: str, project: Project = DEFAULT_PROJECT, as_json: AsJson = False
) -> None:
    """Every approval and rejection of MODEL@V, each re-verified from its signed statement."""
    from bastion.governance.approvals import tally_to_dict

    with session(_home(ctx)) as s:
        v, tally = s.ws.approvals.approvals(s.actor, project, ref)
    if as_json:
        print_json(tally_to_dict(v, tally))
        return
    rows = [
        (x.record.decision.value, x.record.principal, x.record.human, x.record.created_at[:19],
         x.record.card_version, x.record.root_digest[:16] + "…", x.record.expires_at,
         "yes" if x.signature_verified else "NO", "yes" if x.counts else f"no: {x.problem}")
        for x in tally.views
    ]  # fmt: skip
    table(
        f"{v.ref} ({v.stage.value}): {tally.valid}/{tally.required} valid approvals, "
        f"{tally.rejections} rejections, {tally.expired} expired",
        ["decision", "who", "person", "when", "card v", "digest", "expires",
         "signature verified", "counts"],
        rows,
    )  # fmt: skip


@gate.command("check")
def check(
    ctx: typer.Context, ref: str, project: Project = DEFAULT_PROJECT, as_json: AsJson = False
) -> None:
    """Evaluate the release policy on MODEL@V: every rule, its evidence; exit 5 on a failure."""
    with session(_home(ctx)) as s:
        result = s.ws.gate.check(s.actor, project, ref)
    if as_json:
        print_json(result.to_dict())
    else:
        for r in result.rules:
            colour = {"pass": "green", "fail": "red", "waived": "yellow"}[r.outcome.value]
            console.print(f"[{colour}]{r.outcome.value.upper():6}[/] {r.rule}: {r.description}",
                          highlight=False)  # fmt: skip
            console.print(f"         read: {r.detail}", highlight=False, markup=False)
            for e in r.evidence:
                console.print(f"         evidence: {e}", highlight=False, markup=False)
        verdict = "[green]PASSED[/]" if result.passed else "[red]FAILED[/]"
        console.print(
            f"{verdict} {result.model} under policy v{result.policy_version} "
            f"(sha256 {result.policy_sha256[:16]}…); outcomes sha256 {result.outcomes_sha256}; "
            f"audit entry #{result.audit_seq}", highlight=False,
        )  # fmt: skip
    if not result.passed:
        raise typer.Exit(POLICY_EXIT)


@gate.command("waive")
def waive(
    ctx: typer.Context,
    ref: str,
    rule: Annotated[str, typer.Option("--rule", help="the failing rule to waive")],
    reason: Reason,
    expires: Annotated[str | None, typer.Option("--expires", help="YYYY-MM-DD (UTC)")] = None,
    project: Project = DEFAULT_PROJECT,
    as_json: AsJson = False,
) -> None:
    """Waive one gate rule for MODEL@V until a date (admin who is not the model's author)."""
    with session(_home(ctx)) as s:
        w = s.ws.gate.waive(s.actor, project, ref, rule=rule, reason=reason, expires=expires)
    if as_json:
        print_json(w.to_dict())
        return
    console.print(f"[yellow]waived[/] rule {w.rule} for {w.model}@{w.version} until "
                  f"{w.expires_at} (waiver {w.id[:12]}, statement sha256 "
                  f"{w.statement_digest[:16]}…)", highlight=False)  # fmt: skip


@gate.command("waivers")
def waivers(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="MODEL (default: every model)")] = None,
    project: Project = DEFAULT_PROJECT,
    as_json: AsJson = False,
) -> None:
    """Every waiver granted in the project (who, which rule, why, until when)."""
    with session(_home(ctx)) as s:
        found = s.ws.gate.waivers(s.actor, project, model)
    if as_json:
        print_json([w.to_dict() for w in found])
        return
    table("waivers", ["model", "rule", "granted by", "at", "expires", "reason"],
          [(f"{w.model}@{w.version}", w.rule, w.granted_by, w.granted_at, w.expires_at, w.reason)
           for w in found])  # fmt: skip


@policy.command("set")
def policy_set(ctx: typer.Context, file: Path, project: Project = DEFAULT_PROJECT) -> None:
    """Set the release policy from a YAML file (refused with the line if it does not compile)."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read policy file {file}: {e}") from e
    with session(_home(ctx)) as s:
        stored = s.ws.gate.set_policy(s.actor, project, text)
    console.print(f"[green]release policy[/] of {project} is now version {stored.version} "
                  f"(sha256 {stored.sha256[:16]}…)", highlight=False)  # fmt: skip


@policy.command("show")
def policy_show(
    ctx: typer.Context,
    project: Project = DEFAULT_PROJECT,
    facts: Annotated[bool, typer.Option("--facts", help="list the facts rules may read")] = False,
) -> None:
    """Print the active release policy (version 0: Bastion's default)."""
    from bastion.governance.gate_policy import fact_names

    if facts:
        table("facts", ["fact", "CEL type"], fact_names())
        return
    with session(_home(ctx)) as s:
        active = s.ws.gate.policy(s.actor, project)
    sys.stdout.write(f"# release policy of {project}: version {active.version}, sha256 "
                     f"{active.sha256}, by {active.created_by} {active.created_at}\n")  # fmt: skip
    sys.stdout.write(active.document if active.document.endswith("\n") else active.document + "\n")


@policy.command("history")
def policy_history(
    ctx: typer.Context, project: Project = DEFAULT_PROJECT, as_json: AsJson = False
) -> None:
    """Every stored version of the release policy."""
    with session(_home(ctx)) as s:
        history = s.ws.gate.policy_history(s.actor, project)
    rows = [(p.version, p.created_at, p.created_by, p.sha256) for p in history]
    if as_json:
        print_json([dict(zip(("version", "at", "by", "sha256"), r, strict=True)) for r in rows])
        return
    table(f"release policy history of {project}", ["version", "at", "by", "sha256"], rows)


def register_cmds(app: typer.Typer, model: typer.Typer) -> None:
    model.command("approve")(approve)
    model.command("reject")(reject)
    model.command("approvals")(approvals)
    model.command("promote")(promote)
    app.add_typer(gate, name="gate")


__all__ = ["register_cmds"]
