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

from fairreprogram.data import ImageData, TabularData, TextData, default_data_dir, load_dataset
from fairreprogram.models import (
    MLPClassifier,
    ResNetClassifier,
    TextClassifier,
    default_text_model_path,
    vocabulary_fingerprint,
)
from fairreprogram.triggers import Trigger, build_trigger

__all__ = ["ImageTask", "TabularTask", "Task", "TextTask", "build_task", "register_task"]

_NO_ARRAYS = (
    "text data has no feature array for scikit-learn references such as the threshold method; "
    "expected tabular or image data for it."
)
_OTHER_TOKENIZER = (
    "base model={model!r} uses another vocabulary than the data's tokenizer={tokenizer!r}; expected the "
    "data section's 'tokenizer' to be the base model's folder."
)
#: Keys of a ``data`` section that configure the task rather than the loader.
TASK_OPTIONS = ("tokenizer", "max_length")

_NO_SPEC = "data={data!r} names no spec; expected a mapping with a 'spec' key, e.g. {{'spec': 'arrests'}}."
_NO_FACTORY = "the data loader returned a {kind}; expected one of {known} (see register_task)."
_BAD_BASE = "base options {bad} are not valid for this data; expected some of {known}."
_TASK_OPTION = "data options {bad} are only for text data; the data here is {kind}."
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

    def build_trigger(self, kind: str, base: nn.Module, options: Mapping[str, Any]) -> Trigger:
        """A fresh trigger of ``kind`` for ``base`` on this data."""


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

    def build_trigger(self, kind: str, base: nn.Module, options: Mapping[str, Any]) -> Trigger:
        return build_trigger(kind, input_shape=self.input_shape, **dict(options))


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

    def build_trigger(self, kind: str, base: nn.Module, options: Mapping[str, Any]) -> Trigger:
        return build_trigger(kind, input_shape=self.input_shape, **dict(options))


class TextTask:
    """Text splits (:class:`fairreprogram.data.TextData`) with a Hugging Face classifier base.

    The ``data`` section names the texts (``text:PATH``, ``csv:PATH`` with ``text_col``,
    ``civilcomments:PATH``; options of the loader) and, besides, ``tokenizer`` (a
    model folder; default the offline all-MiniLM-L6-v2) and ``max_length`` (tokens;
    default 128; the texts are cut to it). Every split is tokenised once (cached on
    disk). The ``base`` options are ``model`` (a model folder, default the same as
    the tokenizer; a fresh classification head is added) and ``max_length`` (the
    model's limit for text plus trigger; default what its position embeddings allow).
    """

    def __init__(self, data: Any, *, tokenizer: str | None = None, max_length: int = 128) -> None:
        from transformers import AutoConfig, AutoTokenizer

        self.model_path = str(tokenizer) if tokenizer is not None else str(default_text_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
        self.max_length = int(max_length)
        self.raw = data
        self.data = data.tokenize(self.tokenizer, max_length=self.max_length)
        self.group_names: list[str] = list(data.group_names)
        self.class_names: list[str] = list(data.class_names)
        config = AutoConfig.from_pretrained(self.model_path, local_files_only=True)
        self.input_shape: tuple[int, ...] = (int(config.vocab_size), int(config.hidden_size))

    def dataset(self, split: str) -> Dataset[Any]:
        return self.data.splits[split]

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise ValueError(_NO_ARRAYS)

    def feature_names(self) -> list[str] | None:
        return None

    def build_base(self, options: Mapping[str, Any]) -> nn.Module:
        _check_base_options(options, ("model", "max_length"))
        model = TextClassifier.from_pretrained(
            options.get("model", self.model_path),
            num_labels=len(self.class_names),
            max_length=options.get("max_length"),  # default: what the model allows (texts + trigger)
        )
        if model.fingerprint != vocabulary_fingerprint(self.tokenizer):
            raise ValueError(_OTHER_TOKENIZER.format(model=options.get("model"), tokenizer=self.model_path))
        return model

    def save_base(self, model: nn.Module, directory: Path) -> None:
        model.save_pretrained(directory)  # type: ignore[operator]

    def load_base(self, directory: Path) -> nn.Module:
        return TextClassifier.from_pretrained(directory)

    def build_trigger(self, kind: str, base: nn.Module, options: Mapping[str, Any]) -> Trigger:
        return base.build_trigger(kind, **dict(options))  # type: ignore[operator]


def _check_base_options(options: Mapping[str, Any], known: tuple[str, ...]) -> None:
    bad = sorted(set(options) - {*known, "train"})
    if bad:
        raise ValueError(_BAD_BASE.format(bad=bad, known=list(known)))


_FACTORIES: dict[type, Callable[..., Task]] = {
    TabularData: TabularTask,
    ImageData: ImageTask,
    TextData: TextTask,
}


def register_task(data_type: type, factory: Callable[..., Task]) -> None:
    """Wrap data sets of ``data_type`` (what :func:`load_dataset` returns) in ``factory(data)``.

    Keys of the ``data`` section listed in ``TASK_OPTIONS`` go to the factory as keyword
    options instead of to the loader.
    """
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
    task_options = {k: options.pop(k) for k in TASK_OPTIONS if k in options}
    loaded = load_dataset(options.pop("spec"), **options)
    for data_type, factory in _FACTORIES.items():
        if isinstance(loaded, data_type):
            if task_options and data_type is not TextData:
                raise ValueError(_TASK_OPTION.format(bad=sorted(task_options), kind=data_type.__name__))
            return factory(loaded, **task_options)
    raise TypeError(_NO_FACTORY.format(kind=type(loaded).__name__, known=[t.__name__ for t in _FACTORIES]))
