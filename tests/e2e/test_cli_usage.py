"""The CLI speaks like a CLI: usage errors print usage and exit 2, nothing prints a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import CLI


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("--no-such-option",), "No such option: --no-such-option"),
        (("no-such-command",), "No such command 'no-such-command'"),
        (("data", "ingest"), "Missing argument"),
        (("data", "ingest", "x.csv", "--bogus"), "No such option: --bogus"),
        (("users", "create"), "Missing argument"),
    ],
)
def test_usage_error_prints_usage_not_traceback(
    cli: CLI, args: tuple[str, ...], problem: str
) -> None:
    r = cli.run(*args)
    assert r.returncode == 2, r.output
    assert "Usage: bastion" in r.stderr
    assert problem in r.stderr
    assert "Traceback" not in r.output


def _run_with_crashing_command(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    # A command that fails with an unexpected (non-Bastion) exception, run through the
    # real entry point ``run()``: the user sees one line and a hint, not a traceback.
    script = tmp_path / "crash.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from bastion.cli.main import app, run

            @app.command("crash-for-test")
            def _crash() -> None:
                raise RuntimeError("disk on fire")

            sys.argv = ["bastion", *sys.argv[1:]]
            run()
            """
        )
    )
    return subprocess.run(
        [sys.executable, str(script), *flags, "crash-for-test"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_unexpected_error_prints_one_line_and_hint_not_traceback(tmp_path: Path) -> None:
    p = _run_with_crashing_command(tmp_path)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr + p.stdout
    assert "RuntimeError: disk on fire" in p.stderr
    assert "--debug" in p.stderr


def test_debug_flag_shows_the_traceback(tmp_path: Path) -> None:
    p = _run_with_crashing_command(tmp_path, "--debug")
    assert p.returncode == 1
    assert "Traceback" in p.stderr and "disk on fire" in p.stderr
