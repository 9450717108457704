"""One min-max step: update the adversary, then the trainable parameters.

This is the only place where the objective is written down. The loop in
:mod:`fairreprogram.engine._loop` owns data, progress, checkpoints and stopping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fairreprogram.engine._adversary import Adversary
from fairreprogram.utils import as_class_logits

__all__ = ["GradientSync", "StepLosses", "adversary_step", "combine_gradients", "minmax_step"]

GradientSync = Callable[[torch.Tensor, float], torch.Tensor]
"""Averages a flat gradient vector across processes, weighted by the local batch size."""


@dataclasses.dataclass(frozen=True)
class StepLosses:
    """Losses of one step, measured before the updates (means over the local batch)."""

    task_loss: float
    adversary_loss: float
    objective: float
    skipped: bool = False


def _flat_grad(
    loss: torch.Tensor, params: Sequence[torch.Tensor], *, retain_graph: bool = False
) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1).float()
            for g, p in zip(grads, params, strict=True)
        ]
    )


def _assign_grads(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).to(p.dtype)
        offset += n


def combine_gradients(
    task_grad: torch.Tensor,
    adversary_grad: torch.Tensor,
    *,
    lam: float,
    project: bool = True,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Return the update direction ``g_task - proj_{g_adv}(g_task) - lam * g_adv``.

    The projection removes from the task gradient its component along the
    adversary-loss gradient (over the whole flattened parameter vector), so the task
    step neither helps nor hinders the adversary; ``-lam * g_adv`` then pushes the
    adversary's loss up. ``eps`` guards the division when ``g_adv`` vanishes.
    """
    direction = task_grad
    if project:
        coef = torch.dot(task_grad, adversary_grad) / (adversary_grad.dot(adversary_grad) + eps)
        direction = direction - coef * adversary_grad
    return direction - lam * adversary_grad


def _sync(flat: torch.Tensor, weight: float, sync: GradientSync | None) -> torch.Tensor:
    return flat if sync is None else sync(flat, weight)


def adversary_step(
    adversary: Adversary,
    optimizer: torch.optim.Optimizer,
    logits: torch.Tensor,
    y: torch.Tensor,
    z: torch.Tensor,
    *,
    weight: float,
    sync: GradientSync | None = None,
) -> float:
    """Take one adversary optimiser step on detached ``logits``; return its loss."""
    params = [p for p in adversary.parameters() if p.requires_grad]
    loss = adversary.loss(logits.detach(), y, z)
    flat = _sync(_flat_grad(loss, params), weight, sync)
    optimizer.zero_grad(set_to_none=True)
    _assign_grads(params, flat)
    optimizer.step()
    return float(loss.detach())


def minmax_step(
    *,
    predictor: nn.Module,
    params: Sequence[torch.Tensor],
    optimizer: torch.optim.Optimizer,
    batch: tuple[object, torch.Tensor, torch.Tensor],
    adversary: Adversary | None = None,
    adversary_optimizer: torch.optim.Optimizer | None = None,
    lam: float = 0.0,
    project: bool = True,
    eps: float = 1e-12,
    sync: GradientSync | None = None,
    autocast: Callable[[], contextlib.AbstractContextManager[object]] | None = None,
    loss_scale: float = 1.0,
    class_weights: torch.Tensor | None = None,
) -> StepLosses:
    """Perform one min-max step and return its losses.

    1. One forward pass ``logits = predictor(x)``.
    2. The adversary takes one optimiser step on its cross-entropy for Z, reading
       the detached logits (and Y for equalized odds).
    3. The trainable ``params`` take one optimiser step along
       :func:`combine_gradients` of the task loss (cross-entropy for Y) and the
       updated adversary's loss: two backward passes to ``params``, or a single one
       on ``task - lam * adversary`` when ``project`` is off.

    Without an adversary this is a plain task-loss step (ERM). Gradients are
    averaged across processes through ``sync`` before they are combined, so the
    projection sees the global gradients. With ``loss_scale != 1`` (fp16) the losses
    are scaled before differentiation and the gradients unscaled after; a
    non-finite gradient skips the trainable update and reports ``skipped``.
    ``class_weights`` weight the task cross-entropy per class (imbalanced labels).
    """
    x, y, z = batch
    weight = float(y.shape[0])
    ctx = autocast() if autocast is not None else contextlib.nullcontext()
    with ctx:
        logits = as_class_logits(predictor(x)).float()
    task_loss = F.cross_entropy(logits, y.long(), weight=class_weights)
    if adversary is None:
        flat = _sync(_flat_grad(task_loss * loss_scale, params), weight, sync) / loss_scale
        adv_value = math.nan
        objective = task_loss
    else:
        if adversary_optimizer is None:
            raise ValueError("adversary_optimizer=None is not valid when an adversary is given.")
        adversary_step(adversary, adversary_optimizer, logits, y, z, weight=weight, sync=sync)
        adv_loss = adversary.loss(logits, y, z)
        adv_value = float(adv_loss.detach())
        objective = task_loss - lam * adv_loss
        if project:
            g_task = _flat_grad(task_loss * loss_scale, params, retain_graph=True)
            g_adv = _flat_grad(adv_loss * loss_scale, params)
            both = _sync(torch.cat([g_task, g_adv]), weight, sync) / loss_scale
            g_task, g_adv = both[: g_task.numel()], both[g_task.numel() :]
            flat = combine_gradients(g_task, g_adv, lam=lam, project=True, eps=eps)
        else:
            flat = _sync(_flat_grad(objective * loss_scale, params), weight, sync) / loss_scale
    losses = StepLosses(
        task_loss=float(task_loss.detach()), adversary_loss=adv_value, objective=float(objective.detach())
    )
    if not bool(torch.isfinite(flat).all()):
        return dataclasses.replace(losses, skipped=True)
    optimizer.zero_grad(set_to_none=True)
    _assign_grads(params, flat)
    optimizer.step()
    return losses
