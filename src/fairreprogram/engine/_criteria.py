"""Fairness criteria the min-max objective can target."""

from __future__ import annotations

import enum

__all__ = ["Criterion", "parse_criterion"]


class Criterion(str, enum.Enum):
    """Which independence the adversary tests.

    ``demographic_parity``: the adversary sees only the model output (Ŷ ⟂ Z).
    ``equalized_odds``: the adversary also sees the true label (Ŷ ⟂ Z | Y).
    """

    DEMOGRAPHIC_PARITY = "demographic_parity"
    EQUALIZED_ODDS = "equalized_odds"

    @property
    def short(self) -> str:
        """Two-letter name used in file names and tables (``dp`` or ``eo``)."""
        return "dp" if self is Criterion.DEMOGRAPHIC_PARITY else "eo"

    @property
    def gap_key(self) -> str:
        """The metric key (fairlearn convention) that measures this criterion."""
        return f"{self.short}_gap"


_ALIASES = {"dp": Criterion.DEMOGRAPHIC_PARITY, "eo": Criterion.EQUALIZED_ODDS}


def parse_criterion(value: str | Criterion) -> Criterion:
    """Return the :class:`Criterion` named by ``value`` (full name or ``dp``/``eo``)."""
    if isinstance(value, Criterion):
        return value
    if isinstance(value, str):
        key = value.strip().lower()
        if key in _ALIASES:
            return _ALIASES[key]
        for member in Criterion:
            if member.value == key:
                return member
    raise ValueError(
        f"criterion={value!r} is not valid; expected one of {[c.value for c in Criterion]} (or 'dp' / 'eo')."
    )
