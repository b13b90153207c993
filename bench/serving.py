# ruff: noqa: RUF001  (the section uses typographic signs: times, en dash)
"""Benchmark: the prediction gateway's full path against a bare FastAPI endpoint (issue 12).

One run, one scikit-learn credit model (Bastion's credit demo data, shipped in the
package; trained here by ``ws.lab.train``, signed, carded, passed by the release gate),
three servers up side by side on loopback:

(a) a bare FastAPI + uvicorn endpoint calling ``model.predict`` in process
    (``bench/_serving_bare.py``, the very estimator file Bastion verified and staged);
(b) ``mlflow models serve`` on the same estimator, if MLflow is installed in the side
    venv ``/work/bench-venvs/mlflow`` (``--mlflow-venv``); otherwise the section says so;
(c) a real ``bastion serve``: bearer token, request gate, rate limits (set high enough
    not to throttle), ``predict`` authorized and audited, validation against the data
    contract, the bubblewrap-sandboxed worker (adaptive micro-batching), the response
    policy, the prediction log.

Load comes from ``bench/_serving_load.py`` in its own process: closed loop, keep-alive
connections, warm-up then a fixed duration, at each concurrency (16 and 64), systems
interleaved at each level so machine load hits all alike.  Also measured: gateway and
worker memory with 1, 2 and 4 endpoints deployed, a rollback under load (no request may
fail), and a canary that returns garbage (if canary releases are in this tree).

    python bench/serving.py [--duration 10] [--warmup 3] [--concurrency 16,64] [--no-doc]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collect import results_block

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
BASTION = Path(sys.executable).parent / "bastion"
P = "default"
LR_SPEC = """\
label: Status
estimator: logistic_regression
sensitive: [Age]
params: {C: 1.0, max_iter: 300}
seed: 7
"""
GATE_POLICY = """\
approvals:
  required: {minimal: 1, limited: 1, high: 2}
  valid_days: 90
waivers:
  max_days: 30
thresholds:
  min_accuracy: 0.6
rules:
  - name: signature
    description: the artifact's signature verifies with the project's trusted key
    expr: facts.signature.valid
  - name: scan
    description: the malicious-serialization scan found nothing
    expr: facts.scan.clean
  - name: training_data
    description: every training dataset version is accepted and its lineage verifies
    expr: facts.datasets.count > 0 && facts.datasets.all_accepted && facts.datasets.lineage_verified
