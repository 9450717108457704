"""Built-in benchmark data sets: UCI Adult, ProPublica COMPAS and the arrests data."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fairreprogram.data._tabular import _FILE_NOT_FOUND, TabularData, load_tabular

__all__ = [
    "ADULT_COLUMNS",
    "ADULT_DROPPED",
    "COMPAS_FEATURES",
    "COMPAS_FILE",
    "load_adult",
    "load_arrests",
    "load_compas",
]

#: The 15 column names of the raw UCI Adult files, in file order.
ADULT_COLUMNS: tuple[str, ...] = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
)
#: Adult columns left out of the features by default: ``fnlwgt`` is a census sampling
#: weight, not a property of the person; ``education`` duplicates ``education-num``.
ADULT_DROPPED: tuple[str, ...] = ("fnlwgt", "education")
ADULT_TARGET = "income"
ADULT_POSITIVE = ">50K"

#: File name of the ProPublica two-year recidivism data.
COMPAS_FILE = "compas-scores-two-years.csv"
#: COMPAS input features: demographics, juvenile and prior counts and the charge degree.
#: The COMPAS scores themselves (decile_score, score_text, ...) are never inputs.
COMPAS_FEATURES: tuple[str, ...] = (
    "sex",
    "age",
    "age_cat",
    "race",
    "juv_fel_count",
    "juv_misd_count",
    "juv_other_count",
    "priors_count",
    "c_charge_degree",
)
COMPAS_TARGET = "two_year_recid"
_COMPAS_FILTER_COLUMNS = ("days_b_screening_arrest", "is_recid", "c_charge_degree", "score_text")

ARRESTS_TARGET = "released"
ARRESTS_POSITIVE = "Yes"

# Options of load_tabular that a built-in loader records in its spec (the target and
# the positive label are fixed by the loader).
_RECORDED_OPTIONS = ("include_sensitive", "categorical", "fractions", "seed", "min_split_size")

_FIXED_OPTION = (
    "{loader}() got {option}={value!r}; the {option} of this data set is fixed by the "
    "loader. Use load_tabular() on the frame for a different one."
)
_ADULT_BAD_FORMAT = (
    "{path!r} is not in the raw UCI Adult format ({problem}); expected 15 comma-separated "
    "fields per row ({columns})."
)
_COMPAS_MISSING = (
    "{path!r} lacks the column(s) {missing}; expected the ProPublica file {file} with the columns {required}."
)
_BAD_RACES = "races={value!r} is not valid; expected None or a sequence of race names."


def _reject_fixed(loader: str, kwargs: Mapping[str, Any], fixed: Iterable[str]) -> None:
    for option in fixed:
        if option in kwargs:
            raise TypeError(_FIXED_OPTION.format(loader=loader, option=option, value=kwargs[option]))


def _record(data: TabularData, spec: str, extra: Mapping[str, Any]) -> TabularData:
    recorded = {key: data.spec[key] for key in _RECORDED_OPTIONS}
    data.spec = {"spec": spec, **extra, **recorded}
    return data


def _existing(path: Path, argument: str, expected: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(_FILE_NOT_FOUND.format(argument=argument, path=str(path), expected=expected))
    return path


def _read_adult_file(path: Path) -> pd.DataFrame:
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
    # adult.test opens with "|1x3 Cross validator"; adult.data has no such line.
    skip = 1 if first.lstrip().startswith("|") else 0
    try:
        frame = pd.read_csv(
            path,
            header=None,
            names=list(ADULT_COLUMNS),
            skiprows=skip,
            skipinitialspace=True,
            keep_default_na=False,
            na_values=[],
            skip_blank_lines=True,
            index_col=False,
        )
    except pd.errors.ParserError as error:
        raise ValueError(
            _ADULT_BAD_FORMAT.format(
                path=str(path), problem=str(error).strip(), columns=", ".join(ADULT_COLUMNS)
            )
        ) from error
    if frame[ADULT_COLUMNS[-1]].eq("").any() or frame.isna().any().any():
        raise ValueError(
            _ADULT_BAD_FORMAT.format(
                path=str(path), problem="a row has too few fields", columns=", ".join(ADULT_COLUMNS)
            )
        )
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype(str).str.strip()
    # Labels of adult.test end with a period (">50K."); adult.data's do not.
    frame[ADULT_TARGET] = frame[ADULT_TARGET].str.rstrip(".")
    return frame


def read_adult(root: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``root/adult.data`` and ``root/adult.test`` as cleaned frames.

    Whitespace is stripped, the comment line of ``adult.test`` dropped and the trailing
    period of its labels removed; ``?`` stays a value of its own.
    """
    base = Path(root).expanduser()
    expected = "the raw UCI Adult files adult.data and adult.test in this folder"
    train = _read_adult_file(_existing(base / "adult.data", "root", expected))
    test = _read_adult_file(_existing(base / "adult.test", "root", expected))
    return train, test


