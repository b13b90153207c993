"""The gateway's live sample: bounded, uniform enough, written only through the (encrypting)
blob store, and read back only for its own columns."""

from __future__ import annotations

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

    def add(self, w: LiveWindow) -> None:
        self.rows.append(w)

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
        key = f"{len(blobs):064x}"
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
