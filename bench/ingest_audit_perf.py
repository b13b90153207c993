"""Benchmark: ingestion audit (profile + contract + quality + PII + bias) on 1M x 20.

Generates a reference and a batch of the same size (credit-like data with a
poisoned slice), times each stage of Bastion's audit, and — in the same run —
times pandera (polars backend) on the equivalent schema checks (dtype,
nullability, ranges, categories, uniqueness, duplicate rows).

pandera runs in its own venv: pass ``--pandera-python`` or set
``BASTION_BENCH_PANDERA_PYTHON`` (e.g. /work/bench-venvs/pandera/bin/python).

    python bench/ingest_audit_perf.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from bastion.data_security.checks import AuditReport
from bastion.data_security.checks.bias import (
    BiasSpec,
    SensitiveAttribute,
    bias_baseline,
    check_bias,
)
from bastion.data_security.checks.pii import check_pii
from bastion.data_security.checks.quality import run_quality_checks
from bastion.data_security.contract import check_contract, infer_contract
from bastion.data_security.profile import profile_frame

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench" / "ingest_audit.md"
SPEC = BiasSpec(
    label="approved", sensitive=(SensitiveAttribute("gender"), SensitiveAttribute("age"))
)


def generate(n: int, seed: int, poison: bool = False) -> pl.DataFrame:
    """20 columns: ids, numerics, categoricals, PII-bearing strings, a label."""
    r = np.random.default_rng(seed)
    ids = np.arange(n) + seed * n
    df = pl.DataFrame(
        {
            "customer_id": ids,
            "age": r.integers(18, 90, n),
            "income": r.lognormal(10, 0.5, n),
            "debt_ratio": r.random(n),
            "credit_score": r.normal(650, 80, n).round(),
            "n_accounts": r.poisson(3, n),
            "loan_amount": r.gamma(2.0, 5_000, n),
            "term_months": r.choice([12, 24, 36, 48, 60], n),
            "f0": r.normal(0, 1, n),
            "f1": r.normal(0, 1, n),
            "f2": r.normal(0, 1, n),
            "gender": r.choice(["F", "M", "X"], n, p=[0.49, 0.49, 0.02]),
            "region": r.choice([f"R{i}" for i in range(12)], n),
            "purpose": r.choice(["car", "home", "education", "business", "other"], n),
            "employment": r.choice(["employed", "self", "unemployed", "retired"], n),
            "email": np.char.add(np.char.add("user", ids.astype(str)), "@example.com"),
            "phone": np.char.add("+4477009", r.integers(10_000, 99_999, n).astype(str)),
            "note": r.choice(["ok", "late payment", "n/a", "", "review"], n),
            "amount_text": r.integers(100, 900, n).astype(str),
            "approved": (r.random(n) < 0.3).astype(np.int64),
        }
    )
    df = df.with_columns(
        pl.when(pl.int_range(n) % 50 == 0).then(None).otherwise(pl.col("income")).alias("income")
    )
    if poison:  # label flipping on a high-risk slice, plus a few broken rows
        flip = (pl.col("age") >= 65) & (pl.col("debt_ratio") > 0.5)
        df = df.with_columns(pl.when(flip).then(1).otherwise(pl.col("approved")).alias("approved"))
        df = pl.concat([df, df.head(500)])
    return df


def timed(label: str, fn, timings: dict[str, float]):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    timings[label] = time.perf_counter() - t0
    print(f"  {label:<28} {timings[label]:8.2f} s", flush=True)
    return out


PANDERA_SCRIPT = r"""
import json, sys, time
import polars as pl
import pandera.polars as pa
spec = json.loads(sys.argv[2])
df = pl.read_parquet(sys.argv[1])
cols = {}
for c in spec["columns"]:
    checks = []
    if c["min"] is not None: checks.append(pa.Check.ge(c["min"]))
    if c["max"] is not None: checks.append(pa.Check.le(c["max"]))
    if c["allowed_values"] is not None: checks.append(pa.Check.isin(c["allowed_values"]))
    dtype = {"integer": pl.Int64, "float": pl.Float64, "string": pl.String}[c["type"]]
    cols[c["name"]] = pa.Column(dtype, checks=checks, nullable=c["nullable"],
                                unique=c["unique"], coerce=False)
schema = pa.DataFrameSchema(cols, unique=list(df.columns), strict=True)
t0 = time.perf_counter()
try:
    schema.validate(df, lazy=True)
    n_fail = 0
except pa.errors.SchemaErrors as e:
    n_fail = len(e.failure_cases)
