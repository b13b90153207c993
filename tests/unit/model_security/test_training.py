"""``bastion train``'s pure part: spec parsing / validation, seeded training, joblib output."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import polars as pl
import pytest

from bastion.model_security.errors import TrainingFailed, TrainingSpecInvalid
from bastion.model_security.training import (
    MODEL_FILENAME,
    FeatureKind,
    Task,
    load_spec,
    model_input,
    parse_spec,
    save_model,
    train,
)


def frame(n: int = 300, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, n)
    region = rng.integers(1, 4, n)
    return pl.DataFrame(
        {
            "applicant_id": np.arange(n),
            "income": income,
            "age": rng.integers(18, 70, n),
            "region": region,
            "housing": rng.choice(["own", "rent"], n),
            "gender": rng.choice(["f", "m"], n),
            "default": ((income + 5 * region + rng.normal(0, 5, n)) < 60).astype(int),
        }
    )


SPEC = """
label: default
estimator: logistic_regression
params: {C: 0.5}
sensitive: [gender]
exclude: [applicant_id]
categorical: [region]
seed: 7
"""


def test_train_from_yaml_spec_excludes_sensitive_and_scores_the_holdout() -> None:
    trained = train(parse_spec(SPEC), frame())
    kinds = {f.name: f.kind for f in trained.features}
    assert kinds == {
        "income": FeatureKind.FLOAT,
        "age": FeatureKind.INTEGER,
        "region": FeatureKind.CATEGORICAL,
        "housing": FeatureKind.CATEGORICAL,
    }
    assert "gender" not in kinds and "applicant_id" not in kinds
    assert trained.n_train + trained.n_test == 300 and trained.n_test == 75
    assert trained.holdout.to_dict()["accuracy"] > 0.7  # type: ignore[operator]
    assert trained.params["C"] == 0.5 and trained.params["random_state"] == 7
    assert trained.spec_digest.startswith("sha256:") and len(trained.spec_digest) == 71
    assert trained.to_dict()["classes"] == [0, 1]


def test_training_is_deterministic_given_the_seed() -> None:
    spec = parse_spec(
        SPEC.replace("logistic_regression", "random_forest").replace(
            "{C: 0.5}", "{n_estimators: 20}"
        )
    )
    a, b = train(spec, frame()), train(spec, frame())
    assert a.to_dict() == b.to_dict()
    x = model_input(frame(seed=1), a.features)
    assert np.array_equal(a.pipeline.predict_proba(x), b.pipeline.predict_proba(x))


def test_json_and_toml_specs_have_the_same_digest_as_yaml() -> None:
    yaml_spec = parse_spec("label: default\nestimator: decision_tree\nparams: {max_depth: 3}\n")
    json_spec = parse_spec(
        '{"label": "default", "estimator": "decision_tree", "params": {"max_depth": 3}}', "json"
    )
    toml_spec = parse_spec(
        'label = "default"\nestimator = "decision_tree"\n[params]\nmax_depth = 3\n', "toml"
    )
    assert yaml_spec.digest() == json_spec.digest() == toml_spec.digest()
    assert (
        parse_spec("label: default\nestimator: decision_tree\nseed: 1\n").digest()
        != yaml_spec.digest()
    )


def test_unknown_estimator_is_a_clear_error() -> None:
    with pytest.raises(TrainingSpecInvalid) as info:
        parse_spec("label: default\nestimator: xgboost_magic\n")
    assert "unknown estimator 'xgboost_magic'" in info.value.message
    assert info.value.hint and "random_forest" in info.value.hint


def test_bad_hyper_parameters_are_all_reported_with_their_path() -> None:
    with pytest.raises(TrainingSpecInvalid) as info:
        parse_spec(
            "label: default\nestimator: random_forest\n"
            "params: {n_estimators: 0, n_jobs: -1}\ntest_fraction: 1.5\n"
        )
    message = info.value.message
    assert "params.n_estimators: must be >= 1" in message
    assert "params.n_jobs: not allowed for random_forest" in message
    assert "test_fraction" in message


def test_estimator_must_fit_the_task_and_unknown_fields_are_refused() -> None:
    with pytest.raises(TrainingSpecInvalid, match="ridge is for regression"):
        parse_spec("label: y\nestimator: ridge\n")
    with pytest.raises(TrainingSpecInvalid, match="lable: unknown field"):
        parse_spec("label: y\nlable: y\nestimator: decision_tree\n")
    spec = parse_spec("label: y\nestimator: ridge\ntask: regression\n")
    assert spec.task is Task.REGRESSION


def test_missing_label_column_is_a_clear_error() -> None:
    with pytest.raises(TrainingSpecInvalid) as info:
        train(parse_spec("label: defaulted\nestimator: decision_tree\n"), frame())
    assert "label column not in the data: 'defaulted'" in info.value.message
    assert info.value.hint and "default" in info.value.hint


def test_single_class_label_fails_training() -> None:
    data = frame().with_columns(pl.lit(0).alias("default"))
    with pytest.raises(TrainingFailed, match="single class"):
        train(parse_spec("label: default\nestimator: decision_tree\n"), data)


def test_regression_spec_trains_and_reports_regression_metrics() -> None:
    spec = parse_spec(
        "label: income\nestimator: hist_gradient_boosting\ntask: regression\n"
        "params: {max_iter: 30}\n"
    )
    trained = train(spec, frame())
    assert set(trained.holdout.to_dict()) >= {"mae", "rmse", "r2"}
    assert trained.classes == ()


def test_save_model_writes_a_joblib_pipeline_that_round_trips(tmp_path: Path) -> None:
    trained = train(parse_spec(SPEC), frame())
    files = save_model(trained.pipeline, tmp_path / "out")
    assert files == [tmp_path / "out" / MODEL_FILENAME]
    loaded = joblib.load(files[0])
    x = model_input(frame(seed=2), trained.features)
    assert np.array_equal(loaded.predict(x), trained.pipeline.predict(x))
    modules = {type(step).__module__.split(".")[0] for _, step in loaded.steps}
    assert modules == {"sklearn"}


def test_load_spec_reads_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "train.yml"
    path.write_text(SPEC)
    assert load_spec(path) == parse_spec(SPEC)
    with pytest.raises(TrainingSpecInvalid, match="unknown spec format"):
        load_spec(tmp_path / "train.ini")


@pytest.mark.parametrize("estimator", ["random_forest", "hist_gradient_boosting"])
def test_saved_model_passes_the_serialization_scanner(tmp_path: Path, estimator: str) -> None:
    from bastion.model_security.scanning import require_safe

    spec = parse_spec(f"label: default\nestimator: {estimator}\nsensitive: [gender]\n")
    files = save_model(train(spec, frame()).pipeline, tmp_path)
    require_safe(files[0])  # raises MaliciousArtifact on refusal
