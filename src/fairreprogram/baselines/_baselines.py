"""Baselines on the same engine, for any model: ERM, AdvIn and AdvPost.

- **ERM**: standard training of the base model on the task loss.
- **AdvIn** (adversarial in-processing): the whole model trained from scratch
  against the adversary, on the base model's training data.
- **AdvPost** (adversarial post-processing): a copy of the trained base model
  fine-tuned in full against the adversary, on the tuning data the trigger sees.

All three run :func:`fairreprogram.engine.train` with the whole model as the
trainable part, so they share the trigger's objective, selection and checkpoints.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from fairreprogram.engine import TrainConfig, TrainingResult, infer_num_groups, sample_input, train
from fairreprogram.utils import as_class_logits, to_device

__all__ = ["ERM_DEFAULTS", "FINETUNE_DEFAULTS", "train_adv_in", "train_adv_post", "train_erm"]

ERM_DEFAULTS = TrainConfig(adversarial=False, lr=1e-3, epochs=30, selection="accuracy", patience=5)
"""Defaults of :func:`train_erm`: Adam 1e-3, best validation accuracy, patience 5."""

FINETUNE_DEFAULTS = TrainConfig(lr=1e-3, epochs=20)
"""Defaults of :func:`train_adv_in` / :func:`train_adv_post` (Adam 1e-3 on all weights)."""


def _unfreeze(model: nn.Module) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    return model


def _num_classes(model: nn.Module, dataset: Dataset[Any]) -> int:
    x = sample_input(dataset)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        c = as_class_logits(model(to_device(x, device))).shape[1]
    model.train(was_training)
    return int(c)


def _config(defaults: TrainConfig, config: TrainConfig | None, options: dict[str, Any]) -> TrainConfig:
    base = config or defaults
    return base.replace(**options) if options else base


def train_erm(
    model: nn.Module,
    train_data: Dataset[Any],
    val_data: Dataset[Any],
    *,
    config: TrainConfig | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    **options: Any,
) -> TrainingResult:
    """Train ``model`` in place with the task loss only (``adversarial=False``)."""
    cfg = _config(ERM_DEFAULTS, config, options)
    if cfg.adversarial:
        cfg = cfg.replace(adversarial=False)
    _unfreeze(model)
    return train(
        predictor=model,
        trainable=model,
        train_data=train_data,
        val_data=val_data,
        config=cfg,
        num_classes=_num_classes(model, train_data),
        num_groups=2,
        output_dir=output_dir,
        progress=progress,
        evaluate_initial=False,
        description="ERM",
    )


def train_adv_in(
    model: nn.Module,
    train_data: Dataset[Any],
    val_data: Dataset[Any],
    *,
    config: TrainConfig | None = None,
    reference_accuracy: float | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    **options: Any,
) -> TrainingResult:
    """Adversarially train a freshly initialised ``model`` in place (AdvIn).

    ``reference_accuracy`` (e.g. the ERM model's validation accuracy) anchors the
    accuracy floor of the ``"min_bias"`` selection rule.
    """
    cfg = _config(FINETUNE_DEFAULTS, config, options)
    _unfreeze(model)
    return train(
        predictor=model,
        trainable=model,
        train_data=train_data,
        val_data=val_data,
        config=cfg,
        num_classes=_num_classes(model, train_data),
        num_groups=infer_num_groups(train_data),
        output_dir=output_dir,
        progress=progress,
        reference_accuracy=reference_accuracy,
        evaluate_initial=False,
        description=f"AdvIn ({cfg.criterion_enum.short})",
    )


def train_adv_post(
    base_model: nn.Module,
    tune_data: Dataset[Any],
    val_data: Dataset[Any],
    *,
    config: TrainConfig | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    **options: Any,
) -> tuple[nn.Module, TrainingResult]:
    """Fine-tune a copy of ``base_model`` adversarially on ``tune_data`` (AdvPost).

    The base model itself is left untouched; the fine-tuned copy is returned with the
    training result.
    """
    cfg = _config(FINETUNE_DEFAULTS, config, options)
    model = _unfreeze(copy.deepcopy(base_model))
    result = train(
        predictor=model,
        trainable=model,
        train_data=tune_data,
        val_data=val_data,
        config=cfg,
        num_classes=_num_classes(model, tune_data),
        num_groups=infer_num_groups(tune_data),
        output_dir=output_dir,
        progress=progress,
        description=f"AdvPost ({cfg.criterion_enum.short})",
    )
    return model, result