def load_adult(
    root: str | os.PathLike[str],
    *,
    sensitive: str | Sequence[str] = "sex",
    drop: Sequence[str] = ADULT_DROPPED,
    features: Sequence[str] | None = None,
    **kwargs: Any,
) -> TabularData:
    """Load UCI Adult (Census Income): predict ``income > 50K``.

    ``adult.data`` is the pool for train, tune and val; ``adult.test`` is the official
    test split, so ``fractions.test`` is ignored.

    Parameters
    ----------
    root : path-like
        Folder holding the raw ``adult.data`` and ``adult.test``.
    sensitive : str or sequence of str, default "sex"
        Sensitive column(s), e.g. ``"race"`` or ``["sex", "race"]``.
    drop : sequence of str, default ("fnlwgt", "education")
        Columns left out of the default features (see :data:`ADULT_DROPPED`).
    features : sequence of str, optional
        Explicit input columns; overrides ``drop``.
    **kwargs
        Other options of :func:`load_tabular` (``fractions``, ``seed``,
        ``include_sensitive``, ...).

    Returns
    -------
    TabularData
        ``test.index`` holds positions in ``adult.test``, the others in ``adult.data``.
    """
    _reject_fixed("load_adult", kwargs, ("target", "positive_label", "test_frame"))
    train, test = read_adult(root)
    chosen = features
    if chosen is None:
        chosen = [c for c in ADULT_COLUMNS if c != ADULT_TARGET and c not in drop]
    data = load_tabular(
        train,
        target=ADULT_TARGET,
        positive_label=ADULT_POSITIVE,
        sensitive=sensitive,
        features=chosen,
        test_frame=test,
        **kwargs,
    )
    extra = {
        "sensitive": data.sensitive,
        "drop": list(drop),
        "features": None if features is None else list(features),
    }
    return _record(data, f"adult:{Path(root).expanduser().resolve()}", extra)


def _compas_file(path: str | os.PathLike[str]) -> Path:
    resolved = Path(path).expanduser()
    if resolved.is_dir():
        resolved = resolved / COMPAS_FILE
    return _existing(resolved, "path", f"the ProPublica CSV {COMPAS_FILE} or a folder holding it")


def filter_compas(frame: pd.DataFrame, *, path: str = "<frame>") -> pd.DataFrame:
    """Apply ProPublica's standard filtering to the two-year COMPAS data.

    Keeps rows with ``days_b_screening_arrest`` in [-30, 30], ``is_recid != -1``,
    ``c_charge_degree != "O"`` (ordinary traffic offences) and a score text other than
    ``"N/A"`` (which pandas may also have read as missing).
    """
    required = sorted({*_COMPAS_FILTER_COLUMNS, *COMPAS_FEATURES, COMPAS_TARGET})
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            _COMPAS_MISSING.format(path=path, missing=missing, file=COMPAS_FILE, required=required)
        )
    days = pd.to_numeric(frame["days_b_screening_arrest"], errors="coerce")
    score = frame["score_text"]
    keep = (
        days.between(-30, 30)
        & (pd.to_numeric(frame["is_recid"], errors="coerce") != -1)
        & (frame["c_charge_degree"].astype(str).str.strip() != "O")
        & score.notna()
        & (score.astype(str).str.strip() != "N/A")
    )
    return frame.loc[keep].reset_index(drop=True)


def load_compas(
    path: str | os.PathLike[str],
    *,
    sensitive: str | Sequence[str] = "race",
    races: Sequence[str] | None = ("African-American", "Caucasian"),
    features: Sequence[str] | None = None,
    **kwargs: Any,
) -> TabularData:
    """Load ProPublica COMPAS: predict two-year recidivism (``two_year_recid == 1``).

    Parameters
    ----------
    path : path-like
        ``compas-scores-two-years.csv`` or a folder holding it.
    sensitive : str or sequence of str, default "race"
        Sensitive column(s), e.g. ``"sex"`` or ``["race", "sex"]``.
    races : sequence of str or None, default ("African-American", "Caucasian")
        Races kept after the standard filtering (see :func:`filter_compas`); ``None``
        keeps all.
    features : sequence of str, optional
        Input columns; default :data:`COMPAS_FEATURES` (no COMPAS scores).
    **kwargs
        Other options of :func:`load_tabular`.

    Returns
    -------
    TabularData
        ``index`` holds positions in the filtered frame.
    """
    _reject_fixed("load_compas", kwargs, ("target", "positive_label", "test_frame"))
    if races is not None and (isinstance(races, str) or not isinstance(races, Sequence)):
        raise ValueError(_BAD_RACES.format(value=races))
    source = _compas_file(path)
    frame = filter_compas(pd.read_csv(source), path=str(source))
    if races is not None:
        frame = frame.loc[frame["race"].isin(list(races))].reset_index(drop=True)
    data = load_tabular(
        frame,
        target=COMPAS_TARGET,
        positive_label=1,
        sensitive=sensitive,
        features=list(COMPAS_FEATURES) if features is None else features,
        **kwargs,
    )
    extra = {
        "sensitive": data.sensitive,
        "races": None if races is None else list(races),
        "features": None if features is None else list(features),
    }
    return _record(data, f"compas:{source.resolve()}", extra)


def load_arrests(*, sensitive: str | Sequence[str] = "colour", **kwargs: Any) -> TabularData:
    """Load the arrests data shipped with scikit-lego: predict ``released == "Yes"``.

    5,226 rows with the columns released, colour, year, age, sex, employed, citizen
    and checks; every column but the target is a feature by default.

    Parameters
    ----------
    sensitive : str or sequence of str, default "colour"
        Sensitive column(s), e.g. ``"sex"`` or ``["colour", "sex"]``.
    **kwargs
        Other options of :func:`load_tabular` (``features``, ``fractions``, ...).

    Returns
    -------
    TabularData
        The encoded splits.
    """
    from sklego.datasets import load_arrests as sklego_load_arrests

    _reject_fixed("load_arrests", kwargs, ("target", "positive_label", "test_frame"))
    frame = sklego_load_arrests(as_frame=True)
    data = load_tabular(
        frame, target=ARRESTS_TARGET, positive_label=ARRESTS_POSITIVE, sensitive=sensitive, **kwargs
    )
    features = kwargs.get("features")
    extra = {"sensitive": data.sensitive, "features": None if features is None else list(features)}
    return _record(data, "arrests", extra)