print(json.dumps({"seconds": time.perf_counter() - t0, "failure_cases": n_fail}))
"""


def run_pandera(python: str | None, df: pl.DataFrame, contract_json: str) -> dict[str, float] | str:
    if not python or not Path(python).exists():
        return (
            "skipped: pandera venv not found (pass --pandera-python or set "
            "BASTION_BENCH_PANDERA_PYTHON, e.g. /work/bench-venvs/pandera/bin/python)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.parquet"
        df.write_parquet(path)
        spec = json.loads(contract_json)
        proc = subprocess.run(
            [python, "-c", PANDERA_SCRIPT, str(path), json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=600,
        )
    if proc.returncode != 0:
        return f"failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else '?'}"
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def machine() -> str:
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return (
        f"`{' '.join(platform.uname())}`; nproc {os.cpu_count()}; memory {mem}; "
        f"Python {platform.python_version()}; polars {pl.__version__}; "
        f"load average at the end {os.getloadavg()[0]:.1f} (other jobs inflate absolute "
        "times; ratios within one run stay comparable)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pandera-python", default=os.environ.get("BASTION_BENCH_PANDERA_PYTHON"))
    args = ap.parse_args()
    n = args.rows
    print(f"generating reference and batch: {n} rows x 20 columns")
    reference_df, batch = generate(n, seed=0), generate(n, seed=1, poison=True)
    setup: dict[str, float] = {}
    print("setup (once per dataset version, not per batch):")
    ref_profile = timed("reference profile", lambda: profile_frame(reference_df), setup)
    baseline = timed("bias baseline", lambda: bias_baseline(reference_df, SPEC, ref_profile), setup)
    contract = infer_contract(ref_profile)
    timed("import fairlearn (one-off)", lambda: __import__("fairlearn.metrics"), setup)

    t: dict[str, float] = {}
    print("audit of one batch:")
    timed("profile batch", lambda: profile_frame(batch), t)
    c = timed("contract check", lambda: check_contract(batch, contract), t)
    q = timed("quality checks", lambda: run_quality_checks(batch, ref_profile, history=(n, n)), t)
    p = timed("PII scan (100k sample)", lambda: check_pii(batch), t)
    b = timed(
        "bias audit", lambda: check_bias(batch, SPEC, baseline=baseline, reference=ref_profile), t
    )
    total = sum(t.values())
    report = AuditReport.of(batch.height, (c, *q, p, *b))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(
        f"  {'TOTAL':<28} {total:8.2f} s  ({batch.height / total:,.0f} rows/s), "
        f"peak RSS {rss:.2f} GiB"
    )
    print(report.render_text()[:2000])

    print("pandera (same contract checks: dtype, nulls, ranges, categories, unique, dup rows):")
    pandera = run_pandera(args.pandera_python, batch, contract.to_json())
    print(f"  {pandera}")
    bastion_contract_quality = t["contract check"] + t["quality checks"]
    if isinstance(pandera, dict):
        ratio = pandera["seconds"] / t["contract check"]
        pandera_line = (
            f"| pandera (polars backend) validate, lazy | {pandera['seconds']:.2f} s |"
            f" {ratio:.1f}x the time of Bastion's contract check "
            f"({int(pandera['failure_cases'])} failure cases) |"
        )
    else:
        pandera_line = f"| pandera | - | {pandera} |"

    rows = "\n".join(f"| {k} | {v:.2f} s | |" for k, v in t.items())
    setup_rows = "\n".join(f"| {k} | {v:.2f} s | |" for k, v in setup.items())
    rate = batch.height / total
    rss_note = "(whole process, reference and batch in memory)"
    quality_note = "adds null-rate jumps, reference ranges, dup rows, coercion, row count"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(f"""# Ingestion audit performance (profile, contract, quality, PII, bias)

Generated by `bench/ingest_audit_perf.py --rows {n}` on {machine()}.

Batch: {batch.height:,} rows x {batch.width} columns (8 float/int numerics, 3 identifier-ish,
5 categoricals, 2 PII strings, a numbers-as-strings column, a label), with a label-flipping
slice (age >= 65 and debt_ratio > 0.5 approved) and 500 duplicated rows. The reference is
a clean {n:,}-row version profiled once.

| stage (one batch) | time | note |
|---|---|---|
{rows}
| **total** | **{total:.2f} s** | {rate:,.0f} rows/s; peak RSS {rss:.2f} GiB {rss_note} |

Target: < 20 s for this part on 2 cores (of a 60 s ingest budget). Verdict:
{"met" if total < 20 else "NOT met"}; audit {"QUARANTINE" if not report.passed else "PASSED"}
with {len(report.blocking_failures)} blocking failure(s):
{", ".join(x.name for x in report.blocking_failures) or "none"}.

| setup (once per reference version) | time | |
|---|---|---|
{setup_rows}

## Side by side with pandera (same run, same batch)

| tool | time | comparison |
|---|---|---|
| Bastion contract check | {t["contract check"]:.2f} s | dtype, nulls, ranges, categories, unique |
| Bastion contract + quality checks | {bastion_contract_quality:.2f} s | {quality_note} |
{pandera_line}

pandera runs in its own venv (`/work/bench-venvs/pandera`, pandera[polars]); its time
excludes reading the parquet file. Its schema is built from the same inferred contract
(plus a frame-level uniqueness check over all columns for duplicate rows). pandera has no
reference-profile checks (null-rate jumps, drift of ranges), no PII and no bias audit.
""")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    sys.exit(main())
