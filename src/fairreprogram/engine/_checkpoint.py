"""Single-file checkpoints: every tensor in safetensors, everything else as JSON metadata.

Optimiser states are split into their tensors (stored under prefixed keys) and
their plain values (stored in the metadata), so a checkpoint never needs pickle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import torch
from safetensors import safe_open

from fairreprogram.utils import load_tensors, save_tensors

__all__ = ["load_checkpoint", "optimizer_from_parts", "optimizer_to_parts", "save_checkpoint"]

_STATE_KEY = "fairreprogram_state"


def optimizer_to_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser state dict into tensors and JSON-ready values."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        plain[str(index)] = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value
            else:
                plain[str(index)][name] = value
    return tensors, {"state": plain, "param_groups": state["param_groups"]}


def optimizer_from_parts(
    optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], plain: Mapping[str, Any]
) -> None:
    """Restore an optimiser from :func:`optimizer_to_parts` output."""
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in plain["state"].items()}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    modules: Mapping[str, Mapping[str, torch.Tensor]],
    optimizers: Mapping[str, torch.optim.Optimizer],
    state: Mapping[str, Any],
) -> None:
    """Write module state dicts, optimisers and a JSON state into one file, atomically."""
    tensors: dict[str, torch.Tensor] = {}
    for prefix, state_dict in modules.items():
        for name, value in state_dict.items():
            tensors[f"{prefix}/{name}"] = value
    plain_optimizers = {}
    for prefix, optimizer in optimizers.items():
        opt_tensors, plain = optimizer_to_parts(optimizer)
        plain_optimizers[prefix] = plain
        for name, value in opt_tensors.items():
            tensors[f"optim.{prefix}/{name}"] = value
    payload = {"state": dict(state), "optimizers": plain_optimizers}
    save_tensors(path, tensors, metadata={_STATE_KEY: json.dumps(payload, sort_keys=True)})


def load_checkpoint(
    path: str | os.PathLike[str],
) -> tuple[
    dict[str, dict[str, torch.Tensor]], dict[str, tuple[dict[str, torch.Tensor], Any]], dict[str, Any]
]:
    """Read a checkpoint: ``(module state dicts, optimiser parts, state)``."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    if _STATE_KEY not in metadata:
        raise ValueError(f"{path} is not a fairreprogram checkpoint (no {_STATE_KEY} metadata).")
    payload = json.loads(metadata[_STATE_KEY])
    modules: dict[str, dict[str, torch.Tensor]] = {}
    optim_tensors: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in load_tensors(path).items():
        prefix, name = key.split("/", 1)
        if prefix.startswith("optim."):
            optim_tensors.setdefault(prefix[len("optim.") :], {})[name] = value
        else:
            modules.setdefault(prefix, {})[name] = value
    optimizers = {
        prefix: (optim_tensors.get(prefix, {}), plain) for prefix, plain in payload["optimizers"].items()
    }
    return modules, optimizers, payload["state"]
