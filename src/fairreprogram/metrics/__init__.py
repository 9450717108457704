"""Group-fairness metrics of a classifier's predictions, in two documented conventions.

``evaluate_fairness`` returns a :class:`FairnessEvaluation` with overall metrics
(fairlearn's max-minus-min gaps and the Fairness Reprogramming paper's sum-of-deviations
gaps), per-group tables and optional bootstrap intervals. ``compare_fairness`` compares
two models' predictions on the same rows, with paired bootstrap intervals of the change.
``docs/metrics.md`` gives the formulas.
"""

from fairreprogram.metrics._comparison import FairnessComparison, compare_fairness
from fairreprogram.metrics._core import METRIC_KEYS, TABLE_KEYS
from fairreprogram.metrics._evaluation import (
    CONVENTIONS,
    FairnessEvaluation,
    demographic_parity_gap,
    equalized_odds_gap,
    evaluate_fairness,
    worst_group_accuracy,
)
from fairreprogram.metrics._inputs import GROUP_SEPARATOR

__all__ = [
    "CONVENTIONS",
    "GROUP_SEPARATOR",
    "METRIC_KEYS",
    "TABLE_KEYS",
    "FairnessComparison",
    "FairnessEvaluation",
    "compare_fairness",
    "demographic_parity_gap",
    "equalized_odds_gap",
    "evaluate_fairness",
    "worst_group_accuracy",
]
