"""Attacks on the model registry, each test named after the attack it stops.

Malicious serialization (the whole pickle / joblib / torch corpus of
``tests/assets/malicious``), tampered stored blobs and metadata, tampered or
substituted copies, links smuggled into a model folder, and an artifact
changed after registration (TOCTOU).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import pytest
import sqlalchemy as sa

from bastion.core.access.values import Actor
from bastion.core.audit.entries import AuditQuery
from bastion.core.crypto.keyring import MasterKeySource
from bastion.core.errors import BlobCorrupted, InputError, IntegrityError
from bastion.model_security.errors import ArtifactMismatch, MaliciousArtifact, SignatureInvalid
from bastion.model_security.registry import RegisterRequest, snapshot_artifact
from bastion.model_security.signing import MismatchKind
from bastion.model_security.values import Framework, ModelVersion
from bastion.workspace import Bastion

if TYPE_CHECKING:  # annotations only: another folder's conftest.py may shadow the name
    from conftest import WS

P = "default"
CORPUS = Path(__file__).resolve().parents[2] / "assets" / "malicious"
_PICKLE_LIKE = (".pkl", ".joblib", ".pt", ".bin", ".npy")


def _corpus() -> list[str]:
    manifest = json.loads((CORPUS / "MANIFEST.json").read_text())
    names = [e["file"] for e in manifest]
    # pickle, joblib and torch formats (+ a pickle hiding behind a .txt name)
    return sorted(n for n in names if n.endswith(_PICKLE_LIKE) or "pickle" in n)


def _framework(name: str) -> Framework:
    return Framework.PYTORCH if name.endswith((".pt", ".bin")) else Framework.SKLEARN


class _ShellPayload:
    """Unpickling this runs ``touch CANARY`` (the classic os.system __reduce__)."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.canary}",))


def _model(d: Path) -> Path:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 3))
    d.mkdir(parents=True, exist_ok=True)
    joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), d / "model.joblib")
    (d / "config.json").write_text('{"threshold": 0.5}')
    return d


def _blob(w: WS | Bastion, digest: str) -> Path:
    home = w.home
    return home / "blobs" / "objects" / digest[:2] / f"{digest}.enc"


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def registered(sqlite_workspace: WS, tmp_path: Path) -> tuple[WS, ModelVersion, Path]:
    src = _model(tmp_path / "src")
    v = sqlite_workspace.ws.models.register(
        sqlite_workspace.admin, RegisterRequest(P, "scorer", src, Framework.SKLEARN)
    )
    return sqlite_workspace, v, src


