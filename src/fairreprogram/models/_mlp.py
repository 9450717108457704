"""A plain multi-layer perceptron classifier for tabular features."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fairreprogram.models._files import read_model_files, write_model_files
from fairreprogram.utils import (
    check_positive_int,
    check_probability,
)

__all__ = ["MLPClassifier", "MLPConfig"]


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
        return write_model_files(self, self.config, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> MLPClassifier:
        """Load a model written by :meth:`save_pretrained`."""
        options, state = read_model_files(directory, cls.__name__)
        model = cls(**options)
        model.load_state_dict(state)
        return model
