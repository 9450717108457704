"""Validation and integer encoding of labels, groups and scores for the fairness metrics.

Everything downstream works on small integer codes (class index, group index), so the
metrics themselves reduce to ``np.bincount`` calls and never loop over rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fairreprogram.utils import check_finite_array

__all__ = ["GROUP_SEPARATOR", "EncodedInputs", "encode_inputs"]

GROUP_SEPARATOR = "|"
"""Joins the values of several sensitive columns into one intersectional group name."""

_MISSING_INPUT = "{name} is required; expected a 1-D array-like with one entry per sample."
_NOT_ONE_DIMENSIONAL = "{name} has shape {shape}; expected a 1-D array-like with one entry per sample."
_EMPTY_INPUT = "{name} is empty (0 rows); expected at least one sample."
_LENGTH_MISMATCH = (
    "{name} has {got} rows but y_true has {expected}; expected one entry per sample in "
    "y_true, y_pred, sensitive_features and y_score."
)
_MISSING_LABEL = (
    "{name} contains {count} missing label(s) (None or NaN), the first at index {index}; "
    "expected a class label in every row."
)
_MIXED_LABEL_TYPES = (
    "y_true and y_pred labels cannot be ordered together ({types}); expected labels of one "
    "kind, all numbers or all strings."
)
_POS_LABEL_NOT_FOUND = "pos_label={value!r} is not one of the labels {labels}; expected one of them."
_POS_LABEL_MULTICLASS = (
    "pos_label={value!r} was given but the labels {labels} form {count} classes; expected "
    "pos_label only for binary data (multi-class gaps are averaged one-vs-rest over classes)."
)
_BAD_SCORE_DTYPE = "y_score has dtype {dtype}; expected numeric scores or probabilities."
_BAD_SCORE_SHAPE = "y_score has shape {shape}; expected {expected} for {count} classes {labels}."
_BAD_SENSITIVE_SHAPE = (
    "sensitive_features has shape {shape}; expected a 1-D array-like or a 2-D table "
    "(DataFrame, ndarray of shape (n, k), or a list of k columns)."
)
_NO_SENSITIVE_COLUMNS = "sensitive_features has no columns; expected at least one sensitive column."
_BAD_GROUPS = (
    "groups={value!r} is not valid; expected a list of group names (strings), such as ['Female', 'Male']."
)


@dataclass(frozen=True)
class EncodedInputs:
    """Integer-coded view of validated metric inputs.

    Attributes
    ----------
    classes : numpy.ndarray
        Sorted class labels, in their original type.
    pos_index : int or None
        Index into ``classes`` of the positive class for binary data, ``None`` for
        multi-class data.
    true_codes, pred_codes : numpy.ndarray
        Index into ``classes`` of each row's true and predicted label.
    group_codes : numpy.ndarray
        Index into ``group_names`` of each row's group.
    group_names : tuple of str
        Sorted group names, including requested groups that have no rows.
    scores : numpy.ndarray or None
        Binary: shape ``(n,)``, score of the positive class. Multi-class: shape
        ``(n, C)``. ``None`` when no ``y_score`` was given.
    """

    classes: np.ndarray
    pos_index: int | None
    true_codes: np.ndarray
    pred_codes: np.ndarray
    group_codes: np.ndarray
    group_names: tuple[str, ...]
    scores: np.ndarray | None

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.true_codes.shape[0])

    @property
    def n_classes(self) -> int:
        """Number of classes (sorted union of true and predicted labels)."""
        return int(self.classes.shape[0])

    @property
    def n_groups(self) -> int:
        """Number of groups, empty requested groups included."""
        return len(self.group_names)

    @property
    def is_binary(self) -> bool:
        """Whether the rates refer to a single positive class."""
        return self.pos_index is not None


def encode_inputs(
    *,
    y_true: Any,
    y_pred: Any,
    sensitive_features: Any,
    y_score: Any = None,
    pos_label: Any = None,
    groups: Iterable[Any] | None = None,
) -> EncodedInputs:
    """Validate the metric inputs and encode them as integer codes.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted class labels.
    sensitive_features : array-like of shape (n,) or (n, k), or a list of k columns
        Group membership; several columns are joined into intersectional groups.
    y_score : array-like of shape (n,) or (n, C), optional
        Scores used for the AUC.
    pos_label : label, optional
        Positive class for binary data; default is the larger label.
    groups : iterable of str, optional
        Group names that must appear in the result even if they have no rows.

    Returns
    -------
    EncodedInputs
        The validated, integer-coded inputs.

    Raises
    ------
    ValueError
        On empty input, length mismatches, missing labels, a bad ``pos_label`` or a
        ``y_score`` of the wrong shape.
    TypeError
        On missing arguments, labels that cannot be ordered or non-numeric scores.
    """
    true = _as_1d("y_true", y_true)
    if true.shape[0] == 0:
        raise ValueError(_EMPTY_INPUT.format(name="y_true"))
    n = int(true.shape[0])
    pred = _as_1d("y_pred", y_pred)
    _check_length("y_pred", pred.shape[0], n)
    classes, true_codes, pred_codes = _encode_labels(true, pred)
    classes, true_codes, pred_codes, pos_index = _resolve_positive(classes, true_codes, pred_codes, pos_label)
    group_codes, group_names = _encode_groups(sensitive_features, n=n, groups=groups)
    scores = None
    if y_score is not None:
        scores = _encode_scores(y_score, n=n, classes=classes, pos_index=pos_index)
    return EncodedInputs(
        classes=classes,
        pos_index=pos_index,
        true_codes=true_codes,
        pred_codes=pred_codes,
        group_codes=group_codes,
        group_names=group_names,
        scores=scores,
    )


def _as_1d(name: str, values: Any) -> np.ndarray:
    if values is None:
        raise TypeError(_MISSING_INPUT.format(name=name))
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(_NOT_ONE_DIMENSIONAL.format(name=name, shape=array.shape))
    return array


def _check_length(name: str, got: int, expected: int) -> None:
    if got != expected:
        raise ValueError(_LENGTH_MISMATCH.format(name=name, got=got, expected=expected))


def _is_text(array: np.ndarray) -> bool:
    return array.dtype.kind in "US"


def _encode_labels(true: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return the sorted union of labels and the class index of every row."""
    if _is_text(true) != _is_text(pred) and "O" not in (true.dtype.kind, pred.dtype.kind):
        # numpy would silently turn the numbers into strings when concatenating
        raise TypeError(_MIXED_LABEL_TYPES.format(types=f"{true.dtype} and {pred.dtype}"))
    for name, array in (("y_true", true), ("y_pred", pred)):
        check_finite_array(name, array)
    codes, uniques = pd.factorize(np.concatenate([true, pred]))
    missing = np.flatnonzero(codes < 0)
    if missing.size:
        n = true.shape[0]
        name = "y_true" if missing[0] < n else "y_pred"
        in_array = missing[missing < n] if name == "y_true" else missing[missing >= n] - n
        raise ValueError(_MISSING_LABEL.format(name=name, count=in_array.size, index=int(in_array[0])))
    uniques = np.asarray(uniques)
    try:
        order = np.argsort(uniques, kind="stable")
    except TypeError as error:
        kinds = sorted({type(value).__name__ for value in uniques.tolist()})
        raise TypeError(_MIXED_LABEL_TYPES.format(types=", ".join(kinds))) from error
    rank = np.empty(order.shape[0], dtype=np.int64)
    rank[order] = np.arange(order.shape[0])
    codes = rank[codes]
    n = true.shape[0]
    return uniques[order], codes[:n], codes[n:]


