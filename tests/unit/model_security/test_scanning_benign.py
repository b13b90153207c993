"""Benign models of every supported framework must pass the scanner."""

from __future__ import annotations

import collections
import json
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bastion.model_security.scanning import ArtifactFormat, Verdict, scan_bytes, scan_path


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((80, 4))
    return x, (x[:, 0] + x[:, 1] > 1).astype(int)


@pytest.fixture(scope="module")
def models(data: tuple[np.ndarray, np.ndarray]) -> dict[str, object]:
    return _sklearn_models(*data)


def _sklearn_models(x: np.ndarray, y: np.ndarray) -> dict[str, object]:
    import pandas as pd

    frame = pd.DataFrame({"income": x[:, 0], "debt": x[:, 1],
                          "region": np.where(x[:, 2] > 0.5, "north", "south")})
    pre = ColumnTransformer([("num", StandardScaler(), ["income", "debt"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"])])
    return {
        "logreg": LogisticRegression().fit(x, y),
        "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
        "hgb": HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "credit_pipeline": Pipeline([("pre", pre), ("m", LogisticRegression())]).fit(frame, y),
        "sparse": sp.csr_matrix(x),
        "values": {"set": {1, 2}, "fs": frozenset([3]), "c": 1j, "sl": slice(1, 5),
                   "od": collections.OrderedDict(a=1), "b": b"\x80\x04raw", "ba": bytearray(3),
                   "u": np.array(["a", "bc"]), "rec": np.zeros(3, dtype=[("a", "<i4"),
                                                                         ("b", ">f8")]),
                   "f_order": np.asfortranarray(x[:5]), "scalar": np.float32(2.5),
                   "obj": np.array(["x", None, 3], dtype=object), "dt": np.array(
                       ["2024-01-01"], dtype="datetime64[D]"), "empty": np.zeros((0, 3)), "zero_d":
                   np.array(7)},
    }


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_sklearn_pickles_pass_at_every_protocol(models: dict[str, object],
                                                protocol: int) -> None:
    for name, model in models.items():
        report = scan_bytes(pickle.dumps(model, protocol=protocol), f"{name}.pkl")
        assert report.verdict is Verdict.SAFE, report.render()


@pytest.mark.parametrize("compress", [0, "zlib", "gzip", "bz2", "lzma", "xz"])
def test_joblib_files_pass_compressed_or_not(tmp_path: Path, models: dict[str, object],
                                             compress: object) -> None:
    for name, model in models.items():
        path = tmp_path / f"{name}.joblib"
        joblib.dump(model, path, compress=compress)  # type: ignore[arg-type]
        report = scan_path(path)
        assert report.accepted, report.render()


def test_xgboost_and_lightgbm_pass(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    import lightgbm
    import xgboost

    x, y = data
    xgb = xgboost.XGBClassifier(n_estimators=3).fit(x, y)
    lgb = lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(x, y)
    xgb.save_model(tmp_path / "model.json")
    xgb.save_model(tmp_path / "model.ubj")
    lgb.booster_.save_model(tmp_path / "lgb.txt")
    joblib.dump(xgb, tmp_path / "xgb.joblib")
    joblib.dump(lgb, tmp_path / "lgb.joblib")
    (tmp_path / "xgb.pkl").write_bytes(pickle.dumps(xgb))
    (tmp_path / "lgb.pkl").write_bytes(pickle.dumps(lgb))
    report = scan_path(tmp_path)
    assert report.accepted, report.render()
    assert len(report.files) == 7


def test_onnx_from_skl2onnx_passes(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    from skl2onnx import to_onnx

    x, y = data
    model = Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]).fit(x, y)
    path = tmp_path / "model.onnx"
    path.write_bytes(to_onnx(model, x[:1].astype(np.float32)).SerializeToString())
    report = scan_path(path)
    assert report.accepted, report.render()
    assert report.files[0].format is ArtifactFormat.ONNX


def test_onnx_with_external_data_inside_folder_passes(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
                              [w])
    model = helper.make_model(graph)
    onnx.save_model(model, tmp_path / "m.onnx", save_as_external_data=True,
                    location="weights.bin", size_threshold=0)
    report = scan_path(tmp_path)
    assert report.accepted, report.render()


def test_torch_checkpoints_pass(tmp_path: Path) -> None:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.BatchNorm1d(3))
    opt = torch.optim.Adam(model.parameters())
    torch.save(model.state_dict(), tmp_path / "state_dict.pt")
    torch.save({"model": model, "optimizer": opt.state_dict(), "epoch": 3,
                "half": torch.zeros(2, dtype=torch.float16), "ids": torch.arange(5)},
               tmp_path / "full_checkpoint.pth")
    torch.save(model.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    report = scan_path(tmp_path)
    assert report.accepted, report.render()


def test_safetensors_and_npy_pass(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({"w": np.ones((3, 4), np.float32), "b": np.zeros(4, np.int64),
               "h": np.ones(5, np.float16)}, tmp_path / "model.safetensors",
              metadata={"format": "np"})
    np.save(tmp_path / "weights.npy", np.arange(10.0))
    np.savez(tmp_path / "bundle.npz", a=np.arange(3), b=np.eye(2))
    (tmp_path / "config.json").write_text(json.dumps({"n_features": 4}))
    (tmp_path / "README.md").write_text("# credit model\nTrained on 2024 data.\n")
    report = scan_path(tmp_path)
    assert report.accepted, report.render()
