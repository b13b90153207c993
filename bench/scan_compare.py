"""Compare Bastion's model scanner with picklescan 1.0.5 and modelscan 0.8.8.

Runs the three scanners on the same files: the malicious corpus
(tests/assets/malicious, one artifact per published bypass) and a benign set
generated here (sklearn, joblib, xgboost, lightgbm, skl2onnx, torch,
safetensors).  picklescan and modelscan run as CLIs from a separate venv:

    python3 -m venv /work/bench-venvs/scanners
    /work/bench-venvs/scanners/bin/pip install picklescan==1.0.5 modelscan==0.8.8
    BASTION_SCANNERS_VENV=/work/bench-venvs/scanners .venv/bin/python bench/scan_compare.py

Writes the table into docs/bench/scanning.md (section "compare").
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from collect import results_block

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "assets" / "malicious"
DOC = ROOT / "docs" / "bench" / "scanning.md"


def machine() -> str:
    mem = ""
    with open("/proc/meminfo") as fh:
        mem = fh.readline().split(":")[1].strip()
    return (f"`{' '.join(os.uname())}`, nproc={os.cpu_count()}, MemTotal={mem}, "
            f"Python {platform.python_version()}")


def write_section(name: str, body: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = DOC.read_text() if DOC.exists() else "# Model scanner benchmarks\n\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text,
                      flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


def make_benign(folder: Path) -> list[Path]:
    import joblib
    import lightgbm
    import numpy as np
    import torch
    import xgboost
    from safetensors.numpy import save_file
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.random((200, 6))
    y = (x[:, 0] + x[:, 1] > 1).astype(int)
    pipe = Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]).fit(x, y)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    xgb = xgboost.XGBClassifier(n_estimators=5).fit(x, y)
    lgb = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, y)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    out = {
        "sklearn_pipeline.pkl": lambda p: p.write_bytes(pickle.dumps(pipe, protocol=4)),
        "sklearn_forest_p2.pkl": lambda p: p.write_bytes(pickle.dumps(forest, protocol=2)),
        "sklearn_forest.joblib": lambda p: joblib.dump(forest, p),
        "sklearn_pipeline_zlib.joblib": lambda p: joblib.dump(pipe, p, compress=3),
        "sklearn_forest_lzma.joblib": lambda p: joblib.dump(forest, p, compress="lzma"),
        "xgboost.json": lambda p: xgb.save_model(p),
        "xgboost.ubj": lambda p: xgb.save_model(p),
        "xgboost_sklearn.joblib": lambda p: joblib.dump(xgb, p),
        "lightgbm.txt": lambda p: lgb.booster_.save_model(p),
        "lightgbm_sklearn.pkl": lambda p: p.write_bytes(pickle.dumps(lgb)),
        "skl2onnx_pipeline.onnx": lambda p: p.write_bytes(
            to_onnx(pipe, x[:1].astype(np.float32)).SerializeToString()),
        "torch_state_dict.pt": lambda p: torch.save(net.state_dict(), p),
        "torch_full_checkpoint.pth": lambda p: torch.save(
            {"model": net, "optim": torch.optim.SGD(net.parameters(), lr=0.1).state_dict(),
             "epoch": 7}, p),
        "torch_legacy_state_dict.pt": lambda p: torch.save(
            net.state_dict(), p, _use_new_zipfile_serialization=False),
        "weights.safetensors": lambda p: save_file(
            {"w": rng.random((8, 8)).astype(np.float32)}, p),
        "weights.npy": lambda p: np.save(p, rng.random(16)),
    }
    paths = []
    for name, make in out.items():
        path = folder / name
        make(path)
        paths.append(path)
    return paths


def run_picklescan(venv: Path, path: Path) -> str:
    proc = subprocess.run([str(venv / "bin" / "picklescan"), "--path", str(path)],
                          capture_output=True, text=True, timeout=600)
    text = proc.stdout + proc.stderr
    infected = re.search(r"Infected files: (\d+)", text)
    if infected and int(infected.group(1)) > 0:
        return "flagged"
    if "ERROR" in text or "Traceback" in text or proc.returncode not in (0, 1):
        return "error"
    scanned = re.search(r"Scanned files: (\d+)", text)
    return "clean" if scanned and int(scanned.group(1)) > 0 else "skipped"


def run_modelscan(venv: Path, path: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "r.json"
        proc = subprocess.run([str(venv / "bin" / "modelscan"), "-p", str(path), "-r", "json",
                               "-o", str(report)], capture_output=True, text=True, timeout=600)
        if not report.exists():
            return "error" if proc.returncode not in (0, 3) else "skipped"
        data = json.loads(report.read_text())
    if data["summary"]["total_issues"] > 0:
        return "flagged"
    if data.get("errors"):
        return "error"
    scanned = data["summary"].get("scanned", {}).get("total_scanned", 0)
    return "clean" if scanned else "skipped"


def run_bastion(path: Path) -> str:
    from bastion.model_security.scanning import scan_path

    report = scan_path(path)
    if report.verdict.value == "malicious":
        return "flagged"
    return "error" if report.verdict.value == "error" else "clean"


def cell(result: str, malicious: bool) -> str:
    if malicious:
        return {"flagged": "detected", "error": "error only", "clean": "**MISSED**",
                "skipped": "**MISSED** (skipped)"}[result]
    return {"flagged": "**false positive**", "error": "**refused (error)**", "clean": "ok",
            "skipped": "ok (skipped)"}[result]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scanners-venv", type=Path, default=Path(os.environ.get(
        "BASTION_SCANNERS_VENV", "/work/bench-venvs/scanners")))
    args = parser.parse_args()
    venv: Path = args.scanners_venv
    for tool in ("picklescan", "modelscan"):
        if not (venv / "bin" / tool).exists():
            sys.exit(f"{tool} not found in {venv}/bin: create the venv with\n"
                     f"  python3 -m venv {venv} && {venv}/bin/pip install picklescan==1.0.5 "
                     "modelscan==0.8.8\nor pass --scanners-venv / BASTION_SCANNERS_VENV")
    manifest = json.loads((CORPUS / "MANIFEST.json").read_text())
    rows: list[tuple[str, bool, dict[str, str]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        files = [(CORPUS / e["file"], True) for e in manifest]
        files += [(p, False) for p in make_benign(Path(tmp))]
        started = time.perf_counter()
        for path, malicious in files:
            results = {"bastion": run_bastion(path), "picklescan": run_picklescan(venv, path),
                       "modelscan": run_modelscan(venv, path)}
            rows.append((path.name, malicious, results))
            print(f"{path.name:55s} " + " ".join(f"{k}={v:8s}" for k, v in results.items()))
        elapsed = time.perf_counter() - started
    tools = ("bastion", "picklescan", "modelscan")
    n_mal = sum(1 for _, m, _ in rows if m)
    n_ben = len(rows) - n_mal
    lines = ["## Detection: Bastion vs picklescan 1.0.5 vs modelscan 0.8.8", "",
             f"Machine: {machine()}. Run time {elapsed:.0f} s "
             "(picklescan and modelscan as CLIs, one process per file).", "",
             "`detected` = the tool reported an issue; `error only` = the tool failed "
             "without reporting an issue (Bastion counts its own errors as refusals; "
             "for the other tools an error is not a detection).", "",
             "| file | kind | Bastion | picklescan | modelscan |", "|---|---|---|---|---|"]
    for name, malicious, res in rows:
        lines.append(f"| `{name}` | {'malicious' if malicious else 'benign'} | "
                     + " | ".join(cell(res[t], malicious) for t in tools) + " |")
    lines += ["", "| totals | Bastion | picklescan | modelscan |", "|---|---|---|---|"]
    for label, pred in (
        (f"malicious detected (of {n_mal})", lambda r, m: m and r == "flagged"),
        (f"malicious refused incl. errors (of {n_mal})",
         lambda r, m: m and r in ("flagged", "error")),
        (f"malicious missed (of {n_mal})", lambda r, m: m and r in ("clean", "skipped")),
        (f"benign false positives (of {n_ben})", lambda r, m: not m and r == "flagged"),
        (f"benign refused incl. errors (of {n_ben})",
         lambda r, m: not m and r in ("flagged", "error")),
    ):
        counts = [sum(1 for _, m, res in rows if pred(res[t], m)) for t in tools]
        lines.append(f"| {label} | " + " | ".join(map(str, counts)) + " |")
    def count(tool: str, malicious: bool, outcomes: tuple[str, ...]) -> int:
        return sum(1 for _, m, res in rows if m is malicious and res[tool] in outcomes)

    lines += ["", results_block({
        "scan.malicious": n_mal,
        "scan.malicious_detected": count("bastion", True, ("flagged",)),
        "scan.benign": n_ben,
        "scan.benign_refused": count("bastion", False, ("flagged", "error")),
        "scan.picklescan_detected": count("picklescan", True, ("flagged",)),
        "scan.modelscan_detected": count("modelscan", True, ("flagged",)),
    })]
    body = "\n".join(lines)
    print(body)
    write_section("compare", body)


if __name__ == "__main__":
    main()
