"""End to end through the installed ``bastion`` command: model register / list /
show / verify / scan / evaluate, ``bastion train`` and ``bastion monitor drift``.

One CLI workspace per module (init and the credit data ingestion run once);
every command is a real subprocess.  Exit codes: 2 input, 3 access,
4 integrity, 5 policy (and drift found).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import joblib
import numpy as np
import polars as pl
import pytest

from bastion.core.access.values import PrincipalKind
from bastion.core.crypto.keyring import MasterKeySource
from bastion.demo.data_steps import credit_data
from bastion.workspace import Bastion

CORPUS = Path(__file__).resolve().parents[1] / "assets" / "malicious"


def _shared_conftest() -> ModuleType:
    """``tests/conftest.py`` loaded by path: another folder's ``conftest.py`` may
    shadow the module name ``conftest`` depending on collection order."""
    name = "_bastion_tests_shared_conftest"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


_shared = _shared_conftest()

if TYPE_CHECKING:
    from conftest import CLI, Result
else:
    CLI, Result = _shared.CLI, _shared.Result

SPEC = """\
label: Status
estimator: logistic_regression
sensitive: [Age]
params: {C: 1.0, max_iter: 500}
seed: 7
"""


@dataclass
class Env:
    cli: CLI
    work: Path
    holdout: pl.DataFrame

    def run(self, *args: str, token: str | None = None) -> Result:
        return self.cli.run(*args, token=token)

    def ok(self, *args: str) -> Result:
        r = self.run(*args)
        assert r.returncode == 0, f"bastion {' '.join(args)} -> {r.returncode}\n{r.output}"
        return r


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("cli-models")
    e = Env(CLI(work / "ws", base64.b64encode(os.urandom(32)).decode()), work, pl.DataFrame())
    e.ok("init")
    e.ok("data", "sources", "register", "bureau", "--dataset", "credit")
    full = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=5)
    train = work / "train.csv"
    full.head(1200).write_csv(train)
    e.ok("data", "ingest", str(train), "-d", "credit", "-s", "bureau", "--sha256", _sha(train),
         "--label", "Status", "--sensitive", "Age", "--positive-label", "good")  # fmt: skip
    e.holdout = full.slice(1200, 400)
    # credit@2: the declared checksum does not match the bytes, so it is quarantined
    batch = work / "batch.csv"
    full.slice(1600, 200).write_csv(batch)
    q = e.run("data", "ingest", str(batch), "-d", "credit", "-s", "bureau", "--sha256", "0" * 64)
    assert q.returncode != 0 and "quarantined" in q.output.lower(), q.output
    yield e


def _model_file(d: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    x = rng.normal(size=(150, 3))
    d.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), d / "model.joblib")
    return d / "model.joblib"


def test_cli_model_register_list_show_verify(env: Env) -> None:
    path = _model_file(env.work / "m1")
    r = env.ok("model", "register", "scorer", str(path), "--framework", "sklearn",
               "--trained-on", "credit@1")  # fmt: skip
    assert re.search(r"registered scorer@1 \(sklearn, 1 files\)", r.stdout), r.output
    assert "signed by model-signing:default#" in r.stdout

    shown = json.loads(env.ok("model", "show", "scorer@1").stdout)
    assert shown["files"] == [
        {"path": "model.joblib", "sha256": _sha(path), "size": path.stat().st_size}
    ]
    assert shown["stage"] == "draft" and shown["scan"]["verdict"] == "safe"
    assert shown["trained_on"][0].startswith("default/credit@1#")
    assert "verified scorer@1: 1 files" in env.ok("model", "verify", "scorer@1").stdout

    # a verified copy passes; a tampered copy is refused with exit 4 (integrity)
    copy = env.work / "copy"
    copy.mkdir()
    shutil.copy(path, copy / "model.joblib")
    env.ok("model", "verify", "scorer@1", "--path", str(copy))
    data = bytearray((copy / "model.joblib").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.joblib").write_bytes(bytes(data))
    bad = env.run("model", "verify", "scorer@1", "--path", str(copy))
    assert bad.returncode == 4, bad.output
    assert "artifact_mismatch" in bad.stderr and "does not match its signature" in bad.stderr


def test_cli_malicious_pickle_scan_and_register_refused(env: Env) -> None:
    evil = CORPUS / "os_system_reduce.pkl"
    scan = env.run("model", "scan", str(evil), "--json")
    assert scan.returncode == 4, scan.output
    assert json.loads(scan.stdout)["verdict"] == "malicious"
    r = env.run("model", "register", "evil", str(evil), "--framework", "sklearn")
    assert r.returncode != 0 and "malicious_artifact" in r.stderr, r.output
    assert "BASTION_CANARY" not in r.output


def test_cli_trained_on_quarantined_dataset_refused(env: Env) -> None:
    r = env.run("model", "register", "poisoned", str(_model_file(env.work / "m2")),
                "--framework", "sklearn", "--trained-on", "credit@2")  # fmt: skip
    assert r.returncode == 5, r.output
    assert "dataset_not_usable" in r.stderr and "quarantined" in r.stderr


def _spec(env: Env, text: str = SPEC, name: str = "spec.yaml") -> Path:
    path = env.work / name
    path.write_text(text)
    return path


def test_cli_train_and_evaluate(env: Env) -> None:
    r = env.ok("train", str(_spec(env)), "--on", "credit@1", "--name", "lr-scorer")
    assert "trained and registered lr-scorer@1" in r.stdout and "accuracy" in r.stdout
    ev = env.ok("model", "evaluate", "lr-scorer@1", "--on", "credit@1", "--sensitive", "Age",
                "--immutable", "Home", "--sample", "30")  # fmt: skip
    rec = json.loads(ev.stdout)
    assert rec["model"] == "lr-scorer@1" and rec["dataset"] == "default/credit@1"
    assert rec["result"]["fairness"][0]["attribute"] == "Age"
    ran = {a["attack"] for a in rec["result"]["robustness"]["attacks"] if a["status"] == "ran"}
    assert {"fgsm", "pgd"} <= ran
    assert re.fullmatch(r"[0-9a-f]{64}", rec["statement_digest"])
    shown = json.loads(env.ok("model", "show", "lr-scorer@1").stdout)
    assert shown["training_run"]["spec"]["estimator"] == "logistic_regression"
    assert shown["training_run"]["data"][0]["dataset"] == "default/credit@1"
    assert [e["id"] for e in shown["evaluations"]] == [rec["id"]]

    bad = env.run("train", str(_spec(env, "label: Status\nestimator: magic\n", "bad.yaml")),
                  "--on", "credit@1", "--name", "bad")  # fmt: skip
    assert bad.returncode == 2 and "unknown estimator 'magic'" in bad.stderr, bad.output


def test_cli_monitor_drift_exit_codes_and_html(env: Env) -> None:
    shifted = env.holdout.with_columns(
        (pl.col("Income") * 1.8).alias("Income"), (pl.col("Amount") * 1.5).alias("Amount")
    )
    current = env.work / "live.csv"
    shifted.write_csv(current)
    html = env.work / "drift.html"
    r = env.run("monitor", "drift", "--reference", "credit@1", "--current", str(current),
                "--html", str(html))  # fmt: skip
    assert r.returncode == 5, r.output
    page = html.read_text()
    features = [c for c in env.holdout.columns if c != "Status"]
    assert page.count('<svg class="chart"') == len(features)
    for f in features:
        assert f'data-column="{f}"' in page
    assert "Income" in r.stdout and "Amount" in r.stdout

    calm = env.work / "calm.csv"
    env.holdout.write_csv(calm)
    quiet = env.run("monitor", "drift", "--reference", "credit@1", "--current", str(calm),
                    "--json")  # fmt: skip
    assert quiet.returncode == 0, quiet.output
    assert json.loads(quiet.stdout)["verdict"] == "no_drift"


def test_cli_consumer_cannot_register_or_verify(env: Env) -> None:
    master = MasterKeySource.from_env_key(env.cli.master_key_b64)
    ws = Bastion.open(env.cli.home, master)
    try:
        admin = ws.access.authenticate(ws.stored_token())
        ws.access.create_principal(admin, "carol", PrincipalKind.USER)
        ws.access.bind(admin, "carol", "consumer", "default")
        token = ws.access.create_token(admin, "carol").secret
    finally:
        ws.close()
    path = _model_file(env.work / "m3")
    r = env.run("model", "register", "x", str(path), "--framework", "sklearn", token=token)
    assert r.returncode == 3 and "forbidden" in r.stderr, r.output
    assert not (env.cli.home / "tmp").exists() or not any((env.cli.home / "tmp").iterdir())


def test_cli_scan_policy_allow_show_disallow_and_never_allowable_globals(env: Env) -> None:
    torchscript = CORPUS / "torch_jit_torchscript_archive.pt"
    refused = env.run("model", "scan", str(torchscript), "--project", "default")
    assert refused.returncode == 4 and "scan-policy allow --torchscript" in refused.output
    allowed = json.loads(env.ok("model", "scan-policy", "allow", "--torchscript",
                                "--project", "default").stdout)
    assert allowed["allow_torchscript"] is True
    scanned = env.run("model", "scan", str(torchscript), "--project", "default", "--json")
    assert "torchscript_archive" not in {f["code"] for f in json.loads(scanned.stdout)["findings"]}
    env.ok("model", "scan-policy", "allow", "collections.ChainMap", "--project", "default")
    shown = json.loads(env.ok("model", "scan-policy", "show", "--project", "default").stdout)
    assert shown["extra_globals"] == ["collections.ChainMap"]
    env.ok("model", "scan-policy", "disallow", "--torchscript", "collections.ChainMap",
           "--project", "default")
    shown = json.loads(env.ok("model", "scan-policy", "show", "--project", "default").stdout)
    assert shown["extra_globals"] == [] and shown["allow_torchscript"] is False
    never = env.run("model", "scan-policy", "allow", "os.system", "--project", "default")
    assert never.returncode == 2 and "can never be allowed" in never.output, never.output