"""
CARD = """\
intended_use: Rank credit applications for manual review.
out_of_scope_uses: [Automated refusal of credit]
owners: [bench@example.com]
risk_tier: limited
limitations: [One bureau only]
"""
CLIENTS = 16  # principals (one token each); connections are spread over them


# -- the workspace ------------------------------------------------------------------------
@dataclass
class Setup:
    ws: Any
    admin: Any
    key: str
    v1: str
    v2: str
    rows: Path  # JSON list of unseen rows
    tokens: list[str]
    estimator: Path  # the staged, verified joblib file of v2
    garbage: str  # a version that passes the gate and always answers "bad"


def build(work: Path, database_url: str | None) -> Setup:
    from bastion.core.access.values import PrincipalKind
    from bastion.core.crypto.keyring import MasterKeySource
    from bastion.data_security.service import IngestRequest
    from bastion.demo.canary_steps import always_bad_version
    from bastion.demo.data_steps import credit_data
    from bastion.serving.artifact import stage_artifact
    from bastion.workspace import Bastion

    key = base64.b64encode(os.urandom(32)).decode()
    ws, token = Bastion.init(work / "ws", MasterKeySource.from_env_key(key),
                             database_url=database_url)
    admin = ws.access.authenticate(token.secret)
    full = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=3)
    ws.datasets.register_source(admin, P, "bureau", datasets=("credit",))
    path = work / "train.csv"
    full.head(800).write_csv(path)
    res = ws.datasets.ingest(admin, IngestRequest(
        P, "credit", path, "bureau", hashlib.sha256(path.read_bytes()).hexdigest(),
        label="Status", sensitive=("Age",), positive_label="good"))
    assert res.accepted, "the clean credit batch must be accepted"
    v1 = ws.lab.train(admin, P, "scorer", LR_SPEC, res.version.ref)
    v2 = ws.lab.train(admin, P, "scorer", LR_SPEC.replace("C: 1.0", "C: 0.5"),
                      res.version.ref)
    ws.gate.set_policy(admin, P, GATE_POLICY)
    for v in (v1, v2):
        ws.cards.edit(admin, P, v.ref, CARD, source="card.yaml")
    features = list(json.loads(v1.training_run or "{}")["features"])
    rows = work / "rows.json"
    rows.write_text(json.dumps(full.slice(800).select(features).to_dicts()))
    tokens = []
    for i in range(CLIENTS):
        name = f"client{i}"
        ws.access.create_principal(admin, name, PrincipalKind.USER)
        ws.access.bind(admin, name, "consumer", P)
        tokens.append(ws.access.create_token(admin, name).secret)
    staged = stage_artifact(ws.models, P, v2.ref, work / "bare")
    garbage = always_bad_version(ws, admin, v1, work / "garbage")  # the demo's broken hotfix
    ws.cards.edit(admin, P, garbage.ref, CARD, source="card.yaml")
    return Setup(ws, admin, key, v1.ref, v2.ref, rows, tokens, staged.folder / staged.model_file,
                 garbage.ref)


# -- servers ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(cmd: list[str], log: Path, env: dict[str, str] | None = None,
            ) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_ready(url: str, body: dict[str, object], proc: subprocess.Popen[bytes], log: Path,
               headers: dict[str, str] | None = None, limit: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            r = httpx.post(url, json=body, headers=headers or {}, timeout=30)
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server not ready after {limit} s:\n{log.read_text()[-3000:]}")


def serve_env(s: Setup, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env.update({
        "BASTION_HOME": str(Path(s.ws.home)), "BASTION_MASTER_KEY": s.key,
        # high enough never to throttle the bench (the limiter still runs on every request)
        "BASTION_SERVING_RATE_PRINCIPAL": "1000000/second",
        "BASTION_SERVING_RATE_ENDPOINT": "1000000/second",
        "BASTION_SERVING_WORKER_MEMORY_MIB": "1024",
        **(extra or {}),
    })
    return env


def load(url: str, rows: Path, concurrency: int, duration: float, warmup: float,
         tokens: list[str] | None = None, wrap: str = "row", models: bool = False,
         pid: int | None = None) -> dict[str, object]:
    cmd = [sys.executable, str(BENCH / "_serving_load.py"), "--url", url, "--rows", str(rows),
           "--concurrency", str(concurrency), "--duration", str(duration),
           "--warmup", str(warmup), "--wrap", wrap]
    for t in tokens or []:
        cmd += ["--token", t]
    if models:
        cmd.append("--models")
    before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    res = dict(json.loads(out.stdout))
    if pid:  # the server's CPU (its process tree: gateway and workers) per request
        res["cpu_ms"] = (cpu_seconds(pid) - before) * 1000 / max(1, int(res["total"]))
    return res


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every process under it."""
    kids, total, todo = _children(), 0.0, [pid]
    while todo:
        p = todo.pop()
        todo += kids.get(p, [])
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


# -- memory ---------------------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    return kids


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def worker_rss(gateway_pid: int) -> list[float]:
    """RSS of each sandboxed model worker under the gateway (the python inside bwrap)."""
    kids, found, todo = _children(), [], [gateway_pid]
    while todo:
        pid = todo.pop()
        for c in kids.get(pid, []):
            todo.append(c)
            try:
                cmdline = Path(f"/proc/{c}/cmdline").read_bytes()
            except OSError:
                continue
            argv0 = cmdline.split(b"\0", 1)[0].rsplit(b"/", 1)[-1]
            if b"bastion.serving.worker" in cmdline and argv0 != b"bwrap":
                found.append(rss_mib(c))
    return found


