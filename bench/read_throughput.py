"""Throughput and peak RSS of Bastion's table readers vs plain (unvalidated) readers.

Generates 1,000,000 rows x 20 columns (ints, floats, strings, bools, dates) as CSV,
Parquet and JSON Lines, then times in the same run, each in a fresh subprocess (for a
clean peak RSS):

- bastion ``open_table(...).iter_batches()`` (streaming, all checks on)
- ``polars.read_csv`` / ``pyarrow.csv.read_csv`` / ``polars.read_parquet`` /
  ``polars.read_ndjson`` (whole file, no validation)

plus a multi-GB CSV streamed in 100k-row batches to show memory stays bounded.
Writes docs/bench/readers.md.

Usage: python bench/read_throughput.py [--rows 1000000] [--big-gb 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]

RUNNERS = {
    "bastion": """
from bastion.data_security.readers import open_table
with open_table(path) as r:
    n = sum(b.height for b in r.iter_batches(rows=100_000))
    assert r.sha256 is not None
""",
    "polars.read_csv": "import polars as pl; n = pl.read_csv(path).height",
    "pyarrow.csv.read_csv": "import pyarrow.csv as c; n = c.read_csv(path).num_rows",
    "polars.read_parquet": "import polars as pl; n = pl.read_parquet(path).height",
    "polars.read_ndjson": "import polars as pl; n = pl.read_ndjson(path).height",
    "pyarrow.json.read_json": "import pyarrow.json as j; n = j.read_json(path).num_rows",
}

HARNESS = """
import resource, sys, time, json
from pathlib import Path
path = Path(sys.argv[1])
t0 = time.perf_counter()
{code}
dt = time.perf_counter() - t0
print(json.dumps({{"rows": n, "seconds": dt,
      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def make_frame(rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    cols: dict[str, object] = {}
    for i in range(6):
        cols[f"int_{i}"] = rng.integers(-1_000_000, 1_000_000, rows)
    for i in range(6):
        cols[f"float_{i}"] = np.round(rng.normal(0, 1000, rows), 4)
    words = np.array([f"cat_{k}" for k in range(5000)])
    for i in range(4):
        cols[f"str_{i}"] = words[rng.integers(0, len(words), rows)]
    cols["flag_0"] = rng.integers(0, 2, rows).astype(bool)
    cols["flag_1"] = rng.integers(0, 2, rows).astype(bool)
    days = rng.integers(0, 20_000, rows).astype("timedelta64[D]") + np.datetime64("1970-01-01")
    cols["date_0"] = days
    cols["date_1"] = days[::-1]
    return pl.DataFrame(cols)


def run(runner: str, path: Path) -> dict[str, float]:
    code = HARNESS.format(code=RUNNERS[runner])
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True,
                         capture_output=True, text=True, env=env).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def make_big_csv(source: Path, target: Path, gib: float) -> None:
    body = source.read_bytes()
    header, _, rows = body.partition(b"\n")
    want = int(gib * (1 << 30))
    with target.open("wb") as f:
        f.write(header + b"\n")
        written = 0
        while written < want:
            f.write(rows)
            written += len(rows)


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return (f"- `{' '.join(platform.uname())}`\n- nproc: {os.cpu_count()}, memory: "
            f"{mem:.1f} GiB, Python {platform.python_version()}, polars {pl.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-gb", type=float, default=3.0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "readers.md")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    frame = make_frame(args.rows)
    files = {"csv": work / "t.csv", "parquet": work / "t.parquet", "jsonl": work / "t.jsonl"}
    frame.write_csv(files["csv"])
    frame.write_parquet(files["parquet"])
    frame.write_ndjson(files["jsonl"])
    plans = {
        "csv": ["bastion", "polars.read_csv", "pyarrow.csv.read_csv"],
        "parquet": ["bastion", "polars.read_parquet"],
        "jsonl": ["bastion", "polars.read_ndjson", "pyarrow.json.read_json"],
    }
    lines = ["| format | size MiB | reader | seconds | rows/s | vs fastest plain | peak RSS MiB |",
             "|---|---|---|---|---|---|---|"]
    for fmt, runners in plans.items():
        size = files[fmt].stat().st_size / (1 << 20)
        results = {r: run(r, files[fmt]) for r in runners}
        plain = min(v["seconds"] for k, v in results.items() if k != "bastion")
        for name, res in results.items():
            line = (f"| {fmt} | {size:.0f} | {name} | {res['seconds']:.2f} | "
                    f"{res['rows'] / res['seconds']:,.0f} | {res['seconds'] / plain:.2f}x | "
                    f"{res['peak_rss_mib']:.0f} |")
            print(line, flush=True)
            lines.append(line)
    big = work / "big.csv"
    make_big_csv(files["csv"], big, args.big_gb)
    t0 = time.perf_counter()
    res = run("bastion", big)
    size = big.stat().st_size / (1 << 30)
    big_line = (f"Streaming a {size:.2f} GiB CSV ({res['rows']:,} rows x 20 columns) in "
                f"100k-row batches: {res['seconds']:.1f} s "
                f"({res['rows'] / res['seconds']:,.0f} rows/s, "
                f"{size * 1024 / res['seconds']:.0f} MiB/s), peak RSS "
                f"**{res['peak_rss_mib']:.0f} MiB** (wall {time.perf_counter() - t0:.0f} s).")
    print(big_line)
    big.unlink()
    text = "\n".join([
        "# Table readers: throughput and memory", "",
        "Produced by `python bench/read_throughput.py` (each reader in a fresh process; "
        "`bastion` = streaming `open_table(...).iter_batches(rows=100_000)` with every "
        "check on and the SHA-256 of the raw bytes; the others read the whole file with no "
        "validation).", "", machine(), "", *lines, "", big_line, "",
    ])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
