"""The four-way split protocol: fractions, encoded splits and the stratified assignment.

``train`` is what the base model is trained on; ``tune`` is the disjoint set the
fairness trigger is tuned on; ``val`` is for model selection; ``test`` is for
reporting only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Generic, TypeVar

import numpy as np
import torch
from torch.utils.data import TensorDataset

__all__ = ["SPLIT_NAMES", "FourSplits", "SplitFractions", "TabularSplit", "stratified_assignment"]

#: Split names in protocol order.
SPLIT_NAMES: tuple[str, ...] = ("train", "tune", "val", "test")

SplitT = TypeVar("SplitT")


class FourSplits(Generic[SplitT]):
    """What the tabular, image and text data classes share: four named splits, classes and groups.

    A subclass is a dataclass with the fields ``train``, ``tune``, ``val`` and ``test``
    (of type ``SplitT``) and ``class_names`` and ``group_names``.
    """

    class_names: list[str]
    group_names: list[str]

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def num_groups(self) -> int:
        """Number of sensitive groups."""
        return len(self.group_names)

    @property
    def splits(self) -> dict[str, SplitT]:
        """The four splits keyed by name, in protocol order."""
        return {name: getattr(self, name) for name in SPLIT_NAMES}


_FRACTION_RANGE = "SplitFractions.{field}={value!r} is not valid; expected a number strictly between 0 and 1."
_FRACTION_SUM = (
    "SplitFractions(train={train!r}, tune={tune!r}, val={val!r}, test={test!r}) sums to "
    "{total!r}; expected the four fractions to sum to 1 (within 1e-6)."
)
_FRACTIONS_TYPE = (
    "fractions={value!r} is not valid; expected a SplitFractions or a mapping with the keys "
    "train, tune, val and test."
)
_SPLIT_LENGTHS = (
    "TabularSplit arrays disagree in length: X has {x} rows, y {y}, z {z}, index {index}; "
    "expected one entry per row in each."
)
_SPLIT_X_SHAPE = "TabularSplit.X has shape {shape}; expected a 2-D array (rows, features)."


@dataclass(frozen=True)
class SplitFractions:
    """Fractions of the rows that go to each split.

    Parameters
    ----------
    train : float
        Rows the base (frozen) model is trained on.
    tune : float
        Rows the fairness trigger is tuned on; disjoint from ``train``.
    val : float
        Rows for model selection and early stopping.
    test : float
        Rows for reporting. Ignored when an official test frame is given; the other
        three are then renormalised to sum to 1.
    """

    train: float = 0.5
    tune: float = 0.2
    val: float = 0.1
    test: float = 0.2

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
            if not ok or not 0.0 < float(value) < 1.0:
                raise ValueError(_FRACTION_RANGE.format(field=item.name, value=value))
        total = self.train + self.tune + self.val + self.test
        if not math.isclose(total, 1.0, rel_tol=0.0, abs_tol=1e-6):
            raise ValueError(_FRACTION_SUM.format(total=total, **self.to_dict()))

    @classmethod
    def coerce(cls, value: SplitFractions | Mapping[str, float]) -> SplitFractions:
        """Return ``value`` as ``SplitFractions`` (accepts the output of :meth:`to_dict`)."""
        if isinstance(value, SplitFractions):
            return value
        if isinstance(value, Mapping) and set(value) == set(SPLIT_NAMES):
            return cls(**{name: value[name] for name in SPLIT_NAMES})
        raise TypeError(_FRACTIONS_TYPE.format(value=value))

    def to_dict(self) -> dict[str, float]:
        """Return the four fractions keyed by split name."""
        return {name: float(getattr(self, name)) for name in SPLIT_NAMES}

    def without_test(self) -> tuple[float, float, float]:
        """Return ``(train, tune, val)`` renormalised to sum to 1."""
        rest = self.train + self.tune + self.val
        return (self.train / rest, self.tune / rest, self.val / rest)


@dataclass(frozen=True, eq=False)
class TabularSplit:
    """One encoded split.

    Parameters
    ----------
    X : numpy.ndarray
        ``float32`` features of shape ``(n, d)``.
    y : numpy.ndarray
        ``int64`` class indices of shape ``(n,)``.
    z : numpy.ndarray
        ``int64`` group indices of shape ``(n,)`` (positions in ``group_names``).
    index : numpy.ndarray
        ``int64`` row positions in the source frame the split was drawn from.
    """

    X: np.ndarray
    y: np.ndarray
    z: np.ndarray
    index: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "X", np.ascontiguousarray(self.X, dtype=np.float32))
        for name in ("y", "z", "index"):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), np.int64))
        if self.X.ndim != 2:
            raise ValueError(_SPLIT_X_SHAPE.format(shape=self.X.shape))
        lengths = {"x": len(self.X), "y": len(self.y), "z": len(self.z), "index": len(self.index)}
        if len(set(lengths.values())) != 1:
            raise ValueError(_SPLIT_LENGTHS.format(**lengths))

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def to_dataset(self) -> TensorDataset:
        """Return a ``TensorDataset`` of ``(x float32, y long, z long)`` triples."""
        return TensorDataset(
            torch.from_numpy(self.X.copy()),
            torch.from_numpy(self.y.copy()),
            torch.from_numpy(self.z.copy()),
        )

    def __repr__(self) -> str:
        return f"TabularSplit(rows={len(self)}, features={self.X.shape[1]})"


def _deficit_sequence(length: int, fractions: np.ndarray) -> np.ndarray:
    # Largest-deficit apportionment: every prefix (hence every contiguous window) of the
    # sequence holds each split within about one row of its exact share.
    sequence = np.empty(length, dtype=np.int64)
    counts = np.zeros(len(fractions))
    for position in range(length):
        choice = int(np.argmax(fractions * (position + 1) - counts))
        counts[choice] += 1
        sequence[position] = choice
    return sequence


def stratified_assignment(strata: np.ndarray, *, fractions: tuple[float, ...], seed: int) -> np.ndarray:
    """Assign each row to a split, stratified by ``strata``.

    Rows are grouped by stratum (sorted), shuffled within each stratum with ``seed``,
    and laid end to end; a fixed apportionment sequence then deals the rows out. Each
    stratum is a contiguous window of that sequence, so every stratum and the whole
    frame receive each split's share to within a row or two, and rounding carries over
    between strata instead of always favouring the same split.

    Parameters
    ----------
    strata : numpy.ndarray
        Integer stratum per row (e.g. ``group * num_classes + label``).
    fractions : tuple of float
        Share of each split; sums to 1.
    seed : int
        Seed of the within-stratum shuffle.

    Returns
    -------
    numpy.ndarray
        ``int64`` split position (into ``fractions``) per row.
    """
    rng = np.random.default_rng(seed)
    order = [rng.permutation(np.flatnonzero(strata == stratum)) for stratum in np.unique(strata)]
    ordered = np.concatenate(order) if order else np.empty(0, dtype=np.int64)
    assignment = np.empty(len(strata), dtype=np.int64)
    assignment[ordered] = _deficit_sequence(len(ordered), np.asarray(fractions, dtype=float))
    return assignment
