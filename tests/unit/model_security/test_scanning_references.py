"""Issue 8 §1 attack regressions: a referenced file is scanned by its own content,
tarballs are tar, opaque content is its own verdict, and the loader enforces the
allow-list even when the scanner is bypassed.  Each test is named after the attack."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from bastion.model_security.errors import DisallowedGlobal, FrameworkMismatch, ScanPolicyInvalid
from bastion.model_security.scanning import Verdict, scan_bytes, scan_path
from bastion.model_security.scanning.frameworks import check_framework
from bastion.model_security.scanning.policy import ScanPolicy, validate_global
from bastion.model_security.scanning.restricted import (
    restricted_joblib_load,
    restricted_pickle_load,
)


class _Touch:
    """Unpickling this runs ``touch <marker>`` (os.system): a real code-execution gadget."""

    def __init__(self, marker: Path) -> None:
        self.cmd = f"touch {marker}"

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (self.cmd,)


def _codes(report: object) -> set[str]:
    return {f.code for f in report.findings}  # type: ignore[attr-defined]


def _p0(marker: Path) -> bytes:
    return f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()


# -- the external-data reference, wherever it sits --------------------------------------
def _ext(name: str, location: str) -> onnx.TensorProto:
    t = helper.make_tensor(name, TensorProto.FLOAT, [1], [1.0])
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    t.external_data.add(key="length", value="4")
    return t


def _vi(name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1])


def _top_level(loc: str) -> onnx.ModelProto:
    g = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [], [_vi("y")],
                          [_ext("w", loc)])
    return helper.make_model(g)


def _in_if_branch(loc: str) -> onnx.ModelProto:
    branch = helper.make_graph([helper.make_node("Identity", ["w"], ["o"])], "b", [],
                               [_vi("o")], [_ext("w", loc)])
    other = helper.make_graph([helper.make_node("Identity", ["c"], ["o"])], "e", [], [_vi("o")])
    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=other)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL,
                                                                       [])], [_vi("y")])
    return helper.make_model(g)


def _in_loop_body(loc: str) -> onnx.ModelProto:
    body = helper.make_graph([helper.make_node("Identity", ["w"], ["o"])], "body", [],
                             [_vi("o")], [_ext("w", loc)])
    node = helper.make_node("Loop", ["n", "c"], ["y"], body=body)
    return helper.make_model(helper.make_graph([node], "g", [], [_vi("y")]))


def _in_constant(loc: str) -> onnx.ModelProto:
    node = helper.make_node("Constant", [], ["y"], value=_ext("w", loc))
    return helper.make_model(helper.make_graph([node], "g", [], [_vi("y")]))


def _in_sparse_constant(loc: str) -> onnx.ModelProto:
    idx = helper.make_tensor("i", TensorProto.INT64, [1], [0])
    sparse = helper.make_sparse_tensor(_ext("v", loc), idx, [4])
    node = helper.make_node("Constant", [], ["y"], sparse_value=sparse)
    return helper.make_model(helper.make_graph([node], "g", [], [_vi("y")]))


PLACEMENTS: dict[str, Callable[[str], onnx.ModelProto]] = {
    "initializer": _top_level, "if_branch": _in_if_branch, "loop_body": _in_loop_body,
    "constant": _in_constant, "sparse_constant": _in_sparse_constant,
}


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("onnx_name", ["model.onnx", "weights.bin"])
def test_onnx_external_data_pointing_at_pickle_is_scanned_and_refused(
        tmp_path: Path, placement: str, onnx_name: str) -> None:
    marker = tmp_path / "marker"
    onnx.save_model(PLACEMENTS[placement]("model.pkl"), tmp_path / onnx_name)
    (tmp_path / "model.pkl").write_bytes(_p0(marker))
    report = scan_path(tmp_path)
    assert report.verdict is Verdict.MALICIOUS, report.render()
    assert any(f.code == "disallowed_global" and f.file == "model.pkl" for f in report.findings)
    assert not marker.exists()


def _payloads(marker: Path) -> dict[str, bytes]:
    gadget = _Touch(marker)
    plain = pickle.dumps(gadget, protocol=2)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("archive/data.pkl", plain)
    out = {f"pickle-protocol-{p}": pickle.dumps(gadget, protocol=p) for p in range(6)}
    out |= {"protocol-0-text": _p0(marker), "joblib-zlib": zlib.compress(plain),
            "joblib-gzip": gzip.compress(plain), "joblib-lzma": lzma.compress(
                plain, format=lzma.FORMAT_ALONE), "joblib-xz": lzma.compress(plain),
            "joblib-bz2": bz2.compress(plain), "zip": zipped.getvalue()}
    return out


@pytest.mark.parametrize("kind", sorted(_payloads(Path("/x"))))
def test_onnx_external_data_pointing_at_any_pickle_format_is_refused(
        tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "marker"
    onnx.save_model(_top_level("model.pkl"), tmp_path / "model.onnx")
    (tmp_path / "model.pkl").write_bytes(_payloads(marker)[kind])
    report = scan_path(tmp_path)
    assert report.verdict is Verdict.MALICIOUS, (kind, report.render())
    assert not marker.exists()


def test_onnx_external_data_pointing_at_onnx_with_custom_op_is_scanned_as_onnx(
        tmp_path: Path) -> None:
    evil = helper.make_model(helper.make_graph(
        [helper.make_node("Run", ["x"], ["y"], domain="evil.ops")], "g", [_vi("x")], [_vi("y")]))
    onnx.save_model(_top_level("other.bin"), tmp_path / "model.onnx")
    onnx.save_model(evil, tmp_path / "other.bin")
    assert "onnx_custom_op" in _codes(scan_path(tmp_path))


def test_benign_onnx_external_tensor_data_is_still_accepted(tmp_path: Path) -> None:
    onnx.save_model(_top_level("w.bin"), tmp_path / "model.onnx")
    (tmp_path / "w.bin").write_bytes(np.float32([1.25]).tobytes())
    assert scan_path(tmp_path).accepted


# -- opaque content ------------------------------------------------------------------------
def test_opaque_file_gets_unknown_format_verdict_not_malformed_pickle(tmp_path: Path) -> None:
    (tmp_path / "blob.dat").write_bytes(bytes([0xF3, 0x00, 0x91, 0xAB]) * 64)
    report = scan_path(tmp_path)
    assert report.verdict is Verdict.UNKNOWN_FORMAT
    assert _codes(report) == {"unknown_format"}
    assert scan_path(tmp_path, policy=ScanPolicy(allow_opaque_data=True)).accepted


# -- PyTorch storages: convention is not proof -------------------------------------------------
def test_pickle_disguised_as_torch_storage_member_is_found(tmp_path: Path) -> None:
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.ones(4)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    marker = tmp_path / "marker"
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data/0"):
                data = pickle.dumps(_Touch(marker), protocol=4)
            z.writestr(info.filename, data)
    assert "disallowed_global" in _codes(scan_bytes(out.getvalue(), "m.pt"))
    # a benign pickle is still not raw storage
    with zipfile.ZipFile(out2 := io.BytesIO(), "w") as z:
        for info in src.infolist():
            z.writestr(info.filename, pickle.dumps([1, 2], protocol=4)
                       if info.filename.endswith("/data/0") else src.read(info))
    assert "torch_storage_disguised" in _codes(scan_bytes(out2.getvalue(), "m.pt"))


# -- tar archives ----------------------------------------------------------------------------
def _tarball(mode: str, members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _model_bytes() -> bytes:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(40, 3))
    buf = io.BytesIO()
    joblib.dump(LogisticRegression().fit(x, x[:, 0] > 0), buf)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_benign_model_tarball_is_accepted(mode: str) -> None:
    data = _tarball(mode, {"model/model.joblib": _model_bytes(), "model/README.md": b"hi\n"})
    report = scan_bytes(data, "model.tar")
    assert report.accepted, report.render()


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_malicious_pickle_nested_in_tarball_is_found(tmp_path: Path, mode: str) -> None:
    data = _tarball(mode, {"m/model.pkl": pickle.dumps(_Touch(tmp_path / "x"))})
    report = scan_bytes(data, "model.tgz")
    assert any(f.code == "disallowed_global" and f.member == "m/model.pkl"
               for f in report.findings), report.render()


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_tarball_traversal_links_and_devices_are_refused(mode: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for name, kind in (("../escape", tarfile.REGTYPE), ("/abs", tarfile.REGTYPE),
                           ("link", tarfile.SYMTYPE), ("hard", tarfile.LNKTYPE),
                           ("dev", tarfile.CHRTYPE), ("fifo", tarfile.FIFOTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            tar.addfile(info, io.BytesIO(b""))
    codes = _codes(scan_bytes(buf.getvalue(), "t.tar.gz"))
    assert {"path_traversal", "archive_symlink", "archive_special_file"} <= codes


def test_tar_gz_bomb_is_refused_by_ratio() -> None:
    data = _tarball("w:gz", {"zeros.bin": b"\x00" * (8 * 1024 * 1024)})
    assert "tar_bomb" in _codes(scan_bytes(data, "bomb.tar.gz"))


def test_tar_member_count_cap() -> None:
    from bastion.model_security.scanning import ScanLimits

    data = _tarball("w", {f"f{i}.txt": b"a" for i in range(20)})
    report = scan_bytes(data, "many.tar", limits=ScanLimits(max_archive_members=10))
    assert "archive_too_many_members" in _codes(report)


def test_stream_that_is_both_tar_and_pickle_is_scanned_as_both(tmp_path: Path) -> None:
    # a tar whose first member name is a protocol-0 pickle: joblib.load of the .tar.gz
    # would run it, tarfile would extract it
    name = "cos\nsystem\n(S'touch x'\ntR."
    data = _tarball("w:gz", {name: b"", "m.pkl": pickle.dumps(_Touch(tmp_path / "y"))})
    report = scan_bytes(data, "both.tar.gz")
    assert any(f.code == "disallowed_global" and f.member is None for f in report.findings), \
        report.render()
    assert any(f.member == "m.pkl" for f in report.findings)


# -- defence in depth: the loader enforces the allow-list ------------------------------------
@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("lzma", 3), ("bz2", 3), ("xz", 3)])
def test_scanner_bypass_loading_malicious_joblib_never_runs_payload(
        tmp_path: Path, compress: object) -> None:
    marker = tmp_path / "marker"
    joblib.dump({"w": np.ones(3), "evil": _Touch(marker)}, tmp_path / "m.joblib",
                compress=compress)
    with pytest.raises(DisallowedGlobal, match=r"(posix|os)\.system"):
        restricted_joblib_load(tmp_path / "m.joblib")  # the scanner is never called
    assert not marker.exists()


def test_scanner_bypass_object_array_nested_pickle_never_runs_payload(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    joblib.dump({"a": np.array([_Touch(marker)], dtype=object)}, tmp_path / "o.joblib")
    with pytest.raises(DisallowedGlobal):
        restricted_joblib_load(tmp_path / "o.joblib")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(6))
def test_scanner_bypass_plain_pickle_never_runs_payload(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "marker"
    data = pickle.dumps(_Touch(marker), protocol=protocol)
    with pytest.raises(DisallowedGlobal):
        restricted_pickle_load(io.BytesIO(data))
    with pytest.raises(DisallowedGlobal):
        restricted_joblib_load(io.BytesIO(data))
    assert not marker.exists()
    # the real thing would have run it: the test would catch a loader that lets it through
    pickle.loads(data)
    assert marker.exists()


def test_benign_models_load_through_the_restricted_loader(tmp_path: Path) -> None:
    joblib.dump({"a": np.arange(3), "o": np.array([1, "x"], dtype=object)},
                tmp_path / "m.joblib", compress=3)
    loaded = restricted_joblib_load(tmp_path / "m.joblib")
    assert list(loaded["a"]) == [0, 1, 2] and list(loaded["o"]) == [1, "x"]
    assert restricted_joblib_load(io.BytesIO(_model_bytes())).predict(np.zeros((1, 3))).shape \
        == (1,)


# -- the policy: extensible per project, the same for scanner and loader ----------------------
def test_pandas_dataframe_refused_by_default_allowed_by_policy_for_scan_and_load(
        tmp_path: Path) -> None:
    import pandas as pd

    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    joblib.dump(df, tmp_path / "df.joblib")
    report = scan_path(tmp_path / "df.joblib")
    assert not report.accepted
    with pytest.raises(DisallowedGlobal):
        restricted_joblib_load(tmp_path / "df.joblib")
    needed = frozenset(f.message.split("'")[1] for f in report.findings
                       if f.code == "disallowed_global")
    for g in needed:
        validate_global(g)
    policy = ScanPolicy(extra_globals=needed)
    assert scan_path(tmp_path / "df.joblib", policy=policy).accepted
    assert restricted_joblib_load(tmp_path / "df.joblib", policy).equals(df)


@pytest.mark.parametrize("name", ["os.system", "posix.system", "builtins.eval",
                                  "subprocess.Popen", "torch.jit.load", "sys", "a.b-c"])
def test_policy_cannot_allow_code_execution_globals(name: str) -> None:
    with pytest.raises(ScanPolicyInvalid):
        validate_global(name)


def test_torchscript_is_refused_by_default_with_how_to_allow(tmp_path: Path) -> None:
    import torch

    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 1)), tmp_path / "ts.pt")
    report = scan_path(tmp_path / "ts.pt")
    msg = next(f.message for f in report.findings if f.code == "torchscript_archive")
    assert "refused by default" in msg and "scan-policy allow --torchscript" in msg
    allowed = scan_path(tmp_path / "ts.pt", policy=ScanPolicy(allow_torchscript=True))
    assert "torchscript_archive" not in _codes(allowed)


# -- --framework is checked against content -------------------------------------------------------
def test_framework_declared_keras_on_a_pickle_is_a_mismatch(tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_bytes(_model_bytes())
    with pytest.raises(FrameworkMismatch, match="keras"):
        check_framework(tmp_path / "model.keras", "keras")
    assert check_framework(tmp_path / "model.keras", "sklearn") == "pickle"
    with zipfile.ZipFile(tmp_path / "k.keras", "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", b"")
    assert check_framework(tmp_path / "k.keras", "keras") == "keras-zip"
    with pytest.raises(FrameworkMismatch):
        check_framework(tmp_path / "k.keras", "pytorch")


def test_zero_filled_torch_storage_is_raw_data_not_an_empty_tar() -> None:
    # tarfile.is_tarfile says yes to zero bytes: a zero bias must not be "a disguised tar"
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.randn(64), "b": torch.zeros(1024)}, buf)
    report = scan_bytes(buf.getvalue(), "m.pt")
    assert report.accepted, report.render()
