"""Crash injection: real ``bastion`` processes killed with SIGKILL mid-write, then restarted.

Ingestion (first and later batches), review and model registration run as
real CLI subprocesses against one workspace and die by SIGKILL - at every
named crash point (``BASTION_TEST_CRASH_AT``, a test-only hook that is inert
unless set) and at a spread of wall-clock times across a measured run.  After
each kill the workspace is opened again (``Bastion.open`` reconciles before
anything else) and must hold:

- no ``pending`` version; every accepted version's dataset has a pinned
  reference; every version has its ``dataset.ingested`` record (by version id);
- every model version has its ``model.registered`` record and lineage;
- no scratch folder and no plaintext of the batch anywhere in the workspace;
- ``bastion audit verify`` and ``bastion store fsck`` pass.

Bounded: 17 short CLI runs, about a minute on a quiet machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import polars as pl
import pytest

from bastion.core.access.values import PrincipalKind
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.core.lineage.graph import Node, NodeKind
from bastion.data_security.values import VersionStatus
from bastion.demo.data_steps import credit_data
from bastion.workspace import Bastion

BASTION = Path(sys.executable).parent / "bastion"
PROJECT = "default"
SOURCE = "bureau"
MARKER = "QJXZ-CRASH-PLAINTEXT"


@dataclass
class Rig:
    home: Path
    key_b64: str
    token: str
    work: Path
    frames: tuple[pl.DataFrame, pl.DataFrame]
    model: Path
    runs: int = 0
    admin_token: str = ""
    killed: list[int | None] = field(default_factory=list)

    def env(self, crash_at: str | None = None, token: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
        env.update(BASTION_HOME=str(self.home), BASTION_MASTER_KEY=self.key_b64,
                   BASTION_TOKEN=token or self.token, NO_COLOR="1")  # fmt: skip
        if crash_at:
            env["BASTION_TEST_CRASH_AT"] = crash_at
        return env

    def ingest_args(self, dataset: str, batch: int) -> list[str]:
        self.runs += 1
        path = self.work / f"{dataset}-{self.runs}.csv"
        self.frames[batch].write_csv(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return ["data", "ingest", str(path), "--dataset", dataset, "--source", SOURCE,
                "--sha256", digest, "--label", "Status", "--positive-label", "good"]  # fmt: skip

    def register_args(self, name: str, trained_on: str) -> list[str]:
        return ["model", "register", name, str(self.model), "--framework", "sklearn",
                "--trained-on", trained_on]  # fmt: skip

    def run(
        self, args: list[str], crash_at: str | None = None, token: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BASTION), *args], env=self.env(crash_at, token),
                              capture_output=True, text=True, timeout=180,
                              stdin=subprocess.DEVNULL)  # fmt: skip

    def kill_after(self, args: list[str], seconds: float) -> int | None:
        """Start ``args``, SIGKILL it after ``seconds`` (None if it finished first)."""
        p = subprocess.Popen([str(BASTION), *args], env=self.env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)  # fmt: skip
        try:
            p.wait(timeout=seconds)
            return None
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            return p.wait(timeout=30)


def _model_file(d: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 3))
    d.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), d / "model.joblib")
    return d / "model.joblib"


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    key = base64.b64encode(os.urandom(32)).decode()
    ws, issued = Bastion.init(tmp_path / "ws", MasterKeySource.from_env_key(key))
    admin = ws.access.authenticate(issued.secret)
    ws.access.create_principal(admin, "dana", PrincipalKind.USER)
    for role in ("data-steward", "ml-engineer"):
        ws.access.bind(admin, "dana", role, PROJECT)
    token = ws.access.create_token(admin, "dana").secret
    ws.datasets.register_source(ws.access.authenticate(token), PROJECT, SOURCE)
    ws.close()
    full = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=11)
    marker = pl.format("{}-{}", pl.lit(MARKER), pl.int_range(pl.len())).alias("Ref")
    full = full.with_columns(marker)
    work = tmp_path / "work"
    work.mkdir()
    batches = (full.head(1200), full.tail(300))
    yield Rig(tmp_path / "ws", key, token, work, batches, _model_file(work / "model"),
              admin_token=issued.secret)  # fmt: skip


def check_invariants(rig: Rig) -> None:
    """Open (reconcile) and check every invariant; returns nothing, asserts all."""
    ws = Bastion.open(rig.home, MasterKeySource.from_env_key(rig.key_b64))
    try:
        actor = ws.access.authenticate(rig.token)
        tmp = rig.home / "tmp"
        assert not (tmp.exists() and any(tmp.iterdir())), list(tmp.iterdir())
        ingested = _version_ids(ws, "dataset.ingested")
        for ds in ws.datasets.datasets(actor, PROJECT):
            versions = ws.datasets.versions(actor, PROJECT, ds.name)
            assert not [v.ref for v in versions if v.status is VersionStatus.PENDING]
            if any(v.status is VersionStatus.ACCEPTED for v in versions):
                assert ds.reference_digest and ds.reference_version, f"{ds.name} has no pin"
            for v in versions:
                assert v.id in ingested, f"{v.ref} has no dataset.ingested audit record"
                node = Node(NodeKind.DATASET_VERSION, v.lineage_id)
                assert ws.lineage.upstream(node).children, f"{v.ref} has no lineage"
        registered = _version_ids(ws, "model.registered")
        for mv in ws.models.versions(actor, PROJECT):
            assert mv.id in registered, f"{mv.ref} has no model.registered audit record"
            node = Node(NodeKind.MODEL_VERSION, mv.lineage_id)
            assert ws.lineage.upstream(node).children, f"{mv.ref} has no lineage"
        assert ws.audit.verify().ok
        for f in rig.home.rglob("*"):
            if f.is_file() and f.stat().st_size:
                assert MARKER.encode() not in f.read_bytes(), f"plaintext left in {f}"
    finally:
        ws.close()


def _version_ids(ws: Bastion, action: str) -> set[str]:
    entries = ws.audit.query(AuditQuery(action=action, limit=100_000))
    return {json.loads(e.details).get("version_id") for e in entries}


def _assert_cli_clean(rig: Rig) -> None:
    verify = rig.run(["audit", "verify"], token=rig.admin_token)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    fsck = rig.run(["store", "fsck"], token=rig.admin_token)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert json.loads(fsck.stdout)["corrupted"] == []


INGEST_POINTS = (
    "ingest.after_staging",
    "ingest.after_blobs",
    "ingest.after_version_commit",
    "ingest.after_audit_append",
)
MODEL_POINTS = ("model.after_blobs", "model.after_version_commit", "model.after_audit_append")


def test_sigkill_at_every_crash_point_and_across_a_timing_sweep_recovers(rig: Rig) -> None:
    # named crash points in a dataset's first ingest (a fresh dataset each time)
    ingest_s = register_s = 0.0
    for i, point in enumerate(INGEST_POINTS):
        ingest_s = _crash(rig, rig.ingest_args(f"first{i}", 0), point)
    # ... and in a later batch
    assert rig.run(rig.ingest_args("steady", 0)).returncode == 0
    _crash(rig, rig.ingest_args("steady", 1), "ingest.after_version_commit")
    for point in MODEL_POINTS:
        register_s = _crash(rig, rig.register_args("scorer", "steady@1"), point)

    # timing sweep over the measured span (the last crash points sit near the end)
    for n, fraction in enumerate((0.7, 0.8, 0.9, 0.97)):
        rig.killed.append(rig.kill_after(rig.ingest_args(f"sweep{n}", 0), ingest_s * fraction))
        check_invariants(rig)
    for fraction in (0.85, 0.97):
        rig.killed.append(rig.kill_after(rig.register_args("scorer", "steady@1"),
                                         register_s * fraction))  # fmt: skip
        check_invariants(rig)
    assert rig.killed.count(-signal.SIGKILL) >= 3, rig.killed  # most runs really died
    _assert_cli_clean(rig)


def _crash(rig: Rig, args: list[str], point: str) -> float:
    """Run ``args`` until it SIGKILLs itself at ``point``; check; return its run time."""
    t0 = time.monotonic()
    p = rig.run(args, crash_at=point)
    took = time.monotonic() - t0
    assert p.returncode == -signal.SIGKILL, f"{point} did not fire: {p.stdout}{p.stderr}"
    check_invariants(rig)
    return took
