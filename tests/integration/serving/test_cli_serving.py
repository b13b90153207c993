"""``bastion deploy``, ``bastion deploy status`` and ``bastion rollback`` through the real
CLI on a workspace holding two approved credit scorers (SQLite)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from serving_fixtures import build_credit, run_cli

from bastion.core.crypto.keyring import MasterKeySource


def test_cli_deploy_status_rollback_and_refusals(tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    c = build_credit(tmp_path, MasterKeySource.from_env_key(key), None)
    home = c.ws.home
    c.ws.close()

    # (each CLI start costs seconds: three runs; the refusals' logic is tested in-process)
    code, out = run_cli(home, key, "deploy", c.v1.ref, "--endpoint", "scoring")
    assert code == 0 and "deployed scorer@1 on endpoint scoring (#1" in out, out
    code, out = run_cli(home, key, "rollback", "scoring")
    assert code != 0 and "no earlier stable version" in out, out
    code, out = run_cli(home, key, "deploy", "status", "scoring")
    assert code == 0 and "serving scorer@1" in out and "active" in out, out
