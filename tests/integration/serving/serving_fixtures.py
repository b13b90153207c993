"""Helpers of the serving tests: a small signed scikit-learn model, and the hostile
worker fixture staged like an artifact (see ``hostile_worker.py``)."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from bastion.core.access.values import Actor
from bastion.core.crypto.keyring import MasterKeySource
from bastion.model_security.values import ModelVersion
from bastion.serving.workers import WorkerSpec
from bastion.workspace import Bastion

HOSTILE = Path(__file__).with_name("hostile_worker.py")


@dataclass
class Toy:
    ws: Bastion
    admin: Actor
    version: ModelVersion
    model: Pipeline
    work: Path


def toy_model(seed: int = 0) -> Pipeline:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.random(300), "b": rng.random(300)})
    return Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]).fit(x, x.a > x.b)


def hostile_spec(folder: Path) -> WorkerSpec:
    """The hostile fixture staged as the stager stages a model (read-only, 0444/0555)."""
    model = folder / "model"
    model.mkdir(parents=True)
    shutil.copy(HOSTILE, model / HOSTILE.name)
    os.chmod(model / HOSTILE.name, 0o444)
    os.chmod(model, 0o555)
    os.chmod(folder, 0o755)
    digest = hashlib.sha256((model / HOSTILE.name).read_bytes()).hexdigest()
    return WorkerSpec("hostile", model, HOSTILE.name, digest, ("attack", "arg"))


def hostile_program(fd: int) -> list[str]:
    import sys

    return [sys.executable, "-I", f"/model/{HOSTILE.name}", "--fd", str(fd)]


LR_SPEC = """\
label: Status
estimator: logistic_regression
sensitive: [Age]
params: {C: 1.0, max_iter: 300}
seed: 7
"""


GATE_POLICY = """\
approvals:
  required: {minimal: 1, limited: 1, high: 2}
  valid_days: 90
waivers:
  max_days: 30
thresholds:
  min_accuracy: 0.6
rules:
  - name: signature
    description: the artifact's signature verifies with the project's trusted key
    expr: facts.signature.valid
  - name: scan
    description: the malicious-serialization scan found nothing
    expr: facts.scan.clean
  - name: training_data
    description: every training dataset version is accepted and its lineage verifies
    expr: facts.datasets.count > 0 && facts.datasets.all_accepted && facts.datasets.lineage_verified
  - name: card
    description: the model card is complete
    expr: facts.card.complete
"""
#: the same policy plus a review: what the "unapproved version" tests switch to
REVIEWED_POLICY = GATE_POLICY + """\
  - name: approvals
    description: enough distinct reviewers approved this digest and card
    expr: facts.approvals.valid >= facts.approvals.required && facts.approvals.rejections == 0
"""
CARD = """\
intended_use: Rank credit applications for manual review.
out_of_scope_uses: [Automated refusal of credit]
owners: [alice@example.com]
risk_tier: limited
limitations: [One bureau only]
"""


@dataclass
class Credit:
    """A workspace with accepted credit data (and its inferred contract) and two trained
    versions of ``scorer`` that pass the project's release gate; ``holdout`` rows."""

    ws: Bastion
    admin: Actor
    v1: ModelVersion
    v2: ModelVersion
    holdout: list[dict[str, object]]
    features: list[str]


def build_credit(home: Path, master: MasterKeySource, db_url: str | None) -> Credit:
    import hashlib as _h
    import json as _json

    from bastion.data_security.service import IngestRequest
    from bastion.demo.data_steps import credit_data

    ws, token = Bastion.init(home / "ws", master, database_url=db_url)
    admin = ws.access.authenticate(token.secret)
    full = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=3)
    ws.datasets.register_source(admin, "default", "bureau", datasets=("credit",))
    path = home / "train.csv"
    full.head(800).write_csv(path)
    res = ws.datasets.ingest(admin, IngestRequest(
        "default", "credit", path, "bureau", _h.sha256(path.read_bytes()).hexdigest(),
        label="Status", sensitive=("Age",), positive_label="good"))
    assert res.accepted
    v1 = ws.lab.train(admin, "default", "scorer", LR_SPEC, res.version.ref)
    v2 = ws.lab.train(admin, "default", "scorer", LR_SPEC.replace("C: 1.0", "C: 0.5"),
                      res.version.ref)
    # the release gate: a project policy this fixture can meet without a review
    # committee (signature, scan, accepted training data, a complete card)
    ws.gate.set_policy(admin, "default", GATE_POLICY)
    for v in (v1, v2):
        ws.cards.edit(admin, "default", v.ref, CARD, source="card.yaml")
    features = list(_json.loads(v1.training_run or "{}")["features"])
    holdout = full.slice(800, 50).select(features).to_dicts()
    return Credit(ws, admin, v1, v2, holdout, features)


def run_cli(home: Path, master_b64: str, *args: str) -> tuple[int, str]:
    """Run the installed ``bastion`` against ``home`` (its stored admin credentials)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update({"BASTION_HOME": str(home), "BASTION_MASTER_KEY": master_b64,
                "COLUMNS": "250", "NO_COLOR": "1"})
    p = subprocess.run([str(Path(sys.executable).parent / "bastion"), *args], env=env,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


@dataclass
class LiveServer:
    url: str
    proc: object
    log: Path

    def stop(self) -> None:
        import subprocess

        proc = self.proc
        assert isinstance(proc, subprocess.Popen)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def start_bastion_serve(home: Path, master_b64: str, env: dict[str, str]) -> LiveServer:
    """A real ``bastion serve`` on a free loopback port, healthy before returning."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    full = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    full.update({"BASTION_HOME": str(home), "BASTION_MASTER_KEY": master_b64, **env})
    log = home.parent / f"serve-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "bastion"), "serve", "--host", "127.0.0.1",
             "--port", str(port)], env=full, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bastion serve exited:\n{log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return LiveServer(url, proc, log)
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"bastion serve did not start:\n{log.read_text()}")


class PrivateRedis:
    """A ``redis-server`` on a free loopback port in ``folder`` (no persistence), which a
    test can ``stop`` (to prove the gateway fails closed) and ``start`` again."""

    def __init__(self, folder: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: object = None

    def start(self) -> None:
        import subprocess
        import time

        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.folder), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.2).ping():
                    return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        import subprocess

        proc = self.proc
        if isinstance(proc, subprocess.Popen) and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
