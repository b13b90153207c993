"""Regression: the poisoning audit must never fork.

The API server runs ingestion on worker threads; cleanlab's default
multiprocessing pool forked from such a thread and deadlocked the request
(fork copies locks held by other threads). The audit now runs in-process.
"""

from __future__ import annotations

import os
import threading

import polars as pl
import pytest

from bastion.data_security.poisoning import PoisoningReference, detect_poisoning
from bastion.demo.data_steps import credit_data


def test_poisoning_audit_in_a_worker_thread_never_forks(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=3)
    reference = PoisoningReference.build(frame.head(1500), label="Status")
    batch = frame.slice(1500, 300).with_columns(
        pl.when(pl.col("Status") == "bad").then(pl.lit("good")).otherwise(pl.col("Status"))
        .alias("Status")
    )

    def no_fork() -> int:
        raise AssertionError("the poisoning audit forked a process")

    monkeypatch.setattr(os, "fork", no_fork)
    results: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.extend(detect_poisoning(batch, reference, label="Status"))
        except BaseException as e:  # surfaced below
            errors.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=300)
    assert not worker.is_alive(), "the poisoning audit hung in a worker thread"
    assert not errors, errors
    assert results
