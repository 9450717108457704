"""A plain multi-layer perceptron classifier for tabular features."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fairreprogram._version import __version__
from fairreprogram.utils import (
    atomic_write_json,
    check_positive_int,
    check_probability,
    load_tensors,
    read_json,
    save_tensors,
)

__all__ = ["MLPClassifier", "MLPConfig"]

_MODEL_CONFIG = "model_config.json"
_MODEL_WEIGHTS = "model.safetensors"


@dataclasses.dataclass(frozen=True)
class MLPConfig:
    """Architecture of :class:`MLPClassifier`.

    Attributes
    ----------
    in_features
        Width of the input feature vector.
    num_classes
        Number of output logits (2 for a binary task).
    hidden_sizes
        Widths of the hidden layers.
    dropout
        Dropout probability after each hidden layer.
    """

    in_features: int
    num_classes: int = 2
    hidden_sizes: tuple[int, ...] = (64, 64)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_positive_int("in_features", self.in_features)
        if check_positive_int("num_classes", self.num_classes) < 2:
            raise ValueError(f"num_classes={self.num_classes!r} is not valid; expected >= 2.")
        for size in self.hidden_sizes:
            check_positive_int("hidden_sizes", size)
        check_probability("dropout", self.dropout, allow_one=False)


class MLPClassifier(nn.Module):
    """Linear-ReLU(-dropout) blocks followed by a linear layer to class logits."""

    def __init__(self, config: MLPConfig | None = None, **options: Any) -> None:
        super().__init__()
        if config is None:
            options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
            config = MLPConfig(**options)
        self.config = config
        layers: list[nn.Module] = []
        width = config.in_features
        for size in config.hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            width = size
        layers.append(nn.Linear(width, config.num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits of shape ``(n, num_classes)``."""
        return self.net(x)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``model_config.json`` and ``model.safetensors`` into ``directory``."""
        out = Path(directory)
        save_tensors(out / _MODEL_WEIGHTS, self.state_dict())
        config = dataclasses.asdict(self.config)
        atomic_write_json(out / _MODEL_CONFIG, {"library_version": __version__, "config": config})
        return out

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> MLPClassifier:
        """Load a model written by :meth:`save_pretrained`."""
        path = Path(directory)
        if not (path / _MODEL_CONFIG).is_file():
            raise FileNotFoundError(f"{path} is not a saved MLPClassifier: {_MODEL_CONFIG} is missing.")
        model = cls(**read_json(path / _MODEL_CONFIG)["config"])
        model.load_state_dict(load_tensors(path / _MODEL_WEIGHTS))
        return model
