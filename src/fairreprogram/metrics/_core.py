"""Vectorised fairness arithmetic on (group, class) count tables.

Every quantity is derived from three ``(G, C)`` tables filled by ``np.bincount``: rows
per (group, true class), rows per (group, predicted class) and correctly predicted rows
per (group, true class). Optional per-row weights (bootstrap multiplicities) go through
the same code, so a bootstrap resample costs a few bincounts and no sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairreprogram.metrics._inputs import EncodedInputs

__all__ = [
    "METRIC_KEYS",
    "TABLE_KEYS",
    "AucRanks",
    "CountKeys",
    "GroupCounts",
    "Rates",
    "nanmean_defined",
    "safe_ratio",
    "scalar_metrics",
]

METRIC_KEYS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "auc",
    "selection_rate",
    "dp_gap",
    "eo_gap",
    "tpr_gap",
    "fpr_gap",
    "dp_gap_paper",
    "eo_gap_paper",
    "worst_group_accuracy",
    "n",
)
"""Keys of :attr:`FairnessEvaluation.overall`, in display order."""

TABLE_KEYS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "dp_gap",
    "eo_gap",
    "dp_gap_paper",
    "eo_gap_paper",
    "fpr_gap",
    "worst_group_accuracy",
)
"""The headline subset of :data:`METRIC_KEYS` that tables print (``fpr_gap``: the
false-positive-rate gap, e.g. between posts that mention an identity and the rest)."""

_NO_SCORES = "inputs.scores is None; expected encoded inputs built with a y_score."


def safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ratio, NaN where the denominator is zero."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast_shapes(numerator.shape, denominator.shape), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def nanmean_defined(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Mean over defined (non-NaN) entries; NaN where none is defined, without warnings."""
    defined = ~np.isnan(values)
    total = np.where(defined, values, 0.0).sum(axis=axis)
    return safe_ratio(total, defined.sum(axis=axis))[()]


def _spread(values: np.ndarray) -> np.ndarray:
    """Max minus min over groups (axis 0) of the defined entries; NaN if none."""
    defined = ~np.isnan(values)
    high = np.where(defined, values, -np.inf).max(axis=0)
    low = np.where(defined, values, np.inf).min(axis=0)
    return np.where(defined.any(axis=0), high - low, np.nan)


def _deviation(values: np.ndarray, overall: np.ndarray) -> np.ndarray:
    """Sum over groups (axis 0) of ``|value - overall|`` for defined entries; NaN if none."""
    defined = ~np.isnan(values) & ~np.isnan(overall)
    total = np.where(defined, np.abs(values - overall), 0.0).sum(axis=0)
    return np.where(defined.any(axis=0), total, np.nan)


@dataclass(frozen=True)
class GroupCounts:
    """Count tables of shape ``(G, C)``.

    Attributes
    ----------
    true : numpy.ndarray
        Rows of group ``g`` whose true label is class ``c``.
    pred : numpy.ndarray
        Rows of group ``g`` predicted as class ``c``.
    hit : numpy.ndarray
        Rows of group ``g`` with true label ``c`` predicted as ``c``.
    """

    true: np.ndarray
    pred: np.ndarray
    hit: np.ndarray

    @property
    def group_sizes(self) -> np.ndarray:
        """Rows per group, shape ``(G,)``."""
        return self.true.sum(axis=1)


