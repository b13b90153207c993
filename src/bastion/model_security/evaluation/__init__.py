"""Model evaluation: task metrics, group fairness and adversarial robustness.

Map of the package:

* ``metrics``      — accuracy, balanced accuracy, precision / recall / F1, ROC-AUC,
  confusion matrix; MAE / RMSE / R².
* ``fairness``     — per sensitive attribute, via fairlearn's ``MetricFrame``.
* ``constraints``  — :class:`TabularConstraints` (what an attacker may change) and
  :class:`RobustnessSuite` (which ART attacks, budget, sample size).
* ``robustness``   — runs the suite; adversarial rows are projected onto the
  constraints and re-checked before they count.
* ``evaluator``    — :func:`evaluate`, returning a signable :class:`EvaluationResult`.

Example::

    from bastion.model_security.evaluation import (
        RobustnessSuite, TabularConstraints, Task, evaluate,
    )
    result = evaluate(model, frame, label="default", task=Task.CLASSIFICATION, sensitive=["gender"],
                      constraints=TabularConstraints.from_frame(frame, cols, immutable={"age"}),
                      suite=RobustnessSuite())
"""

from bastion.model_security.evaluation.constraints import (
    AttackKind,
    RobustnessSuite,
    TabularConstraints,
)
from bastion.model_security.evaluation.evaluator import (
    SCHEMA_VERSION,
    EvaluationProgress,
    EvaluationResult,
    ProgressCallback,
    evaluate,
)
from bastion.model_security.evaluation.fairness import (
    Binning,
    FairnessReport,
    GroupMetrics,
    attribute_fairness,
)
from bastion.model_security.evaluation.metrics import (
    ClassificationMetrics,
    RegressionMetrics,
    Task,
    TaskMetrics,
    classification_metrics,
    regression_metrics,
)
from bastion.model_security.evaluation.robustness import (
    AttackReport,
    AttackStatus,
    Perturbation,
    RobustnessReport,
    run_robustness,
)

__all__ = [
    "SCHEMA_VERSION",
    "AttackKind",
    "AttackReport",
    "AttackStatus",
    "Binning",
    "ClassificationMetrics",
    "EvaluationProgress",
    "EvaluationResult",
    "FairnessReport",
    "GroupMetrics",
    "Perturbation",
    "ProgressCallback",
    "RegressionMetrics",
    "RobustnessReport",
    "RobustnessSuite",
    "TabularConstraints",
    "Task",
    "TaskMetrics",
    "attribute_fairness",
    "classification_metrics",
    "evaluate",
    "regression_metrics",
    "run_robustness",
]
