"""Entry point of the ``bastion`` command.

Every command parses its arguments, calls one service method, and renders.
Typed Bastion errors become a red message with a hint and a non-zero exit
code (2 bad input, 3 access, 4 integrity, 5 policy, 1 other).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli import _audit_cmds, _backup_cmds, _core_cmds
from bastion.cli._render import exit_code, print_error
from bastion.core.errors import BastionError

app = typer.Typer(
    name="bastion",
    help="Bastion secures the whole AI pipeline: data, models, deployment, governance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="workspace folder (default $BASTION_HOME or ~/.bastion)"),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="show a Python traceback for unexpected errors")
    ] = False,
) -> None:
    ctx.obj = {"home": home, "debug": debug}


_core_cmds.register(app)
_audit_cmds.register(app)
_backup_cmds.register(app)


def _register_optional() -> None:
    # Layers register their commands here (kept in one place, no import side effects).
    from bastion.cli import (
        _alert_cmds,
        _compliance_cmds,
        _data_cmds,
        _demo_cmd,
        _governance_cmds,
        _model_cmds,
        _provider_cmds,
        _release_cmds,
        _serving_cmds,
    )

    _data_cmds.register(app)
    _governance_cmds.register_cmds(_model_cmds.model)
    _release_cmds.register_cmds(app, _model_cmds.model)
    _model_cmds.register_cmds(app)
    _provider_cmds.register_cmds(app)
    _serving_cmds.register_cmds(app)
    _alert_cmds.register_cmds(app, _model_cmds.monitor)
    _compliance_cmds.register_cmds(app)
    _demo_cmd.register(app)


_register_optional()


def _usage_error_types() -> tuple[type[Exception], ...]:
    """Click's exception base, wherever this Typer keeps it (recent Typers vendor Click)."""
    types: list[type[Exception]] = [typer.TyperException]
    try:
        import click

        types.append(click.ClickException)
    except ImportError:  # pragma: no cover - Typer without a Click dependency
        pass
    return tuple(types)


def _show_usage_error(e: Exception) -> int:
    show = getattr(e, "show", None)
    if callable(show):
        show()  # prints the usage line and the problem to stderr, as Click does
    else:  # pragma: no cover - a TyperException without show()
        print(f"Error: {e}", file=sys.stderr)
    code = getattr(e, "exit_code", 2)
    return code if isinstance(code, int) else 2


def _show_internal_error(e: BaseException, debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exception(e)
        return
    # A user never sees a traceback: say what broke and how to get the detail.
    print(
        f"error (internal): {type(e).__name__}: {e}\n"
        "  hint: this is a bug in bastion; run again with --debug for a traceback "
        "and report it",
        file=sys.stderr,
    )


def run() -> None:
    # Read before parsing, so that even a failure inside option parsing honours it.
    debug = "--debug" in sys.argv[1:]
    try:
        # Outside standalone mode click *returns* the code of typer.Exit(code).
        code = app(standalone_mode=False)
    except BastionError as e:
        print_error(e)
        sys.exit(exit_code(e))
    except typer.Abort:
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:
        if isinstance(e, _usage_error_types()):
            sys.exit(_show_usage_error(e))
        _show_internal_error(e, debug)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "run"]
