"""Thin wrappers over the Adversarial Robustness Toolbox attacks.

ART is imported lazily (it is slow to import), its loggers are silenced and
its progress bars disabled; ART draws from NumPy's global generator, so each
attack runs under a fixed seed and the caller's generator state is restored.
ART only downloads data when asked to, which Bastion never does.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from bastion.model_security.evaluation._arrays import ModelArray
from bastion.model_security.evaluation._space import FloatArray
from bastion.model_security.evaluation.constraints import AttackKind, RobustnessSuite


@contextlib.contextmanager
def quiet_art(seed: int) -> Iterator[None]:
    """Silence ART's loggers and warnings, and seed NumPy's global generator for the block."""
    logger = logging.getLogger("art")
    level = logger.level
    state = np.random.get_state()
    logger.setLevel(logging.ERROR)
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        np.random.set_state(state)
        logger.setLevel(level)


def inapplicable(kind: AttackKind, arr: ModelArray) -> str | None:
    """Why ``kind`` cannot run against this model, or ``None`` when it can."""
    if kind is AttackKind.HOP_SKIP_JUMP:
        return None
    if arr.kind != "encoded":
        return "needs a scikit-learn Pipeline whose numeric preprocessing is affine"
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    if kind is AttackKind.DECISION_TREE and not isinstance(arr.estimator, DecisionTreeClassifier):
        return "needs a DecisionTreeClassifier as the final pipeline step"
    if kind in (AttackKind.FGSM, AttackKind.PGD) and not isinstance(
        arr.estimator, LogisticRegression
    ):
        return "needs gradients: a LogisticRegression as the final pipeline step"
    return None


def generate(
    kind: AttackKind,
    arr: ModelArray,
    x: FloatArray,
    y_index: NDArray[np.int_],
    nb_classes: int,
    suite: RobustnessSuite,
) -> FloatArray:
    """Adversarial arrays for rows ``x`` (true class indices ``y_index``)."""
    with quiet_art(suite.seed):
        if kind is AttackKind.HOP_SKIP_JUMP:
            out = _hop_skip_jump(arr, x, nb_classes, suite)
        elif kind is AttackKind.DECISION_TREE:
            out = _decision_tree(arr, x)
        else:
            out = _gradient(kind, arr, x, y_index, nb_classes, suite)
    return np.asarray(out, dtype=np.float64)


def _hop_skip_jump(
    arr: ModelArray, x: FloatArray, nb_classes: int, suite: RobustnessSuite
) -> object:
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import BlackBoxClassifier

    classifier = BlackBoxClassifier(
        predict_fn=arr.predict_proba,
        input_shape=(x.shape[1],),
        nb_classes=nb_classes,
        clip_values=(arr.clip_min.astype(np.float32), arr.clip_max.astype(np.float32)),
    )
    attack = HopSkipJump(
        classifier,
        norm=2,
        max_iter=suite.hsj_max_iter,
        max_eval=suite.hsj_max_eval,
        init_eval=suite.hsj_init_eval,
        init_size=50,
        verbose=False,
    )
    return attack.generate(x.astype(np.float32), mask=arr.mask.astype(np.float32))


def _decision_tree(arr: ModelArray, x: FloatArray) -> object:
    from art.attacks.evasion import DecisionTreeAttack
    from art.estimators.classification.scikitlearn import ScikitlearnDecisionTreeClassifier

    classifier = ScikitlearnDecisionTreeClassifier(model=arr.estimator)
    # the attack moves a feature just past a split threshold; 1e-3 of a std is far below any budget
    offset = float(max(np.min(arr.step_budget[arr.step_budget > 0], initial=1.0) * 1e-3, 1e-9))
    return DecisionTreeAttack(classifier, offset=offset, verbose=False).generate(x.copy())


def _gradient(
    kind: AttackKind,
    arr: ModelArray,
    x: FloatArray,
    y_index: NDArray[np.int_],
    nb_classes: int,
    suite: RobustnessSuite,
) -> object:
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescentNumpy
    from art.estimators.classification.scikitlearn import ScikitlearnLogisticRegression

    classifier = ScikitlearnLogisticRegression(model=arr.estimator)
    eps = arr.step_budget.astype(np.float64)
    labels = np.eye(nb_classes)[y_index]
    if kind is AttackKind.FGSM:
        attack: object = FastGradientMethod(
            classifier, norm=np.inf, eps=eps, eps_step=np.maximum(eps, 1e-9), targeted=False
        )
    else:
        attack = ProjectedGradientDescentNumpy(
            classifier,
            norm=np.inf,
            eps=eps,
            eps_step=np.maximum(eps / 4.0, 1e-9),
            max_iter=suite.pgd_max_iter,
            num_random_init=0,
            targeted=False,
            verbose=False,
        )
    return attack.generate(x.copy(), y=labels, mask=arr.mask)  # type: ignore[attr-defined]


__all__ = ["generate", "inapplicable", "quiet_art"]
