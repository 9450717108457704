"""Group-fairness evaluation of a classifier's predictions: one result object, thin wrappers.

Two conventions are reported side by side (see ``docs/metrics.md``):

* fairlearn (plain keys): a gap is the max minus the min of a rate over groups;
  ``eo_gap = max(tpr_gap, fpr_gap)``.
* the paper (Zhang et al., "Fairness Reprogramming", NeurIPS 2022; ``*_paper`` keys): a gap
  is the sum over groups of ``|rate_z - rate_overall|``; ``eo_gap_paper`` is the mean of
  the FPR sum and the FNR sum.

Multi-class rates are one-vs-rest per class and every gap is averaged over classes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fairreprogram.metrics._core import (
    METRIC_KEYS,
    AucRanks,
    CountKeys,
    GroupCounts,
    Rates,
    nanmean_defined,
    safe_ratio,
    scalar_metrics,
)
from fairreprogram.metrics._inputs import EncodedInputs, encode_inputs
from fairreprogram.utils import FairnessWarning

__all__ = [
    "CONVENTIONS",
    "FairnessEvaluation",
    "demographic_parity_gap",
    "equalized_odds_gap",
    "evaluate_fairness",
    "worst_group_accuracy",
]

CONVENTIONS: tuple[str, ...] = ("fairlearn", "paper")
"""Gap conventions accepted by the scalar wrappers."""

_BAD_N_BOOTSTRAP = "n_bootstrap={value!r} is not valid; expected an integer >= 0."
_BAD_CONFIDENCE_LEVEL = "confidence_level={value!r} is not valid; expected a number strictly between 0 and 1."
_BAD_CONVENTION = "convention={value!r} is not valid; expected one of {choices}."

_SINGLE_LABEL = (
    "y_true and y_pred contain a single label ({label!r}); it is treated as the positive "
    "class, so no row is negative and every FPR is undefined. Pass pos_label to name the "
    "positive class."
)
_SINGLE_GROUP = "only one group with rows ({group!r}); every fairness gap is 0 by definition."
_EMPTY_GROUP = (
    "group {group!r} has no rows; its count is 0, its rates and accuracy are NaN, and it is "
    "left out of every gap and of worst-group accuracy."
)
_NO_POSITIVES = (
    "group {group!r} has no positive rows (true label {label!r}); its TPR and FNR{scope} are "
    "undefined (NaN) and left out of the TPR, FNR and equalized-odds gaps."
)
_NO_NEGATIVES = (
    "group {group!r} has no negative rows (true label other than {label!r}); its FPR{scope} "
    "is undefined (NaN) and left out of the FPR and equalized-odds gaps."
)
_EMPTY_CELL = " The empty cell (group {group!r}, label {label!r}) is skipped in worst-group accuracy."
_AUC_SINGLE_CLASS = "y_true contains a single class ({labels}); the AUC is undefined (NaN)."
_AUC_CLASS_UNDEFINED = (
    "class {label!r} has {count} of {n} rows in y_true; its one-vs-rest AUC is undefined and "
    "left out of the macro-averaged AUC."
)
_BOOTSTRAP_UNDEFINED = (
    "{key} was undefined (NaN) in {count} of {total} bootstrap resamples; its interval uses "
    "the other resamples."
)


@dataclass(frozen=True, eq=False, repr=False)
class FairnessEvaluation:
    """Overall, per-group and per-(group, label) fairness metrics of one set of predictions.

    Attributes
    ----------
    overall : dict
        One value per key of ``METRIC_KEYS``; NaN where undefined, ``n`` an int.
    by_group : pandas.DataFrame
        Indexed by group name; columns ``count``, ``selection_rate``, ``tpr``, ``fpr``,
        ``fnr``, ``accuracy``. Multi-class rates are one-vs-rest averages over classes.
    by_group_label : pandas.DataFrame
        MultiIndex ``(group, label)`` over the labels present in ``y_true``; columns
        ``count``, ``accuracy``, ``selection_rate``.
    by_group_class : pandas.DataFrame
        MultiIndex ``(group, class)`` over every class; one-vs-rest ``selection_rate``,
        ``tpr``, ``fpr``, ``fnr`` of each class, plus ``count`` (rows in the group) and
        ``n_true`` (rows of the group whose true label is the class).
    confidence_intervals : dict
        ``key -> (low, high)`` percentile-bootstrap intervals for every key of ``overall``
        except ``n``; empty when ``n_bootstrap=0``.
    warnings : list of str
        Messages of the ``FairnessWarning`` issued during the evaluation.
    classes : tuple
        Sorted class labels.
    pos_label : label or None
        Positive class of binary data; ``None`` for multi-class data.
    confidence_level : float
        Coverage of the intervals.
    n_bootstrap : int
        Number of bootstrap resamples (0: no intervals).
    """

    overall: dict[str, float]
    by_group: pd.DataFrame
    by_group_label: pd.DataFrame
    by_group_class: pd.DataFrame
    confidence_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    classes: tuple[Any, ...] = ()
    pos_label: Any = None
    confidence_level: float = 0.95
    n_bootstrap: int = 0

    def summary(self) -> dict[str, float]:
        """Return a copy of :attr:`overall`."""
        return dict(self.overall)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; NaN stays ``float('nan')``.

        Returns
        -------
        dict
            Keys ``overall``, ``by_group`` (rows with a ``group`` key), ``by_group_label``
            (rows with ``group`` and ``label``), ``by_group_class`` (rows with ``group``
            and ``class``), ``confidence_intervals`` (``key -> [low, high]``),
            ``warnings``, ``classes``, ``pos_label``, ``confidence_level`` and
            ``n_bootstrap``.
        """
        return {
            "overall": {key: _native(value) for key, value in self.overall.items()},
            "by_group": _records(self.by_group),
            "by_group_label": _records(self.by_group_label),
            "by_group_class": _records(self.by_group_class),
            "confidence_intervals": {
                key: [float(low), float(high)] for key, (low, high) in self.confidence_intervals.items()
            },
            "warnings": list(self.warnings),
            "classes": [_native(label) for label in self.classes],
            "pos_label": _native(self.pos_label),
            "confidence_level": float(self.confidence_level),
            "n_bootstrap": int(self.n_bootstrap),
        }

    def __repr__(self) -> str:
        shown = ("accuracy", "dp_gap", "eo_gap", "worst_group_accuracy")
        values = ", ".join(f"{key}={self.overall[key]:.4g}" for key in shown)
        return (
            f"FairnessEvaluation(n={self.overall['n']}, groups={len(self.by_group)}, "
            f"classes={len(self.classes)}, {values}, warnings={len(self.warnings)})"
        )


