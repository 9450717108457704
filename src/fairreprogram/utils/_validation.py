"""Input checks whose messages name the argument, the bad value and what was expected."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "FairnessWarning",
    "check_choice",
    "check_finite_array",
    "check_non_negative",
    "check_positive_int",
    "check_probability",
]


class FairnessWarning(UserWarning):
    """Issued when a fairness quantity is undefined (empty group, single class, ...)."""


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError``."""
    options = list(choices)
    if value not in options:
        raise ValueError(f"{name}={value!r} is not valid; expected one of {options}.")
    return value


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int if it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} is not valid; expected an integer >= 1.")
    return int(value)


def check_non_negative(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.number))
        or not math.isfinite(float(value))
        or value < 0
    ):
        raise ValueError(f"{name}={value!r} is not valid; expected a finite number >= 0.")
    return float(value)


def check_probability(name: str, value: Any, *, allow_zero: bool = True, allow_one: bool = True) -> float:
    """Return ``value`` as a float if it lies in [0, 1] (bounds optionally open)."""
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (v > 0 or (allow_zero and v == 0)) and (v < 1 or (allow_one and v == 1))
    if not ok:
        lo = "[0" if allow_zero else "(0"
        hi = "1]" if allow_one else "1)"
        raise ValueError(f"{name}={value!r} is not valid; expected a number in {lo}, {hi}.")
    return float(value)


def check_finite_array(name: str, array: np.ndarray) -> np.ndarray:
    """Raise ``ValueError`` naming the first non-finite entry of a numeric array."""
    values = np.asarray(array)
    if values.dtype.kind in "fc":
        bad = ~np.isfinite(values)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf), the first "
                f"at index {where} ({values[where]!r}); expected finite numbers. Impute or drop "
                "them before fitting."
            )
    return values
