"""``bastion model``, ``bastion train`` and ``bastion monitor``."""

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
from bastion.model_security.values import Framework

model = typer.Typer(help="Signed, scanned, versioned models.", no_args_is_help=True)
monitor = typer.Typer(help="Drift and performance monitors.", no_args_is_help=True)

Project = Annotated[str, typer.Option("--project", "-p", help="project name")]


def _spinner() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@model.command("register")
def register(
    ctx: typer.Context,
    name: str,
    path: Path,
    framework: Annotated[Framework, typer.Option()],
    trained_on: Annotated[list[str], typer.Option("--trained-on", help="DATASET@VERSION")] = [],  # noqa: B006
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Scan, sign and store a model artifact (file or folder) as a new version."""
    from bastion.model_security.registry import RegisterRequest

    with session(_home(ctx)) as s, _spinner() as bar:
        task = bar.add_task("registering", total=None)
        v = s.ws.models.register(
            s.actor,
            RegisterRequest(project, name, path, framework, tuple(trained_on)),
            progress=lambda st: bar.update(task, description=st),
        )
    console.print(
        f"[green]registered[/] {v.ref} ({v.framework.value}, {len(v.manifest)} files), "
        f"root sha256:{v.root_digest[:16]}…, signed by {v.signer_key_id}"
    )


@model.command("list")
def list_models(ctx: typer.Context, project: Project = DEFAULT_PROJECT) -> None:
    with session(_home(ctx)) as s:
        rows = s.ws.models.versions(s.actor, project)
    table(
        "Models",
        ["model", "framework", "stage", "signer", "trained on", "at"],
        [
            (
                v.ref,
                v.framework.value,
                v.stage.value,
                v.signer_key_id,
                ", ".join(t.split("#")[0] for t in v.trained_on),
                v.created_at,
            )
            for v in rows
        ],
    )


@model.command("show")
def show(ctx: typer.Context, ref: str, project: Project = DEFAULT_PROJECT) -> None:
    with session(_home(ctx)) as s:
        v = s.ws.models.version(s.actor, project, ref)
        evaluations = s.ws.lab.evaluations(s.actor, project, ref)
    print_json({**v.to_dict(), "evaluations": [e.to_dict() for e in evaluations]})


@model.command("verify")
def verify(
    ctx: typer.Context,
    ref: str,
    path: Annotated[
        Path | None, typer.Option(help="verify this copy instead of the stored one")
    ] = None,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Check the signature, the signer identity and every file digest."""
    with session(_home(ctx)) as s:
        verified = s.ws.models.verify(s.actor, project, ref, path)
    console.print(
        f"[green]verified[/] {ref}: {len(verified.files)} files, "
        f"signer {verified.signer.identity} ({verified.signer.key_id})"
    )


@model.command("scan")
def scan(
    ctx: typer.Context,
    path: Path,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    framework: Annotated[
        Framework | None,
        typer.Option(help="check that the content is a model of this framework"),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option("--project", "-p", help="scan with this project's scan policy "
                     "(needs the workspace); without it: the built-in policy, no workspace"),
    ] = None,
) -> None:
    """Scan a local artifact for malicious serialization without loading it."""
    from bastion.model_security.scanning import scan_path
    from bastion.model_security.scanning.frameworks import check_framework

    policy = None
    if project is not None:
        with session(_home(ctx)) as s:
            policy = s.ws.models.scan_policies.for_scan(s.actor, project)
    if framework is not None:
        check_framework(path, framework.value)
    report = scan_path(path, policy=policy)
    if as_json:
        print_json(json.loads(json.dumps(report.to_dict(), default=str)))
    else:
        console.print(report.render(), highlight=False)
    if not report.accepted:
        raise typer.Exit(4)


scan_policy = typer.Typer(help="A project's scanner allow-list policy (changes: admin only, "
                          "audited).", no_args_is_help=True)
model.add_typer(scan_policy, name="scan-policy")

Globals = Annotated[list[str] | None, typer.Argument(help="exact globals, module.name")]
Torchscript = Annotated[bool, typer.Option("--torchscript", help="TorchScript archives")]
Opaque = Annotated[bool, typer.Option("--opaque-data", help="files of no known format")]


def _flags(torchscript: bool, opaque: bool) -> tuple[str, ...]:
    from bastion.model_security.scanning.policy import FLAG_OPAQUE_DATA, FLAG_TORCHSCRIPT

    return tuple(f for f, on in ((FLAG_TORCHSCRIPT, torchscript), (FLAG_OPAQUE_DATA, opaque))
                 if on)


@scan_policy.command("show")
def scan_policy_show(ctx: typer.Context, project: Project = DEFAULT_PROJECT) -> None:
    """The globals and flags this project accepts beyond the built-in allow-list."""
    with session(_home(ctx)) as s:
        policy = s.ws.models.scan_policies.show(s.actor, project)
    print_json({"project": project, **policy.describe()})


def _change_policy(
    ctx: typer.Context,
    allow: bool,
    globals_: list[str] | None,
    torchscript: bool,
    opaque_data: bool,
    project: str,
) -> None:
    with session(_home(ctx)) as s:
        service = s.ws.models.scan_policies
        change = service.allow if allow else service.disallow
        policy = change(
            s.actor, project, globals_=tuple(globals_ or ()), flags=_flags(torchscript, opaque_data)
        )
    print_json({"project": project, **policy.describe()})


@scan_policy.command("allow")
def scan_policy_allow(
    ctx: typer.Context,
    globals_: Globals = None,
    torchscript: Torchscript = False,
    opaque_data: Opaque = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Allow exact pickle globals (and/or TorchScript, opaque data files) in a project."""
    _change_policy(ctx, True, globals_, torchscript, opaque_data, project)


@scan_policy.command("disallow")
def scan_policy_disallow(
    ctx: typer.Context,
    globals_: Globals = None,
    torchscript: Torchscript = False,
    opaque_data: Opaque = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Remove globals or flags from a project's scan policy."""
    _change_policy(ctx, False, globals_, torchscript, opaque_data, project)


@model.command("evaluate")
def evaluate(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="MODEL@VERSION")],
    on: Annotated[str, typer.Option("--on", help="DATASET@VERSION (accepted)")],
    sensitive: Annotated[str | None, typer.Option(help="comma-separated sensitive columns")] = None,
    immutable: Annotated[str | None, typer.Option(help="features attacks may not change")] = None,
    eps: Annotated[float, typer.Option(help="perturbation budget, in feature std units")] = 0.5,
    sample: Annotated[int, typer.Option(help="rows attacked")] = 200,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Metrics, fairness and adversarial robustness; stored as a signed statement."""
    from bastion.model_security.evaluation import RobustnessSuite

    with session(_home(ctx)) as s, _spinner() as bar:
        task = bar.add_task("evaluating", total=None)
        rec = s.ws.lab.evaluate(
            s.actor,
            project,
            ref,
            on,
            sensitive=_split(sensitive),
            immutable=_split(immutable),
            suite=RobustnessSuite(eps=eps, sample_size=sample),
            progress=lambda st: bar.update(task, description=st),
        )
    print_json(rec.to_dict())


def train(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="training spec (.yaml, .json or .toml)")],
    on: Annotated[str, typer.Option("--on", help="DATASET@VERSION (accepted)")],
    name: Annotated[str, typer.Option("--name", help="model name to register")],
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Train a scikit-learn pipeline from a spec on accepted data and register it."""
    fmt = {".json": "json", ".toml": "toml"}.get(spec.suffix.lower(), "yaml")
    with session(_home(ctx)) as s, _spinner() as bar:
        task = bar.add_task("training", total=None)
        v = s.ws.lab.train(
            s.actor,
            project,
            name,
            spec.read_text(),
            on,
            spec_format=fmt,
            progress=lambda st: bar.update(task, description=st),
        )
    run = json.loads(v.training_run or "{}")
    holdout = run.get("holdout") or {}
    scores = ", ".join(
        f"{k} {holdout[k]}" for k in ("accuracy", "roc_auc", "f1", "r2", "mae") if k in holdout
    )
    console.print(
        f"[green]trained and registered[/] {v.ref} on {on}: holdout {scores} "
        f"({holdout.get('n', '?')} rows); scanned, signed by {v.signer_key_id}"
    )


@monitor.command("drift")
def drift(
    ctx: typer.Context,
    reference: Annotated[str, typer.Option(help="DATASET@VERSION the model was trained on")],
    current: Annotated[Path, typer.Option(help="CSV / Parquet / JSONL of live inputs")],
    html: Annotated[Path | None, typer.Option(help="write an HTML report with charts")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    project: Project = DEFAULT_PROJECT,
) -> None:
    """Per-feature drift (PSI, KS, chi-square, Jensen-Shannon) with the choice explained."""
    from bastion.model_security.monitoring import DriftVerdict

    with session(_home(ctx)) as s:
        report = s.ws.lab.drift(s.actor, project, reference, current, html=html)
    if as_json:
        print_json(json.loads(json.dumps(report.to_dict(), default=str)))
    else:
        console.print(report.render_text(), highlight=False)
    if html:
        console.print(f"HTML report: {html}")
    if report.verdict is not DriftVerdict.NO_DRIFT:
        raise typer.Exit(5)


def register_cmds(app: typer.Typer) -> None:
    app.add_typer(model, name="model")
    app.add_typer(monitor, name="monitor")
    app.command()(train)
