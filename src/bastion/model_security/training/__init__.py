"""Train a model from a small spec (the pure part of ``bastion train``).

Map of the package:

* ``spec``       — :class:`TrainingSpec` parsed from YAML / JSON / TOML with clear errors.
* ``estimators`` — the estimator allow-list and hyper-parameter rules.
* ``trainer``    — :func:`train` (seeded split, scikit-learn pipeline, holdout metrics)
  and :func:`save_model` (joblib, scikit-learn objects only).

Storage, lineage and registration are wired by the workspace, not here.

Example::

    from bastion.model_security.training import parse_spec, train, save_model
    spec = parse_spec("label: default\\nestimator: random_forest\\nsensitive: [gender]\\n")
    trained = train(spec, frame)
    save_model(trained.pipeline, out_dir)
"""

from bastion.model_security.evaluation.metrics import Task
from bastion.model_security.training.estimators import EstimatorKind, ParamValue
from bastion.model_security.training.spec import (
    CategoricalEncoding,
    SpecFormat,
    TrainingSpec,
    load_spec,
    parse_spec,
    spec_from_mapping,
)
from bastion.model_security.training.trainer import (
    MODEL_FILENAME,
    FeatureInfo,
    FeatureKind,
    TrainedModel,
    build_pipeline,
    model_input,
    resolve_features,
    save_model,
    split_rows,
    train,
)

__all__ = [
    "MODEL_FILENAME",
    "CategoricalEncoding",
    "EstimatorKind",
    "FeatureInfo",
    "FeatureKind",
    "ParamValue",
    "SpecFormat",
    "Task",
    "TrainedModel",
    "TrainingSpec",
    "build_pipeline",
    "load_spec",
    "model_input",
    "parse_spec",
    "resolve_features",
    "save_model",
    "spec_from_mapping",
    "split_rows",
    "train",
]
