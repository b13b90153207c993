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

from bastion.cli import _audit_cmds, _core_cmds
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
) -> None:
    ctx.obj = {"home": home}


_core_cmds.register(app)
_audit_cmds.register(app)


def _register_optional() -> None:
    # Layers register their commands here (kept in one place, no import side effects).
    from bastion.cli import _data_cmds, _demo_cmd, _model_cmds

    _data_cmds.register(app)
    _model_cmds.register_cmds(app)
    _demo_cmd.register(app)


_register_optional()


def run() -> None:
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
    except Exception as e:  # click usage errors come here in non-standalone mode
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "run"]
