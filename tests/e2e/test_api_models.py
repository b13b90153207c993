"""End to end over HTTP against a real ``bastion serve`` on loopback: model
upload (file and tar archive), refusal of malicious pickles and hostile
archives, verify, train, evaluate, drift, RBAC and the error-status mapping.

Status mapping checked here (``bastion.api.errors``): MaliciousArtifact -> 422
``malicious_artifact``; SignatureInvalid (incl. SignerNotTrusted /
ArtifactMismatch) -> 409; DatasetNotUsable (a PolicyDenied) -> 403; a bad
training spec (an InputError) -> 400; AccessDenied -> 403.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import os
import sys
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import httpx
import joblib
import numpy as np
import polars as pl
import pytest

from bastion.core.crypto.keyring import MasterKeySource
from bastion.demo.data_steps import credit_data
from bastion.model_security.registry import signing_purpose
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
    from conftest import Server, start_server, stop_server
else:
    Server, start_server, stop_server = _shared.Server, _shared.start_server, _shared.stop_server

BASE = "/v1/projects/default"
SPEC = """\
label: Status
estimator: logistic_regression
sensitive: [Age]
params: {C: 1.0, max_iter: 500}
seed: 7
"""


@dataclass
class Api:
    srv: Server
    http: httpx.Client
    work: Path
    holdout: pl.DataFrame

    def post(self, path: str, token: str | None = None, **kw: object) -> httpx.Response:
        return self.http.post(BASE + path, headers=self.srv.auth(token), **kw)  # type: ignore[arg-type]

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        return self.http.get(BASE + path, headers=self.srv.auth(token))

    def upload(self, name: str, body: bytes, token: str | None = None, **params: str
               ) -> httpx.Response:  # fmt: skip
        return self.post(f"/models/{name}/versions", token, params=params, content=body)

    def open_ws(self) -> Bastion:
        return Bastion.open(self.srv.home, MasterKeySource.from_env_key(self.srv.master_key_b64))


def _ok(r: httpx.Response, status: int = 200) -> dict[str, object]:
    assert r.status_code == status, (
        f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}"
    )
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    work = tmp_path_factory.mktemp("api-models")
    key = base64.b64encode(os.urandom(32)).decode()
    ws, issued = Bastion.init(work / "srv-ws", MasterKeySource.from_env_key(key))
    ws.close()
    srv = start_server(work / "srv-ws", key, issued.secret)
    http = httpx.Client(base_url=srv.url, timeout=180)
    a = Api(srv, http, work, pl.DataFrame())
    try:
        full = credit_data().drop_nulls().sample(fraction=1.0, shuffle=True, seed=11)
        _ok(a.post("/sources", json={"name": "bureau", "datasets": ["credit"]}), 201)
        train = full.head(1200).write_csv().encode()
        params = {"source": "bureau", "sha256": hashlib.sha256(train).hexdigest(),
                  "label": "Status", "sensitive": "Age", "positive_label": "good"}  # fmt: skip
        v1 = _ok(a.post("/datasets/credit/ingest", params=params, content=train), 201)
        assert v1["status"] == "accepted", v1
        bad = full.slice(1600, 200).write_csv().encode()
        v2 = _ok(a.post("/datasets/credit/ingest", content=bad,
                        params={"source": "bureau", "sha256": "0" * 64}), 201)  # fmt: skip
        assert v2["status"] == "quarantined", v2
        a.holdout = full.slice(1200, 400)
        yield a
    finally:
        http.close()
        stop_server(srv.proc)


def _joblib_bytes(seed: int = 0) -> bytes:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(seed).normal(size=(120, 3))
    buf = io.BytesIO()
    joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), buf)
    return buf.getvalue()


def _tar(members: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for m in members:
            payload = data.get(m.name)
            if payload is not None:
                m.size = len(payload)
                tar.addfile(m, io.BytesIO(payload))
            else:
                tar.addfile(m)
    return buf.getvalue()


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _user_token(a: Api, name: str, role: str) -> str:
    _ok(a.http.post("/v1/principals", headers=a.srv.auth(), json={"name": name}), 201)
    _ok(a.http.post("/v1/role-bindings", headers=a.srv.auth(),
                    json={"principal": name, "role": role}), 201)  # fmt: skip
    issued = _ok(a.http.post(f"/v1/principals/{name}/tokens", headers=a.srv.auth(), json={}), 201)
    return str(issued["token"])


# -- upload ------------------------------------------------------------------------------------
def test_api_register_file_verify_and_read(api: Api) -> None:
    body = _joblib_bytes()
    v = _ok(api.upload("scorer", body, framework="sklearn", filename="model.joblib",
                       trained_on="credit@1"), 201)  # fmt: skip
    assert v["version"] == 1 and v["stage"] == "draft"
    assert v["files"] == [
        {"path": "model.joblib", "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    ]
    assert v["scan"]["verdict"] == "safe"
    assert str(v["trained_on"][0]).startswith("default/credit@1#")  # type: ignore[index]
    got = _ok(api.get("/models/scorer/versions/1"))
    assert got["root_digest"] == v["root_digest"] and got["evaluations"] == []
    verified = _ok(api.post("/models/scorer/versions/1/verify"))
    assert verified == {
        "verified": True,
        "root_digest": v["root_digest"],
        "signer": {"identity": "project:default/signer", "key_id": v["signer"]["key_id"]},  # type: ignore[index]
        "files": 1,
    }
    assert "scorer" in {m["name"] for m in _ok(api.get("/models"))}  # type: ignore[attr-defined]
    # a path in `filename` cannot choose where the upload lands
    w = _ok(api.upload("scorer", body, framework="sklearn", filename="../../escape.joblib"), 201)
    assert [f["path"] for f in w["files"]] == ["escape.joblib"]  # type: ignore[attr-defined]
    for dots in ("..", "x/.."):
        d = _ok(api.upload("scorer", body, framework="sklearn", filename=dots), 201)
        assert [f["path"] for f in d["files"]] == ["model.bin"]  # type: ignore[attr-defined]
    missing = api.get("/models/scorer/versions/99")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_api_malicious_pickle_is_refused_with_422(api: Api) -> None:
    for name in ("os_system_reduce.pkl", "joblib_payload_after_numpy_array.joblib"):
        r = api.upload("evil", (CORPUS / name).read_bytes(), framework="sklearn", filename=name)
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["error"] == "malicious_artifact" and "refused by the scanner" in body["message"]
        assert "nothing was executed" in body["hint"]
    assert api.get("/models/evil/versions/1").status_code == 404
    assert "BASTION_CANARY" not in api.srv.log.read_text()
    ws = api.open_ws()
    try:
        admin = ws.access.authenticate(api.srv.token)
        assert [r["name"] for r in ws.models.refused(admin, "default")].count("evil") == 2
    finally:
        ws.close()


def test_api_tar_upload_of_a_folder(api: Api) -> None:
    model = _joblib_bytes(3)
    data = {"model.joblib": model, "config.json": b'{"t": 0.5}', "tok/vocab.txt": b"a\nb\n"}
    folder = tarfile.TarInfo("tok")
    folder.type = tarfile.DIRTYPE
    body = _tar([_file("model.joblib"), _file("config.json"), folder, _file("tok/vocab.txt")], data)
    v = _ok(api.upload("bundle", body, framework="sklearn", archive="true"), 201)
    files = {f["path"]: f["sha256"] for f in v["files"]}  # type: ignore[attr-defined]
    assert files == {k: hashlib.sha256(b).hexdigest() for k, b in data.items()}
    assert _ok(api.post("/models/bundle/versions/1/verify"))["files"] == 3


def test_api_tar_with_symlink_member_refused(api: Api) -> None:
    link = tarfile.TarInfo("weights.bin")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    body = _tar([_file("model.joblib"), link], {"model.joblib": _joblib_bytes()})
    for upload in (body, (CORPUS / "tar_symlink_member.tar").read_bytes()):
        r = api.upload("linked", upload, framework="sklearn", archive="true")
        assert r.status_code == 422 and r.json()["error"] == "malicious_artifact", r.text
    hard = tarfile.TarInfo("alias.bin")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "model.joblib"
    r = api.upload("linked", _tar([_file("model.joblib"), hard], {"model.joblib": _joblib_bytes()}),
                   framework="sklearn", archive="true")  # fmt: skip
    assert r.status_code == 422, r.text
    assert api.get("/models/linked/versions/1").status_code == 404


def test_api_tar_with_path_traversal_member_refused(api: Api) -> None:
    marker = f"bastion-escape-{uuid.uuid4().hex}.txt"
    for name in (f"../{marker}", f"/tmp/{marker}", f"sub/../../{marker}"):
        body = _tar([_file("model.joblib"), _file(name)],
                    {"model.joblib": _joblib_bytes(), name: b"pwned"})  # fmt: skip
        r = api.upload("escape", body, framework="sklearn", archive="true")
        assert r.status_code == 422 and r.json()["error"] == "malicious_artifact", (name, r.text)
    assert not (Path("/tmp") / marker).exists()
    assert api.get("/models/escape/versions/1").status_code == 404
    # a body that is not a tar archive is bad input, not a server fault
    r = api.upload("escape", b"not a tar at all" * 64, framework="sklearn", archive="true")
    assert r.status_code == 400 and r.json()["error"] == "invalid_input", r.text


# -- signature failures and data policy -------------------------------------------------------
def test_api_verify_after_signing_key_revocation_is_409(api: Api) -> None:
    v = _ok(api.upload("revoked", _joblib_bytes(5), framework="sklearn",
                       filename="model.joblib"), 201)  # fmt: skip
    _ok(api.post("/models/revoked/versions/1/verify"))
    # the security officer revokes the project's signing key from another process (CLI)
    ws = api.open_ws()
    try:
        admin = ws.access.authenticate(api.srv.token)
        key_id = str(v["signer"]["key_id"])  # type: ignore[index]
        ws.keys.revoke_signing(admin, key_id)
        revoked = [k.key_id for k in ws.keyring.signing_keys(signing_purpose("default"))
                   if k.status.value == "revoked"]  # fmt: skip
        assert revoked == [key_id]
    finally:
        ws.close()
    r = api.post("/models/revoked/versions/1/verify")
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "signer_not_trusted"
    # and the running server must not sign new versions with the revoked key
    v2 = _ok(api.upload("revoked", _joblib_bytes(5), framework="sklearn",
                        filename="model.joblib"), 201)  # fmt: skip
    assert v2["signer"]["key_id"] != key_id  # type: ignore[index]
    _ok(api.post("/models/revoked/versions/2/verify"))


def test_api_trained_on_quarantined_dataset_is_403(api: Api) -> None:
    r = api.upload("poisoned", _joblib_bytes(), framework="sklearn", filename="model.joblib",
                   trained_on="credit@2")  # fmt: skip
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "dataset_not_usable" and "quarantined" in r.json()["message"]
    t = api.post("/train", json={"name": "poisoned", "dataset": "credit@2", "spec": SPEC})
    assert t.status_code == 403 and t.json()["error"] == "dataset_not_usable", t.text


# -- the lab over HTTP -------------------------------------------------------------------------
def test_api_train_evaluate_and_drift(api: Api) -> None:
    v = _ok(api.post("/train", json={"name": "lr", "dataset": "credit@1", "spec": SPEC}), 201)
    run = v["training_run"]
    assert run["spec"]["estimator"] == "logistic_regression"  # type: ignore[index]
    assert run["data"][0]["dataset"] == "default/credit@1"  # type: ignore[index]
    bad = api.post("/train", json={"name": "x", "dataset": "credit@1",
                                   "spec": "label: Status\nestimator: magic\n"})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"] == "training_spec_invalid", bad.text
    assert "unknown estimator 'magic'" in bad.json()["message"]

    rec = _ok(api.post("/models/lr/versions/1/evaluations",
                       json={"dataset": "credit@1", "sensitive": ["Age"], "immutable": ["Home"],
                             "sample_size": 10}), 201)  # fmt: skip
    result = rec["result"]
    assert rec["model"] == "lr@1" and result["fairness"][0]["attribute"] == "Age"  # type: ignore[index]
    attacks = {a["attack"]: a for a in result["robustness"]["attacks"]}  # type: ignore[index]
    assert attacks["fgsm"]["status"] == "ran" and 0 <= attacks["fgsm"]["success_rate"] <= 1
    got = _ok(api.get("/models/lr/versions/1"))
    assert [e["id"] for e in got["evaluations"]] == [rec["id"]]  # type: ignore[attr-defined]
    invalid = api.post("/models/lr/versions/1/evaluations", json={"dataset": "credit@1",
                                                                   "sample_size": 1})  # fmt: skip
    assert invalid.status_code == 422 and invalid.json()["error"] == "invalid_input"

    shifted = api.holdout.with_columns(
        (pl.col("Income") * 1.8).alias("Income"), (pl.col("Amount") * 1.5).alias("Amount")
    )
    drift = _ok(api.post("/monitor/drift", params={"reference": "credit@1", "filename": "l.csv"},
                         content=shifted.write_csv().encode()))  # fmt: skip
    assert drift["verdict"] != "no_drift"
    drifted = set(drift["drifted_features"])  # type: ignore[arg-type]
    assert {"Income", "Amount"} <= drifted
    calm = _ok(api.post("/monitor/drift", params={"reference": "credit@1"},
                        content=api.holdout.write_csv().encode()))  # fmt: skip
    assert calm["verdict"] == "no_drift"


# -- RBAC ---------------------------------------------------------------------------------------
def test_api_rbac_on_model_routes(api: Api) -> None:
    consumer = _user_token(api, "carol", "consumer")
    reviewer = _user_token(api, "rita", "reviewer")
    engineer = _user_token(api, "eddie", "ml-engineer")
    body = _joblib_bytes(7)
    r = api.upload("rbac", body, consumer, framework="sklearn", filename="model.joblib")
    assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text
    r = api.upload("rbac", body, reviewer, framework="sklearn", filename="model.joblib")
    assert r.status_code == 403, r.text
    _ok(api.upload("rbac", body, engineer, framework="sklearn", filename="model.joblib"), 201)
    assert api.get("/models", consumer).status_code == 403
    assert api.post("/models/rbac/versions/1/verify", consumer).status_code == 403
    _ok(api.post("/models/rbac/versions/1/verify", reviewer))
    assert _ok(api.get("/models/rbac/versions/1", reviewer))["created_by"] == "eddie"
    t = api.post("/train", reviewer, json={"name": "r", "dataset": "credit@1", "spec": SPEC})
    assert t.status_code == 403, t.text
    e = api.post("/models/rbac/versions/1/evaluations", reviewer, json={"dataset": "credit@1"})
    assert e.status_code == 403, e.text
    assert api.get("/models", "not-a-token").status_code == 401
    audit = _ok(api.http.get("/v1/audit/entries", headers=api.srv.auth(),
                             params={"outcome": "denied"}))  # fmt: skip
    denied = {(x["actor"], x["action"]) for x in audit}  # type: ignore[union-attr, index]
    assert {("carol", "model.register"), ("rita", "model.register"),
            ("rita", "model.train")} <= denied  # fmt: skip
