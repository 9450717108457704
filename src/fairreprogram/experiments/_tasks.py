"""Tasks: what a sweep needs from a data set, behind one small interface.

A task wraps the splits that :func:`fairreprogram.data.load_dataset` returns for a
``data`` section (a spec string plus loader options) and knows how to build, save
and load the base model for them. The CLI runs, sweeps, trials and reports only
talk to this interface, so another modality plugs in by registering a dataset
loader and a task for the type of data it returns (:func:`register_task`).
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

from fairreprogram.data import ImageData, TabularData, default_data_dir, load_dataset
from fairreprogram.models import MLPClassifier, ResNetClassifier

__all__ = ["ImageTask", "TabularTask", "Task", "build_task", "register_task"]

_NO_SPEC = "data={data!r} names no spec; expected a mapping with a 'spec' key, e.g. {{'spec': 'arrests'}}."
_NO_FACTORY = "the data loader returned a {kind}; expected one of {known} (see register_task)."
_BAD_BASE = "base options {bad} are not valid for this data; expected some of {known}."
_DATA_DIR = "{data_dir}"


class Task(Protocol):
    """What a sweep needs from a data set and its base model."""

    group_names: list[str]
    class_names: list[str]
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
    """Tabular splits (:class:`fairreprogram.data.TabularData`) with an MLP base model.

    The ``base`` options are ``hidden_sizes`` (default ``[64, 64]``) and ``dropout``.
    """

    def __init__(self, data: TabularData) -> None:
        self.data = data
        self.group_names: list[str] = list(data.group_names)
        self.class_names: list[str] = [str(c) for c in data.class_names]
        self.input_shape: tuple[int, ...] = (data.num_features,)

    def dataset(self, split: str) -> Dataset[Any]:
        return self.data.splits[split].to_dataset()

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        part = self.data.splits[split]
        return part.X, part.y, part.z

    def feature_names(self) -> list[str] | None:
        return list(self.data.feature_names)

    def build_base(self, options: Mapping[str, Any]) -> nn.Module:
        _check_base_options(options, ("hidden_sizes", "dropout"))
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


class ImageTask:
    """Image splits (:class:`fairreprogram.data.ImageData`) with a ResNet base model.

    Serves every image spec: ``celeba:PATH`` (options of ``load_celeba``, e.g.
    ``target``, ``sensitive``, ``image_size``, ``tune_fraction``), ``images:CSV`` and
    ``digits``. The ``base`` options are ``arch`` (``resnet18``, ``resnet9``,
    ``resnet20``; default ``resnet18``).
    """

    def __init__(self, data: ImageData) -> None:
        self.data = data
        self.group_names: list[str] = list(data.group_names)
        self.class_names: list[str] = list(data.class_names)
        self.input_shape: tuple[int, ...] = tuple(data.image_shape)

    def dataset(self, split: str) -> Dataset[Any]:
        return self.data.splits[split]

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        part = self.data.splits[split]
        x, y, z = part.batch(np.arange(len(part)))
        return x.numpy(), y.numpy(), z.numpy()

    def feature_names(self) -> list[str] | None:
        return None

    def build_base(self, options: Mapping[str, Any]) -> nn.Module:
        _check_base_options(options, ("arch",))
        return ResNetClassifier(
            arch=str(options.get("arch", "resnet18")),
            num_classes=self.data.num_classes,
            in_channels=self.input_shape[0],
        )

    def save_base(self, model: nn.Module, directory: Path) -> None:
        model.save_pretrained(directory)  # type: ignore[operator]

    def load_base(self, directory: Path) -> nn.Module:
        return ResNetClassifier.from_pretrained(directory)


def _check_base_options(options: Mapping[str, Any], known: tuple[str, ...]) -> None:
    bad = sorted(set(options) - {*known, "train"})
    if bad:
        raise ValueError(_BAD_BASE.format(bad=bad, known=list(known)))


_FACTORIES: dict[type, Callable[[Any], Task]] = {TabularData: TabularTask, ImageData: ImageTask}


def register_task(data_type: type, factory: Callable[[Any], Task]) -> None:
    """Wrap data sets of ``data_type`` (what :func:`load_dataset` returns) in ``factory(data)``."""
    _FACTORIES[data_type] = factory


def _expand(value: Any) -> Any:
    if isinstance(value, str) and _DATA_DIR in value:
        return value.replace(_DATA_DIR, os.fspath(default_data_dir()))
    return value


_CACHE: dict[str, Task] = {}


def build_task(data: Mapping[str, Any]) -> Task:
    """Build the task of a ``data`` section: ``{spec: ..., **options of the loader}``.

    ``{data_dir}`` in a value expands to :func:`fairreprogram.data.default_data_dir`.
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
    if "spec" not in options:
        raise ValueError(_NO_SPEC.format(data=dict(data)))
    loaded = load_dataset(options.pop("spec"), **options)
    for data_type, factory in _FACTORIES.items():
        if isinstance(loaded, data_type):
            return factory(loaded)
    raise TypeError(_NO_FACTORY.format(kind=type(loaded).__name__, known=[t.__name__ for t in _FACTORIES]))
