"""Encrypted blob store vs a plain file copy: throughput and peak RSS.

Generates one random file (1 GiB by default), puts it once into an
``EncryptedBlobStore`` over a ``LocalFolderBackend`` and then times, each
operation in a fresh child process (peak RSS from ``resource.getrusage``):

durable (fsync before the operation ends):
- ``copy+fsync``        plain read/write copy of the file in 1 MiB pieces, then fsync
- ``copy+fsync, early write-back``  the same, but starting write-back every 8 MiB
                        (``WritebackFile``, as Bastion's writes do): the real I/O limit
- ``bastion put``       ``put_file``: SHA-256 + AES-256-GCM + atomic publish (fsync)
- ``bastion export``    ``copy_to``: decrypt + authenticate + digest check + fsync + rename

page cache (no fsync; for Bastion ``os.fsync`` is disabled in the bench child):
- ``copy (no fsync)``, ``bastion put (no fsync)``, ``bastion export (no fsync)``

read only (nothing written):
- ``read``              plain read of the file, discarded
- ``bastion read``      ``iter_chunks``: decrypt + authenticate + digest check, discarded

Caches cannot be dropped here, so the source file is in the page cache for
every operation; operations are interleaved within each round, ``sync`` runs
(untimed) between operations so no one pays for another's write-back, and
the median of the rounds is reported.  Results replace the ``blobstore``
section of docs/bench/foundation.md.

Usage: python bench/blobstore.py [--size-mib 1024] [--rounds 3] [--workdir DIR] [--no-doc]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from collect import results_block

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bench" / "foundation.md"
MIB = 1024 * 1024

SETUP = """
import base64, os, resource, sys, time, json
from pathlib import Path
work, op = Path(sys.argv[1]), sys.argv[2]
nosync = op.endswith("_nosync")
if nosync:
    os.fsync = lambda fd: None  # page-cache variant: bench-only, never in the product
from bastion.core.crypto.keyring import LocalKeyring, MasterKeySource
from bastion.core.store._adapters.local_folder import LocalFolderBackend
from bastion.core.store.blobs import EncryptedBlobStore
master = MasterKeySource.from_env_key(os.environ["BENCH_MASTER_KEY"])
store = EncryptedBlobStore(LocalFolderBackend(work / "store"),
                           LocalKeyring.open(work / "keyring.json", master))
src, dst = work / "source.bin", work / "dest.bin"
digest = (work / "digest.txt").read_text().strip() if (work / "digest.txt").exists() else ""

def plain_copy(sync, writeback=False):
    from bastion.core.store._adapters.local_folder import WritebackFile
    out = WritebackFile(dst, "wb") if writeback else open(dst, "wb", buffering=0)
    with open(src, "rb", buffering=0) as fi, out as fo:
        while piece := fi.read(1 << 20):
            fo.write(piece)
        if sync:
            os.fsync(fo.fileno())

def plain_read():
    with open(src, "rb", buffering=0) as fi:
        while fi.read(1 << 20):
            pass

def bastion_read():
    for _ in store.iter_chunks(digest):
        pass

ops = {
    "copy_fsync": lambda: plain_copy(True),
    "copy_fsync_wb": lambda: plain_copy(True, writeback=True),
    "copy_nosync": lambda: plain_copy(False),
    "read": plain_read,
    "put": lambda: store.put_file(src),
    "put_nosync": lambda: store.put_file(src),
    "export": lambda: store.copy_to(digest, dst),
    "export_nosync": lambda: store.copy_to(digest, dst),
    "bastion_read": bastion_read,
    "setup": lambda: (work / "digest.txt").write_text(store.put_file(src).digest),
}
t0 = time.perf_counter()
ops[op]()
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

#: (op, label, group) in the interleaved order of one round
OPS: list[tuple[str, str, str]] = [
    ("copy_fsync", "copy+fsync", "durable"),
    ("copy_fsync_wb", "copy+fsync, early write-back", "durable"),
    ("put", "bastion put", "durable"),
    ("export", "bastion export", "durable"),
    ("read", "read", "read only"),
    ("bastion_read", "bastion read", "read only"),
    ("copy_nosync", "copy (no fsync)", "page cache"),
    ("put_nosync", "bastion put (no fsync)", "page cache"),
    ("export_nosync", "bastion export (no fsync)", "page cache"),
]
#: durable Bastion operations also compared with the early write-back copy
BEST = {"put": "copy_fsync_wb", "export": "copy_fsync_wb"}
#: each Bastion operation compared with the plain operation of the same kind
BASELINE = {
    "put": "copy_fsync",
    "export": "copy_fsync",
    "bastion_read": "read",
    "put_nosync": "copy_nosync",
    "export_nosync": "copy_nosync",
}


