"""``bastion deploy``, ``bastion rollback`` and ``bastion deploy status`` through the real
CLI on a workspace holding two approved credit scorers (SQLite)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from serving_fixtures import build_credit, run_cli

from bastion.core.crypto.keyring import MasterKeySource


def test_cli_deploy_rollback_and_status(tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    c = build_credit(tmp_path, MasterKeySource.from_env_key(key), None)
    c.ws.deployments.deploy(c.admin, "default", c.v1.ref, "scoring")
    home = c.ws.home
    c.ws.close()
    # (each CLI start costs seconds: one run per command; refusals are tested in-process)
    code, out = run_cli(home, key, "deploy", c.v2.ref, "--endpoint", "scoring")
    assert code == 0 and "deployed scorer@2 on endpoint scoring (#2" in out, out
    code, out = run_cli(home, key, "rollback", "scoring")
    assert code == 0 and "rolled back to scorer@1 on endpoint scoring (#3" in out, out
    code, out = run_cli(home, key, "deploy", "status", "scoring")
    assert code == 0 and "serving scorer@1 (#3" in out, out
    for state in ("superseded", "rolled_back", "active", "rollback to #1"):
        assert state in out, out