@pytest.fixture
def spy_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records every deserialization the registry makes (to prove none happened).

    The registry loads through the restricted joblib loader: spy on that one (a spy
    on ``joblib.load`` would stay empty whatever happened)."""
    from bastion.model_security import registry as registry_module

    calls: list[object] = []
    real = registry_module.restricted_joblib_load

    def spy(*args: Any, **kwargs: Any) -> object:
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(registry_module, "restricted_joblib_load", spy)
    return calls


# -- malicious serialization ------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bastion, Actor]]:
    home = tmp_path_factory.mktemp("corpus") / "ws"
    master = MasterKeySource.from_env_key(base64.b64encode(os.urandom(32)).decode())
    ws, token = Bastion.init(home, master)
    try:
        yield ws, ws.access.authenticate(token.secret)
    finally:
        ws.close()


@pytest.mark.parametrize("name", _corpus())
def test_malicious_pickle_is_refused_and_quarantined(
    corpus_ws: tuple[Bastion, Actor], name: str, capfd: pytest.CaptureFixture[str]
) -> None:
    ws, admin = corpus_ws
    path = CORPUS / name
    model = "m-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    before = len(ws.models.refused(admin, P))

    with pytest.raises(MaliciousArtifact) as e:
        ws.models.register(admin, RegisterRequest(P, model, path, _framework(name)))

    assert name in e.value.message and "nothing was executed" in (e.value.hint or "")
    # no version was created
    assert ws.models.versions(admin, P, model) == []
    # the refusal is audited with the scanner's findings
    entries = ws.audit.query(AuditQuery(action="model.refused", resource=f"project/{P}/model/"))
    mine = [x for x in entries if x.resource == f"project/{P}/model/{model}"]
    assert len(mine) == 1 and mine[0].outcome == "failed"
    details = json.loads(mine[0].details)
    assert details["verdict"] in ("malicious", "error") and details["findings"]
    # the refused bytes are kept, encrypted, for forensics, and read back intact
    refused = ws.models.refused(admin, P)
    assert len(refused) == before + 1
    record = next(r for r in refused if r["name"] == model)
    (stored,) = json.loads(record["manifest"])
    raw = path.read_bytes()
    assert stored["digest"] == hashlib.sha256(raw).hexdigest()
    assert ws.blobs.read_bytes(stored["digest"]) == raw
    enc = _blob(ws, stored["digest"]).read_bytes()
    assert raw[:64] not in enc or len(raw) < 16
    assert json.loads(record["scan_report"])["verdict"] != "safe"
    # and the payload never ran (corpus payloads echo BASTION_CANARY)
    out, err = capfd.readouterr()
    assert "BASTION_CANARY" not in out + err


def test_malicious_joblib_payload_never_runs_canary_file(workspace: WS, tmp_path: Path) -> None:
    w = workspace  # SQLite and PostgreSQL: the refusal record is metadata too
    canary = tmp_path / "PWNED"
    evil = _model(tmp_path / "evil")
    joblib.dump({"model": _ShellPayload(canary)}, evil / "model.joblib")
    with pytest.raises(MaliciousArtifact) as e:
        w.ws.models.register(w.admin, RegisterRequest(P, "evil", evil, Framework.SKLEARN))
    assert "disallowed_global at model.joblib" in e.value.message
    assert not canary.exists()
    (record,) = w.ws.models.refused(w.admin, P)
    assert record["name"] == "evil"
    # the forensic scan report names the callable the payload would have run
    assert "system" in record["scan_report"]


# -- tampering with what is stored -------------------------------------------------------
def test_tampered_stored_blob_refused_on_load(
    registered: tuple[WS, ModelVersion, Path], spy_loads: list[object]
) -> None:
    w, v, _ = registered
    target = next(f for f in v.manifest if f.path == "model.joblib")
    _flip(_blob(w, target.digest))
    with pytest.raises(IntegrityError) as e:
        w.ws.models.load_sklearn(w.admin, P, v.ref)
    assert isinstance(e.value, BlobCorrupted)
    with pytest.raises(BlobCorrupted), w.ws.models.checkout(w.admin, P, v.ref):
        pass
    with pytest.raises(BlobCorrupted):
        w.ws.models.verify(w.admin, P, v.ref)
    assert spy_loads == []
    # nothing half-written is left in the private scratch area
    assert not any((w.home / "tmp").glob("model-*"))


def test_tampered_signature_bundle_blob_refused_on_load(
    registered: tuple[WS, ModelVersion, Path], spy_loads: list[object]
) -> None:
    w, v, _ = registered
    _flip(_blob(w, v.bundle_digest))
    with pytest.raises(IntegrityError):
        w.ws.models.load_sklearn(w.admin, P, v.ref)
    assert spy_loads == []


def test_manifest_swapped_to_quarantined_malicious_blob_refused(
    registered: tuple[WS, ModelVersion, Path], tmp_path: Path, spy_loads: list[object]
) -> None:
    # The attacker has write access to the metadata database: they point the
    # signed version's model file at the malicious bytes kept for forensics.
    w, v, _ = registered
    canary = tmp_path / "PWNED"
    evil = tmp_path / "evil"
    evil.mkdir()
    joblib.dump(_ShellPayload(canary), evil / "model.joblib")
    with pytest.raises(MaliciousArtifact):
        w.ws.models.register(w.admin, RegisterRequest(P, "evil", evil, Framework.SKLEARN))
    (kept,) = json.loads(w.ws.models.refused(w.admin, P)[0]["manifest"])
    forged = [
        {**f.__dict__, "digest": kept["digest"], "size": kept["size"]}
        if f.path == "model.joblib"
        else f.__dict__
        for f in v.manifest
    ]
    with w.ws.engine.begin() as c:
        c.execute(
            sa.text("UPDATE model_versions SET manifest = :m WHERE id = :id"),
            {"m": json.dumps(forged), "id": v.id},
        )
    with pytest.raises(ArtifactMismatch) as e:
        w.ws.models.load_sklearn(w.admin, P, v.ref)
    assert [(m.kind, m.name) for m in e.value.mismatches] == [(MismatchKind.DIGEST, "model.joblib")]
    assert spy_loads == [] and not canary.exists()


# -- verifying a copy (path=...) ------------------------------------------------------------
def _copy(w: WS, v: ModelVersion, dest: Path) -> Path:
    with w.ws.models.checkout(w.admin, P, v.ref) as (_, root):
        shutil.copytree(root, dest)
    return dest


def test_tampered_copy_refused(registered: tuple[WS, ModelVersion, Path], tmp_path: Path) -> None:
    w, v, _ = registered
    copy = _copy(w, v, tmp_path / "copy")
    assert w.ws.models.verify(w.admin, P, v.ref, copy).root_digest == v.root_digest
    _flip(copy / "model.joblib")
    with pytest.raises(ArtifactMismatch) as e:
        w.ws.models.verify(w.admin, P, v.ref, copy)
    assert [(m.kind, m.name) for m in e.value.mismatches] == [(MismatchKind.DIGEST, "model.joblib")]
    assert isinstance(e.value, SignatureInvalid) and isinstance(e.value, IntegrityError)


def test_extra_file_refused(registered: tuple[WS, ModelVersion, Path], tmp_path: Path) -> None:
    w, v, _ = registered
    copy = _copy(w, v, tmp_path / "copy")
    (copy / "loader.py").write_text("import os; os.system('id')\n")
    with pytest.raises(ArtifactMismatch) as e:
        w.ws.models.verify(w.admin, P, v.ref, copy)
    assert [(m.kind, m.name) for m in e.value.mismatches] == [(MismatchKind.EXTRA, "loader.py")]


def test_missing_file_refused(registered: tuple[WS, ModelVersion, Path], tmp_path: Path) -> None:
    w, v, _ = registered
    copy = _copy(w, v, tmp_path / "copy")
    (copy / "config.json").unlink()
    with pytest.raises(ArtifactMismatch) as e:
        w.ws.models.verify(w.admin, P, v.ref, copy)
    assert [(m.kind, m.name) for m in e.value.mismatches] == [(MismatchKind.MISSING, "config.json")]


def test_renamed_file_refused(registered: tuple[WS, ModelVersion, Path], tmp_path: Path) -> None:
    w, v, _ = registered
    copy = _copy(w, v, tmp_path / "copy")
    (copy / "config.json").rename(copy / "settings.json")
    with pytest.raises(ArtifactMismatch) as e:
        w.ws.models.verify(w.admin, P, v.ref, copy)
    assert sorted((m.kind.value, m.name) for m in e.value.mismatches) == sorted(
        [(MismatchKind.EXTRA.value, "settings.json"), (MismatchKind.MISSING.value, "config.json")]
    )


def test_copy_of_another_version_refused(
    registered: tuple[WS, ModelVersion, Path], tmp_path: Path
) -> None:
    # substituting a different (validly signed) model for this version
    w, v, _ = registered
    other = _model(tmp_path / "other")
    (other / "config.json").write_text('{"threshold": 0.1}')
    v2 = w.ws.models.register(w.admin, RegisterRequest(P, "scorer", other, Framework.SKLEARN))
    assert w.ws.models.verify(w.admin, P, v2.ref, other).root_digest == v2.root_digest
    with pytest.raises(ArtifactMismatch):
        w.ws.models.verify(w.admin, P, v.ref, other)


# -- links and special files in a model folder -------------------------------------------------
def test_symlink_in_model_folder_refused(sqlite_workspace: WS, tmp_path: Path) -> None:
    w = sqlite_workspace
    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    src = _model(tmp_path / "src")
    (src / "weights.bin").symlink_to(secret)
    with pytest.raises(MaliciousArtifact) as e:
        w.ws.models.register(w.admin, RegisterRequest(P, "scorer", src, Framework.SKLEARN))
    assert "symbolic link" in e.value.message
    with pytest.raises(MaliciousArtifact):
        snapshot_artifact(src, tmp_path / "snap")
    # a link to a folder is refused as well, and nothing is stored
    (src / "weights.bin").unlink()
    (src / "sub").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(MaliciousArtifact):
        w.ws.models.register(w.admin, RegisterRequest(P, "scorer", src, Framework.SKLEARN))
    # the artifact path itself being a link is bad input
    (src / "sub").unlink()
    link = tmp_path / "link-to-model"
    link.symlink_to(src, target_is_directory=True)
    with pytest.raises(InputError):
        w.ws.models.register(w.admin, RegisterRequest(P, "scorer", link, Framework.SKLEARN))
    assert w.ws.models.versions(w.admin, P) == []
    blobs = list((w.home / "blobs").rglob("*.enc"))
    assert all(b"OPENSSH" not in w.ws.blobs.read_bytes(p.stem) for p in blobs)


def test_hardlink_refused(sqlite_workspace: WS, tmp_path: Path) -> None:
    w = sqlite_workspace
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$hash\n")
    src = _model(tmp_path / "src")
    os.link(secret, src / "weights.bin")
    with pytest.raises(MaliciousArtifact) as e:
        w.ws.models.register(w.admin, RegisterRequest(P, "scorer", src, Framework.SKLEARN))
    assert "hard link" in e.value.message
    with pytest.raises(MaliciousArtifact):
        snapshot_artifact(src / "weights.bin", tmp_path / "snap")
    assert w.ws.models.versions(w.admin, P) == []


def test_fifo_in_model_folder_refused(tmp_path: Path) -> None:
    src = _model(tmp_path / "src")
    os.mkfifo(src / "pipe")
    with pytest.raises(MaliciousArtifact):
        snapshot_artifact(src, tmp_path / "snap")


# -- time of check vs time of use ----------------------------------------------------------------
def test_artifact_changed_between_verify_and_load(
    registered: tuple[WS, ModelVersion, Path], tmp_path: Path
) -> None:
    """TOCTOU: registration snapshots the source into a private folder before
    scanning and signing, so changing the source afterwards (or while it is
    read) cannot slip unscanned bytes in; loading materializes the *stored*
    encrypted blobs into a fresh private snapshot (0700 scratch), verifies the
    signature over exactly those bytes, re-scans them, and ``load_sklearn``
    re-hashes the bytes it is about to unpickle against the verified digest.
    """
    w, v, src = registered
    canary = tmp_path / "PWNED"
    # after registration the attacker swaps the source for a payload
    joblib.dump(_ShellPayload(canary), src / "model.joblib")
    (src / "extra.py").write_text("print('hi')")
    _, model = w.ws.models.load_sklearn(w.admin, P, v.ref)
    assert hasattr(model, "predict_proba") and not canary.exists()
    assert w.ws.models.verify(w.admin, P, v.ref).root_digest == v.root_digest
    with pytest.raises(ArtifactMismatch):
        w.ws.models.verify(w.admin, P, v.ref, src)
    # the checked-out snapshot is private to this process and gone afterwards
    with w.ws.models.checkout(w.admin, P, v.ref) as (_, root):
        assert root.is_relative_to(w.home / "tmp")
        assert (w.home / "tmp").stat().st_mode & 0o077 == 0
        assert root.parent.stat().st_mode & 0o077 == 0
    assert not root.exists()


# -- issue 8 §1: a malicious model file must never run ------------------------------------------
def _onnx_pointing_at(d: Path, location: str) -> None:
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value=location)
    graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [w])
    d.mkdir(parents=True, exist_ok=True)
    onnx.save_model(helper.make_model(graph), d / "model.onnx")


@pytest.mark.parametrize("compress", [None, "zlib", "gzip", "lzma"])
def test_onnx_external_data_pointing_at_pickle_folder_is_refused_and_nothing_runs(
    sqlite_workspace: WS, tmp_path: Path, compress: str | None
) -> None:
    w = sqlite_workspace
    marker = tmp_path / "marker"
    d = tmp_path / "evil"
    _onnx_pointing_at(d, "model.pkl")
    if compress is None:  # the protocol-0 pickle of the original report
        (d / "model.pkl").write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    else:
        joblib.dump(_ShellPayload(marker), d / "model.pkl", compress=(compress, 3))
    with pytest.raises(MaliciousArtifact, match=r"model\.pkl"):
        w.ws.models.register(w.admin, RegisterRequest(P, "evil-onnx", d, Framework.ONNX))
    assert w.ws.models.versions(w.admin, P, "evil-onnx") == []
    assert not marker.exists()


def test_scanner_miss_cannot_become_code_execution_at_load(
    sqlite_workspace: WS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulate a scanner miss (every scan says SAFE): the restricted loader still refuses."""
    from bastion.model_security import registry as registry_module
    from bastion.model_security.errors import DisallowedGlobal
    from bastion.model_security.scanning import ScanReport, Verdict

    monkeypatch.setattr(registry_module, "scan_path",
                        lambda *_a, **_k: ScanReport(Verdict.SAFE, (), ()))
    w = sqlite_workspace
    marker = tmp_path / "marker"
    d = tmp_path / "missed"
    d.mkdir()
    joblib.dump({"model": _ShellPayload(marker)}, d / "model.joblib")
    w.ws.models.register(w.admin, RegisterRequest(P, "missed", d, Framework.SKLEARN))
    with pytest.raises(DisallowedGlobal):
        w.ws.models.load_sklearn(w.admin, P, "missed@1")
    assert not marker.exists()


