"""Ingestion can never skip the poisoning gate (issue 8, section 2).

Attacks reproduced against the old code:

- a kill -9 during a dataset's first ingest left an accepted version with no
  pinned reference and no ``dataset.ingested`` audit record; the next,
  label-poisoned batch was then audited without any poisoning check, accepted,
  and became the trusted reference;
- two batches sent at once into a new dataset: the second was audited "as a
  first batch" (no reference) and accepted unchecked.

The crashes are real: the ``bastion`` CLI runs as a subprocess and a test-only
crash point (``BASTION_TEST_CRASH_AT``) SIGKILLs it at a named step.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from data_security_support import (
    DATASET,
    LABEL,
    PROJECT,
    SOURCE,
    CreditSplit,
    credit_split,
    make_actor,
    sha256_file,
    targeted_label_flip,
    write_csv,
)

from bastion.core.access.values import Actor
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.data_security.service import IngestRequest, IngestResult
from bastion.data_security.values import VersionStatus
from bastion.workspace import Bastion

BASTION = Path(sys.executable).parent / "bastion"
RESOURCE = f"project/{PROJECT}/dataset/{DATASET}"


@dataclass
class Home:
    ws: Bastion
    home: Path
    db: str
    key_b64: str
    steward: Actor
    steward_token: str
    work: Path

    def reopen(self) -> Bastion:
        self.ws.close()
        self.ws = Bastion.open(
            self.home, MasterKeySource.from_env_key(self.key_b64), database_url=self.db
        )
        return self.ws

    def cli(self, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
        env.update(
            BASTION_HOME=str(self.home),
            BASTION_MASTER_KEY=self.key_b64,
            BASTION_TOKEN=self.steward_token,
            NO_COLOR="1",
        )
        if crash_at:
            env["BASTION_TEST_CRASH_AT"] = crash_at
        return subprocess.run(
            [str(BASTION), *args], env=env, capture_output=True, text=True, timeout=180,
            stdin=subprocess.DEVNULL,
        )

    def ingest_cli(self, frame: pl.DataFrame, stem: str, crash_at: str | None = None,
                   dataset: str = DATASET) -> subprocess.CompletedProcess[str]:
        path, digest = write_csv(frame, self.work / f"{stem}.csv")
        return self.cli("data", "ingest", str(path), "--dataset", dataset, "--source", SOURCE,
                        "--sha256", digest, "--label", LABEL, "--positive-label", "good",
                        crash_at=crash_at)  # fmt: skip

    def ingest(self, frame: pl.DataFrame, stem: str, ws: Bastion | None = None) -> IngestResult:
        path, digest = write_csv(frame, self.work / f"{stem}.csv")
        req = IngestRequest(PROJECT, DATASET, path, SOURCE, digest, LABEL, (), "good")
        return (ws or self.ws).datasets.ingest(self.steward, req)


def _home(root: Path, db: str | None) -> Iterator[Home]:
    key = base64.b64encode(os.urandom(32)).decode()
    ws, issued = Bastion.init(root / "ws", MasterKeySource.from_env_key(key), database_url=db)
    admin = ws.access.authenticate(issued.secret)
    make_actor(ws, admin, "dana", "data-steward")
    token = ws.access.create_token(admin, "dana").secret
    steward = ws.access.authenticate(token)
    ws.datasets.register_source(steward, PROJECT, SOURCE, datasets=(DATASET,))
    work = root / "work"
    work.mkdir()
    h = Home(ws, ws.home, ws.options.database_url, key, steward, token, work)
    try:
        yield h
    finally:
        h.ws.close()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    yield from _home(tmp_path, None)


@pytest.fixture
def any_db_home(tmp_path: Path, db_url: str) -> Iterator[Home]:
    yield from _home(tmp_path, db_url)


@pytest.fixture(scope="module")
def split() -> CreditSplit:
    return credit_split()


def _killed(p: subprocess.CompletedProcess[str]) -> None:
    assert p.returncode == -signal.SIGKILL, (
        f"the crash point did not fire (exit {p.returncode}):\n{p.stdout}\n{p.stderr}"
    )


def _ingested_records(ws: Bastion) -> list[dict[str, object]]:
    entries = ws.audit.query(AuditQuery(action="dataset.ingested", resource=RESOURCE, limit=1000))
    return [json.loads(e.details) for e in entries]


def poisoning_checks(report: object, *, failed: bool = False) -> list[str]:
    """Names of the poisoning detectors that ran (the source check is not one)."""
    checks = report.blocking_failures if failed else report.checks  # type: ignore[attr-defined]
    return [
        c.name for c in checks
        if c.category == "poisoning" and c.name not in ("source_lineage", "trusted_reference")
    ]


def assert_consistent(ws: Bastion, steward: Actor) -> None:
    """The invariant: every accepted version is pinned-for and audited; nothing pending."""
    versions = ws.datasets.versions(steward, PROJECT, DATASET)
    assert not [v for v in versions if v.status is VersionStatus.PENDING]
    accepted = [v for v in versions if v.status is VersionStatus.ACCEPTED]
    ds = ws.datasets.dataset(steward, PROJECT, DATASET)
    if accepted:
        assert ds.reference_digest is not None and ds.reference_version is not None
    audited = {r["version_id"] for r in _ingested_records(ws)}
    for v in versions:
        if v.reviewed_by is None:
            assert v.id in audited, f"{v.ref} has no dataset.ingested audit record"
    assert ws.audit.verify().ok


# -- kill -9 during the first ingest ---------------------------------------------------
def test_first_ingest_killed_after_commit_comes_back_pinned_and_audited(
    home: Home, split: CreditSplit
) -> None:
    trusted = split.trusted
    _killed(home.ingest_cli(trusted, "history", crash_at="ingest.after_version_commit"))
    ws = home.reopen()  # start-up reconcile runs before anything else
    v1 = ws.datasets.version(home.steward, PROJECT, f"{DATASET}@1")
    assert v1.status is VersionStatus.ACCEPTED
    assert ws.datasets.dataset(home.steward, PROJECT, DATASET).reference_version == 1
    assert [r["version"] for r in _ingested_records(ws)] == [1]
    assert_consistent(ws, home.steward)

    # the next, label-poisoned batch meets the poisoning checks and is quarantined
    poisoned, _ = targeted_label_flip(split.batch(0))
    res = home.ingest(poisoned, "poisoned")
    assert res.version.status is VersionStatus.QUARANTINED
    assert poisoning_checks(res.report, failed=True), res.report.render_text()
    assert ws.datasets.dataset(home.steward, PROJECT, DATASET).reference_version == 1


def test_kill_after_audit_append_does_not_log_the_version_twice(
    home: Home, split: CreditSplit
) -> None:
    _killed(home.ingest_cli(split.trusted, "history", crash_at="ingest.after_audit_append"))
    ws = home.reopen()
    assert [r["version"] for r in _ingested_records(ws)] == [1]
    assert ws.datasets.version(home.steward, PROJECT, f"{DATASET}@1").status is (
        VersionStatus.ACCEPTED
    )
    assert_consistent(ws, home.steward)


def test_label_poisoned_batch_into_accepted_history_without_pin_is_quarantined_not_trusted(
    home: Home, split: CreditSplit
) -> None:
    """The state the old crash left (accepted v1, no pin) must never let a batch
    skip the poisoning checks: the batch is quarantined until a steward re-pins."""
    assert home.ingest(split.trusted, "history").accepted
    with home.ws.engine.begin() as c:  # the old crash's leftover: no reference pinned
        c.execute(sa.text("UPDATE datasets SET reference_digest = NULL, reference_version = NULL"))
    poisoned, _ = targeted_label_flip(split.batch(0))
    res = home.ingest(poisoned, "poisoned")
    assert res.version.status is VersionStatus.QUARANTINED
    assert "trusted_reference" in {c.name for c in res.report.blocking_failures}
    ds = home.ws.datasets.dataset(home.steward, PROJECT, DATASET)
    assert ds.reference_digest is None  # the poisoned batch did not become the reference
    # re-pinning restores the gate: the same batch is now caught by the poisoning checks
    assert home.ws.datasets.repin(home.steward, PROJECT, DATASET) == 1
    again = home.ingest(poisoned, "poisoned-again")
    assert again.version.status is VersionStatus.QUARANTINED
    assert poisoning_checks(again.report, failed=True), again.report.render_text()


def test_kill_during_release_leaves_no_accepted_version_without_pin_or_audit(
    home: Home, split: CreditSplit
) -> None:
    # the first batch is quarantined (undeclared checksum), so a release pins it
    path = home.work / "first.csv"
    split.trusted.write_csv(path)
    p = home.cli("data", "ingest", str(path), "--dataset", DATASET, "--source", SOURCE,
                 "--sha256", "0" * 64, "--label", LABEL)  # fmt: skip
    assert "QUARANTINED credit@1" in p.stdout, p.stdout + p.stderr
    ws = home.reopen()
    assert ws.datasets.version(home.steward, PROJECT, f"{DATASET}@1").status is (
        VersionStatus.QUARANTINED
    )
    _killed(home.cli("data", "release", f"{DATASET}@1", "--reason",
                     "bureau confirmed the checksum by phone (ticket 99)",
                     crash_at="review.after_commit"))  # fmt: skip
    ws = home.reopen()
    v1 = ws.datasets.version(home.steward, PROJECT, f"{DATASET}@1")
    assert v1.status is VersionStatus.ACCEPTED
    assert ws.datasets.dataset(home.steward, PROJECT, DATASET).reference_version == 1
    released = ws.audit.query(AuditQuery(action="dataset.released", resource=RESOURCE))
    assert [json.loads(e.details)["version_id"] for e in released] == [v1.id]
    assert ws.audit.verify().ok


def test_kill_during_ingest_leaves_no_plaintext_in_the_workspace(
    home: Home, split: CreditSplit
) -> None:
    marker = "ZQXJ-PLAINTEXT-MARKER"
    frame = split.trusted.with_columns(
        pl.format("{}-{}", pl.lit(marker), pl.int_range(pl.len())).alias("Note")
    )
    for point in ("ingest.after_staging", "ingest.after_blobs"):
        _killed(home.ingest_cli(frame, point, crash_at=point))
        assert any((home.home / "tmp").iterdir()), "the crash left no scratch to sweep"
        home.reopen()
        assert not [p for p in (home.home / "tmp").iterdir()], "plaintext scratch survived"
        for f in home.home.rglob("*"):
            if f.is_file():
                assert marker.encode() not in f.read_bytes(), f"plaintext in {f}"
    assert home.ws.blobs.fsck().ok
    assert home.ws.datasets.datasets(home.steward, PROJECT) == []  # nothing half-ingested


# -- two first batches at once ------------------------------------------------------------
def test_two_first_batches_at_once_the_second_is_audited_against_the_first(
    any_db_home: Home, split: CreditSplit
) -> None:
    """Two workspaces (separate engines, as two processes) ingest into a new dataset
    at the same instant; the second must be audited with the poisoning checks
    against the reference the first pinned, never as another first batch."""
    h = any_db_home
    other = Bastion.open(h.home, MasterKeySource.from_env_key(h.key_b64), database_url=h.db)
    poisoned, _ = targeted_label_flip(split.batch(0))
    frames = [split.trusted, poisoned]
    paths = [write_csv(f, h.work / f"b{i}.csv")[0] for i, f in enumerate(frames)]
    start = threading.Barrier(2)
    results: dict[int, IngestResult] = {}
    errors: list[BaseException] = []

    def run(i: int, ws: Bastion) -> None:
        req = IngestRequest(PROJECT, DATASET, paths[i], SOURCE, sha256_file(paths[i]),
                            LABEL, (), "good")  # fmt: skip
        start.wait()
        try:
            results[i] = ws.datasets.ingest(h.steward, req)
        except BaseException as e:  # reported below
            errors.append(e)

    try:
        threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate((h.ws, other))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        other.close()
    assert not errors, errors
    by_version = {r.version.version: r for r in results.values()}
    assert sorted(by_version) == [1, 2]
    second = by_version[2]
    assert second.version.parent_version == (1 if by_version[1].accepted else None)
    assert poisoning_checks(second.report), "the second batch was audited as a first batch:\n" + (
        second.report.render_text()
    )
    if results[1] is second:  # the poisoned batch came second
        assert second.version.status is VersionStatus.QUARANTINED
    assert h.ws.datasets.dataset(h.steward, PROJECT, DATASET).reference_version == 1
    assert_consistent(h.ws, h.steward)


def test_start_up_sweep_spares_the_scratch_of_a_live_process_and_removes_a_dead_ones(
    home: Home,
) -> None:
    """Opening the workspace (CLI next to a running server) must not delete a live
    ingest's staged batch, yet must remove the plaintext of a process that died."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from bastion.core.store.scratch import "
         "Scratch\nwith Scratch(Path(sys.argv[1])).workdir('ingest') as w:\n"
         "    (w / 'batch.parquet').write_text('secret rows'); print(w, flush=True); "
         "time.sleep(120)",
         str(home.home / "tmp")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        live = Path(holder.stdout.readline().strip())
        assert (live / "batch.parquet").exists()
        home.reopen()
        assert (live / "batch.parquet").exists(), "the sweep removed a live process's scratch"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert live.exists()  # SIGKILL: no cleanup ran
    home.reopen()
    assert not live.exists() and not any((home.home / "tmp").iterdir())