def _resolve_positive(
    classes: np.ndarray, true_codes: np.ndarray, pred_codes: np.ndarray, pos_label: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int | None]:
    """Pick the positive class; a pos_label unseen in single-label data is added."""
    labels = classes.tolist()
    if pos_label is None:
        return classes, true_codes, pred_codes, (len(labels) - 1 if len(labels) <= 2 else None)
    matches = [index for index, label in enumerate(labels) if label == pos_label]
    if len(labels) > 2:
        raise ValueError(_POS_LABEL_MULTICLASS.format(value=pos_label, labels=labels, count=len(labels)))
    if matches:
        return classes, true_codes, pred_codes, matches[0]
    if len(labels) == 2:
        raise ValueError(_POS_LABEL_NOT_FOUND.format(value=pos_label, labels=labels))
    try:
        goes_first = bool(pos_label < labels[0])
    except TypeError as error:
        raise ValueError(_POS_LABEL_NOT_FOUND.format(value=pos_label, labels=labels)) from error
    if goes_first:
        return np.array([pos_label, labels[0]]), true_codes + 1, pred_codes + 1, 0
    return np.array([labels[0], pos_label]), true_codes, pred_codes, 1


def _encode_scores(y_score: Any, *, n: int, classes: np.ndarray, pos_index: int | None) -> np.ndarray:
    scores = np.asarray(y_score)
    if scores.dtype.kind not in "biuf":
        raise TypeError(_BAD_SCORE_DTYPE.format(dtype=scores.dtype))
    scores = scores.astype(np.float64)
    if scores.ndim == 0:
        raise ValueError(_NOT_ONE_DIMENSIONAL.format(name="y_score", shape=scores.shape))
    _check_length("y_score", scores.shape[0], n)
    check_finite_array("y_score", scores)
    binary = pos_index is not None
    if scores.ndim == 1 and binary:
        return scores
    if scores.ndim == 2 and binary and scores.shape[1] == 1:
        return scores[:, 0]
    columns = _score_columns(classes, scores.shape[1]) if scores.ndim == 2 else None
    if columns is not None:
        return scores[:, columns[pos_index]] if pos_index is not None else scores[:, columns]
    if scores.ndim == 2 and binary and classes.shape[0] == 1:
        # one label only: the AUC is undefined whichever column is used
        return scores[:, -1]
    expected = "(n,), (n, 1) or (n, 2)" if binary else f"(n, {classes.shape[0]})"
    raise ValueError(
        _BAD_SCORE_SHAPE.format(
            shape=scores.shape, expected=expected, count=classes.shape[0], labels=classes.tolist()
        )
    )