def test_scan_policy_allowing_pandas_is_admin_only_audited_and_used_for_scan_and_load(
    sqlite_workspace: WS, tmp_path: Path
) -> None:
    import pandas as pd

    from bastion.core.access.values import PrincipalKind
    from bastion.core.errors import AccessDenied
    from bastion.model_security.scanning import scan_path

    w = sqlite_workspace
    d = tmp_path / "df"
    d.mkdir()
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    joblib.dump(frame, d / "model.joblib")
    with pytest.raises(MaliciousArtifact):
        w.ws.models.register(w.admin, RegisterRequest(P, "frame", d, Framework.SKLEARN))
    needed = sorted({f.message.split("'")[1] for f in scan_path(d).findings})
    w.ws.access.create_principal(w.admin, "eng", PrincipalKind.USER)
    w.ws.access.bind(w.admin, "eng", "ml-engineer", P)
    eng = w.ws.access.authenticate(w.ws.access.create_token(w.admin, "eng").secret)
    with pytest.raises(AccessDenied):
        w.ws.models.scan_policies.allow(eng, P, globals_=needed)
    w.ws.models.scan_policies.allow(w.admin, P, globals_=needed)
    assert set(needed) <= w.ws.models.scan_policies.show(eng, P).extra_globals
    v = w.ws.models.register(w.admin, RegisterRequest(P, "frame", d, Framework.SKLEARN))
    _, loaded = w.ws.models.load_sklearn(w.admin, P, v.ref)
    assert loaded.equals(frame)
    changes = w.ws.audit.query(AuditQuery(action="model.scan_policy.changed"))
    assert {json.loads(e.details)["value"] for e in changes} == set(needed)
    # another project is not affected
    w.ws.access.create_project(w.admin, "other")
    assert not w.ws.models.scan_policies.show(w.admin, "other").extra_globals


def test_model_scan_cli_runs_without_a_workspace_and_checks_framework(tmp_path: Path) -> None:
    import subprocess
    import sys

    d = _model(tmp_path / "m")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env["HOME"] = str(tmp_path / "empty-home")  # no workspace, no keyring anywhere
    bastion = Path(sys.executable).parent / "bastion"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(bastion), "model", "scan", *args], env=env, text=True,
                              capture_output=True, timeout=120, stdin=subprocess.DEVNULL)

    ok = run(str(d / "model.joblib"), "--framework", "sklearn")
    assert ok.returncode == 0, ok.stderr
    assert "verdict: safe" in ok.stdout
    wrong = run(str(d / "model.joblib"), "--framework", "keras")
    assert wrong.returncode != 0 and "keras" in wrong.stderr + wrong.stdout
    assert not (tmp_path / "empty-home").exists()
