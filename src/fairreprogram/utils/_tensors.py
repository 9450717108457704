"""Tensor helpers shared by the engine, models and evaluation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["as_class_logits", "batch_size_of", "to_device"]

_BAD_LOGITS = "logits of shape {shape} are not valid; expected (n,), (n, 1) or (n, C) with C >= 2."


def as_class_logits(logits: torch.Tensor) -> torch.Tensor:
    """Return logits of shape ``(n, C)`` with ``C >= 2``.

    A single binary logit (shape ``(n,)`` or ``(n, 1)``) becomes ``[0, logit]``, which
    has the same softmax as the sigmoid of the logit.
    """
    if logits.dim() == 1:
        logits = logits.unsqueeze(1)
    if logits.dim() != 2:
        raise ValueError(_BAD_LOGITS.format(shape=tuple(logits.shape)))
    if logits.shape[1] == 1:
        return torch.cat([torch.zeros_like(logits), logits], dim=1)
    return logits


def to_device(value: Any, device: torch.device | str) -> Any:
    """Move a tensor, or the tensors inside a mapping / sequence, to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


def batch_size_of(x: Any) -> int:
    """Number of examples in a model input (tensor, or mapping of tensors)."""
    if isinstance(x, torch.Tensor):
        return int(x.shape[0])
    if isinstance(x, Mapping):
        return batch_size_of(next(iter(x.values())))
    raise TypeError(f"input of type {type(x).__name__} is not valid; expected a tensor or a mapping.")
