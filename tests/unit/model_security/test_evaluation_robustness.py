"""Adversarial-robustness suite on synthetic credit data: real models, real ART attacks.

Attack regressions are named after the attack (evasion by FGSM / PGD /
DecisionTreeAttack / HopSkipJump) and check that constraints hold on the
returned adversarial rows, not only in the summary numbers.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import polars as pl
import pytest

from bastion.model_security.evaluation import (
    AttackKind,
    AttackStatus,
    RobustnessReport,
    RobustnessSuite,
    TabularConstraints,
    Task,
    evaluate,
)
from bastion.model_security.training import TrainedModel, parse_spec, train

FEATURES = ("age", "income", "debt", "dependents", "employment")


def credit_frame(n: int = 800, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 75, n)
    income = rng.normal(50, 15, n).clip(5)
    debt = rng.normal(20, 8, n).clip(0)
    dependents = rng.integers(0, 5, n)
    employment = rng.choice(["salaried", "self", "none"], n, p=[0.6, 0.3, 0.1])
    score = (
        0.05 * income
        - 0.12 * debt
        + 0.02 * (age - 40)
        - 0.2 * dependents
        - 1.0 * (employment == "none")
        + rng.normal(0, 0.5, n)
    )
    return pl.DataFrame(
        {
            "age": age,
            "income": income,
            "debt": debt,
            "dependents": dependents,
            "employment": employment,
            "gender": rng.choice(["f", "m"], n),
            "default": (score < np.median(score)).astype(int),
        }
    )


@cache
def trained(estimator: str) -> TrainedModel:
    spec = parse_spec(f"label: default\nestimator: {estimator}\nsensitive: [gender]\nseed: 1\n")
    return train(spec, credit_frame())


def robustness(estimator: str, eps: float, attacks: tuple[AttackKind, ...]) -> RobustnessReport:
    model = trained(estimator)
    frame = credit_frame()[list(model.test_rows)]
    constraints = TabularConstraints.from_frame(frame, model.feature_names, immutable={"age"})
    result = evaluate(
        model.pipeline,
        frame,
        label="default",
        task=Task.CLASSIFICATION,
        sensitive=["gender"],
        features=model.feature_names,
        constraints=constraints,
        suite=RobustnessSuite(attacks=attacks, eps=eps, sample_size=80, hsj_sample_size=10),
    )
    json.dumps(result.to_dict(), allow_nan=False)
    assert result.robustness is not None
    return result.robustness


def assert_constraints_hold(
    report: RobustnessReport, reference: pl.DataFrame | None = None
) -> None:
    sample = report.sample
    assert sample is not None
    if reference is None:
        reference = credit_frame()[list(trained("logistic_regression").test_rows)]
    for attack in report.attacks:
        if attack.status is AttackStatus.SKIPPED:
            continue
        adv = attack.adversarial
        assert adv is not None
        original = sample.head(adv.height)
        assert adv["age"].to_list() == original["age"].to_list()  # immutable
        for column in ("age", "dependents"):
            assert adv.schema[column].is_integer()  # integer features stay integers
        assert adv["employment"].to_list() == original["employment"].to_list()
        assert set(adv["employment"].to_list()) <= {"salaried", "self", "none"}
        budget = report.suite.eps * reference["income"].std()
        assert (adv["income"] - original["income"]).abs().max() <= budget + 1e-9  # type: ignore[operator]
        assert adv["debt"].min() >= 0 - 1e-9  # type: ignore[operator]


def test_fgsm_and_pgd_evasion_of_logistic_regression_succeed_with_a_big_budget() -> None:
    report = robustness("logistic_regression", 2.0, (AttackKind.FGSM, AttackKind.PGD))
    for attack in report.attacks:
        assert attack.status is AttackStatus.RAN and attack.space == "encoded"
        assert attack.success_rate is not None and attack.success_rate > 0.3
        assert attack.adversarial_accuracy is not None and attack.clean_accuracy is not None
        assert attack.adversarial_accuracy < attack.clean_accuracy
        assert attack.perturbation_std_units.linf_mean is not None
        assert attack.perturbation_std_units.linf_mean <= 2.0 + 1e-6
        assert sum(attack.successful) == attack.n_successful
    assert "age" in report.fixed_features and "employment" in report.fixed_features
    assert_constraints_hold(report)


def test_evasion_with_zero_budget_never_succeeds() -> None:
    report = robustness("logistic_regression", 0.0, (AttackKind.FGSM, AttackKind.HOP_SKIP_JUMP))
    for attack in report.attacks:
        assert attack.success_rate == 0.0
        assert attack.adversarial_accuracy == attack.clean_accuracy


def test_decision_tree_attack_evasion_is_projected_and_rechecked() -> None:
    big = robustness("decision_tree", 2.0, (AttackKind.DECISION_TREE, AttackKind.FGSM))
    tree_attack, fgsm = big.attacks
    assert tree_attack.status is AttackStatus.RAN
    assert tree_attack.success_rate is not None and tree_attack.success_rate > 0
    # the raw attack also changes one-hot and immutable columns; some of those do not survive
    assert tree_attack.unconstrained_success_rate is not None
    assert tree_attack.success_rate <= tree_attack.unconstrained_success_rate
    assert fgsm.status is AttackStatus.SKIPPED and fgsm.reason and "gradients" in fgsm.reason
    assert_constraints_hold(big)
    zero = robustness("decision_tree", 0.0, (AttackKind.DECISION_TREE,))
    assert zero.attacks[0].success_rate == 0.0


def test_hop_skip_jump_black_box_evasion_respects_constraints() -> None:
    report = robustness("decision_tree", 1.5, (AttackKind.HOP_SKIP_JUMP,))
    attack = report.attacks[0]
    assert attack.status is AttackStatus.RAN
    assert attack.n_rows == 10
    assert attack.success_rate is not None and attack.success_rate > 0
    assert_constraints_hold(report)


def test_generic_space_attacks_a_pipeline_with_non_affine_preprocessing() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, QuantileTransformer

    frame = credit_frame()
    pipe = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        (
                            "num",
                            QuantileTransformer(n_quantiles=50),
                            ["age", "income", "debt", "dependents"],
                        ),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["employment"]),
                    ]
                ),
            ),
            ("model", LogisticRegression()),
        ]
    ).fit(frame.select(FEATURES).to_pandas(), frame["default"].to_numpy())
    result = evaluate(
        pipe,
        frame,
        label="default",
        task=Task.CLASSIFICATION,
        sensitive=[],
        constraints=TabularConstraints.from_frame(frame, FEATURES, immutable={"age"}),
        suite=RobustnessSuite(
            attacks=(AttackKind.HOP_SKIP_JUMP, AttackKind.PGD),
            eps=1.5,
            sample_size=40,
            hsj_sample_size=6,
        ),
    )
    assert result.robustness is not None
    hsj, pgd = result.robustness.attacks
    assert hsj.space == "generic" and hsj.status is AttackStatus.RAN
    assert pgd.status is AttackStatus.SKIPPED
    assert_constraints_hold(result.robustness, frame)


def test_same_seed_gives_the_same_numbers() -> None:
    first = robustness("logistic_regression", 1.0, (AttackKind.PGD,)).to_dict()
    second = robustness("logistic_regression", 1.0, (AttackKind.PGD,)).to_dict()
    for report in (first, second):
        for attack in report["attacks"]:  # type: ignore[union-attr]
            attack.pop("duration_s")
    assert first == second


def test_constraints_reject_reversed_bounds() -> None:
    from bastion.model_security.errors import EvaluationInputInvalid

    with pytest.raises(EvaluationInputInvalid, match="reversed"):
        TabularConstraints(bounds={"income": (10.0, 1.0)})
