"""Generic tabular loading: a frame (or CSV) in, four encoded, stratified splits out."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairreprogram.data._preprocess import (
    _MISSING_COLUMNS,
    _NON_FINITE_COLUMN,
    TabularPreprocessor,
    categorical_values,
    is_categorical,
)
from fairreprogram.data._splits import (
    SPLIT_NAMES,
    FourSplits,
    SplitFractions,
    TabularSplit,
    stratified_assignment,
)
from fairreprogram.utils import check_positive_int

__all__ = ["TabularData", "load_csv", "load_tabular"]

_NOT_A_FRAME = "{argument}={value!r} is not valid; expected a pandas.DataFrame."
_EMPTY_FRAME = "{argument} has no rows (columns {columns}); expected a non-empty frame."
_BAD_SENSITIVE = (
    "sensitive={value!r} is not valid; expected a column name or a non-empty list of column names."
)
_TARGET_IN_FEATURES = (
    "features={features!r} contains the target column {target!r}; expected input columns "
    "only (the label would leak into the model)."
)
_NO_FEATURES = (
    "features={features!r} is empty after removing the target {target!r}"
    "{sensitive_note}; expected at least one input column."
)
_TARGET_MISSING_VALUES = (
    "Target column {target!r} has {count} missing value(s); expected a label on every row. "
    "Drop those rows first."
)
_SINGLE_GROUP = (
    "sensitive={sensitive!r} defines a single group {groups}; expected at least two groups "
    "to measure fairness between."
)
_SINGLE_CLASS = "Target column {target!r} has a single class {classes}; expected at least two classes."
_POSITIVE_LABEL_SINGLE_CLASS = (
    "positive_label={positive_label!r} matches {matched} of {total} rows of target column "
    "{target!r}; expected both positive and negative rows. Values found: {values}."
)
_NOT_BINARY = (
    "Target column {target!r} has {count} classes {classes} but binary=True; expected two "
    "classes. Pass positive_label=<one of them> for a one-vs-rest target, or binary=False."
)
_SPLIT_TOO_SMALL = (
    "Split {split!r} has {size} rows out of {total} rows in total; expected at least "
    "min_split_size={min_split_size}. Use more data, larger fractions or a smaller "
    "min_split_size."
)
_BAD_SEED = "seed={value!r} is not valid; expected an integer >= 0."
_FILE_NOT_FOUND = "{argument}={path!r}: no such file; expected {expected}."


@dataclass(eq=False)
class TabularData(FourSplits[TabularSplit]):
    """Four encoded splits of one tabular data set and how they were made.

    Attributes
    ----------
    train, tune, val, test : TabularSplit
        Disjoint splits: the base model trains on ``train``; the fairness trigger is
        tuned on ``tune``; ``val`` is for model selection; ``test`` for reporting.
    feature_names : list of str
        Names of the encoded input features (``"age"``, ``"sex=Female"``, ...).
    class_names : list of str
        Class name per label index; for a ``positive_label`` target the positive class
        is last (index 1).
    group_names : list of str
        Sorted group names; ``z`` is a position in this list. Intersectional groups
        are named ``"a|b"`` in the order of ``sensitive``.
    target : str
        Target column.
    sensitive : list of str
        Sensitive columns.
    preprocessor : TabularPreprocessor
        The encoder, fitted on ``train`` only.
    spec : dict
        JSON-ready description of how the data was loaded. When ``spec["spec"]`` is a
        spec string, ``load_dataset(**spec)`` rebuilds the same splits; it is ``None``
        for an in-memory frame, whose options can still be passed back to
        :func:`load_tabular` with the frame.
    """

    train: TabularSplit
    tune: TabularSplit
    val: TabularSplit
    test: TabularSplit
    feature_names: list[str]
    class_names: list[str]
    group_names: list[str]
    target: str
    sensitive: list[str]
    preprocessor: TabularPreprocessor
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def num_features(self) -> int:
        """Number of encoded input features."""
        return len(self.feature_names)

    def summary(self) -> dict[str, Any]:
        """Return sizes and label rates per split and group (JSON-ready).

        ``positive_rate`` is the share of the last class (the positive one for a binary
        target); ``class_rates`` lists the share of every class.
        """
        return {
            "spec": self.spec.get("spec"),
            "target": self.target,
            "sensitive": list(self.sensitive),
            "num_features": self.num_features,
            "class_names": list(self.class_names),
            "group_names": list(self.group_names),
            "splits": {name: self._split_summary(split) for name, split in self.splits.items()},
        }

    def _rates(self, y: np.ndarray) -> dict[str, Any]:
        counts = np.bincount(y, minlength=self.num_classes)
        total = max(int(counts.sum()), 1)
        rates = [float(c) / total for c in counts]
        return {"size": len(y), "positive_rate": rates[-1], "class_rates": rates}

    def _split_summary(self, split: TabularSplit) -> dict[str, Any]:
        out = self._rates(split.y)
        out["groups"] = {name: self._rates(split.y[split.z == g]) for g, name in enumerate(self.group_names)}
        return out

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(split)}" for name, split in self.splits.items())
        return (
            f"TabularData(target={self.target!r}, sensitive={self.sensitive!r}, "
            f"features={self.num_features}, groups={self.group_names!r}, {sizes})"
        )


# ---------------------------------------------------------------------------------------
# argument resolution


def _check_frame(frame: Any, argument: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(_NOT_A_FRAME.format(argument=argument, value=type(frame).__name__))
    if len(frame) == 0:
        raise ValueError(_EMPTY_FRAME.format(argument=argument, columns=list(map(str, frame.columns))))
    return frame.reset_index(drop=True)


def _as_names(value: str | Sequence[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(_BAD_SENSITIVE.format(value=value))


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], argument: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            _MISSING_COLUMNS.format(
                argument=argument, missing=missing, available=list(map(str, frame.columns))
            )
        )


def _resolve_features(
    frame: pd.DataFrame,
    *,
    target: str,
    sensitive: list[str],
    features: Sequence[str] | None,
    include_sensitive: bool,
) -> list[str]:
    if features is None:
        chosen = [str(c) for c in frame.columns if c != target]
    else:
        chosen = [features] if isinstance(features, str) else list(features)
        _require_columns(frame, chosen, "features")
        if target in chosen:
            raise ValueError(_TARGET_IN_FEATURES.format(features=chosen, target=target))
        if include_sensitive:
            chosen += [c for c in sensitive if c not in chosen]
    if not include_sensitive:
        chosen = [c for c in chosen if c not in sensitive]
    if not chosen:
        note = "" if include_sensitive else f" and the sensitive columns {sensitive}"
        raise ValueError(_NO_FEATURES.format(features=features, target=target, sensitive_note=note))
    return chosen


def _check_numeric_finite(frame: pd.DataFrame, features: list[str], categorical: list[str]) -> None:
    for column in features:
        series = frame[column]
        if is_categorical(series, name=column, categorical=categorical):
            continue
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise ValueError(_NON_FINITE_COLUMN.format(column=column, count=bad))


# ---------------------------------------------------------------------------------------
# labels and groups


def _positive_labels(values: pd.Series, *, target: str, positive_label: Any) -> tuple[np.ndarray, list[str]]:
    wanted = str(positive_label).strip()
    text = categorical_values(values)
    y = text == wanted
    number = isinstance(positive_label, (int, float, np.number)) and not isinstance(positive_label, bool)
    if number and pd.api.types.is_numeric_dtype(values):
        y |= values.to_numpy(dtype=np.float64) == float(positive_label)
    if y.all() or not y.any():
        raise ValueError(
            _POSITIVE_LABEL_SINGLE_CLASS.format(
                positive_label=positive_label,
                matched=int(y.sum()),
                total=len(y),
                target=target,
                values=sorted(set(text))[:20],
            )
        )
    others = sorted(set(text[~y]))
    negative = others[0] if len(others) == 1 else f"not {wanted}"
    return y.astype(np.int64), [negative, wanted]


def _encode_labels(
    values: pd.Series, *, target: str, positive_label: Any, binary: bool
) -> tuple[np.ndarray, list[str]]:
    missing = int(values.isna().sum())
    if missing:
        raise ValueError(_TARGET_MISSING_VALUES.format(target=target, count=missing))
    if positive_label is not None:
        return _positive_labels(values, target=target, positive_label=positive_label)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        keys = values.to_numpy()
        classes = np.unique(keys)
        names = [str(c.item()) for c in classes]
    else:
        keys = categorical_values(values)
        classes = np.asarray(sorted(set(keys)), dtype=object)
        names = [str(c) for c in classes]
    if len(names) < 2:
        raise ValueError(_SINGLE_CLASS.format(target=target, classes=names))
    if binary and len(names) > 2:
        raise ValueError(_NOT_BINARY.format(target=target, count=len(names), classes=names))
    lookup = {key: i for i, key in enumerate(classes.tolist())}
    y = np.fromiter((lookup[k] for k in keys.tolist()), dtype=np.int64, count=len(keys))
    return y, names


def _encode_groups(frame: pd.DataFrame, sensitive: list[str]) -> tuple[np.ndarray, list[str]]:
    parts = [categorical_values(frame[column]) for column in sensitive]
    keys = ["|".join(row) for row in zip(*parts, strict=True)]
    names = sorted(set(keys))
    if len(names) < 2:
        raise ValueError(_SINGLE_GROUP.format(sensitive=sensitive, groups=names))
    lookup = {name: i for i, name in enumerate(names)}
    z = np.fromiter((lookup[k] for k in keys), dtype=np.int64, count=len(keys))
    return z, names


# ---------------------------------------------------------------------------------------
# splitting


def _assign_splits(
    *,
    strata: np.ndarray,
    n_pool: int,
    n_test_frame: int,
    fractions: SplitFractions,
    seed: int,
) -> dict[str, np.ndarray]:
    """Return row positions (into the concatenated frames) per split."""
    pool = strata[:n_pool]
    if n_test_frame:
        names = SPLIT_NAMES[:3]
        assignment = stratified_assignment(pool, fractions=fractions.without_test(), seed=seed)
    else:
        names = SPLIT_NAMES
        shares = tuple(fractions.to_dict()[name] for name in names)
        assignment = stratified_assignment(pool, fractions=shares, seed=seed)
    rows = {name: np.flatnonzero(assignment == i) for i, name in enumerate(names)}
    if n_test_frame:
        rows["test"] = np.arange(n_pool, n_pool + n_test_frame)
    return rows


def _check_sizes(rows: dict[str, np.ndarray], *, total: int, min_split_size: int) -> None:
    for name in SPLIT_NAMES:
        size = len(rows[name])
        if size < min_split_size:
            raise ValueError(
                _SPLIT_TOO_SMALL.format(split=name, size=size, total=total, min_split_size=min_split_size)
            )


def _check_options(*, seed: Any, min_split_size: Any) -> tuple[int, int]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(_BAD_SEED.format(value=seed))
    return int(seed), check_positive_int("min_split_size", min_split_size)


# ---------------------------------------------------------------------------------------
# public loaders


def load_tabular(
    frame: pd.DataFrame,
    *,
    target: str,
    sensitive: str | Sequence[str],
    features: Sequence[str] | None = None,
    positive_label: Any = None,
    binary: bool = True,
    include_sensitive: bool = True,
    categorical: Sequence[str] | None = None,
    test_frame: pd.DataFrame | None = None,
    fractions: SplitFractions | Mapping[str, float] = SplitFractions(),  # noqa: B008
    seed: int = 0,
    min_split_size: int = 20,
) -> TabularData:
    """Encode a frame into stratified train / tune / val / test splits.

    Parameters
    ----------
    frame : pandas.DataFrame
        Source rows (the pool split into train, tune, val and, without ``test_frame``,
        test).
    target : str
        Label column.
    sensitive : str or sequence of str
        Sensitive column(s). Several columns form intersectional groups named
        ``"a|b"``; the group index is the position in the sorted group names.
    features : sequence of str, optional
        Input columns; default every column except the target (and except the
        sensitive columns when ``include_sensitive=False``).
    positive_label : object, optional
        ``y = 1`` where ``str(value).strip() == str(positive_label).strip()`` (or, for
        a numeric column, where the value equals it); ``y = 0`` elsewhere.
    binary : bool, default True
        Without ``positive_label``, refuse a target with more than two classes.
    include_sensitive : bool, default True
        Whether the sensitive columns are also model inputs.
    categorical : sequence of str, optional
        Numeric columns to one-hot encode anyway.
    test_frame : pandas.DataFrame, optional
        An official test split. It becomes ``test`` as is; ``fractions.test`` is then
        ignored and the other three fractions are renormalised over ``frame``.
    fractions : SplitFractions or mapping, default SplitFractions()
        Share of each split.
    seed : int, default 0
        Seed of the stratified (group x label) shuffle.
    min_split_size : int, default 20
        Smallest allowed split.

    Returns
    -------
    TabularData
        The encoded splits. ``index`` holds positions in ``frame``, or in
        ``test_frame`` for the test split when one is given.
    """
    frame = _check_frame(frame, "frame")
    frames = [frame] if test_frame is None else [frame, _check_frame(test_frame, "test_frame")]
    sensitive_cols = _as_names(sensitive)
    categorical_cols = [] if categorical is None else list(categorical)
    split_fractions = SplitFractions.coerce(fractions)
    seed, min_split_size = _check_options(seed=seed, min_split_size=min_split_size)
    _require_columns(frame, [target], "target")
    _require_columns(frame, sensitive_cols, "sensitive")
    _require_columns(frame, categorical_cols, "categorical")
    feature_cols = _resolve_features(
        frame,
        target=target,
        sensitive=sensitive_cols,
        features=features,
        include_sensitive=include_sensitive,
    )
    if test_frame is not None:
        _require_columns(frames[1], [*feature_cols, target, *sensitive_cols], "test_frame")
    used = list(dict.fromkeys([*feature_cols, target, *sensitive_cols]))
    combined = pd.concat([f[used] for f in frames], ignore_index=True)
    _check_numeric_finite(combined, feature_cols, categorical_cols)
    y, class_names = _encode_labels(
        combined[target], target=target, positive_label=positive_label, binary=binary
    )
    z, group_names = _encode_groups(combined, sensitive_cols)
    rows = _assign_splits(
        strata=z * len(class_names) + y,
        n_pool=len(frame),
        n_test_frame=0 if test_frame is None else len(frames[1]),
        fractions=split_fractions,
        seed=seed,
    )
    _check_sizes(rows, total=len(combined), min_split_size=min_split_size)
    preprocessor = TabularPreprocessor(categorical=categorical_cols)
    preprocessor.fit(combined.iloc[rows["train"]], feature_cols)
    features_x = preprocessor.transform(combined)
    offsets = {name: (len(frame) if name == "test" and test_frame is not None else 0) for name in SPLIT_NAMES}
    splits = {
        name: TabularSplit(X=features_x[r], y=y[r], z=z[r], index=r - offsets[name])
        for name, r in rows.items()
    }
    spec = {
        "spec": None,
        "target": target,
        "sensitive": sensitive_cols,
        "features": None if features is None else list(features),
        "positive_label": positive_label,
        "binary": bool(binary),
        "include_sensitive": bool(include_sensitive),
        "categorical": None if categorical is None else categorical_cols,
        "fractions": split_fractions.to_dict(),
        "seed": seed,
        "min_split_size": min_split_size,
    }
    return TabularData(
        **splits,
        feature_names=list(preprocessor.feature_names_),
        class_names=class_names,
        group_names=group_names,
        target=target,
        sensitive=sensitive_cols,
        preprocessor=preprocessor,
        spec=spec,
    )


def _read_csv(path: str | os.PathLike[str], argument: str, options: Mapping[str, Any]) -> pd.DataFrame:
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise FileNotFoundError(
            _FILE_NOT_FOUND.format(argument=argument, path=str(path), expected="a CSV file")
        )
    return pd.read_csv(resolved, **options)


def load_csv(
    path: str | os.PathLike[str],
    *,
    test_path: str | os.PathLike[str] | None = None,
    read_csv_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> TabularData:
    """Read a CSV with :func:`pandas.read_csv` and encode it with :func:`load_tabular`.

    Parameters
    ----------
    path : path-like
        CSV file with a header row.
    test_path : path-like, optional
        CSV with an official test split (passed as ``test_frame``).
    read_csv_kwargs : mapping, optional
        Extra options for :func:`pandas.read_csv` (``sep``, ``na_values``, ...).
    **kwargs
        Options of :func:`load_tabular` (``target`` and ``sensitive`` are required).

    Returns
    -------
    TabularData
        The encoded splits; ``spec`` reloads them with ``load_dataset(**spec)``.
    """
    options = dict(read_csv_kwargs or {})
    frame = _read_csv(path, "path", options)
    if test_path is not None:
        kwargs["test_frame"] = _read_csv(test_path, "test_path", options)
    data = load_tabular(frame, **kwargs)
    data.spec = {
        **data.spec,
        "spec": f"csv:{Path(path).expanduser().resolve()}",
        "test_path": None if test_path is None else str(Path(test_path).expanduser().resolve()),
        "read_csv_kwargs": options or None,
    }
    return data