def test_two_processes_ingesting_first_batches_at_once_are_serialised(
    any_db_home: Home, split: CreditSplit
) -> None:
    """The same race with two real ``bastion data ingest`` processes (the lock and
    the fence must hold across processes, not only across threads)."""
    h = any_db_home
    poisoned, _ = targeted_label_flip(split.batch(1))
    procs = []
    for i, frame in enumerate((split.trusted, poisoned)):
        path, digest = write_csv(frame, h.work / f"p{i}.csv")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
        env.update(BASTION_HOME=str(h.home), BASTION_MASTER_KEY=h.key_b64,
                   BASTION_TOKEN=h.steward_token, NO_COLOR="1")  # fmt: skip
        procs.append(subprocess.Popen(
            [str(BASTION), "data", "ingest", str(path), "--dataset", DATASET, "--source", SOURCE,
             "--sha256", digest, "--label", LABEL, "--positive-label", "good"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL,
        ))  # fmt: skip
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode in (0, 5) for p in procs), outputs
    versions = h.ws.datasets.versions(h.steward, PROJECT, DATASET)
    assert [v.version for v in versions] == [1, 2]
    second = json.loads(versions[1].report)
    detectors = [
        c["name"] for c in second["checks"]
        if c["category"] == "poisoning" and c["name"] not in ("source_lineage", "trusted_reference")
    ]
    assert detectors, f"{versions[1].ref} was audited as a first batch: {second['checks']}"
    assert h.ws.datasets.dataset(h.steward, PROJECT, DATASET).reference_version == 1
    assert_consistent(h.ws, h.steward)