def _native(value: Any) -> Any:
    """Turn numpy scalars into plain Python values for JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(key): _native(value) for key, value in row.items()}
        for row in frame.reset_index().to_dict(orient="records")
    ]


def evaluate_fairness(
    *,
    y_true: Any,
    y_pred: Any,
    sensitive_features: Any,
    y_score: Any = None,
    pos_label: Any = None,
    groups: Iterable[Any] | None = None,
    n_bootstrap: int = 0,
    confidence_level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> FairnessEvaluation:
    """Evaluate accuracy and group-fairness gaps of predictions.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted class labels (ints or strings). The classes are the sorted
        union of both; two classes make the data binary, more make it multi-class.
    sensitive_features : array-like of shape (n,) or (n, k), DataFrame, or list of k columns
        Group membership. Several columns are joined into intersectional groups named
        like ``"Female|Black"``. Group names are strings and are sorted.
    y_score : array-like of shape (n,) or (n, C), optional
        Binary: score of the positive class, or an ``(n, 2)`` array whose columns follow
        the sorted classes (``predict_proba`` order). Multi-class: ``(n, C)`` class scores
        for a macro one-vs-rest AUC. Without it ``auc`` is NaN.
    pos_label : label, optional
        Positive class of binary data; default is the larger label (1 for 0/1).
    groups : iterable of str, optional
        Group names expected in the result; listed groups without rows get count 0,
        NaN rates and a warning.
    n_bootstrap : int, default 0
        Number of percentile-bootstrap resamples of rows; 0 computes no intervals.
    confidence_level : float, default 0.95
        Coverage of the bootstrap intervals, strictly between 0 and 1.
    random_state : int, numpy.random.Generator or None
        Seed of the bootstrap resampling.

    Returns
    -------
    FairnessEvaluation
        Overall metrics, per-group tables, intervals and warnings.

    Raises
    ------
    ValueError
        On empty input, inputs of different lengths, a bad ``pos_label``, a ``y_score``
        of the wrong shape, ``n_bootstrap < 0`` or ``confidence_level`` outside (0, 1).
    TypeError
        On missing inputs, labels that cannot be ordered, or non-numeric scores.

    Warns
    -----
    FairnessWarning
        When a rate, a cell or the AUC is undefined, a requested group is empty or there
        is a single group; the messages are also kept in ``.warnings``.
    """
    # a pass-through so that every public entry point sits at the same stack depth
    return _evaluate(
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sensitive_features,
        y_score=y_score,
        pos_label=pos_label,
        groups=groups,
        n_bootstrap=n_bootstrap,
        confidence_level=confidence_level,
        random_state=random_state,
    )


def _check_n_bootstrap(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(_BAD_N_BOOTSTRAP.format(value=value))
    return int(value)


def _check_confidence_level(value: Any) -> float:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or not 0.0 < float(value) < 1.0:
        raise ValueError(_BAD_CONFIDENCE_LEVEL.format(value=value))
    return float(value)


def _evaluate(
    *,
    y_true: Any,
    y_pred: Any,
    sensitive_features: Any,
    y_score: Any = None,
    pos_label: Any = None,
    groups: Iterable[Any] | None = None,
    n_bootstrap: int = 0,
    confidence_level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> FairnessEvaluation:
    """Shared body of the public functions; warnings point two frames up."""
    n_bootstrap = _check_n_bootstrap(n_bootstrap)
    confidence_level = _check_confidence_level(confidence_level)
    inputs = encode_inputs(
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=sensitive_features,
        y_score=y_score,
        pos_label=pos_label,
        groups=groups,
    )
    interest = _classes_of_interest(inputs)
    keys = CountKeys(inputs)
    counts = keys.counts()
    ranks = AucRanks(inputs) if inputs.scores is not None else None
    auc_per_class = ranks.per_class() if ranks is not None else None
    auc = float(nanmean_defined(auc_per_class)) if auc_per_class is not None else math.nan
    overall = scalar_metrics(counts, classes_of_interest=interest, auc=auc)

    messages = _diagnose(inputs, counts, interest)
    if ranks is not None and auc_per_class is not None:
        messages += _auc_messages(inputs, counts, ranks.class_indices, auc_per_class)
    intervals: dict[str, tuple[float, float]] = {}
    if n_bootstrap > 0:
        (draws,) = draw_metrics(
            [(keys, ranks, interest)],
            n=inputs.n_samples,
            n_bootstrap=n_bootstrap,
            rng=np.random.default_rng(random_state),
        )
        intervals, notes = percentile_intervals(draws, overall, confidence_level)
        messages += notes
    for message in messages:
        warnings.warn(message, FairnessWarning, stacklevel=3)

    by_group, by_group_label, by_group_class = _tables(inputs, keys, counts, interest)
    return FairnessEvaluation(
        overall=overall,
        by_group=by_group,
        by_group_label=by_group_label,
        by_group_class=by_group_class,
        confidence_intervals=intervals,
        warnings=messages,
        classes=tuple(inputs.classes.tolist()),
        pos_label=None if inputs.pos_index is None else inputs.classes[inputs.pos_index],
        confidence_level=confidence_level,
        n_bootstrap=n_bootstrap,
    )


def _classes_of_interest(inputs: EncodedInputs) -> np.ndarray:
    """Positive class for binary data, every class (one-vs-rest) otherwise."""
    if inputs.pos_index is not None:
        return np.array([inputs.pos_index])
    return np.arange(inputs.n_classes)


def _diagnose(inputs: EncodedInputs, counts: GroupCounts, interest: np.ndarray) -> list[str]:
    """List the undefined rates and cells of the point estimate."""
    labels = inputs.classes.tolist()
    names = inputs.group_names
    sizes = counts.group_sizes
    messages: list[str] = []
    if len(labels) == 1:
        messages.append(_SINGLE_LABEL.format(label=labels[0]))
    populated = np.flatnonzero(sizes > 0)
    if populated.size == 1:
        messages.append(_SINGLE_GROUP.format(group=names[populated[0]]))
    rates = Rates.from_counts(counts, interest)
    in_y_true = set(np.flatnonzero(counts.true.sum(axis=0) > 0).tolist())

    def cell_note(group: str, c: int | None) -> str:
        # an empty (group, label) cell always coincides with an undefined rate, so the
        # worst-group-accuracy note rides on that rate's message
        return _EMPTY_CELL.format(group=group, label=labels[c]) if c in in_y_true else ""

    for g, group in enumerate(names):
        if sizes[g] == 0:
            messages.append(_EMPTY_GROUP.format(group=group))
            continue
        for j, c in enumerate(interest.tolist()):
            scope = "" if inputs.is_binary else f" for class {labels[c]!r} (one-vs-rest)"
            if rates.positives[g, j] == 0:
                message = _NO_POSITIVES.format(group=group, label=labels[c], scope=scope)
                messages.append(message + cell_note(group, c))
            if rates.negatives[g, j] == 0:
                negative = 1 - c if inputs.is_binary and len(labels) == 2 else None
                message = _NO_NEGATIVES.format(group=group, label=labels[c], scope=scope)
                messages.append(message + cell_note(group, negative))
    return messages


def _auc_messages(
    inputs: EncodedInputs, counts: GroupCounts, class_indices: list[int], per_class: np.ndarray
) -> list[str]:
    labels = inputs.classes.tolist()
    present = counts.true.sum(axis=0)
    if inputs.is_binary:
        if np.isnan(per_class).all():
            in_y_true = [labels[c] for c in np.flatnonzero(present > 0).tolist()]
            return [_AUC_SINGLE_CLASS.format(labels=in_y_true)]
        return []
    return [
        _AUC_CLASS_UNDEFINED.format(label=labels[c], count=int(present[c]), n=inputs.n_samples)
        for c, value in zip(class_indices, per_class.tolist(), strict=True)
        if math.isnan(value)
    ]


def _tables(
    inputs: EncodedInputs, keys: CountKeys, counts: GroupCounts, interest: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Build the by-group, by-(group, label) and by-(group, class) frames."""
    labels = inputs.classes.tolist()
    names = list(inputs.group_names)
    sizes = counts.group_sizes
    rates = Rates.from_counts(counts, interest)
    by_group = pd.DataFrame(
        {
            "count": sizes.astype(np.int64),
            "selection_rate": nanmean_defined(rates.selection, axis=1),
            "tpr": nanmean_defined(rates.tpr, axis=1),
            "fpr": nanmean_defined(rates.fpr, axis=1),
            "fnr": nanmean_defined(rates.fnr, axis=1),
            "accuracy": safe_ratio(counts.hit.sum(axis=1), sizes),
        },
        index=pd.Index(names, name="group"),
    )

    present = np.flatnonzero(counts.true.sum(axis=0) > 0)
    # rows of each (group, true label) cell predicted as a class of interest
    selected = np.bincount(
        keys.true_keys,
        weights=np.isin(inputs.pred_codes, interest).astype(np.float64),
        minlength=inputs.n_groups * inputs.n_classes,
    ).reshape(inputs.n_groups, inputs.n_classes)
    by_group_label = pd.DataFrame(
        {
            "count": counts.true[:, present].astype(np.int64).ravel(),
            "accuracy": safe_ratio(counts.hit, counts.true)[:, present].ravel(),
            "selection_rate": safe_ratio(selected, counts.true * interest.size)[:, present].ravel(),
        },
        index=pd.MultiIndex.from_product(
            [names, [labels[c] for c in present.tolist()]], names=["group", "label"]
        ),
    )

    every = Rates.from_counts(counts, np.arange(inputs.n_classes))
    by_group_class = pd.DataFrame(
        {
            "count": np.repeat(sizes.astype(np.int64), inputs.n_classes),
            "n_true": counts.true.astype(np.int64).ravel(),
            "selection_rate": every.selection.ravel(),
            "tpr": every.tpr.ravel(),
            "fpr": every.fpr.ravel(),
            "fnr": every.fnr.ravel(),
        },
        index=pd.MultiIndex.from_product([names, labels], names=["group", "class"]),
    )
    return by_group, by_group_label, by_group_class


