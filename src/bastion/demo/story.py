"""The whole demo: a fresh workspace, then every layer's steps in order.

Example::

    runner = run_demo(None, print)                       # SQLite in a temp folder
    runner = run_demo(home, print, "postgresql://…/db")  # metadata in PostgreSQL
    assert runner.ok
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bastion.core.crypto.keyring import MasterKeySource
from bastion.demo.canary_steps import run_canary
from bastion.demo.data_steps import DataStory, run_data
from bastion.demo.foundation import DemoState, run_foundation
from bastion.demo.governance_steps import run_governance
from bastion.demo.model_steps import run_models, run_monitoring
from bastion.demo.runner import Runner, StepResult
from bastion.demo.serving_steps import demo_server, run_serving
from bastion.workspace import Bastion


def run_demo(
    home: Path | None,
    on_step: Callable[[StepResult], None],
    database_url: str | None = None,
) -> Runner:
    """Run every step in a fresh workspace (``home`` or a temp folder)."""
    runner = Runner(on_step)
    work = Path(tempfile.mkdtemp(prefix="bastion-demo-"))
    home = home or work / "workspace"
    # The demo keys its throw-away workspace from a random env-style master key,
    # so it needs no passphrase prompt.
    key_b64 = base64.b64encode(os.urandom(32)).decode()  # also the demo server's key
    master = MasterKeySource.from_env_key(key_b64)
    holder: list[DemoState] = []

    def init() -> list[str]:
        ws, token = Bastion.init(home, master, database_url=database_url)
        holder.append(DemoState(ws, ws.access.authenticate(token.secret), work))
        backend = "SQLite (WAL)" if database_url is None else "PostgreSQL"
        return [
            f"workspace {home}",
            f"{backend} metadata, encrypted blob store, keyring, admin",
            f"work folder {work} (the CSV batches and reports the steps write)",
        ]

    runner.step("foundation", "initialize a fresh workspace", init)
    if not holder:
        return runner
    state = holder[0]
    try:
        run_foundation(runner, state)
        data = DataStory()
        run_data(runner, state, data)
        # bastion serve starts now: its start-up overlaps the model and governance steps
        with demo_server(state, key_b64) as server:
            models = run_models(runner, state, data)
            governance = run_governance(runner, state, models)
            # the broken canary (rolled back by its analysis) runs before the drift step
            run_serving(runner, state, governance, server, extra=partial(run_canary, state))
        run_monitoring(runner, state, models)
        runner.step("foundation", "audit log verifies at the end", lambda: _final_verify(state))
    finally:
        state.ws.close()
    return runner


def _final_verify(state: DemoState) -> list[str]:
    report = state.ws.audit.require_intact()
    return [f"{report.entries} entries, root {report.root_hash[:16]}…, every decision recorded"]


__all__ = ["run_demo"]
