"""The :class:`Reprogrammer`: tune a fairness trigger in front of a frozen model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from fairreprogram.engine._batches import ShardedBatchSampler, dataset_column, iterate_batches
from fairreprogram.engine._config import TrainConfig
from fairreprogram.engine._evaluate import evaluate_model
from fairreprogram.engine._loop import TrainingResult, train
from fairreprogram.models import ReprogrammedModel, freeze
from fairreprogram.triggers import Trigger
from fairreprogram.utils import as_class_logits, to_device

__all__ = ["Reprogrammer", "infer_num_groups", "sample_input"]

_SINGLE_GROUP = (
    "the tuning data has {k} sensitive group(s) (z values {values}); expected at least 2 "
    "groups, since fairness is defined between groups."
)
_EMPTY = "{name} is empty; expected a dataset with at least one (x, y, z) example."


def sample_input(dataset: Dataset[Any], name: str = "dataset") -> Any:
    """Return the input of the first example, batched (leading dimension 1)."""
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError(_EMPTY.format(name=name))
    sampler = ShardedBatchSampler(1, batch_size=1, shuffle=False)
    x = next(iter(iterate_batches(torch.utils.data.Subset(dataset, [0]), sampler)))[0]
    if isinstance(x, (torch.Tensor, Mapping)):
        return x
    raise TypeError(
        f"{name} yields inputs of type {type(x).__name__}; expected a tensor or a dict of tensors."
    )


def infer_num_groups(dataset: Dataset[Any]) -> int:
    """Number of sensitive groups (``max(z) + 1``) of a ``(x, y, z)`` dataset.

    A dataset that exposes ``num_groups`` is taken at its word; any other is read
    once, a batch at a time.
    """
    if hasattr(dataset, "num_groups"):
        return int(dataset.num_groups)
    z = dataset_column(dataset, 2)
    values = torch.unique(z).tolist()
    if len(values) < 2:
        raise ValueError(_SINGLE_GROUP.format(k=len(values), values=values))
    return int(z.max()) + 1


class Reprogrammer:
    """Tune a fairness trigger for a frozen model with the min-max objective.

    Only the trigger and the adversary learn; the model is put in eval mode with its
    gradients off and its weights never change. The sensitive attribute is used only
    while tuning: :meth:`fit` returns a :class:`~fairreprogram.models.ReprogrammedModel`
    that maps inputs to logits on its own.

    Parameters
    ----------
    model
        The trained classifier (inputs to logits). It is frozen in place.
    trigger
        A :class:`~fairreprogram.triggers.Trigger` matching the model's input.
    config
        A :class:`~fairreprogram.engine.TrainConfig`; keyword ``options`` override its
        fields (e.g. ``criterion="demographic_parity", lam=2.0``).
    """

    def __init__(
        self, model: nn.Module, trigger: Trigger, *, config: TrainConfig | None = None, **options: Any
    ) -> None:
        if not isinstance(trigger, Trigger):
            raise TypeError(f"trigger={trigger!r} is not valid; expected a fairreprogram Trigger.")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model={model!r} is not valid; expected a torch.nn.Module.")
        self.config = (config or TrainConfig()).replace(**options) if options else (config or TrainConfig())
        if not self.config.adversarial:
            raise ValueError(
                "config.adversarial=False is not valid for a Reprogrammer; it needs an adversary."
            )
        self.model = model
        self.trigger = trigger
        self.result_: TrainingResult | None = None

    def fit(
        self,
        tune_data: Dataset[Any],
        val_data: Dataset[Any],
        *,
        output_dir: str | os.PathLike[str] | None = None,
        resume: bool = True,
        progress: bool = True,
        num_groups: int | None = None,
    ) -> ReprogrammedModel:
        """Tune the trigger on ``tune_data`` and select an epoch on ``val_data``.

        Both datasets yield ``(x, y, z)``. The ``min_bias`` accuracy floor is the
        frozen model's validation accuracy (without the trigger) minus
        ``max_accuracy_drop``. With ``output_dir`` every epoch is
        checkpointed there and an interrupted call resumes (see
        :func:`fairreprogram.engine.train`). Returns the deployable model, also kept
        as ``self.reprogrammed_``; training details are in ``self.result_``.
        """
        x = sample_input(tune_data, "tune_data")
        sample_input(val_data, "val_data")
        if isinstance(x, torch.Tensor):  # models with dict inputs (text) check their triggers themselves
            self.trigger.check_input_shape(tuple(x.shape[1:]))
        groups = num_groups if num_groups is not None else infer_num_groups(tune_data)
        reprogrammed = ReprogrammedModel(self.trigger, self.model)
        device = next(self.model.parameters(), torch.zeros(0)).device
        self.trigger.to(device)  # the trigger follows the model
        with torch.no_grad():
            num_classes = as_class_logits(self.model(to_device(x, device))).shape[1]
        # The accuracy floor of "min_bias" is relative to the frozen model without the
        # trigger: a trigger whose starting point already costs accuracy (a border
        # shrinks the image) must not lower the bar.
        freeze(self.model)
        reference = evaluate_model(self.model, val_data, batch_size=self.config.eval_batch_size).overall[
            self.config.accuracy_metric
        ]
        self.result_ = train(
            predictor=reprogrammed,
            trainable=self.trigger,
            train_data=tune_data,
            val_data=val_data,
            config=self.config,
            num_classes=num_classes,
            num_groups=groups,
            output_dir=output_dir,
            resume=resume,
            progress=progress,
            description=f"reprogram ({self.trigger.kind}, {self.config.criterion_enum.short})",
            reference_accuracy=float(reference),
        )
        self.reprogrammed_ = reprogrammed
        return reprogrammed

    @property
    def history_(self) -> list[dict[str, Any]]:
        """Per-epoch history of the last :meth:`fit`."""
        if self.result_ is None:
            raise RuntimeError("Reprogrammer.history_ is not available before fit().")
        return self.result_.history