def memory(s: Setup, gateway_pid: int, url: str, row: dict[str, object]) -> list[dict[str, float]]:
    """Gateway and worker RSS after 1, 2 and 4 endpoints have served their first request."""
    import httpx

    out = []
    head = {"Authorization": f"Bearer {s.tokens[0]}"}
    for count, names in ((1, ["scoring"]), (2, ["m2"]), (4, ["m3", "m4"])):
        for name in names:
            r = httpx.post(f"{url}/v1/endpoints/{name}/predict", json={"row": row},
                           headers=head, timeout=60)
            assert r.status_code == 200, r.text
        time.sleep(1.5)  # let the new workers settle
        workers = worker_rss(gateway_pid)
        out.append({"endpoints": count, "gateway_mib": rss_mib(gateway_pid),
                    "workers": len(workers), "worker_mib": sum(workers) / max(1, len(workers))})
    return out


# -- MLflow (b), in its side venv --------------------------------------------------------------
def mlflow_cmd(venv: Path, estimator: Path, work: Path, port: int) -> list[str] | None:
    python = venv / "bin" / "python"
    if not (venv / "bin" / "mlflow").exists():
        return None
    model_dir = work / "mlflow-model"
    saved = subprocess.run([str(python), "-c",
                            "import sys, joblib, mlflow.sklearn; "
                            "mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], "
                            "skops_trusted_types=['numpy.dtype'])",
                            str(estimator), str(model_dir)], capture_output=True, text=True)
    if saved.returncode != 0:
        print(f"MLflow could not save the model, (b) skipped:\n{saved.stderr[-2000:]}")
        return None
    return [str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir),
            "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1"]