def run_op(work: Path, op: str, env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", SETUP, str(work), op],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{op} failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def make_source(path: Path, size_mib: int) -> None:
    with open(path, "wb") as fh:
        for _ in range(size_mib):
            fh.write(os.urandom(MIB))
        fh.flush()
        os.fsync(fh.fileno())


def reset_between(work: Path, op: str) -> None:
    """Remove outputs so every operation writes for real; flush write-back (untimed)."""
    (work / "dest.bin").unlink(missing_ok=True)
    if op in ("put", "put_nosync"):
        shutil.rmtree(work / "store" / "objects", ignore_errors=True)
        shutil.rmtree(work / "store" / "tmp", ignore_errors=True)
    os.sync()
    for path in [work / "source.bin", *(work / "store").rglob("*.enc")]:
        with open(path, "rb", buffering=0) as fh:  # keep the inputs in the page cache
            while fh.read(8 * MIB):
                pass


def machine() -> str:
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"- `{' '.join(platform.uname())}`\n"
        f"- nproc: {os.cpu_count()}, memory: {mem}, Python {platform.python_version()}, "
        f"load average at start: {load} (other jobs share this VM)\n"
    )


def write_section(name: str, body: str, doc: Path = DOC) -> None:
    """Replace the ``name`` section of ``doc`` (between marker comments) with ``body``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = doc.read_text() if doc.exists() else "# Foundation benchmarks\n\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def report(size_mib: int, rounds: int, results: dict[str, list[dict[str, float]]]) -> str:
    med = {op: statistics.median(r["seconds"] for r in rs) for op, rs in results.items()}
    rss = {op: max(r["peak_rss_mib"] for r in rs) for op, rs in results.items()}
    lines = [
        f"File: {size_mib} MiB of random bytes; {rounds} interleaved rounds, median seconds; "
        "each operation in a fresh process.",
        "",
        "| group | operation | median s | MiB/s | all rounds s | vs plain | vs early-wb copy "
        "| peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for op, label, group in OPS:
        secs = med[op]
        ratio = "" if op not in BASELINE else f"{med[BASELINE[op]] / secs:.0%}"
        best = "" if op not in BEST else f"{med[BEST[op]] / secs:.0%}"
        rounds_s = " / ".join(f"{r['seconds']:.2f}" for r in results[op])
        lines.append(
            f"| {group} | {label} | {secs:.2f} | {size_mib / secs:,.0f} | {rounds_s} | "
            f"{ratio} | {best} | {rss[op]:.0f} |"
        )
    lines += [
        "",
        "`vs plain` = Bastion throughput / throughput of the plain operation of the same "
        "group (copy+fsync for put and export, read for bastion read, copy (no fsync) for "
        "the page-cache rows); `vs early-wb copy` = the same against a copy that also starts "
        "write-back early. Target: >= 60 % durable, peak RSS < 200 MiB.",
    ]
    return "\n".join(lines)


def summary_results(
    size_mib: int, results: dict[str, list[dict[str, float]]]
) -> dict[str, float | int | str]:
    """The figures bench/collect.py reads for the summary (medians, as in the table)."""

    def rate(op: str) -> str:
        return f"{size_mib / statistics.median(r['seconds'] for r in results[op]):,.0f}"

    rss = max(r["peak_rss_mib"] for op in ("put", "export", "bastion_read") for r in results[op])
    return {
        "blob.put_mib_s": rate("put"),
        "blob.durable_copy_mib_s": rate("copy_fsync"),
        "blob.read_mib_s": rate("bastion_read"),
        "blob.export_mib_s": rate("export"),
        "blob.peak_rss_mib": f"{rss:.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-doc", action="store_true", help="do not update foundation.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-blobstore-", dir=args.workdir))
    env = dict(os.environ)
    env["BENCH_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    src = os.environ.get("BASTION_BENCH_SRC", str(ROOT / "src"))  # e.g. an older checkout
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    started = machine()
    try:
        subprocess.run(
            [sys.executable, "-c",
             "import os,sys; from pathlib import Path; "
             "from bastion.core.crypto.keyring import LocalKeyring, MasterKeySource; "
             "LocalKeyring.create(Path(sys.argv[1]) / 'keyring.json', "
             "MasterKeySource.from_env_key(os.environ['BENCH_MASTER_KEY']))",
             str(work)],
            env=env, check=True,
        )
        print(f"generating {args.size_mib} MiB in {work}", flush=True)
        make_source(work / "source.bin", args.size_mib)
        run_op(work, "setup", env)
        results: dict[str, list[dict[str, float]]] = {op: [] for op, _, _ in OPS}
        for rnd in range(1, args.rounds + 1):
            for op, label, _ in OPS:
                reset_between(work, op)
                r = run_op(work, op, env)
                results[op].append(r)
                print(
                    f"round {rnd} {label:28s} {r['seconds']:7.2f} s "
                    f"{args.size_mib / r['seconds']:8.0f} MiB/s  rss {r['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
        table = report(args.size_mib, args.rounds, results)
        print(table)
        if not args.no_doc:
            body = "## Encrypted blob store\n\n" + started + "\n" + table
            cmd = f"python bench/blobstore.py --size-mib {args.size_mib} --rounds {args.rounds}"
            block = results_block(summary_results(args.size_mib, results))
            write_section("blobstore", body + f"\n\n{block}\n\nCommand: `{cmd}`")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
