"""Benchmark: the FULL ingestion of a 1,000,000-row x 20-column batch.

``DatasetService.ingest`` end to end — strict streaming read + staging as Parquet
+ profile, source lineage (SHA-256), contract, quality, PII, bias, poisoning
against the pinned reference, encrypted storage of raw bytes / Parquet / profile,
version record, lineage edges, audit log, reference window update — against a
pinned trusted reference of the same size, in a real workspace (SQLite).

Setup and measurement run in separate child processes so the peak RSS
(``resource.getrusage``) is the ingest's own.  Stage times come from the
service's progress callback.  In the same run pandera (polars backend, its own
venv) validates the same batch against the same contract checks.

    .venv/bin/python bench/ingest_full.py [--rows 1000000] [--format csv|parquet]
        [--pandera-python /work/bench-venvs/pandera/bin/python] [--profile]

pandera's python comes from ``--pandera-python`` or ``BASTION_BENCH_PANDERA_PYTHON``;
without it the comparison is skipped with a message.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import hashlib
import io
import itertools
import json
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from collect import results_block

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "bench" / "ingest_full.md"
PROJECT, DATASET, SOURCE, LABEL = "default", "loans", "bureau", "default_flag"
TARGET_S, TARGET_RSS_GIB = 60.0, 4.0


# -- data --------------------------------------------------------------------------------
def generate(n: int, seed: int) -> pl.DataFrame:
    """A credit-like table: 20 columns (ids, numerics, categoricals, a sensitive attribute,
    a label that depends on the features), deterministic for a seed."""
    r = np.random.default_rng(seed)
    age = r.integers(18, 85, n)
    income = np.round(r.lognormal(10.3, 0.55, n), 2)
    debt_ratio = np.round(r.beta(2, 5, n), 4)
    score = np.clip(r.normal(660, 75, n), 300, 850).round().astype(np.int64)
    amount = np.round(r.gamma(2.0, 6_000, n), 2)
    term = r.choice([12, 24, 36, 48, 60, 72], n)
    records = r.random(n) < 0.12
    logit = (
        -1.1
        + 3.2 * (debt_ratio - 0.28)
        - 0.012 * (score - 660)
        + 0.9 * records
        + 0.25 * (amount / np.maximum(income, 1) - 0.3)
        - 0.01 * (age - 40)
    )
    label = (r.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pl.DataFrame(
        {
            # ids drawn from one shared space: batches do not "drift" by id
            "application_id": r.choice(50 * n, n, replace=False).astype(np.int64),
            "age": age,
            "gender": r.choice(["female", "male", "other"], n, p=[0.49, 0.49, 0.02]),
            "income": income,
            "debt_ratio": debt_ratio,
            "credit_score": score,
            "loan_amount": amount,
            "term_months": term,
            "n_accounts": r.poisson(3, n),
            "seniority_years": r.integers(0, 40, n),
            "expenses": np.round(r.normal(900, 250, n).clip(50), 2),
            "assets": np.round(r.exponential(20_000, n), 2),
            "home": r.choice(["rent", "owner", "parents", "priv", "other"], n),
            "marital": r.choice(["single", "married", "widow", "separated", "divorced"], n),
            "job": r.choice(["fixed", "partime", "freelance", "others"], n),
            "purpose": r.choice(["car", "home", "education", "business", "other"], n),
            "region": r.choice([f"R{i:02d}" for i in range(16)], n),
            "records": np.where(records, "yes", "no"),
            "channel": r.choice(["branch", "online", "broker"], n, p=[0.3, 0.6, 0.1]),
            LABEL: label,
        }
    )


def write(frame: pl.DataFrame, path: Path) -> str:
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    else:
        frame.write_csv(path)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# -- child processes -----------------------------------------------------------------------
def _open(home: Path) -> object:
    from bastion.core.crypto.keyring import MasterKeySource
    from bastion.workspace import Bastion

    return Bastion.open(home, MasterKeySource.from_env_key(os.environ["BENCH_MASTER_KEY"]))


def child_setup(home: Path, path: Path, digest: str, labelled: bool) -> dict[str, object]:
    """Create the workspace and ingest the reference (pinned as the trusted history)."""
    from bastion.core.crypto.keyring import MasterKeySource
    from bastion.data_security.service import IngestRequest
    from bastion.workspace import Bastion

    ws, token = Bastion.init(home, MasterKeySource.from_env_key(os.environ["BENCH_MASTER_KEY"]))
    try:
        admin = ws.access.authenticate(token.secret)
        ws.datasets.register_source(admin, PROJECT, SOURCE, datasets=(DATASET,))
        req = (
            IngestRequest(
                PROJECT, DATASET, path, SOURCE, digest, LABEL, ("gender",), positive_label="0"
            )
            if labelled
            # no label: the bias and poisoning audits do not run (they need one)
            else IngestRequest(PROJECT, DATASET, path, SOURCE, digest)
        )
        t0 = time.perf_counter()
        res = ws.datasets.ingest(admin, req)
        seconds = time.perf_counter() - t0
    finally:
        ws.close()
    return {
        "seconds": seconds,
        "status": res.version.status.value,
        "report": res.report.render_text()[:3000],
        "token": token.secret,
    }


def child_ingest(home: Path, path: Path, digest: str, profile: bool) -> dict[str, object]:
    """Ingest one batch with stage timings; peak RSS of this process only."""
    from bastion.data_security.service import IngestRequest

    ws = _open(home)
    admin = ws.access.authenticate(os.environ["BENCH_TOKEN"])  # type: ignore[attr-defined]
    marks: list[tuple[str, float, float]] = []
    req = IngestRequest(PROJECT, DATASET, path, SOURCE, digest)
    prof = cProfile.Profile() if profile else None
    t0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    res = ws.datasets.ingest(  # type: ignore[attr-defined]
        admin,
        req,
        progress=lambda stage: marks.append((stage, time.perf_counter(), time.process_time())),
    )
    if prof:
        prof.disable()
    end, cpu_end = time.perf_counter(), time.process_time()
    ws.close()  # type: ignore[attr-defined]
    stages: dict[str, float] = {}
    # CPU seconds of this process (every thread): what a stage costs whatever the load
    cpu: dict[str, float] = {}
    bounds = [*marks, ("end", end, cpu_end)]
    for (name, start, c_start), (after, stop, c_stop) in itertools.pairwise(bounds):
        # a service stage is announced when it starts; each poisoning detector
        # ("poisoning/<name>") when it is done
        if after.startswith("poisoning/"):
            key = after
        elif name.startswith("poisoning/"):
            key = "poisoning (merge)"
        else:
            key = name
        stages[key] = stages.get(key, 0.0) + (stop - start)
        cpu[key] = cpu.get(key, 0.0) + (c_stop - c_start)
    out: dict[str, object] = {
        "seconds": end - t0,
        "cpu_seconds": cpu_end - c0,
        "stages": stages,
        "stage_cpu": cpu,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024,
        "status": res.version.status.value,
        "rows": res.version.rows,
        "checks": len(res.report.checks),
        "blocking": [c.name for c in res.report.blocking_failures],
        "warnings": [c.name for c in res.report.checks if not c.passed and not c.blocking],
        "failed": [f"{c.name}: {c.summary}" for c in res.report.checks if not c.passed],
    }
    if prof:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(40)
        out["profile"] = buf.getvalue()
    return out


def run_child(*args: str, env: dict[str, str], timeout: float) -> dict[str, object] | None:
    """Run this script as a child; None when it did not finish within ``timeout`` s."""
    try:
        proc = subprocess.run(
            [sys.executable, __file__, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        sys.exit(f"child {args[0]} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- pandera --------------------------------------------------------------------------------
PANDERA_SCRIPT = r"""
import json, resource, sys, time
import polars as pl
import pandera.polars as pa
spec = json.loads(open(sys.argv[2]).read())
t0 = time.perf_counter()
df = pl.read_parquet(sys.argv[1]) if sys.argv[1].endswith(".parquet") else pl.read_csv(sys.argv[1])
t_read = time.perf_counter() - t0
types = {"integer": pl.Int64, "float": pl.Float64, "string": pl.String, "boolean": pl.Boolean}
cols = {}
for c in spec["columns"]:
    checks = []
    if c["min"] is not None: checks.append(pa.Check.ge(c["min"]))
    if c["max"] is not None: checks.append(pa.Check.le(c["max"]))
    if c["allowed_values"] is not None: checks.append(pa.Check.isin(c["allowed_values"]))
    cols[c["name"]] = pa.Column(types[c["type"]], checks=checks, nullable=c["nullable"],
                                unique=c["unique"], coerce=False)