def test_policy_edited_during_an_audit_forces_a_re_audit_against_the_new_state(
    any_db_home: Home, split: CreditSplit
) -> None:
    """A batch is committed only onto the state it was audited against: a steward's
    policy edit landing mid-audit (another process) moves the dataset's generation,
    the commit is refused and the batch audited again under the new policy."""
    h = any_db_home
    assert h.ingest(split.trusted, "history").accepted
    other = Bastion.open(h.home, MasterKeySource.from_env_key(h.key_b64), database_url=h.db)
    ticks: list[str] = []

    def progress(stage: str) -> None:
        if stage == "auditing" and "auditing" not in ticks:
            other.datasets.set_policy(h.steward, PROJECT, DATASET,
                                      '{"poisoning": {"shift_alpha": 0.0005}}')  # fmt: skip
        ticks.append(stage)

    try:
        path, digest = write_csv(split.batch(2), h.work / "batch.csv")
        req = IngestRequest(PROJECT, DATASET, path, SOURCE, digest, LABEL, (), "good")
        res = h.ws.datasets.ingest(h.steward, req, progress=progress)
    finally:
        other.close()
    assert ticks.count("auditing") == 2, ticks
    assert "the dataset changed during the audit; auditing again" in ticks
    assert res.version.version == 2
    assert_consistent(h.ws, h.steward)
