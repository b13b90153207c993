"""Run every benchmark script in bench/, one after another, and report failures.

Each command is printed and timed; the exit status is non-zero if any failed.
``--small`` uses quick sizes (a smoke run of a few minutes in total); the
default uses the sizes each fragment in docs/bench/ was produced with.

Usage: python bench/run_all.py [--small] [--only NAME[,NAME...]]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

#: scripts that are not benchmarks
SKIP = {"run_all.py", "collect.py"}
#: script -> (small flags, full flags).  Small runs are smoke tests; scripts
#: with ``--out``/``--no-doc`` then leave docs/bench/ alone, the others (which
#: always write their fragment) are skipped in small mode unless named in --only.
FLAGS: dict[str, tuple[list[str] | None, list[str]]] = {
    "blobstore.py": (["--size-mib", "128", "--rounds", "1", "--no-doc"], []),
    "audit_log.py": (
        ["--entries", "50000", "--threads", "16,64", "--per-run", "2000", "--no-doc"],
        [],
    ),
    "read_throughput.py": (
        ["--rows", "100000", "--big-gb", "0.1", "--out", "/tmp/bastion-bench-readers.md"],
        [],
    ),
    "drift.py": (
        ["--rows", "100000", "--repeat", "1", "--skip-evidently",
         "--out", "/tmp/bastion-bench-drift.md"],
        [],
    ),
    "serving.py": (["--duration", "3", "--warmup", "1", "--no-doc"], []),
    "ingest_audit_perf.py": (None, []),
    "poisoning.py": (None, []),
    "scan_compare.py": (None, []),
    "scan_throughput.py": (None, []),
    "signing.py": (None, []),
}


def commands(small: bool, only: set[str]) -> list[list[str]]:
    cmds = []
    for script in sorted(BENCH.glob("*.py")):
        if script.name.startswith("_") or script.name in SKIP:
            continue
        if only and script.stem not in only:
            continue
        small_flags, full_flags = FLAGS.get(script.name, (None, []))
        if small and small_flags is None and script.stem not in only:
            print(f"(skipping {script.name} in --small mode: it always rewrites its doc)")
            continue
        flags = (small_flags or []) if small else full_flags
        cmds.append([sys.executable, str(script), *flags])
    return cmds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--small", action="store_true", help="quick sizes, no doc updates")
    parser.add_argument("--only", default="", help="comma-separated script names (no .py)")
    args = parser.parse_args()
    only = {x.strip().removesuffix(".py") for x in args.only.split(",") if x.strip()}
    failed: list[str] = []
    timings: list[tuple[str, float, int]] = []
    for cmd in commands(args.small, only):
        shown = " ".join(Path(c).name if i < 2 else c for i, c in enumerate(cmd))
        print(f"\n$ {shown}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, check=False).returncode
        secs = time.perf_counter() - t0
        timings.append((shown, secs, rc))
        if rc != 0:
            failed.append(shown)
    print("\n| command | seconds | status |\n|---|---|---|")
    for shown, secs, rc in timings:
        print(f"| `{shown}` | {secs:.0f} | {'ok' if rc == 0 else f'FAILED ({rc})'} |")
    if failed:
        print(f"\n{len(failed)} benchmark(s) failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