class CountKeys:
    """Flat (group, class) bin keys of every row, computed once per evaluation.

    Parameters
    ----------
    inputs : EncodedInputs
        The encoded metric inputs.
    """

    def __init__(self, inputs: EncodedInputs) -> None:
        self.n_groups = inputs.n_groups
        self.n_classes = inputs.n_classes
        self.true_keys = inputs.group_codes * self.n_classes + inputs.true_codes
        self.pred_keys = inputs.group_codes * self.n_classes + inputs.pred_codes
        self.hit_rows = np.flatnonzero(inputs.true_codes == inputs.pred_codes)
        self.hit_keys = self.true_keys[self.hit_rows]

    def _table(self, keys: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        size = self.n_groups * self.n_classes
        counts = np.bincount(keys, weights=weights, minlength=size)
        return counts.reshape(self.n_groups, self.n_classes)

    def counts(self, weights: np.ndarray | None = None) -> GroupCounts:
        """Fill the count tables, optionally weighting each row.

        Parameters
        ----------
        weights : numpy.ndarray of shape (n,), optional
            Per-row multiplicity (a bootstrap resample); ``None`` counts each row once.

        Returns
        -------
        GroupCounts
            The ``(G, C)`` count tables.
        """
        hit_weights = None if weights is None else weights[self.hit_rows]
        return GroupCounts(
            true=self._table(self.true_keys, weights),
            pred=self._table(self.pred_keys, weights),
            hit=self._table(self.hit_keys, hit_weights),
        )


@dataclass(frozen=True)
class Rates:
    """One-vs-rest rates for the classes of interest.

    The classes of interest are the positive class for binary data and every class for
    multi-class data. Arrays are ``(G, K)`` per group and ``(K,)`` overall; NaN marks an
    undefined rate (no rows, no positives or no negatives).
    """

    selection: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    fnr: np.ndarray
    selection_overall: np.ndarray
    tpr_overall: np.ndarray
    fpr_overall: np.ndarray
    fnr_overall: np.ndarray
    positives: np.ndarray
    negatives: np.ndarray

    @classmethod
    def from_counts(cls, counts: GroupCounts, classes_of_interest: np.ndarray) -> Rates:
        """Compute the rates from count tables.

        Parameters
        ----------
        counts : GroupCounts
            The ``(G, C)`` count tables.
        classes_of_interest : numpy.ndarray
            Column indices of the classes treated as "positive", one at a time.

        Returns
        -------
        Rates
            Per-group and overall rates.
        """
        sizes = counts.group_sizes[:, None]
        positives = counts.true[:, classes_of_interest]
        predicted = counts.pred[:, classes_of_interest]
        true_pos = counts.hit[:, classes_of_interest]
        negatives = sizes - positives
        false_pos = predicted - true_pos
        false_neg = positives - true_pos
        total = sizes.sum()
        return cls(
            selection=safe_ratio(predicted, sizes),
            tpr=safe_ratio(true_pos, positives),
            fpr=safe_ratio(false_pos, negatives),
            fnr=safe_ratio(false_neg, positives),
            selection_overall=safe_ratio(predicted.sum(axis=0), total),
            tpr_overall=safe_ratio(true_pos.sum(axis=0), positives.sum(axis=0)),
            fpr_overall=safe_ratio(false_pos.sum(axis=0), negatives.sum(axis=0)),
            fnr_overall=safe_ratio(false_neg.sum(axis=0), positives.sum(axis=0)),
            positives=positives,
            negatives=negatives,
        )


def scalar_metrics(counts: GroupCounts, *, classes_of_interest: np.ndarray, auc: float) -> dict[str, float]:
    """Compute every overall metric of :data:`METRIC_KEYS` from count tables.

    Parameters
    ----------
    counts : GroupCounts
        The ``(G, C)`` count tables.
    classes_of_interest : numpy.ndarray
        Positive class (binary) or every class (multi-class, one-vs-rest).
    auc : float
        The AUC, computed separately from the scores.

    Returns
    -------
    dict
        Metric name to value; ``n`` is an int, the rest are floats (NaN if undefined).
    """
    rates = Rates.from_counts(counts, classes_of_interest)
    n = counts.true.sum()
    tpr_gaps = _spread(rates.tpr)
    fpr_gaps = _spread(rates.fpr)
    # equalized odds per class: the worse of the two gaps, or the defined one
    eo_gaps = np.fmax(tpr_gaps, fpr_gaps)
    fpr_terms = _deviation(rates.fpr, rates.fpr_overall)
    fnr_terms = _deviation(rates.fnr, rates.fnr_overall)
    eo_paper = nanmean_defined(np.stack([fpr_terms, fnr_terms]), axis=0)
    cell_accuracy = safe_ratio(counts.hit, counts.true)
    return {
        "accuracy": float(safe_ratio(counts.hit.sum(), n)),
        "balanced_accuracy": float(
            nanmean_defined(safe_ratio(counts.hit.sum(axis=0), counts.true.sum(axis=0)))
        ),
        "auc": float(auc),
        "selection_rate": float(nanmean_defined(rates.selection_overall)),
        "dp_gap": float(nanmean_defined(_spread(rates.selection))),
        "eo_gap": float(nanmean_defined(eo_gaps)),
        "tpr_gap": float(nanmean_defined(tpr_gaps)),
        "fpr_gap": float(nanmean_defined(fpr_gaps)),
        "dp_gap_paper": float(nanmean_defined(_deviation(rates.selection, rates.selection_overall))),
        "eo_gap_paper": float(nanmean_defined(np.asarray(eo_paper))),
        "worst_group_accuracy": (
            float(np.nanmin(cell_accuracy)) if np.isfinite(cell_accuracy).any() else np.nan
        ),
        "n": round(float(n)),
    }


class AucRanks:
    """Score ranks for a weighted Mann-Whitney AUC, sorted once per evaluation.

    The AUC of one class is the probability that a random positive row scores above a
    random negative row, ties counting one half; it equals the area under the ROC curve.
    Multi-class AUC is the unweighted mean of the one-vs-rest AUCs of the classes that
    have both positive and negative rows.

    Parameters
    ----------
    inputs : EncodedInputs
        Encoded inputs with ``scores`` set.
    """

    def __init__(self, inputs: EncodedInputs) -> None:
        scores = inputs.scores
        if scores is None:
            raise ValueError(_NO_SCORES)
        if inputs.pos_index is not None:
            columns = [(inputs.pos_index, scores)]
        else:
            columns = [(c, scores[:, c]) for c in range(inputs.n_classes)]
        self.class_indices = [c for c, _ in columns]
        self._parts = []
        for c, column in columns:
            _, inverse = np.unique(column, return_inverse=True)
            is_pos = inputs.true_codes == c
            pos_rows = np.flatnonzero(is_pos)
            neg_rows = np.flatnonzero(~is_pos)
            size = int(inverse.max()) + 1
            self._parts.append((pos_rows, inverse[pos_rows], neg_rows, inverse[neg_rows], size))

    def per_class(self, weights: np.ndarray | None = None) -> np.ndarray:
        """One-vs-rest AUC of each scored class, NaN where undefined.

        Parameters
        ----------
        weights : numpy.ndarray of shape (n,), optional
            Per-row multiplicity; ``None`` counts each row once.

        Returns
        -------
        numpy.ndarray
            One AUC per entry of ``class_indices``.
        """
        values = np.full(len(self._parts), np.nan)
        for i, (pos_rows, pos_bins, neg_rows, neg_bins, size) in enumerate(self._parts):
            pos_w = None if weights is None else weights[pos_rows]
            neg_w = None if weights is None else weights[neg_rows]
            pos = np.bincount(pos_bins, weights=pos_w, minlength=size).astype(np.float64)
            neg = np.bincount(neg_bins, weights=neg_w, minlength=size).astype(np.float64)
            n_pos, n_neg = pos.sum(), neg.sum()
            if n_pos > 0 and n_neg > 0:
                below = np.cumsum(neg) - neg
                values[i] = float(pos @ (below + 0.5 * neg)) / (n_pos * n_neg)
        return values

    def auc(self, weights: np.ndarray | None = None) -> float:
        """Mean one-vs-rest AUC over the classes where it is defined (NaN if none)."""
        return float(nanmean_defined(self.per_class(weights)))
