"""Train-only preprocessing of tabular frames into float32 model inputs.

Numeric columns are standardised with the mean and (population) standard deviation
seen in the training split; categorical columns are one-hot encoded with the
categories seen there. The fitted state is plain JSON so that a run directory can
re-create the exact transform without pickles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

__all__ = ["MISSING_CATEGORY", "TabularPreprocessor", "categorical_values", "is_categorical"]

#: Category that NaN / None becomes in a categorical column.
MISSING_CATEGORY = "missing"

_FORMAT_KIND = "TabularPreprocessor"
_FORMAT_VERSION = 1

_NOT_FITTED = (
    "This TabularPreprocessor is not fitted yet; call fit(frame, columns) on the training "
    "split before {method}()."
)
_MISSING_COLUMNS = (
    "{argument}: column(s) {missing} not found in the frame; expected names among the "
    "available columns {available}."
)
_NON_FINITE_COLUMN = (
    "Numeric feature column {column!r} contains {count} non-finite value(s) (NaN or inf); "
    "expected finite numbers. Impute or drop them, or list the column in categorical= so "
    "that NaN becomes the category 'missing'."
)
_NOT_NUMERIC = (
    "Column {column!r} was numeric when the preprocessor was fitted but has dtype {dtype} "
    "now; expected values convertible to float."
)
_EMPTY_COLUMNS = "columns={columns!r} is not valid; expected at least one column name."
_BAD_STATE = (
    "state={state!r} is not valid; expected a dict written by TabularPreprocessor.to_dict() "
    "(kind {kind!r}, version {version})."
)
_BAD_CATEGORICAL = "categorical={categorical!r} is not valid; expected None or a sequence of column names."


def is_categorical(series: pd.Series, *, name: str, categorical: Sequence[str] = ()) -> bool:
    """Return whether a column is one-hot encoded rather than standardised.

    Object, string, category and bool dtypes are categorical; so is any column named
    in ``categorical``. Everything else (ints, floats) is numeric.
    """
    if name in categorical:
        return True
    if pd.api.types.is_bool_dtype(series):
        return True
    return not pd.api.types.is_numeric_dtype(series)


def categorical_values(series: pd.Series) -> np.ndarray:
    """Return a column as stripped strings, with NaN / None mapped to ``"missing"``."""
    values = series.astype(object).to_numpy()
    missing = pd.isna(values)
    out = np.empty(len(values), dtype=object)
    out[missing] = MISSING_CATEGORY
    out[~missing] = [str(value).strip() for value in values[~missing]]
    return out


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], argument: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(
            _MISSING_COLUMNS.format(
                argument=argument, missing=missing, available=list(map(str, frame.columns))
            )
        )


def _numeric_values(series: pd.Series, column: str) -> np.ndarray:
    try:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as error:
        raise ValueError(_NOT_NUMERIC.format(column=column, dtype=series.dtype)) from error
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise ValueError(_NON_FINITE_COLUMN.format(column=column, count=bad))
    return values


class TabularPreprocessor:
    """Standardise numeric columns and one-hot encode categorical ones.

    Parameters
    ----------
    categorical : sequence of str, optional
        Columns to one-hot encode even though their dtype is numeric (codes such as
        ``education-num`` stored as integers).

    Attributes
    ----------
    columns_ : list of str
        Input columns in the order they were fitted.
    numeric_ : dict of str to tuple of float
        ``(mean, scale)`` per numeric column; a zero standard deviation becomes 1.
    categories_ : dict of str to list of str
        Sorted categories seen in the fitted frame per categorical column. A category
        not seen at fit time is encoded as all zeros.
    feature_names_ : list of str
        Output feature names: the column name for numeric columns and
        ``"column=category"`` for one-hot columns.
    """

    def __init__(self, *, categorical: Sequence[str] | None = None) -> None:
        if categorical is not None and (
            isinstance(categorical, str) or not isinstance(categorical, Sequence)
        ):
            raise TypeError(_BAD_CATEGORICAL.format(categorical=categorical))
        self.categorical = list(categorical or ())

    def fit(self, frame: pd.DataFrame, columns: Sequence[str] | None = None) -> TabularPreprocessor:
        """Learn means, scales and categories from ``frame`` (the training split only).

        Parameters
        ----------
        frame : pandas.DataFrame
            Training rows.
        columns : sequence of str, optional
            Input columns, in output order; all columns of ``frame`` when omitted.

        Returns
        -------
        TabularPreprocessor
            ``self``, fitted.
        """
        names = [str(c) for c in (frame.columns if columns is None else columns)]
        if not names:
            raise ValueError(_EMPTY_COLUMNS.format(columns=columns))
        _check_columns(frame, names, "columns")
        numeric: dict[str, tuple[float, float]] = {}
        categories: dict[str, list[str]] = {}
        for column in names:
            series = frame[column]
            if is_categorical(series, name=column, categorical=self.categorical):
                categories[column] = sorted(set(categorical_values(series)))
            else:
                values = _numeric_values(series, column)
                mean = float(values.mean()) if len(values) else 0.0
                std = float(values.std()) if len(values) else 0.0
                numeric[column] = (mean, std if std > 0 else 1.0)
        self.columns_ = names
        self.numeric_ = numeric
        self.categories_ = categories
        self.feature_names_ = self._feature_names()
        return self

    def _feature_names(self) -> list[str]:
        names: list[str] = []
        for column in self.columns_:
            if column in self.numeric_:
                names.append(column)
            else:
                names.extend(f"{column}={category}" for category in self.categories_[column])
        return names

    def _check_fitted(self, method: str) -> None:
        if not hasattr(self, "feature_names_"):
            raise NotFittedError(_NOT_FITTED.format(method=method))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode ``frame`` with the fitted statistics.

        Returns
        -------
        numpy.ndarray
            ``float32`` array of shape ``(len(frame), len(feature_names_))``.
        """
        self._check_fitted("transform")
        _check_columns(frame, self.columns_, "frame")
        blocks: list[np.ndarray] = []
        for column in self.columns_:
            if column in self.numeric_:
                mean, scale = self.numeric_[column]
                values = _numeric_values(frame[column], column)
                blocks.append(((values - mean) / scale)[:, None])
            else:
                categories = self.categories_[column]
                values = categorical_values(frame[column])
                blocks.append(values[:, None] == np.asarray(categories, dtype=object)[None, :])
        return np.hstack([block.astype(np.float64) for block in blocks]).astype(np.float32)

    def fit_transform(self, frame: pd.DataFrame, columns: Sequence[str] | None = None) -> np.ndarray:
        """Fit on ``frame`` and return its encoding."""
        return self.fit(frame, columns).transform(frame)

    @property
    def num_features(self) -> int:
        """Number of output features."""
        self._check_fitted("num_features")
        return len(self.feature_names_)

    def to_dict(self) -> dict[str, Any]:
        """Return the fitted state as plain JSON-ready data (see :meth:`from_dict`)."""
        self._check_fitted("to_dict")
        spec: list[dict[str, Any]] = []
        for column in self.columns_:
            if column in self.numeric_:
                mean, scale = self.numeric_[column]
                spec.append({"name": column, "kind": "numeric", "mean": mean, "scale": scale})
            else:
                spec.append(
                    {
                        "name": column,
                        "kind": "categorical",
                        "categories": list(self.categories_[column]),
                    }
                )
        return {
            "kind": _FORMAT_KIND,
            "version": _FORMAT_VERSION,
            "categorical": list(self.categorical),
            "columns": spec,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> TabularPreprocessor:
        """Re-create a fitted preprocessor from :meth:`to_dict` output."""
        if (
            not isinstance(state, Mapping)
            or state.get("kind") != _FORMAT_KIND
            or state.get("version") != _FORMAT_VERSION
            or not isinstance(state.get("columns"), list)
        ):
            raise ValueError(_BAD_STATE.format(state=state, kind=_FORMAT_KIND, version=_FORMAT_VERSION))
        self = cls(categorical=list(state.get("categorical", [])))
        numeric: dict[str, tuple[float, float]] = {}
        categories: dict[str, list[str]] = {}
        try:
            for entry in state["columns"]:
                if entry["kind"] == "numeric":
                    numeric[str(entry["name"])] = (float(entry["mean"]), float(entry["scale"]))
                else:
                    categories[str(entry["name"])] = [str(c) for c in entry["categories"]]
            self.columns_ = [str(entry["name"]) for entry in state["columns"]]
        except (KeyError, TypeError) as error:
            raise ValueError(
                _BAD_STATE.format(state=state, kind=_FORMAT_KIND, version=_FORMAT_VERSION)
            ) from error
        self.numeric_ = numeric
        self.categories_ = categories
        self.feature_names_ = self._feature_names()
        return self

    def __repr__(self) -> str:
        if not hasattr(self, "feature_names_"):
            return "TabularPreprocessor(unfitted)"
        return (
            f"TabularPreprocessor(numeric={len(self.numeric_)}, "
            f"categorical={len(self.categories_)}, features={len(self.feature_names_)})"
        )
