"""Paired comparison of two classifiers' predictions on the same rows.

"Did the trigger make the model fairer, or is the change within the noise?" Two
separate bootstrap intervals that overlap do not answer it: the two models are scored
on the same rows, so their errors are correlated and the intervals of each gap are
much wider than the interval of the change. :func:`compare_fairness` resamples the
rows once per draw and scores both sets of predictions on that same resample, so the
interval it reports is that of the change itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fairreprogram.metrics._core import AucRanks, CountKeys, scalar_metrics
from fairreprogram.metrics._evaluation import (
    Evaluator,
    _check_confidence_level,
    _check_n_bootstrap,
    _classes_of_interest,
    draw_metrics,
    percentile_intervals,
)
from fairreprogram.metrics._inputs import EncodedInputs, encode_inputs

__all__ = ["FairnessComparison", "compare_fairness"]

_OTHER_CLASSES = (
    "y_pred_before and y_pred_after give different class sets ({before} and {after}) with y_true; "
    "expected predictions over the same classes. Pass pos_label, or check the predictions."
)


@dataclass
class FairnessComparison:
    """Metrics of two sets of predictions on the same rows, and their paired change.

    Attributes
    ----------
    before, after : dict
        Overall metrics of each set (the keys of ``METRIC_KEYS``).
    difference : dict
        ``after - before`` for every key but ``n``.
    confidence_intervals : dict
        ``key -> (low, high)``: percentile-bootstrap interval of the difference, both
        sets scored on the same resamples; empty when ``n_bootstrap=0``.
    confidence_level : float
        Coverage of the intervals.
    n_bootstrap : int
        Number of resamples (0: no intervals).
    warnings : list of str
        Metrics that were undefined in some resamples.
    """

    before: dict[str, float]
    after: dict[str, float]
    difference: dict[str, float]
    confidence_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    confidence_level: float = 0.95
    n_bootstrap: int = 0
    warnings: list[str] = field(default_factory=list)

    def relative_change(self, key: str) -> float:
        """``difference[key] / before[key]``; NaN when ``before[key]`` is 0 or NaN."""
        base = self.before[key]
        return self.difference[key] / base if base and not math.isnan(base) else math.nan

    def excludes_zero(self, key: str) -> bool:
        """Whether the interval of the change of ``key`` lies wholly on one side of 0."""
        if key not in self.confidence_intervals:
            raise KeyError(f"key={key!r} has no interval; run compare_fairness with n_bootstrap > 0.")
        low, high = self.confidence_intervals[key]
        return bool(low > 0.0 or high < 0.0)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (intervals as ``[low, high]`` lists)."""
        return {
            "before": dict(self.before),
            "after": dict(self.after),
            "difference": dict(self.difference),
            "confidence_intervals": {
                key: [float(low), float(high)] for key, (low, high) in self.confidence_intervals.items()
            },
            "confidence_level": float(self.confidence_level),
            "n_bootstrap": int(self.n_bootstrap),
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        parts = []
        for key in ("accuracy", "dp_gap", "eo_gap"):
            text = f"{key}: {self.before[key]:.4g} -> {self.after[key]:.4g}"
            if key in self.confidence_intervals:
                low, high = self.confidence_intervals[key]
                text += f" (change in [{low:+.4g}, {high:+.4g}])"
            parts.append(text)
        return f"FairnessComparison(n={self.before['n']}, {', '.join(parts)})"


def _encode(y_true: Any, pred: Any, sensitive: Any, score: Any, pos_label: Any, which: str) -> EncodedInputs:
    try:
        return encode_inputs(
            y_true=y_true, y_pred=pred, sensitive_features=sensitive, y_score=score, pos_label=pos_label
        )
    except (ValueError, TypeError) as error:  # name the argument: y_pred is y_pred_before or _after
        raise type(error)(f"{error} (checking y_pred_{which} and y_score_{which})") from None


def compare_fairness(
    *,
    y_true: Any,
    y_pred_before: Any,
    y_pred_after: Any,
    sensitive_features: Any,
    y_score_before: Any = None,
    y_score_after: Any = None,
    pos_label: Any = None,
    n_bootstrap: int = 1000,
    confidence_level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> FairnessComparison:
    """Compare two sets of predictions on the same rows with a paired bootstrap.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels, shared by both sets.
    y_pred_before, y_pred_after : array-like of shape (n,)
        Predicted labels of the reference model (say, the base model) and of the
        model it is compared with (say, the base model behind a trigger).
    sensitive_features : array-like
        Group membership, as in :func:`evaluate_fairness`.
    y_score_before, y_score_after : array-like, optional
        Scores for the AUC, as in :func:`evaluate_fairness`; without them the AUC is NaN.
    pos_label : label, optional
        Positive class of binary data; default is the larger label.
    n_bootstrap : int, default 1000
        Row resamples; each scores both sets on the same rows. 0 computes no intervals.
    confidence_level : float, default 0.95
        Coverage of the intervals, strictly between 0 and 1.
    random_state : int, numpy.random.Generator or None
        Seed of the resampling.

    Returns
    -------
    FairnessComparison
        Both sets' metrics, their difference (after minus before) and its intervals.

    Raises
    ------
    ValueError
        On inputs of different lengths, predictions over different class sets,
        ``n_bootstrap < 0`` or ``confidence_level`` outside (0, 1).

    Examples
    --------
    >>> result = compare_fairness(
    ...     y_true=[1, 1, 0, 0, 1, 0], y_pred_before=[1, 1, 0, 1, 0, 0],
    ...     y_pred_after=[1, 0, 0, 0, 1, 0], sensitive_features=list("aabbab"),
    ...     n_bootstrap=0,
    ... )
    >>> round(result.difference["accuracy"], 4)
    0.1667
    """
    n_bootstrap = _check_n_bootstrap(n_bootstrap)
    confidence_level = _check_confidence_level(confidence_level)
    sets = [
        _encode(y_true, pred, sensitive_features, score, pos_label, which)
        for which, pred, score in (
            ("before", y_pred_before, y_score_before),
            ("after", y_pred_after, y_score_after),
        )
    ]
    classes = [inputs.classes.tolist() for inputs in sets]
    if classes[0] != classes[1]:
        raise ValueError(_OTHER_CLASSES.format(before=classes[0], after=classes[1]))
    evaluators: list[Evaluator] = []
    points = []
    for inputs in sets:
        keys = CountKeys(inputs)
        ranks = AucRanks(inputs) if inputs.scores is not None else None
        interest = _classes_of_interest(inputs)
        auc = ranks.auc() if ranks is not None else math.nan
        points.append(scalar_metrics(keys.counts(), classes_of_interest=interest, auc=auc))
        evaluators.append((keys, ranks, interest))
    before, after = points
    difference = {key: after[key] - before[key] for key in before if key != "n"}
    intervals: dict[str, tuple[float, float]] = {}
    notes: list[str] = []
    if n_bootstrap > 0:
        draws_before, draws_after = draw_metrics(
            evaluators, n=sets[0].n_samples, n_bootstrap=n_bootstrap, rng=np.random.default_rng(random_state)
        )
        intervals, notes = percentile_intervals(draws_after - draws_before, difference, confidence_level)
    return FairnessComparison(
        before=before,
        after=after,
        difference=difference,
        confidence_intervals=intervals,
        confidence_level=confidence_level,
        n_bootstrap=n_bootstrap,
        warnings=notes,
    )
