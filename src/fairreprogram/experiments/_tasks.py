"""Tasks: what a sweep needs from a data set, behind one small interface.

A task loads the splits named by a sweep config's ``data`` section and knows how to
build, save and load the base model for them. Sweeps, trials and reports only talk
to this interface, so other modalities plug in by registering a task kind for
their data spec schemes (:func:`register_task`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from torch import nn
from torch.utils.data import Dataset

from fairreprogram.data import available_datasets, default_data_dir, load_dataset
from fairreprogram.models import MLPClassifier, ResNetClassifier

__all__ = ["CelebATask", "TabularTask", "Task", "build_task", "register_task"]

_UNKNOWN_SCHEME = "data.spec={spec!r} names no known task; expected a spec starting with one of {known}."
_DATA_DIR = "{data_dir}"


class Task(Protocol):
    """What a sweep needs from a data set and its base model."""

    group_names: list[str]
    input_shape: tuple[int, ...]

    def dataset(self, split: str) -> Dataset[Any]:
        """The ``(x, y, z)`` dataset of ``split`` (``train``, ``tune``, ``val``, ``test``)."""

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, y, z)`` of ``split`` as arrays (for scikit-learn-style references)."""

    def feature_names(self) -> list[str] | None:
        """Names of the input features, where they have names."""

    def build_base(self, options: Mapping[str, Any]) -> nn.Module:
        """A fresh, untrained base model."""

    def save_base(self, model: nn.Module, directory: Path) -> None:
        """Save a base model (safetensors + JSON)."""

    def load_base(self, directory: Path) -> nn.Module:
        """Load a base model saved by :meth:`save_base`."""


class TabularTask:
    """Tabular data from :func:`fairreprogram.data.load_dataset` with an MLP base model."""

    def __init__(self, spec: str, **options: Any) -> None:
        self.data = load_dataset(spec, **options)
        self.group_names: list[str] = self.data.group_names
        self.input_shape: tuple[int, ...] = (self.data.num_features,)

    def dataset(self, split: str) -> Dataset[Any]:
        return self.data.splits[split].to_dataset()

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        part = self.data.splits[split]
        return part.X, part.y, part.z

    def feature_names(self) -> list[str] | None:
        return list(self.data.feature_names)

    def build_base(self, options: Mapping[str, Any]) -> nn.Module:
        return MLPClassifier(
            in_features=self.data.num_features,
            num_classes=self.data.num_classes,
            hidden_sizes=tuple(options.get("hidden_sizes", (64, 64))),
            dropout=float(options.get("dropout", 0.0)),
        )

    def save_base(self, model: nn.Module, directory: Path) -> None:
        model.save_pretrained(directory)  # type: ignore[operator]

    def load_base(self, directory: Path) -> nn.Module:
        return MLPClassifier.from_pretrained(directory)


class CelebATask:
    """CelebA (:func:`fairreprogram.data.load_celeba`) with a ResNet base model.

    The ``data`` section is ``{spec: "celeba:PATH", target: ..., sensitive: ...,
    image_size: 32, tune_fraction: 0.1, ...}`` (options of ``load_celeba``); the
    ``base`` section may name ``arch`` (``resnet18``, ``resnet9``, ``resnet20``).
    """

    def __init__(self, spec: str, **options: Any) -> None:
        from fairreprogram.data import load_celeba

        self.data = load_celeba(spec.split(":", 1)[1], **options)
        self.group_names: list[str] = list(self.data.group_names)
        self.input_shape: tuple[int, ...] = tuple(self.data.image_shape)

    def dataset(self, split: str) -> Dataset[Any]:
        return self.data.splits[split]

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        part = self.data.splits[split]
        x, y, z = part.batch(np.arange(len(part)))
        return x.numpy(), y.numpy(), z.numpy()

    def feature_names(self) -> list[str] | None:
        return None

    def build_base(self, options: Mapping[str, Any]) -> nn.Module:
        return ResNetClassifier(
            arch=str(options.get("arch", "resnet18")),
            num_classes=self.data.num_classes,
            in_channels=self.input_shape[0],
        )

    def save_base(self, model: nn.Module, directory: Path) -> None:
        model.save_pretrained(directory)  # type: ignore[operator]

    def load_base(self, directory: Path) -> nn.Module:
        return ResNetClassifier.from_pretrained(directory)


_TASKS: dict[str, Callable[..., Task]] = {}


def register_task(scheme: str, factory: Callable[..., Task]) -> None:
    """Route data specs ``scheme`` / ``scheme:...`` to ``factory(spec, **options)``."""
    _TASKS[scheme] = factory


for _name in available_datasets():
    register_task(_name, TabularTask)
register_task("celeba", CelebATask)


def _expand(value: Any) -> Any:
    if isinstance(value, str) and _DATA_DIR in value:
        return value.replace(_DATA_DIR, os.fspath(default_data_dir()))
    return value


_CACHE: dict[str, Task] = {}


def build_task(data: Mapping[str, Any]) -> Task:
    """Build the task of a sweep's ``data`` section (``{data_dir}`` expands to the data folder).

    Tasks are cached per process (keyed by the section), so the trials a worker runs
    load and preprocess the data once. Tasks are read-only, so sharing them is safe.
    """
    key = json.dumps(data, sort_keys=True, default=str)
    if key not in _CACHE:
        _CACHE.clear()  # one data set per sweep: keep memory bounded
        _CACHE[key] = _build(data)
    return _CACHE[key]


def _build(data: Mapping[str, Any]) -> Task:
    options = {k: _expand(v) for k, v in data.items()}
    spec = options.pop("spec")
    scheme = spec.split(":", 1)[0].strip().lower()
    if scheme not in _TASKS and spec.lower().endswith(".csv"):
        scheme = "csv"
    if scheme not in _TASKS:
        raise ValueError(_UNKNOWN_SCHEME.format(spec=spec, known=sorted(_TASKS)))
    return _TASKS[scheme](spec, **options)
