"""The whole demo: a fresh workspace, then every layer's steps in order."""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from bastion.core.crypto.keyring import MasterKeySource
from bastion.demo.foundation import DemoState, run_foundation
from bastion.demo.runner import Runner, StepResult
from bastion.workspace import Bastion


def run_demo(home: Path | None, on_step: Callable[[StepResult], None]) -> Runner:
    """Run every step in a fresh workspace (``home`` or a temp folder)."""
    runner = Runner(on_step)
    work = Path(tempfile.mkdtemp(prefix="bastion-demo-"))
    home = home or work / "workspace"
    # The demo keys its throw-away workspace from a random env-style master key,
    # so it needs no passphrase prompt.
    master = MasterKeySource.from_env_key(base64.b64encode(os.urandom(32)).decode())
    holder: list[DemoState] = []

    def init() -> list[str]:
        ws, token = Bastion.init(home, master)
        admin = ws.access.authenticate(token.secret)
        holder.append(DemoState(ws, admin, work))
        return [f"workspace {home}", "SQLite (WAL) metadata, encrypted blob store, keyring, admin"]

    runner.step("foundation", "initialize a fresh workspace", init)
    if not holder:
        return runner
    state = holder[0]
    try:
        run_foundation(runner, state)
        for layer in _layers():
            layer(runner, state)
        runner.step("foundation", "audit log verifies at the end", lambda: _final_verify(state))
    finally:
        state.ws.close()
    return runner


def _final_verify(state: DemoState) -> list[str]:
    report = state.ws.audit.require_intact()
    return [f"{report.entries} entries, root {report.root_hash[:16]}…, every decision recorded"]


def _run_models(r: Runner, st: DemoState, story: object) -> None:
    from bastion.demo.data_steps import DataStory
    from bastion.demo.model_steps import run_models

    # Model steps need the data steps' accepted data; skip them if those failed.
    if r.ok and isinstance(story, DataStory):
        run_models(r, st, story)


def _layers() -> list[Callable[[Runner, DemoState], None]]:
    """Steps of the later layers, in story order."""
    from bastion.demo.data_steps import DataStory, run_data
    story = DataStory()
    return [
        lambda r, st: run_data(r, st, story),
        lambda r, st: _run_models(r, st, story),
    ]


__all__ = ["run_demo"]
