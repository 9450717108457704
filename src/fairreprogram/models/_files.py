"""The on-disk form every model of the library shares: a JSON config and safetensors weights."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fairreprogram._version import __version__
from fairreprogram.utils import atomic_write_json, load_tensors, read_json, save_tensors

__all__ = ["MODEL_CONFIG", "MODEL_WEIGHTS", "read_model_files", "write_model_files"]

MODEL_CONFIG = "model_config.json"
MODEL_WEIGHTS = "model.safetensors"


def write_model_files(model: nn.Module, config: Any, directory: str | os.PathLike[str]) -> Path:
    """Write ``model_config.json`` (dataclass ``config`` + library version) and ``model.safetensors``."""
    out = Path(directory)
    save_tensors(out / MODEL_WEIGHTS, model.state_dict())
    atomic_write_json(
        out / MODEL_CONFIG, {"library_version": __version__, "config": dataclasses.asdict(config)}
    )
    return out


def read_model_files(
    directory: str | os.PathLike[str], kind: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read what :func:`write_model_files` wrote: ``(config options, state dict)``."""
    path = Path(directory)
    if not (path / MODEL_CONFIG).is_file():
        raise FileNotFoundError(f"{path} is not a saved {kind}: {MODEL_CONFIG} is missing.")
    return read_json(path / MODEL_CONFIG)["config"], load_tensors(path / MODEL_WEIGHTS)
