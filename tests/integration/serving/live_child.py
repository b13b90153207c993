"""A separate process for the live-window crash tests: ``flush`` writes one window of a
sample (as the gateway does), ``sweep`` runs the monitor's housekeeping with no grace
period.  Run with ``BASTION_TEST_CRASH_AT`` to be SIGKILLed at a named step."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bastion.core.crypto.keyring import MasterKeySource
from bastion.serving.live import LiveSampler
from bastion.serving.monitor import MonitorOptions
from bastion.serving.values import (
    Deployment,
    DeploymentState,
    FieldKind,
    FieldSpec,
    InputSchema,
    ResponsePolicy,
)
from bastion.workspace import Bastion


def deployment(did: str = "d-live") -> Deployment:
    schema = InputSchema((FieldSpec("x", FieldKind.FLOAT), FieldSpec("y", FieldKind.FLOAT)),
                         "default/ds contract v1")
    return Deployment(did, "default", "scoring", 1, "m", 1, "0" * 64, DeploymentState.ACTIVE,
                      schema, ResponsePolicy(), "{}", "t", "admin")


def main() -> None:
    home, db_url, action = sys.argv[1:4]
    ws = Bastion.open(Path(home), MasterKeySource.from_env_key(os.environ["BASTION_MASTER_KEY"]),
                      database_url=db_url)
    try:
        if action == "flush":
            sampler = LiveSampler(capacity=50, seed=1)
            sampler.observe(deployment(), [[float(i), 1.0] for i in range(80)], ["a"] * 80)
            ws.monitor.flush(sampler)
        else:
            ws.monitor_options = MonitorOptions(sweep_grace_seconds=0.0)
            ws.monitor.housekeeping()
    finally:
        ws.close()


if __name__ == "__main__":
    main()
