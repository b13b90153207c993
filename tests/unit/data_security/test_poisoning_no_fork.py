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
    # both labels present, so the confident-learning path (cleanlab) really runs
    batch = frame.slice(1500, 300).with_row_index("i").with_columns(
        pl.when((pl.col("i") % 10 == 0) & (pl.col("Status") == "bad"))
        .then(pl.lit("good"))
        .otherwise(pl.col("Status"))
        .alias("Status")
    ).drop("i")
    assert batch["Status"].n_unique() == 2

    forks: list[int] = []
    real_fork = os.fork

    def counting_fork() -> int:
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", counting_fork)
    # cleanlab sizes its pool from the physical core count, which varies by
    # machine (psutil may see 1 or 2 here); pin it so the test is meaningful.
    import cleanlab.filter

    monkeypatch.setattr(cleanlab.filter, "psutil_exists", False)
    monkeypatch.setattr(cleanlab.filter.multiprocessing, "cpu_count", lambda: 2)
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
    assert not forks, "the poisoning audit forked (deadlocks inside a threaded server)"