schema = pa.DataFrameSchema(cols, unique=list(df.columns), strict=True)
t1 = time.perf_counter()
try:
    schema.validate(df, lazy=True)
    n_fail = 0
except pa.errors.SchemaErrors as e:
    n_fail = len(e.failure_cases)
t_val = time.perf_counter() - t1
print(json.dumps({"read": t_read, "validate": t_val, "failure_cases": n_fail,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def run_pandera(python: str | None, path: Path, contract: str) -> dict[str, float] | str:
    if not python or not Path(python).exists():
        return (
            "skipped: pandera venv not found (pass --pandera-python or set "
            "BASTION_BENCH_PANDERA_PYTHON, e.g. /work/bench-venvs/pandera/bin/python)"
        )
    spec = path.parent / "contract.json"
    spec.write_text(contract)
    proc = subprocess.run(
        [python, "-c", PANDERA_SCRIPT, str(path), str(spec)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        return f"failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else '?'}"
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def stored_contract(home: Path, token: str) -> str:
    ws = _open(home)
    try:
        admin = ws.access.authenticate(token)  # type: ignore[attr-defined]
        c = ws.datasets.contract(admin, PROJECT, DATASET)  # type: ignore[attr-defined]
        assert c is not None
        return c.to_json()  # type: ignore[no-any-return]
    finally:
        ws.close()  # type: ignore[attr-defined]


# -- report ------------------------------------------------------------------------------------
def machine() -> str:
    mem = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return (
        f"`{' '.join(platform.uname())}`; nproc {os.cpu_count()}; memory {mem}; "
        f"Python {platform.python_version()}; polars {pl.__version__}"
    )


@dataclass
class Run:
    """One configuration: setup (reference ingest) then the measured batch ingest."""

    rows: int
    labelled: bool
    setup: dict[str, object] | None = None
    ingest: dict[str, object] | None = None
    pandera: dict[str, float] | str = "not run"
    load: tuple[float, float] = (0.0, 0.0)
    batch_mib: float = 0.0
    timeout: float = 0.0

    @property
    def title(self) -> str:
        what = "full audit" if self.labelled else "no label (bias + poisoning do not run)"
        return f"{self.rows:,} rows, {what}"


def measure(rows: int, labelled: bool, fmt: str, args: argparse.Namespace) -> Run:
    run = Run(rows, labelled, timeout=args.timeout)
    print(f"== {run.title}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        key = base64.b64encode(os.urandom(32)).decode()
        env = {**os.environ, "BENCH_MASTER_KEY": key}
        os.environ["BENCH_MASTER_KEY"] = key
        ref_path, batch_path = work / f"reference.{fmt}", work / f"batch.{fmt}"
        t0 = time.perf_counter()
        ref_digest = write(generate(rows, 1), ref_path)
        batch_digest = write(generate(rows, 2), batch_path)
        run.batch_mib = batch_path.stat().st_size / 2**20
        print(f"  generated 2 x {rows:,} rows in {time.perf_counter() - t0:.1f} s "
              f"({run.batch_mib:.0f} MiB each)", flush=True)
        home = work / "ws"
        run.setup = run_child("--child-setup", str(home), str(ref_path), ref_digest,
                              "1" if labelled else "0", env=env, timeout=args.timeout)
        if run.setup is None:
            print(f"  setup did not finish within {args.timeout:.0f} s", flush=True)
            return run
        print(f"  setup: reference ingested and pinned in "
              f"{float(run.setup['seconds']):.1f} s ({run.setup['status']})", flush=True)  # type: ignore[arg-type]
        env["BENCH_TOKEN"] = str(run.setup["token"])
        before = os.getloadavg()[0]
        run.ingest = run_child("--child-ingest", str(home), str(batch_path), batch_digest,
                               "1" if args.profile else "0", env=env, timeout=args.timeout)
        run.load = (before, os.getloadavg()[0])
        if run.ingest is None:
            print(f"  ingest did not finish within {args.timeout:.0f} s", flush=True)
            return run
        ing = run.ingest
        print(f"  ingest: {float(ing['seconds']):.2f} s, "  # type: ignore[arg-type]
              f"{rows / float(ing['seconds']):,.0f} rows/s, "  # type: ignore[arg-type]
              f"peak RSS {float(ing['peak_rss_gib']):.2f} GiB, {ing['status']}", flush=True)  # type: ignore[arg-type]
        for name, s in ing["stages"].items():  # type: ignore[attr-defined]
            print(f"    {name:<40} {s:7.2f} s")
        for line in ing["failed"]:  # type: ignore[attr-defined]
            print(f"    not passed: {line}")
        if args.profile:
            print(ing["profile"])
        run.pandera = run_pandera(
            args.pandera_python, batch_path, stored_contract(home, env["BENCH_TOKEN"])
        )
        print(f"  pandera: {run.pandera}", flush=True)
    return run


def render_run(run: Run, fmt: str) -> list[str]:
    lines = [f"## {run.title}", ""]
    if run.setup is None or run.ingest is None:
        what = "setup (reference ingest)" if run.setup is None else "the batch ingest"
        done = (
            f" Setup took {float(run.setup['seconds']):.1f} s." if run.setup else ""  # type: ignore[arg-type]
        )
        return [*lines, f"**Did not finish**: {what} was stopped after {run.timeout:.0f} s "
                f"(target {TARGET_S:.0f} s).{done}", ""]
    ing = run.ingest
    seconds = float(ing["seconds"])  # type: ignore[arg-type]
    rss = float(ing["peak_rss_gib"])  # type: ignore[arg-type]
    stages: dict[str, float] = ing["stages"]  # type: ignore[assignment]
    cpu: dict[str, float] = ing.get("stage_cpu", {})  # type: ignore[assignment]
    cpu_total = float(ing.get("cpu_seconds", 0.0))  # type: ignore[arg-type]
    verdict = "met" if seconds < TARGET_S and rss < TARGET_RSS_GIB else "MISSED"
    lines += [
        f"Batch {run.rows:,} rows x 20 columns, {fmt.upper()} ({run.batch_mib:.0f} MiB); "
        f"setup (reference ingest + pin) {float(run.setup['seconds']):.1f} s; "  # type: ignore[arg-type]
        f"load average {run.load[0]:.1f} before / {run.load[1]:.1f} after.",
        "",
        "| stage (progress callback) | seconds | share | CPU seconds (all threads) |",
        "|---|---|---|---|",
        *(
            f"| {name} | {s:.2f} | {s / seconds:.0%} | {cpu.get(name, 0.0):.2f} |"
            for name, s in stages.items()
        ),
        f"| **total** | **{seconds:.2f}** | **{run.rows / seconds:,.0f} rows/s** | "
        f"**{cpu_total:.2f}** |",
        "",
        "CPU seconds are this process's user + system time over the stage: unlike wall "
        "time they do not grow when other jobs share the cores (wall time below CPU time "
        "means the stage ran on several threads).",
        "",
        f"Peak RSS of the ingesting process {rss:.2f} GiB. Target < {TARGET_S:.0f} s and "
        f"< {TARGET_RSS_GIB:.0f} GiB: **{verdict}**. Outcome: {ing['status']}; checks not "
        f"passed: {'; '.join(ing['failed']) or 'none'}.",  # type: ignore[arg-type]
        "",
    ]
    quality = stages.get("auditing", 0.0) + stages.get("quality", 0.0)
    if isinstance(run.pandera, dict):
        p = run.pandera
        lines += [
            "| same batch, same run | seconds | ratio |",
            "|---|---|---|",
            f"| pandera (polars backend): read the file | {p['read']:.2f} | |",
            f"| pandera: validate the contract checks (dtype, nulls, ranges, categories, "
            f"unique, duplicate rows), lazy | {p['validate']:.2f} | |",
            f"| Bastion: contract + quality checks (stages `auditing` + `quality`) | "
            f"{quality:.2f} | {quality / max(p['validate'], 1e-9):.2f}x pandera validate |",
            f"| Bastion: full ingest | {seconds:.2f} | "
            f"{seconds / (p['read'] + p['validate']):.0f}x pandera read + validate |",
            "",
            f"pandera peak RSS {p['peak_rss_gib']:.2f} GiB, {int(p['failure_cases'])} failure "
            "cases.",
            "",
        ]
    else:
        lines += [f"pandera: {run.pandera}", ""]
    return lines


def where_the_time_goes(runs: list[Run]) -> list[str]:
    lines = ["## Where the time goes", ""]
    for run in runs:
        if not run.labelled or run.ingest is None:
            continue
        stages: dict[str, float] = run.ingest["stages"]  # type: ignore[assignment]
        total = float(run.ingest["seconds"])  # type: ignore[arg-type]
        poison = {k: v for k, v in stages.items() if k.startswith("poisoning/")}
        top = sorted(poison.items(), key=lambda kv: -kv[1])[:4]
        cpu = float(run.ingest.get("cpu_seconds", 0.0))  # type: ignore[arg-type]
        lines.append(
            f"- {run.rows:,} rows: the poisoning detectors take {sum(poison.values()):.1f} s of "
            f"{total:.1f} s ({sum(poison.values()) / total:.0%}); slowest: "
            + ", ".join(f"`{k.removeprefix('poisoning/')}` {v:.1f} s" for k, v in top)
            + f"; {cpu:.1f} CPU seconds in all, at load average {run.load[0]:.1f}-"
            f"{run.load[1]:.1f} on {os.cpu_count()} cores."
        )
    lines += [
        "",
        "Wall times compare only between runs at a similar load average (other jobs share "
        "the cores); the CPU seconds of the ingesting process (every thread) compare across "
        "runs.",
        "",
        "The strict read, staging, profile, contract, quality, PII, bias, encryption and "
        "records take a few seconds at 1M rows (the no-label run: a block's columns are "
        "checked on threads, the staged Parquet is written while the next batch is "
        "profiled); the rest is the poisoning audit. The label model and Isolation Forest "
        "are refitted from the stored trusted sample when the pinned reference is loaded "
        "(cached in-process, so a long-running server pays it once); scoring 1M rows costs "
        "about 10 CPU-s in each (150 boosted trees; 200 isolation trees at ~45 ns per row and "
        "tree, all in scikit-learn's tree traversal), the two largest costs left. Triggers "
        "are counted with one group-by per column and one dense `bincount` per column pair "
        "(a group-by only for large vocabularies), and only patterns that can fire are "
        "tested against the trusted counts; near-duplicates are found with hash joins on "
        "one folded 64-bit key of a quantised grid, and the batch's cell strings and "
        "BLAKE2b row hashes are made once and shared. Issue 10's speed work changed no "
        "decision: every detector's rows, metrics and decisions were compared before and "
        "after on the poisoning benchmark's batches and a 250k batch. Progress is reported "
        "per detector through the service's callback, "
        "which is how the stage table is measured.",
        "",
    ]
    return lines


def summary_results(runs: list[Run]) -> dict[str, float | int | str]:
    """Figures of the largest finished full-audit run, for bench/collect.py's summary."""
    done = [r for r in runs if r.labelled and r.ingest is not None]
    if not done:
        return {}
    run = max(done, key=lambda r: r.rows)
    ing: dict[str, object] = run.ingest  # type: ignore[assignment]
    stages: dict[str, float] = ing["stages"]  # type: ignore[assignment]
    out: dict[str, float | int | str] = {
        "ingest.rows": f"{run.rows:,}",
        "ingest.seconds": f"{float(ing['seconds']):.2f}",  # type: ignore[arg-type]
        "ingest.peak_rss_gib": f"{float(ing['peak_rss_gib']):.2f}",  # type: ignore[arg-type]
        "ingest.accepted": int(ing["status"] == "accepted"),
    }
    if isinstance(run.pandera, dict):
        quality = stages.get("auditing", 0.0) + stages.get("quality", 0.0)
        out["ingest.quality_vs_pandera"] = f"{quality / max(run.pandera['validate'], 1e-9):.2f}"
    return out


def render(runs: list[Run], fmt: str) -> str:
    lines = [
        "# Full ingestion benchmark (`DatasetService.ingest`, end to end)",
        "",
        f"Generated by `bench/ingest_full.py` on {machine()}. The machine is shared with "
        "other jobs: absolute times move with the load average; ratios within a run hold.",
        "",
        "Each run: a fresh SQLite workspace; a reference of N rows (seed 1) is ingested as "
        "the first batch (contract inferred, trusted reference pinned), then a clean batch of "
        "N rows from the same generator (seed 2) is ingested and measured in its own process "
        "(peak RSS via `resource.getrusage`). Data: credit-like synthetic table, 20 columns "
        f"(numeric + categorical features, label `{LABEL}` driven by the features, sensitive "
        "attribute `gender`), deterministic. Stage names are the service's progress ticks; "
        "`poisoning/<detector>` is the time of each poisoning detector.",
        "",
    ]
    for run in runs:
        lines += render_run(run, fmt)
    lines += where_the_time_goes(runs)
    lines += [results_block(summary_results(runs)), ""]
    lines += [
        "Reproduce: `.venv/bin/python bench/ingest_full.py --pandera-python "
        "/work/bench-venvs/pandera/bin/python` (`--profile` adds a cProfile of each measured "
        "ingest).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("--child-setup", "--child-ingest"):
        home, path, digest = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
        if sys.argv[1] == "--child-setup":
            print(json.dumps(child_setup(home, path, digest, sys.argv[5] == "1")))
        else:
            print(json.dumps(child_ingest(home, path, digest, sys.argv[5] == "1")))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", default="1000000:label,1000000:nolabel,250000:label",
                    help="comma-separated ROWS:label|nolabel configurations")
    ap.add_argument("--format", choices=["csv", "parquet"], default="csv")
    ap.add_argument("--pandera-python", default=os.environ.get("BASTION_BENCH_PANDERA_PYTHON"))
    ap.add_argument("--profile", action="store_true", help="cProfile the measured ingest")
    ap.add_argument("--timeout", type=float, default=240, help="seconds per child process")
    ap.add_argument("--no-write", action="store_true", help="do not write docs/bench")
    args = ap.parse_args()
    runs = []
    for spec in args.runs.split(","):
        rows, _, mode = spec.partition(":")
        runs.append(measure(int(rows), mode != "nolabel", args.format, args))
    text = render(runs, args.format)
    if not args.no_write:
        OUT.write_text(text)
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
