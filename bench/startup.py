"""Benchmark: how fast the ``bastion`` command starts, against a bare interpreter.

Times, in one run and interleaved (so machine load hits every command alike),
the median wall time of:

- ``python -c pass`` (the floor: interpreter start-up);
- ``python -c "import typer"`` (the CLI framework alone);
- ``bastion --help``;
- ``bastion model scan FILE`` on a small benign pickle (no workspace needed);
- ``bastion --help`` with ``-X importtime`` to name the slowest imports.

It prints the ratios to the bare interpreter and writes docs/bench/startup.md.

    python bench/startup.py [--runs 15] [--no-doc]
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from collect import results_block

ROOT = Path(__file__).resolve().parents[1]
BASTION = Path(sys.executable).parent / "bastion"


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def _slowest_imports(n: int = 5) -> list[tuple[str, float]]:
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-c",
         "import sys; sys.argv = ['bastion', '--help']\n"
         "from bastion.cli.main import run\ntry: run()\nexcept SystemExit: pass"],
        capture_output=True, text=True, check=True,
    )
    own: list[tuple[str, float]] = []
    for line in p.stderr.splitlines():
        parts = line.split("|")
        self_us = parts[0].removeprefix("import time:").strip()
        if len(parts) == 3 and self_us.isdigit():
            own.append((parts[2].strip(), int(self_us) / 1e6))
    return sorted(own, key=lambda x: -x[1])[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "model.pkl"
        sample.write_bytes(pickle.dumps({"weights": list(range(100))}))
        env_home = {**os.environ, "BASTION_HOME": str(Path(tmp) / "nowhere")}
        os.environ.update(env_home)
        cmds = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import typer'": [sys.executable, "-c", "import typer"],
            "bastion --help": [str(BASTION), "--help"],
            "bastion model scan FILE": [str(BASTION), "model", "scan", str(sample)],
        }
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.runs):
            for name, cmd in cmds.items():  # interleaved: load hits all alike
                times[name].append(_time(cmd))
    med = {k: statistics.median(v) for k, v in times.items()}
    floor = med["python -c pass"]
    rows = [f"| `{k}` | {v * 1000:.0f} ms | {v / floor:.1f}x |" for k, v in med.items()]
    slow = _slowest_imports()
    print("\n".join(rows))
    print("slowest imports (self time):", ", ".join(f"{m} {s * 1000:.0f} ms" for m, s in slow))
    if args.no_doc:
        return
    text = "\n".join([
        "## CLI start-up (issue 9)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; median of {args.runs} interleaved runs of each "
        "command, wall time (`bench/startup.py`).",
        "",
        "| command | median | x bare interpreter |",
        "|---|---|---|",
        *rows,
        "",
        "Slowest imports of `bastion --help` (self time): "
        + ", ".join(f"`{m}` {s * 1000:.0f} ms" for m, s in slow) + ".",
        "Commands import the workspace (SQLAlchemy, Alembic) and the data and model",
        "layers (polars, scikit-learn) only when they run, not to print help.",
        "",
        results_block({
            "startup.help_ms": round(med["bastion --help"] * 1000),
            "startup.scan_ms": round(med["bastion model scan FILE"] * 1000),
            "startup.python_ms": round(floor * 1000),
            "startup.typer_ms": round(med["python -c 'import typer'"] * 1000),
        }),
        "",
    ])
    (ROOT / "docs" / "bench" / "startup.md").write_text(text)
    print("wrote docs/bench/startup.md")


if __name__ == "__main__":
    main()