def _score_columns(classes: np.ndarray, width: int) -> np.ndarray | None:
    """Column of ``y_score`` holding each class, or ``None`` if it cannot be told.

    Columns follow the sorted class order when there is one per class (scikit-learn's
    ``predict_proba``). Wider scores are accepted when the labels are integers that index
    the columns, as argmax predictions of a model with unseen classes do.
    """
    if width == classes.shape[0]:
        return np.arange(width)
    if classes.dtype.kind not in "biuf":
        return None
    values = classes.astype(np.float64)
    if np.all(values == np.round(values)) and values.min() >= 0 and values.max() < width:
        return values.astype(np.int64)
    return None


def _is_column(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray, pd.Series, pd.Index, pd.Categorical))


def _sensitive_columns(sensitive_features: Any) -> list[np.ndarray]:
    """Split the sensitive features into a list of 1-D columns."""
    if sensitive_features is None:
        raise TypeError(_MISSING_INPUT.format(name="sensitive_features"))
    if isinstance(sensitive_features, pd.DataFrame):
        columns = [sensitive_features.iloc[:, j].to_numpy() for j in range(sensitive_features.shape[1])]
    elif isinstance(sensitive_features, pd.Series):
        columns = [sensitive_features.to_numpy()]
    elif isinstance(sensitive_features, Mapping):
        columns = [np.asarray(column) for column in sensitive_features.values()]
    elif (
        isinstance(sensitive_features, (list, tuple))
        and len(sensitive_features) > 0
        and all(_is_column(column) for column in sensitive_features)
    ):
        columns = [np.asarray(column) for column in sensitive_features]
    else:
        array = np.asarray(sensitive_features)
        if array.ndim == 1:
            columns = [array]
        elif array.ndim == 2:
            columns = [array[:, j] for j in range(array.shape[1])]
        else:
            raise ValueError(_BAD_SENSITIVE_SHAPE.format(shape=array.shape))
    if not columns:
        raise ValueError(_NO_SENSITIVE_COLUMNS)
    for column in columns:
        if column.ndim != 1:
            raise ValueError(_BAD_SENSITIVE_SHAPE.format(shape=column.shape))
    return columns


def _requested_groups(groups: Iterable[Any] | None) -> list[str]:
    if groups is None:
        return []
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Iterable):
        raise TypeError(_BAD_GROUPS.format(value=groups))
    return [str(name) for name in groups]


def _encode_groups(
    sensitive_features: Any, *, n: int, groups: Iterable[Any] | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Return each row's group index and the sorted group names."""
    columns = _sensitive_columns(sensitive_features)
    requested = _requested_groups(groups)
    combined = np.zeros(n, dtype=np.int64)
    level_names: list[list[str]] = []
    for column in columns:
        _check_length("sensitive_features", column.shape[0], n)
        codes, uniques = pd.factorize(column, use_na_sentinel=False)
        names = [str(value) for value in np.asarray(uniques).tolist()]
        combined = combined * len(names) + codes
        level_names.append(names)
    combo_codes, combos = pd.factorize(combined)
    combo_names = _combination_names(np.asarray(combos), level_names)
    group_names = sorted(set(combo_names) | set(requested))
    position = {name: index for index, name in enumerate(group_names)}
    lookup = np.array([position[name] for name in combo_names], dtype=np.int64)
    return lookup[combo_codes], tuple(group_names)


def _combination_names(combos: np.ndarray, level_names: Sequence[list[str]]) -> list[str]:
    """Decode mixed-radix combination codes into ``"a|b|c"`` names."""
    parts: list[list[str]] = []
    remainder = combos.astype(np.int64)
    for names in reversed(level_names):
        remainder, digit = np.divmod(remainder, len(names))
        parts.append([names[d] for d in digit.tolist()])
    parts.reverse()
    return [GROUP_SEPARATOR.join(values) for values in zip(*parts, strict=True)]
