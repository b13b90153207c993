"""Audit log: durable appends per second and ``verify`` time over a large log.

Uses the real stack (``AuditLog`` over ``SqlAuditRepository`` on SQLite in WAL
mode with ``synchronous=FULL``, Ed25519 checkpoints from a ``LocalKeyring``,
the witness file), all in one fresh workspace folder, and measures in the same
run:

- one thread calling ``append()`` in a loop (one fsync per entry),
- 16 / 64 / 256 threads each calling ``append()`` (group commit: every call
  returns only once its entry is durable), with per-call latency percentiles,
- ``append_many`` in batches of 100 / 1,000 / 10,000,
- building the log up to ``--entries`` (1,000,000) with ``append_many(10_000)``,
- ``AuditLog.verify()`` over the whole log (what ``bastion audit verify`` runs),
  optionally under cProfile (``--profile``).

Results replace the ``audit`` section of docs/bench/foundation.md.

Usage: python bench/audit_log.py [--entries 1000000] [--threads 16,64,256]
       [--per-run 20000] [--profile] [--workdir DIR] [--no-doc]
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("BASTION_BENCH_SRC", str(ROOT / "src")))
sys.path.insert(0, str(ROOT / "bench"))

from blobstore import machine, write_section  # noqa: E402
from collect import results_block  # noqa: E402

from bastion.core.audit.entries import AuditRecord, Outcome  # noqa: E402
from bastion.core.audit.log import AuditLog  # noqa: E402
from bastion.core.audit.witness import WitnessFile  # noqa: E402
from bastion.core.crypto.keyring import LocalKeyring, MasterKeySource  # noqa: E402
from bastion.core.crypto.signers import KeyringSigner, KeyringVerifier  # noqa: E402
from bastion.core.store._adapters.sql.audit_repo import SqlAuditRepository  # noqa: E402
from bastion.core.store._adapters.sql.engine import make_engine, migrate  # noqa: E402


def record(i: int) -> AuditRecord:
    return AuditRecord(
        actor=f"user{i % 50}",
        action="dataset.read",
        resource=f"project/credit/dataset/loans-{i % 10}",
        outcome=Outcome.ALLOWED,
        request_id=f"req-{i:012d}",
        details={"rows": i, "columns": ["income", "age", "limit"]},
    )


def open_log(work: Path) -> AuditLog:
    key = base64.b64encode(os.urandom(32)).decode()
    keyring = LocalKeyring.create(work / "keyring.json", MasterKeySource.from_env_key(key))
    engine = make_engine(f"sqlite:///{work / 'bastion.db'}")
    migrate(engine)
    return AuditLog(
        SqlAuditRepository(engine),
        KeyringSigner(keyring, "audit"),
        KeyringVerifier(keyring, "audit"),
        WitnessFile(work / "audit-head.json"),
    )


def single(log: AuditLog, n: int) -> dict[str, float]:
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        s = time.perf_counter()
        log.append(record(i))
        lat.append(time.perf_counter() - s)
    secs = time.perf_counter() - t0
    return {"n": n, "seconds": secs, "rate": n / secs, **_pcts(lat)}


def concurrent(log: AuditLog, threads: int, total: int) -> dict[str, float]:
    per = max(1, total // threads)
    lat: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        mine = lat[k]
        start.wait()
        try:
            for i in range(per):
                s = time.perf_counter()
                log.append(record(k * per + i))
                mine.append(time.perf_counter() - s)
        except BaseException as e:
            errors.append(e)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    secs = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} appenders failed: {errors[0]!r}")
    n = per * threads
    return {"n": n, "seconds": secs, "rate": n / secs, **_pcts([x for xs in lat for x in xs])}


def batches(log: AuditLog, size: int, total: int) -> dict[str, float]:
    calls = max(1, total // size)
    t0 = time.perf_counter()
    for c in range(calls):
        log.append_many([record(c * size + i) for i in range(size)])
    secs = time.perf_counter() - t0
    return {"n": calls * size, "seconds": secs, "rate": calls * size / secs}


def _pcts(lat: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(lat, n=100)
    return {"p50_ms": qs[49] * 1000, "p99_ms": qs[98] * 1000}


def build(log: AuditLog, entries: int) -> float:
    t0 = time.perf_counter()
    have = log.head().size
    while have < entries:
        n = min(10_000, entries - have)
        log.append_many([record(have + i) for i in range(n)])
        have += n
        if have % 100_000 < 10_000:
            print(f"  built {have:,} entries ({time.perf_counter() - t0:.0f} s)", flush=True)
    return time.perf_counter() - t0


def summary_results(
    rows: list[tuple[str, dict[str, float]]], size: int, verify_secs: float
) -> dict[str, float | int | str]:
    """The figures bench/collect.py reads for the summary."""
    many = [r["rate"] for name, r in rows if "append_many" in name]
    threads = [r["rate"] for name, r in rows if "threads, append()" in name]
    return {
        "audit.append_many_min_per_s": f"{min(many):,.0f}",
        "audit.append_many_max_per_s": f"{max(many):,.0f}",
        "audit.append_threads_max_per_s": f"{max(threads):,.0f}",
        "audit.verify_entries": f"{size:,}",
        "audit.verify_s": f"{verify_secs:.1f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--threads", default="16,64,256")
    parser.add_argument("--per-run", type=int, default=20_000, help="appends per concurrent run")
    parser.add_argument("--single", type=int, default=500, help="single-threaded appends")
    parser.add_argument("--profile", action="store_true", help="cProfile verify()")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-audit-", dir=args.workdir))
    started = machine()
    rows: list[tuple[str, dict[str, float]]] = []
    try:
        log = open_log(work)
        r = single(log, args.single)
        rows.append(("1 thread, append()", r))
        print(f"single: {r['rate']:,.0f}/s", flush=True)
        for t in (int(x) for x in args.threads.split(",")):
            r = concurrent(log, t, args.per_run)
            rows.append((f"{t} threads, append()", r))
            print(f"{t} threads: {r['rate']:,.0f}/s p50 {r['p50_ms']:.1f} ms", flush=True)
        for size in (100, 1_000, 10_000):
            r = batches(log, size, max(size * 5, 50_000))
            rows.append((f"1 thread, append_many({size:,})", r))
            print(f"batches of {size}: {r['rate']:,.0f}/s", flush=True)
        built_at = log.head().size
        build_secs = build(log, args.entries)
        size = log.head().size
        print(f"log has {size:,} entries", flush=True)
        prof = cProfile.Profile() if args.profile else None
        t0 = time.perf_counter()
        if prof is not None:
            prof.enable()
        report = log.verify()
        if prof is not None:
            prof.disable()
        verify_secs = time.perf_counter() - t0
        print(f"verify: {verify_secs:.1f} s ok={report.ok} entries={report.entries:,}", flush=True)
        if not report.ok or report.entries != size:
            raise SystemExit(f"verify failed on an untampered log: {report.problems}")
        profile_text = ""
        if prof is not None:
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
            profile_text = out.getvalue()
            print(profile_text)
        db_mib = sum(p.stat().st_size for p in work.glob("bastion.db*")) / 2**20
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        "| workload | entries | seconds | durable appends/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        p50 = f"{r['p50_ms']:.1f}" if "p50_ms" in r else ""
        p99 = f"{r['p99_ms']:.1f}" if "p99_ms" in r else ""
        lines.append(
            f"| {name} | {r['n']:,.0f} | {r['seconds']:.2f} | {r['rate']:,.0f} | {p50} | {p99} |"
        )
    built = size - built_at
    lines.append(
        f"| build: append_many(10,000) | {built:,} | {build_secs:.1f} | "
        f"{built / build_secs:,.0f} | | |"
    )
    table = "\n".join(lines)
    verify_line = (
        f"`AuditLog.verify()` over **{size:,} entries** ({report.checkpoints_verified:,} signed "
        f"checkpoints, witness, database {db_mib:,.0f} MiB): **{verify_secs:.1f} s** "
        f"({size / verify_secs:,.0f} entries/s). Target: < 30 s."
    )
    print(table + "\n\n" + verify_line)
    if not args.no_doc:
        cmd = f"python bench/audit_log.py --entries {args.entries} --threads {args.threads}"
        body = (
            "## Audit log\n\n" + started + "\nEvery append is durable when it returns "
            "(SQLite WAL, synchronous=FULL); concurrent appenders share commits (group "
            "commit).\n\n" + table + "\n\n" + verify_line + "\n\n"
            + results_block(summary_results(rows, size, verify_secs)) + f"\n\nCommand: `{cmd}`"
        )
        write_section("audit", body)


if __name__ == "__main__":
    main()
