"""``bastion deploy``, ``bastion deploy status`` and ``bastion rollback`` (serving layer).

``bastion deploy MODEL@V --endpoint NAME`` runs the release gate, re-verifies the version
and puts it in service; ``bastion deploy status ENDPOINT`` shows what serves and the full
history; ``bastion rollback ENDPOINT [--to V]`` returns to the previous stable version;
``bastion deploy manifests ENDPOINT [--out DIR]`` writes a Dockerfile and Kubernetes
manifests for the version in service.
A running ``bastion serve`` picks the change up within its refresh interval, switching
without failing a request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bastion.cli._context import home_of as _home
from bastion.cli._context import session
from bastion.cli._render import console, print_json, table
from bastion.core.access.values import DEFAULT_PROJECT
from bastion.core.errors import InputError
from bastion.serving.canary_values import Canary, canary_plan
from bastion.serving.ood import OodPolicy
from bastion.serving.values import Deployment, EndpointStatus, ResponsePolicy

Project = Annotated[str, typer.Option("--project", "-p", help="project name")]


def _show(status: EndpointStatus) -> None:
    active = status.active
    console.print(f"endpoint [bold]{status.endpoint}[/] (project {status.project}): "
                  + (f"serving [bold]{active.ref}[/] (#{active.seq}, root "
                     f"{active.root_digest[:16]}…)" if active else "[red]nothing in service[/]"))
    table("history", ["#", "model", "state", "why", "when", "by", "ended"],
          [[d.seq, d.ref, d.state.value, d.reason, d.created_at, d.created_by,
            f"{d.end_reason or ''} {d.ended_at or ''}".strip()] for d in status.history])
    if status.canary is not None:
        _show_canary(status.canary)


def _show_canary(c: Canary) -> None:
    console.print(
        f"canary [bold]{c.state.value}[/] at {c.plan.weight} % (promote after "
        f"{c.plan.promote_after}): {c.canary_requests} canary / {c.stable_requests} stable "
        f"requests" + (f"; ended {c.ended_at}: {c.end_reason}" if c.ended_at else ""))
    a = c.analysis
    if a is None:
        console.print("  no analysis yet")
        return
    table(f"last analysis {a.at} (window: {a.canary_requests} canary, {a.stable_requests} "
          "stable)", ["check", "judged", "failed", "canary", "stable", "limit", "why"],
          [[x.name, x.judged, x.failed, x.canary, x.stable, x.limit, x.reason]
           for x in a.checks])


def _done(verb: str, d: Deployment) -> None:
    console.print(f"[green]{verb}[/] {d.ref} on endpoint [bold]{d.endpoint}[/] "
                  f"(#{d.seq}, root digest {d.root_digest[:16]}…)")


def deploy(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="MODEL@V to deploy, or 'status'")],
    status_endpoint: Annotated[str | None, typer.Argument(
        help="with 'status': the endpoint to show", show_default=False)] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", "-e", help="endpoint name")] = None,
    decimals: Annotated[int, typer.Option(
        "--decimals", min=0, max=6, help="decimals of the scores a response shows")] = 2,
    no_scores: Annotated[bool, typer.Option(
        "--no-scores", help="answer the decision only (hinders model extraction)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    project: Project = DEFAULT_PROJECT,
    ood: Annotated[OodPolicy, typer.Option(
        "--ood", help="rows far outside the training data: flag (answered, marked) or "
        "refuse (422)")] = OodPolicy.FLAG,
    canary: Annotated[int | None, typer.Option(
        "--canary", help="deploy as a canary taking PERCENT of the traffic (1..99)",
        show_default=False)] = None,
    promote_after: Annotated[int, typer.Option(
        "--promote-after", help="with --canary: healthy canary requests before promotion")
    ] = 500,
    sticky_header: Annotated[str, typer.Option(
        "--sticky-header", help="with --canary: header whose value keeps a client on one "
        "version")] = "X-Bastion-Request-Key",
    thresholds: Annotated[list[str] | None, typer.Option(
        "--threshold", help="with --canary: analysis threshold NAME=VALUE (repeatable), "
        "e.g. max_prediction_shift=0.2", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="with 'manifests': the folder to write (default ENDPOINT-manifests)",
        show_default=False)] = None,
) -> None:
    """Deploy MODEL@V to an endpoint (release gate, re-verified), show `status ENDPOINT`,
    or write `manifests ENDPOINT` (Dockerfile + Kubernetes) for a cluster."""
    if target == "manifests":
        _manifests(ctx, project, status_endpoint, out)
        return
    if target == "status":
        if status_endpoint is None:
            raise InputError("name the endpoint: bastion deploy status ENDPOINT")
        with session(_home(ctx)) as s:
            status = s.ws.deployments.status(s.actor, project, status_endpoint)
        print_json(status.to_dict()) if as_json else _show(status)
        return
    if endpoint is None or status_endpoint is not None:
        raise InputError("usage: bastion deploy MODEL@V --endpoint NAME",
                         hint="or: bastion deploy status ENDPOINT")
    policy = ResponsePolicy(decimals=decimals, scores=not no_scores, ood=ood)
    plan = (canary_plan(canary, promote_after, sticky_header, thresholds or [])
            if canary is not None else None)
    with session(_home(ctx)) as s:
        d = s.ws.deployments.deploy(s.actor, project, target, endpoint, policy, canary=plan)
    print_json(d.to_dict()) if as_json else _done(
        f"deployed as a {plan.weight} % canary" if plan else "deployed", d)


def _manifests(ctx: typer.Context, project: str, endpoint: str | None,
               out: Path | None) -> None:
    from bastion.cli._context import settings
    from bastion.serving.gateway import GatewayOptions
    from bastion.serving.manifests import IMAGE_PLACEHOLDER, endpoint_manifests

    if endpoint is None:
        raise InputError("name the endpoint: bastion deploy manifests ENDPOINT [--out DIR]")
    limits = GatewayOptions.from_settings(settings(_home(ctx))).limits
    with session(_home(ctx)) as s:
        files = endpoint_manifests(s.ws.deployments, s.actor, project, endpoint, limits)
    folder = out if out is not None else Path(f"{endpoint}-manifests")  # a checked name
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
        console.print(f"wrote {folder / name}")
    console.print(f"[yellow]the image is a placeholder[/] ({IMAGE_PLACEHOLDER}): build the "
                  "Dockerfile, push it, and set its registry/name@sha256:... in "
                  "kubernetes.yaml before applying")


def rollback(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="endpoint name")],
    to: Annotated[int | None, typer.Option("--to", help="version to return to")] = None,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Switch ENDPOINT back to its previous stable version (or --to V it served before)."""
    with session(_home(ctx)) as s:
        d = s.ws.deployments.rollback(s.actor, project, endpoint, to)
    _done("rolled back to", d)


def register_cmds(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("rollback")(rollback)