# -- rollback under load ------------------------------------------------------------------------
def rollback_under_load(s: Setup, url: str, duration: float) -> dict[str, object]:
    """Concurrency 16 on the endpoint; ``rollback`` (v2 -> v1) a quarter of the way in
    (the gateway follows within its 1 s refresh, starting the new worker meanwhile)."""
    cmd = [sys.executable, str(BENCH / "_serving_load.py"), "--url", url, "--rows",
           str(s.rows), "--concurrency", "16", "--duration", str(duration), "--warmup", "1",
           "--models", *[x for t in s.tokens for x in ("--token", t)]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    time.sleep(1 + duration / 4)
    ws = s.ws
    ws.deployments.rollback(s.admin, P, "scoring")
    stdout, _ = proc.communicate(timeout=duration + 120)
    res = dict(json.loads(stdout))
    seq = [(float(t), str(m)) for t, m in res["sequence"]]
    to_new = [t for t, m in seq if m == s.v1]
    # requests already in flight on the old worker when the new one took over finish after
    # the first answers of the new one (completion order across 16 connections): the
    # overlap is the time from the first new answer to the last return to the new one
    res["overlap_ms"] = (to_new[-1] - to_new[0]) * 1000 if to_new else float("nan")
    res["switched"] = bool(to_new) and seq[0][1] == s.v2 and seq[-1][1] == s.v1 and \
        res["overlap_ms"] <= 1000
    return res


# -- a garbage canary ---------------------------------------------------------------------------
def garbage_canary(s: Setup, base: str, weight: int, duration: float) -> dict[str, object]:
    """v2 stable on endpoint ``canary``, the garbage version as its canary at ``weight`` %;
    load at concurrency 16; how many requests the canary answered before the automatic
    rollback (counted by the clients, from the model named in each answer)."""
    from bastion.serving.canary_values import CanaryPlan, CanaryState

    s.ws.deployments.deploy(s.admin, P, s.v2, "canary")
    s.ws.deployments.deploy(s.admin, P, s.garbage, "canary", canary=CanaryPlan(weight))
    url = f"{base}/v1/endpoints/canary/predict"
    cmd = [sys.executable, str(BENCH / "_serving_load.py"), "--url", url, "--rows",
           str(s.rows), "--concurrency", "16", "--duration", str(duration), "--warmup", "0",
           "--models", *[x for t in s.tokens for x in ("--token", t)]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    ended: dict[str, object] = {}
    while proc.poll() is None and not ended:
        canary = s.ws.deployments.status(s.admin, P, "canary").canary
        if canary is not None and canary.state is not CanaryState.RUNNING:
            ended = {"state": canary.state.value, "canary_requests": canary.canary_requests,
                     "reason": canary.end_reason or ""}
        time.sleep(0.25)
    stdout, _ = proc.communicate(timeout=duration + 120)
    res = dict(json.loads(stdout))
    models = res["models"]
    assert isinstance(models, dict)
    res["canary_answers"] = int(models.get(s.garbage, 0))
    res.update(ended or {"state": "running", "canary_requests": -1, "reason": ""})
    return res


# -- the run --------------------------------------------------------------------------------------
def fmt(r: dict[str, object]) -> str:
    errors = r["errors"]
    assert isinstance(errors, dict)
    err = sum(int(v) for v in errors.values())
    detail = f" ({', '.join(f'{k}: {v}' for k, v in errors.items())})" if err else ""
    return (f"{r['throughput']:,.0f} req/s | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {err}{detail}")


def show(r: dict[str, object]) -> str:
    return fmt(r) + (f" | {float(r['cpu_ms']):.2f} ms CPU/request" if "cpu_ms" in r else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--concurrency", default="16,64")
    ap.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite)")
    ap.add_argument("--mlflow-venv", type=Path, default=Path("/work/bench-venvs/mlflow"))
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bastion-bench-serving-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        s = build(work, args.database_url)
        for name in ("scoring", "m2", "m3", "m4"):
            if name == "scoring":
                s.ws.deployments.deploy(s.admin, P, s.v1, name)
            s.ws.deployments.deploy(s.admin, P, s.v2, name)
        print(f"workspace, 2 trained versions, 4 endpoints in {time.perf_counter() - t0:.0f} s")
        row = json.loads(s.rows.read_text())[0]
        results: dict[str, dict[int, dict[str, object]]] = {"a": {}, "b": {}, "c": {}}
        ports = {k: free_port() for k in "abc"}
        urls = {"a": f"http://127.0.0.1:{ports['a']}/predict",
                "b": f"http://127.0.0.1:{ports['b']}/invocations",
                "c": f"http://127.0.0.1:{ports['c']}/v1/endpoints/scoring/predict"}
        mlflow = mlflow_cmd(args.mlflow_venv, s.estimator, work, ports["b"])
        bare = [sys.executable, str(BENCH / "_serving_bare.py"), "--model", str(s.estimator),
                "--port", str(ports["a"])]
        serve = [str(BASTION), "serve", "--host", "127.0.0.1", "--port", str(ports["c"])]
        auth = {"Authorization": f"Bearer {s.tokens[0]}"}
        with process(bare, work / "a.log") as pa, \
                process(serve, work / "c.log", serve_env(s)) as pc, \
                (process(mlflow, work / "b.log", venv_env(args.mlflow_venv)) if mlflow
                 else _nothing()) as pb:
            wait_ready(urls["a"], {"row": row}, pa, work / "a.log")
            base = f"http://127.0.0.1:{ports['c']}"
            wait_ready(urls["c"], {"row": row}, pc, work / "c.log", auth)
            mem = memory(s, pc.pid, base, row)
            if pb is not None:
                wait_ready(urls["b"], {"dataframe_records": [row]}, pb, work / "b.log")
            systems = ["a", "b", "c"] if pb is not None else ["a", "c"]
            pids = {"a": pa.pid, "b": pb.pid if pb is not None else 0, "c": pc.pid}
            for c in levels:
                for k in systems:
                    r = load(urls[k], s.rows, c, args.duration, args.warmup,
                             tokens=s.tokens if k == "c" else None,
                             wrap="mlflow" if k == "b" else "row", pid=pids[k])
                    results[k][c] = r
                    print(f"({k}) c={c}: {show(r)}", flush=True)
            rb = rollback_under_load(s, urls["c"], max(12.0, args.duration))
            print(f"rollback under load: {fmt(rb)}; models {rb['sequence']}", flush=True)
            canary = garbage_canary(s, base, 20, max(25.0, 2 * args.duration))
            print(f"garbage canary: {canary['state']} after {canary['canary_answers']} canary "
                  f"answers ({canary['reason']})", flush=True)
            logged = _logged(s)
        load_after = os.getloadavg()
        s.ws.close()
    report(args, levels, results, mem, rb, canary, logged, load_before, load_after,
           mlflow_note(args.mlflow_venv, mlflow is not None))


def venv_env(venv: Path) -> dict[str, str]:
    """The environment of a process of the side venv (its ``uvicorn`` first on PATH)."""
    return {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _logged(s: Setup) -> int:
    from bastion.serving._adapters.sql_repo import SqlDeploymentRepository

    time.sleep(2)  # the gateway flushes its prediction log every second
    repo = SqlDeploymentRepository(s.ws.engine)
    return len(repo.predictions(P, "scoring", limit=10_000_000))


def mlflow_note(venv: Path, ran: bool) -> str:
    if ran:
        version = subprocess.run([str(venv / "bin" / "python"), "-c",
                                  "import mlflow; print(mlflow.__version__)"],
                                 capture_output=True, text=True, check=False).stdout.strip()
        return (f"(b) is `mlflow models serve` (MLflow {version}, `--env-manager local`, one "
                "worker) on the same estimator saved with `mlflow.sklearn.save_model`.")
    return ("(b) was not run: MLflow is not installed in the side venv "
            f"`{venv}` (`pip install mlflow` there to include it).")


def verdict(tput: float, p99: float, clients: int) -> str:
    return (
        f"Throughput target {'met' if tput >= 2 else 'not met'}; p99 target "
        f"{'met' if p99 <= 0.2 else 'not met'}. (a) predicts each request alone (a "
        "one-row `predict` costs milliseconds); (c)'s sandboxed worker predicts the rows of "
        "concurrent requests in one call (adaptive micro-batching), so its server CPU per "
        "request (last column: every process of the server, workers included) is lower "
        "although it also authenticates, authorizes with a durable audit entry, validates, "
        "scores and logs. In a closed loop each of the "
        f"{clients} clients always has one request waiting, so the mean latency is about "
        f"{clients} / throughput (Little's law) for every system: a p99 a fifth of (a)'s "
        "needs several times its throughput *and* a tail as tight. Two things give (c) "
        "its tail: a request the access cache allows is read, validated and predicted while "
        "its audited decision is being group-committed (the answer waits for the commit, "
        "not the other way round), and `bastion serve` and its workers freeze their "
        "long-lived heap (`gc.freeze`), whose full cyclic-GC passes otherwise stall every "
        "request in flight. Absolute figures move with the "
        "machine's load; the ratios are measured side by side in one run.")


def report(args: argparse.Namespace, levels: list[int],
           results: dict[str, dict[int, dict[str, object]]], mem: list[dict[str, float]],
           rb: dict[str, object], canary: dict[str, object], logged: int,
           load_before: tuple[float, float, float],
           load_after: tuple[float, float, float], note_b: str) -> None:
    names = {"a": "(a) bare FastAPI + uvicorn, `model.predict` in process",
             "b": "(b) `mlflow models serve`",
             "c": "(c) `bastion serve`, full path"}
    table = ["| system | clients | throughput | p50 ms | p95 ms | p99 ms | errors | "
             "server CPU per request |",
             "|---|---|---|---|---|---|---|---|"]
    for c in levels:
        for k in "abc":
            if c in results[k]:
                r = results[k][c]
                table.append(f"| {names[k]} | {c} | {fmt(r)} | {float(r['cpu_ms']):.2f} ms |")
    hi = max(levels)
    a, c = results["a"][hi], results["c"][hi]
    tput = float(c["throughput"]) / float(a["throughput"])
    p99 = float(c["p99_ms"]) / float(a["p99_ms"])
    ratios = [f"At {hi} clients (c)/(a): throughput **{tput:.2f}×** (target ≥ 2×), p99 "
              f"**{p99:.2f}×** (target ≤ 0.2×)."]
    for lo in levels[:-1]:
        a_, c_ = results["a"][lo], results["c"][lo]
        t_lo = float(c_["throughput"]) / float(a_["throughput"])
        p_lo = float(c_["p99_ms"]) / float(a_["p99_ms"])
        ratios.append(f"At {lo} clients: throughput {t_lo:.2f}×, p99 {p_lo:.2f}×.")
    print("\n".join(ratios))
    seq = rb["sequence"]
    assert isinstance(seq, list)
    s_first, s_last = (seq[0][1], seq[-1][1]) if seq else ("?", "?")
    rb_errors = rb["errors"]
    assert isinstance(rb_errors, dict)
    rb_failed = sum(int(v) for v in rb_errors.values())
    per_model = (mem[-1]["gateway_mib"] - mem[0]["gateway_mib"]) / 3
    mem_rows = [f"| {int(m['endpoints'])} | {m['gateway_mib']:.0f} | {int(m['workers'])} | "
                f"{m['worker_mib']:.0f} |" for m in mem]
    values: dict[str, float | int | str] = {
        "serving.clients": hi,
        "serving.bare_rps": round(float(a["throughput"])),
        "serving.bastion_rps": round(float(c["throughput"])),
        "serving.bare_p99_ms": round(float(a["p99_ms"]), 1),
        "serving.bastion_p99_ms": round(float(c["p99_ms"]), 1),
        "serving.bastion_errors": sum(int(v) for v in c["errors"].values()),
        "serving.rollback_requests": int(rb["ok"]) + rb_failed,
        "serving.rollback_failed": rb_failed,
        "serving.rollback_switched": int(bool(rb["switched"])),
        "serving.gateway_mib_1": round(mem[0]["gateway_mib"]),
        "serving.gateway_mib_per_model": round(per_model, 1),
        "serving.worker_mib": round(mem[-1]["worker_mib"]),
        "serving.canary_rolled_back": int(canary["state"] == "rolled_back"),
        "serving.canary_answers": int(canary["canary_answers"]),
    }
    text = "\n".join([
        "## Prediction gateway (issue 12)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs "
        f"(load average {load_before[0]:.1f} before the run, {load_after[0]:.1f} after), "
        f"Python {platform.python_version()}; `bench/serving.py --duration {args.duration:g} "
        f"--warmup {args.warmup:g}`, {'PostgreSQL' if args.database_url else 'SQLite'} "
        "workspace. One logistic-regression credit scorer (the demo's credit data, trained "
        "by `lab train`, signed, passed by the release gate); all servers up side by side on "
        "loopback, the load generator (`bench/_serving_load.py`: raw HTTP/1.1 keep-alive, "
        "closed loop, one row per request, the unseen rows cycled) in its own process, "
        "systems interleaved at each concurrency. (c) uses 16 principals with their own "
        "tokens, rate limits set to 1,000,000/s (the limiter still runs), the default "
        "adversarial policy, and logs every prediction; (a) only calls `model.predict` "
        "(no scores, no auth, no validation, no log).",
        "",
        note_b,
        "",
        *table,
        "",
        *ratios,
        "",
        verdict(tput, p99, hi),
        "",
        f"Rollback under load (16 clients, `rollback` a quarter of the way in): "
        f"{int(rb['ok'])} answered, {rb_failed} failed; answers named "
        f"first {s_first} then {s_last}; the last answers of the old worker (requests in "
        f"flight at the switch) came within {float(rb['overlap_ms']):.0f} ms of the first "
        f"answer of the new one ({'a clean switch' if rb['switched'] else 'NOT a clean switch'}"
        "). "
        f"Predictions in the log for the endpoint after the run: {logged:,}.",
        "",
        f"Garbage canary (a version that passes the gate and always answers \"bad\", "
        f"deployed with `--canary 20` beside v2, 16 clients): {canary['state']}; it answered "
        f"{canary['canary_answers']} requests before the stable version served alone "
        f"(the analysis counted {canary['canary_requests']} canary requests; reason: "
        f"{str(canary['reason'])[:200]}).",
        "",
        "Memory (RSS, MiB) after each endpoint answered its first request:",
        "",
        "| endpoints | gateway | workers | RSS per worker |",
        "|---|---|---|---|",
        *mem_rows,
        "",
        f"Each further deployed model adds about {per_model:.1f} MiB to the gateway and one "
        f"sandboxed worker of about {mem[-1]['worker_mib']:.0f} MiB.",
        "",
        results_block(values),
        "",
    ])
    if args.no_doc:
        print(text)
        return
    (ROOT / "docs" / "bench" / "serving.md").write_text(text)
    print("wrote docs/bench/serving.md")


if __name__ == "__main__":
    main()
