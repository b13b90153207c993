"""The gateway's live sample: bounded, uniform enough, written only through the (encrypting)
blob store, and read back only for its own columns."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from bastion.core.errors import IntegrityError
from bastion.serving.live import LiveSampler, LiveStore, LiveWindow, expire, read_windows
from bastion.serving.values import (
    Deployment,
    DeploymentState,
    FieldKind,
    FieldSpec,
    InputSchema,
    ResponsePolicy,
)


class FakeIndex:
    def __init__(self) -> None:
        self.rows: list[LiveWindow] = []
        self.state: dict[str, str] = {}

    def add(self, w: LiveWindow) -> None:
        self.rows.append(w)
        self.state[w.id] = "writing"

    def mark_ready(self, window_id: str) -> bool:
        if self.state.get(window_id) != "writing":
            return False
        self.state[window_id] = "ready"
        return True

    def unfinished(self, before: str, limit: int) -> list[LiveWindow]:
        return [w for w in self.rows if self.state[w.id] != "ready" and w.created_at < before]

    def abandon(self, window_id: str) -> bool:
        if self.state.get(window_id) not in ("writing", "sweeping"):
            return False
        self.state[window_id] = "sweeping"
        return True

    def latest(self, deployment_id: str, max_rows: int) -> list[LiveWindow]:
        return [w for w in reversed(self.rows) if w.deployment_id == deployment_id]

    def earliest(self, deployment_id: str, max_rows: int) -> list[LiveWindow]:
        return [w for w in self.rows if w.deployment_id == deployment_id]

    def older_than(self, created_at: str) -> list[LiveWindow]:
        return [w for w in self.rows if w.created_at < created_at]

    def remove(self, ids: list[str]) -> None:
        self.rows = [w for w in self.rows if w.id not in ids]


def _store() -> tuple[LiveStore, dict[str, bytes]]:
    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()  # the blob store addresses by plaintext
        blobs[key] = data
        return key

    return LiveStore(FakeIndex(), put, blobs.__getitem__, blobs.pop), blobs


def _deployment(did: str = "d1", columns: tuple[str, ...] = ("x", "y")) -> Deployment:
    schema = InputSchema(tuple(FieldSpec(c, FieldKind.FLOAT) for c in columns), "p/ds contract v1")
    return Deployment(did, "p", "scoring", 1, "m", 1, "0" * 64, DeploymentState.ACTIVE, schema,
                      ResponsePolicy(), "{}", "t", "admin")


def test_sample_is_bounded_and_counts_every_row() -> None:
    sampler = LiveSampler(capacity=100, seed=1)
    d = _deployment()
    for i in range(0, 10_000, 50):
        sampler.observe(d, [[float(j), 0.0] for j in range(i, i + 50)], ["a"] * 50)
    store, _ = _store()
    assert sampler.flush(store) == 1
    [w] = store.index.rows
    assert w.rows == 100 and w.seen == 10_000
    rows, labels = read_windows(store, [w], ("x", "y"))
    xs = sorted(r[0] for r in rows)
    assert len(labels) == 100 and xs[50] > 2000  # not just the first rows: a reservoir
    assert sampler.flush(store) == 0  # nothing pending after a flush


def test_window_of_another_schema_is_refused() -> None:
    sampler = LiveSampler()
    sampler.observe(_deployment(), [[1.0, 2.0]], ["a"])
    store, _ = _store()
    sampler.flush(store)
    with pytest.raises(IntegrityError):
        read_windows(store, store.index.rows, ("x", "z"))


def test_windows_carry_a_random_nonce_and_expire_with_their_blobs() -> None:
    sampler = LiveSampler()
    store, blobs = _store()
    for _ in range(2):
        sampler.observe(_deployment(), [[1.0, 2.0]], ["a"])
        sampler.flush(store)
    first, second = (json.loads(b) for b in blobs.values())
    assert first["rows"] == second["rows"] and first["nonce"] != second["nonce"]
    assert expire(store, "9999") == 2 and blobs == {} and store.index.rows == []


def test_one_endpoint_check_crashing_does_not_stop_the_others_nor_window_expiry() -> None:
    """A check that raises something unexpected (not a BastionError) on one endpoint must
    not skip the other endpoints' checks nor the deletion of expired samples."""
    from bastion.model_security.monitoring import DriftReference
    from bastion.serving.monitor import DriftMonitor, MonitorOptions

    store, blobs = _store()
    broken, fine = _deployment("d1"), dataclasses.replace(_deployment("d2"), endpoint="other")
    sampler = LiveSampler()
    for d in (broken, fine):
        sampler.observe(d, [[1.0, 2.0]] * 5, ["good"] * 5)
    sampler.flush(store)
    old = LiveWindow("old", "p", "gone", "d0", "2000-01-01T00:00:00+00:00", 1, 1,
                     store.put(b"{}"))
    store.index.add(old)
    checked: list[str] = []

    class Deployments:
        def active(self, project: str, endpoint: str) -> Deployment | None:
            return next(d for d in (broken, fine) if d.endpoint == endpoint)

        def all_active(self) -> list[Deployment]:
            return [broken, fine]

    def references(_actor: object, d: Deployment) -> tuple[str, DriftReference | None]:
        checked.append(d.id)
        if d is broken:
            raise ValueError("an unexpected failure")
        return "p/ds@1", None

    monitor = DriftMonitor(None, Deployments(), store, references, None,  # type: ignore[arg-type]
                           MonitorOptions(min_rows=1))
    results = monitor.check_all()
    assert checked == ["d1", "d2"]
    assert [r.verdict for r in results] == ["no_reference"]
    assert old.blob_digest not in blobs and "old" not in {w.id for w in store.index.rows}
