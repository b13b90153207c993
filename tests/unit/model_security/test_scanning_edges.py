"""Attack regressions beyond the corpus: fail-closed parsing, containers, folders."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.model_security.scanning import ScanLimits, Verdict, scan_bytes, scan_path
from bastion.model_security.scanning.allowlist import is_allowed


class _Touch:
    """Pickles to ``os.system('touch <canary>')``: a real code-execution gadget."""

    def __init__(self, canary: Path) -> None:
        self.cmd = f"touch {canary}"

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (self.cmd,)


def _codes(report: object) -> set[str]:
    return {f.code for f in report.findings}  # type: ignore[attr-defined]


def test_scanning_never_executes_the_payload(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    payload = _Touch(canary)
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(payload, protocol=0))
    (tmp_path / "b.pkl").write_bytes(pickle.dumps(payload, protocol=5))
    joblib.dump({"w": np.ones(10), "p": payload}, tmp_path / "c.joblib", compress=3)
    torch_like = io.BytesIO()
    with zipfile.ZipFile(torch_like, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
    (tmp_path / "d.pt").write_bytes(torch_like.getvalue())
    report = scan_path(tmp_path)
    assert report.verdict is Verdict.MALICIOUS
    assert len([f for f in report.findings if f.code == "disallowed_global"]) == 4
    assert not canary.exists()


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_truncated_pickle_is_an_error_not_safe(protocol: int) -> None:
    data = pickle.dumps({"weights": list(range(50)), "name": "credit"}, protocol=protocol)
    for cut in (len(data) // 3, len(data) // 2, len(data) - 1):
        report = scan_bytes(data[:cut], "model.pkl")
        assert report.verdict is not Verdict.SAFE, cut


def test_garbage_after_stop_is_an_error() -> None:
    data = pickle.dumps([1, 2, 3], protocol=4) + b"\x00\x01garbage"
    report = scan_bytes(data, "model.pkl")
    assert report.verdict is Verdict.ERROR
    assert "malformed_pickle" in _codes(report)


def test_unknown_opcode_and_bad_protocol_are_errors() -> None:
    assert scan_bytes(b"\x80\x04\xff.", "x.pkl").verdict is Verdict.ERROR
    assert scan_bytes(b"\x80\x05\x95\xff\xff\xff\xff\x00\x00\x00\x00N.", "x.pkl").verdict \
        is Verdict.ERROR


def test_memo_get_of_unknown_key_is_an_error() -> None:
    assert scan_bytes(b"\x80\x04h\x07.", "x.pkl").verdict is Verdict.ERROR


def test_huge_declared_bytes_length_is_an_error_without_allocating() -> None:
    data = b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"xx."
    assert scan_bytes(data, "x.pkl").verdict is Verdict.ERROR


def test_joblib_array_bytes_hiding_a_pickle_for_plain_pickle_load(tmp_path: Path) -> None:
    # without alignment padding the array's raw bytes follow BUILD directly: inert for
    # joblib.load, but opcodes (a gadget) for a plain pickle.load of the same file
    from joblib.numpy_pickle import NumpyArrayWrapper

    gadget = b"cos\nsystem\n(S'echo BASTION_CANARY'\ntR."
    wrapper = NumpyArrayWrapper(np.ndarray, (len(gadget),), "C", np.dtype(np.uint8),
                                numpy_array_alignment_bytes=None)
    path = tmp_path / "dual.joblib"
    path.write_bytes(pickle.dumps(wrapper, protocol=2)[:-1] + gadget + b".")
    assert joblib.load(path).tobytes() == gadget
    report = scan_path(path)
    assert report.verdict is Verdict.MALICIOUS, report.render()


def test_joblib_object_array_nested_pickle(tmp_path: Path) -> None:
    arr = np.empty(3, dtype=object)
    arr[:] = ["a", _Touch(tmp_path / "c"), 1.5]
    joblib.dump({"pre": np.zeros(5), "objs": arr, "post": np.ones(3)}, tmp_path / "o.joblib")
    assert "disallowed_global" in _codes(scan_path(tmp_path / "o.joblib"))


def test_lz4_and_truncated_compressed_joblib_are_errors(tmp_path: Path) -> None:
    assert scan_bytes(b"\x04\x22\x4d\x18" + b"\x00" * 40, "m.joblib").verdict is Verdict.ERROR
    joblib.dump({"w": np.ones(1000)}, tmp_path / "m.joblib", compress=("gzip", 3))
    data = (tmp_path / "m.joblib").read_bytes()
    assert scan_bytes(data[: len(data) // 2], "m.joblib").verdict is Verdict.ERROR


def test_truncated_torch_zip_is_an_error(tmp_path: Path) -> None:
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.ones(100)}, buf)
    data = buf.getvalue()
    assert scan_bytes(data, "m.pt").accepted
    assert scan_bytes(data[: len(data) // 2], "m.pt").verdict is Verdict.ERROR


def _safetensors(header: object, data: bytes, length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


@pytest.mark.parametrize(("header", "data", "length", "code"), [
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, 2**63,
     "safetensors_header_size"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, 10**6,
     "safetensors_header_size"),
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4, None,
     "safetensors_size_mismatch"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, None,
     "safetensors_offsets"),
    ({"w": {"dtype": "PY", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, None,
     "safetensors_dtype"),
    ({"__metadata__": {"a": {"nested": 1}}}, b"", None, "safetensors_metadata"),
], ids=["length_2_63", "length_past_file", "shape_vs_offsets", "offsets_past_end",
        "unknown_dtype", "metadata_not_strings"])
def test_safetensors_header_attacks(header: object, data: bytes, length: int | None,
                                    code: str) -> None:
    report = scan_bytes(_safetensors(header, data, length), "m.safetensors")
    assert not report.accepted
    assert code in _codes(report), report.render()


def test_zip_bomb_and_member_limits(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("weights.bin", b"\0" * (8 * 1024 * 1024))
    assert "zip_bomb" in _codes(scan_bytes(buf.getvalue(), "bomb.zip"))
    tight = ScanLimits(max_archive_members=3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(5):
            z.writestr(f"f{i}.json", b"{}")
    report = scan_bytes(buf.getvalue(), "many.zip", limits=tight)
    assert "archive_too_many_members" in _codes(report)


def test_path_traversal_members_in_zip_and_tar(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("/etc/cron.d/model.json", b"{}")
    assert "path_traversal" in _codes(scan_bytes(buf.getvalue(), "abs.zip"))
    path = tmp_path / "t.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("../../outside.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
        link = tarfile.TarInfo("model/hard")
        link.type = tarfile.LNKTYPE
        link.linkname = "/etc/shadow"
        tar.addfile(link)
    codes = _codes(scan_path(path))
    assert {"path_traversal", "archive_symlink"} <= codes


def test_zip_symlink_member_is_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("model/weights.bin")
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "/etc/passwd")
    assert "archive_symlink" in _codes(scan_bytes(buf.getvalue(), "link.zip"))


def test_symlinks_and_hardlinks_in_model_folder(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "weights.json").symlink_to("/etc/passwd")
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    os.link(outside, folder / "alias.json")
    (folder / "sub").symlink_to(tmp_path, target_is_directory=True)
    codes = _codes(scan_path(folder))
    assert {"folder_symlink", "folder_hardlink"} <= codes


def test_nested_zip_inside_zip_is_scanned() -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02cposix\nsystem\n(S'echo'\ntR.")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bundle/model.pt", inner.getvalue())
    assert "disallowed_global" in _codes(scan_bytes(outer.getvalue(), "bundle.zip"))


def test_onnx_external_data_absolute_and_symlink(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    def model(location: str) -> onnx.ModelProto:
        w = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
        w.ClearField("float_data")
        w.data_location = TensorProto.EXTERNAL
        w.external_data.add(key="location", value=location)
        graph = helper.make_graph([helper.make_node("Identity", ["w"], ["y"])], "g", [],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                                  [w])
        return helper.make_model(graph)

    (tmp_path / "abs").mkdir()
    onnx.save_model(model("/etc/passwd"), tmp_path / "abs" / "m.onnx")
    assert "onnx_external_data" in _codes(scan_path(tmp_path / "abs" / "m.onnx"))
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "w.bin").symlink_to("/etc/hostname")
    onnx.save_model(model("w.bin"), tmp_path / "link" / "m.onnx")
    assert "onnx_external_data" in _codes(scan_path(tmp_path / "link" / "m.onnx"))


def test_benign_keras_config_passes() -> None:
    config = {"module": "keras", "class_name": "Sequential", "registered_name": None,
              "config": {"name": "s", "layers": [
                  {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
                   "config": {"units": 4, "activation": "relu"}}]}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
    assert scan_bytes(buf.getvalue(), "m.keras").accepted


def test_allowlist_decisions() -> None:
    assert is_allowed("sklearn.ensemble._forest", "RandomForestClassifier")
    assert is_allowed("torch._utils", "_rebuild_tensor_v2")
    assert is_allowed("torch", "FloatStorage")
    assert not is_allowed("sklearn.utils", "resample")  # a function, not a class
    assert not is_allowed("sklearn.pipeline", "Pipeline.__init__")  # dotted traversal
    assert not is_allowed("sklearn.utils._testing", "TempMemmap")
    assert not is_allowed("torch", "load")
    assert not is_allowed("builtins", "getattr")
    assert not is_allowed("numpy", "load")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_scanner(data: bytes) -> None:
    report = scan_bytes(data, "fuzz.bin")
    assert report.verdict in set(Verdict)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=10_000))
def test_any_truncation_of_a_model_pickle_is_refused(cut: int) -> None:
    data = pickle.dumps({"coef": np.arange(20.0), "classes": ["a", "b"]}, protocol=4)
    cut = cut % (len(data) - 1) + 1
    assert not scan_bytes(data[:cut], "m.pkl").accepted


def test_zip_with_a_text_prefix_is_still_scanned() -> None:
    # zipfile (Keras, numpy.load of npz via zipfile) opens archives with leading junk
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02cposix\nsystem\n(S'echo'\ntR.")
    data = b"just a readme\n" + inner.getvalue()
    assert "disallowed_global" in _codes(scan_bytes(data, "README.md"))


def test_protocol_1_pickles_are_parsed(tmp_path: Path) -> None:
    assert scan_bytes(pickle.dumps({"w": [1.5, 2], "n": "x"}, protocol=1), "m.pkl").accepted
    bad = pickle.dumps(_Touch(tmp_path / "c"), protocol=1)
    assert "disallowed_global" in _codes(scan_bytes(bad, "m.pkl"))


def test_extra_allowed_globals_are_exact_names() -> None:
    from sklearn.preprocessing import FunctionTransformer

    data = pickle.dumps(FunctionTransformer(np.log1p).fit(np.ones((2, 2))))
    assert not scan_bytes(data, "ft.pkl").accepted
    trusted = ScanLimits(extra_allowed_globals=frozenset({"numpy.log1p"}))
    assert scan_bytes(data, "ft.pkl", limits=trusted).accepted
    assert not scan_bytes(pickle.dumps(os.system), "x.pkl", limits=trusted).accepted


def test_lz4_joblib_is_scanned_when_lz4_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("lz4")
    joblib.dump({"w": np.ones(100)}, tmp_path / "ok.joblib", compress="lz4")
    assert scan_path(tmp_path / "ok.joblib").accepted
    joblib.dump({"w": np.ones(100), "p": _Touch(tmp_path / "c")}, tmp_path / "bad.joblib",
                compress="lz4")
    assert "disallowed_global" in _codes(scan_path(tmp_path / "bad.joblib"))


def test_dict_subclass_state_is_not_a_finding() -> None:
    from sklearn.utils import Bunch

    for protocol in (0, 2, 5):
        data = pickle.dumps({"meta": Bunch(a=1, b=[1, 2])}, protocol=protocol)
        assert scan_bytes(data, "bunch.pkl").accepted


def test_label_files_that_look_like_protocol0_imports_are_text(tmp_path: Path) -> None:
    # "cat\ndog" reads as GLOBAL at.dog: no module "at" exists, pickle.load would fail
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\n")
    (tmp_path / "features.txt").write_text("income\ndebt\nage\n")
    assert scan_path(tmp_path).accepted
    (tmp_path / "labels.txt").write_text("cos\nsystem\n")  # imports os.system before failing
    assert "disallowed_global" in _codes(scan_path(tmp_path))


def test_missing_path_is_an_error_and_progress_is_reported(tmp_path: Path) -> None:
    assert scan_path(tmp_path / "nope.pkl").verdict is Verdict.ERROR
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.npy").write_bytes(b"")
    np.save(tmp_path / "b.npy", np.ones(3))
    seen: list[str] = []
    report = scan_path(tmp_path, progress=seen.append)
    assert report.accepted
    assert sorted(seen) == ["a.json", "b.npy"]


def _corpus_generator() -> object:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "assets" / "make_malicious_corpus.py"
    spec = importlib.util.spec_from_file_location("make_malicious_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_legacy_torch_tar_checkpoint_is_parsed(tmp_path: Path) -> None:
    import torch

    gen = _corpus_generator()
    record = pickle.dumps((1, "cpu", torch.FloatStorage), protocol=2)
    path = tmp_path / "old.pt"
    path.write_bytes(gen.legacy_torch_tar(record))  # type: ignore[attr-defined]
    assert torch.load(path, weights_only=False)["w"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert scan_path(path).accepted, scan_path(path).render()
    # a storage size that lies about the raw bytes that follow is an error
    bad = gen.legacy_torch_tar(record).replace(  # type: ignore[attr-defined]
        struct.pack("<q", 4), struct.pack("<q", 3), 1)
    assert scan_bytes(bad, "old.pt").verdict is Verdict.ERROR