Evaluator = tuple[CountKeys, AucRanks | None, np.ndarray]
"""What one set of predictions needs for resampled metrics: count keys, AUC ranks, classes."""


def draw_metrics(
    evaluators: list[Evaluator], *, n: int, n_bootstrap: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Scalar metrics of each evaluator on the same ``n_bootstrap`` row resamples.

    Returns one ``(n_bootstrap, len(names))`` array per evaluator, columns in
    :func:`resampled_names` order; resample ``b`` is the same rows for every evaluator,
    so differences between them are paired.
    """
    names = resampled_names()
    draws = [np.empty((n_bootstrap, len(names))) for _ in evaluators]
    for b in range(n_bootstrap):
        # a resample as row multiplicities keeps every table a weighted bincount
        weights = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        for table, (keys, ranks, interest) in zip(draws, evaluators, strict=True):
            auc = ranks.auc(weights) if ranks is not None else math.nan
            values = scalar_metrics(keys.counts(weights), classes_of_interest=interest, auc=auc)
            table[b] = [values[name] for name in names]
    return draws


def resampled_names() -> list[str]:
    """The metric keys that get bootstrap intervals (all but ``n``)."""
    return [key for key in METRIC_KEYS if key != "n"]


def percentile_intervals(
    draws: np.ndarray, point: dict[str, float], confidence_level: float
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Percentile intervals of each column of ``draws``, and notes on undefined resamples."""
    n_bootstrap = draws.shape[0]
    tail = (1.0 - confidence_level) / 2.0
    intervals: dict[str, tuple[float, float]] = {}
    messages: list[str] = []
    for j, name in enumerate(resampled_names()):
        finite = draws[~np.isnan(draws[:, j]), j]
        if finite.size == 0:
            intervals[name] = (math.nan, math.nan)
            continue
        if finite.size < n_bootstrap and not math.isnan(point[name]):
            messages.append(
                _BOOTSTRAP_UNDEFINED.format(key=name, count=n_bootstrap - finite.size, total=n_bootstrap)
            )
        low, high = np.quantile(finite, [tail, 1.0 - tail])
        intervals[name] = (float(low), float(high))
    return intervals, messages


def _gap_key(base: str, convention: str) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(_BAD_CONVENTION.format(value=convention, choices=CONVENTIONS))
    return base if convention == "fairlearn" else f"{base}_paper"


def demographic_parity_gap(
    *,
    y_true: Any,
    y_pred: Any,
    sensitive_features: Any,
    convention: str = "fairlearn",
    pos_label: Any = None,
) -> float:
    """Demographic-parity gap of predictions.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted class labels.
    sensitive_features : array-like
        Group membership, as in :func:`evaluate_fairness`.
    convention : {"fairlearn", "paper"}, default "fairlearn"
        ``"fairlearn"``: max minus min of the selection rate over groups (equals
        ``fairlearn.metrics.demographic_parity_difference``). ``"paper"``: sum over groups
        of ``|P(y_hat=pos | Z=z) - P(y_hat=pos)|``.
    pos_label : label, optional
        Positive class of binary data; default is the larger label.

    Returns
    -------
    float
        The gap (one-vs-rest average over classes for multi-class data).
    """
    key = _gap_key("dp_gap", convention)
    return _evaluate(
        y_true=y_true, y_pred=y_pred, sensitive_features=sensitive_features, pos_label=pos_label
    ).overall[key]


def equalized_odds_gap(
    *,
    y_true: Any,
    y_pred: Any,
    sensitive_features: Any,
    convention: str = "fairlearn",
    pos_label: Any = None,
) -> float:
    """Equalized-odds gap of predictions.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted class labels.
    sensitive_features : array-like
        Group membership, as in :func:`evaluate_fairness`.
    convention : {"fairlearn", "paper"}, default "fairlearn"
        ``"fairlearn"``: ``max(tpr_gap, fpr_gap)`` with max-minus-min gaps (equals
        ``fairlearn.metrics.equalized_odds_difference``). ``"paper"``: mean of
        ``sum_z |FPR_z - FPR|`` and ``sum_z |FNR_z - FNR|``.
    pos_label : label, optional
        Positive class of binary data; default is the larger label.

    Returns
    -------
    float
        The gap (one-vs-rest average over classes for multi-class data).
    """
    key = _gap_key("eo_gap", convention)
    return _evaluate(
        y_true=y_true, y_pred=y_pred, sensitive_features=sensitive_features, pos_label=pos_label
    ).overall[key]


def worst_group_accuracy(*, y_true: Any, y_pred: Any, sensitive_features: Any) -> float:
    """Lowest accuracy over (group, true label) cells that have rows.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted class labels.
    sensitive_features : array-like
        Group membership, as in :func:`evaluate_fairness`.

    Returns
    -------
    float
        ``min over (z, y)`` of ``P(y_hat = y | Z = z, Y = y)``.
    """
    return _evaluate(y_true=y_true, y_pred=y_pred, sensitive_features=sensitive_features).overall[
        "worst_group_accuracy"
    ]
