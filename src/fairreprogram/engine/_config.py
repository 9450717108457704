"""The training configuration shared by trigger tuning and the baselines."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from fairreprogram.engine._criteria import Criterion, parse_criterion
from fairreprogram.utils import check_choice, check_non_negative, check_positive_int

__all__ = ["Selection", "TrainConfig"]

_UNKNOWN_KEYS = "TrainConfig got unknown option(s) {bad}; expected some of {known}."


class Selection(str, enum.Enum):
    """Validation-based model-selection rules (see :class:`TrainConfig`)."""

    MIN_BIAS = "min_bias"
    WORST_GROUP_ACCURACY = "worst_group_accuracy"
    ACCURACY = "accuracy"
    LAST = "last"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Options of the min-max training loop.

    Attributes
    ----------
    criterion
        ``"demographic_parity"`` or ``"equalized_odds"`` (``"dp"``/``"eo"`` accepted).
    lam
        Weight ``λ >= 0`` of the negated adversary loss in the trainable objective.
    adversarial
        Train against an adversary; ``False`` gives plain ERM on the task loss.
    epochs
        Maximum number of passes over the training data.
    batch_size
        Global batch size (split across processes in data-parallel runs).
    lr, weight_decay, optimizer, momentum
        Optimiser of the trainable parameters (``"adam"`` or ``"sgd"``).
    adversary_lr
        Adam learning rate of the adversary.
    adversary_hidden_sizes, adversary_use_logits
        Adversary architecture (see :class:`~fairreprogram.engine.Adversary`).
    adversary_warmup_epochs
        Passes in which only the adversary learns, before the min-max starts, so
        that it is informative from the first trainable step.
    project
        Project the adversary-loss gradient out of the task gradient.
    eps
        Guard of the projection's division.
    selection
        How the returned epoch is chosen on the validation set:

        - ``"min_bias"``: the lowest validation gap of the criterion (``dp_gap`` or
          ``eo_gap``) among epochs whose validation accuracy is at least the
          reference accuracy minus ``max_accuracy_drop``; the reference is the
          untuned model's accuracy (epoch 0) unless the caller passes one, and for
          training from scratch without a reference it is the best accuracy seen so
          far. If no epoch meets that floor, the most accurate epoch is returned.
          When predicting the majority class for every validation row meets the
          floor (imbalanced labels, ``accuracy_metric="accuracy"``), training warns:
          a run could then cut its gap by predicting that class more often.
        - ``"worst_group_accuracy"``: the highest worst-group (Z x Y) accuracy.
        - ``"accuracy"``: the highest accuracy (``accuracy_metric``).
        - ``"last"``: the last epoch.
    max_accuracy_drop
        Accuracy floor of ``"min_bias"``, as a fraction (0.01 = one point).
    patience
        Stop when the selected epoch has not changed for this many validations (0: off).
    validate_every
        Validate (and so select and count patience) every this many epochs; the last
        epoch is always validated. Raising it saves the validation passes of runs
        with many short epochs, such as tuning on a small share of the data.
    seed
        Seed of initialisation, shuffling and dropout; a resumed run replays it.
    mixed_precision
        ``"no"``, ``"bf16"`` or ``"fp16"`` (autocast of the forward pass; fp16 uses
        dynamic loss scaling).
    eval_batch_size
        Batch size of validation passes.
    class_weight
        ``None`` (plain cross-entropy) or ``"balanced"``: the task loss weights each
        class by ``n / (C * n_c)`` on the training data, for imbalanced labels.
    accuracy_metric
        ``"accuracy"`` or ``"balanced_accuracy"``: the accuracy that the
        ``"accuracy"`` rule maximises and that the ``"min_bias"`` floor applies to.
    """

    criterion: str = Criterion.EQUALIZED_ODDS.value
    lam: float = 1.0
    adversarial: bool = True
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-2
    weight_decay: float = 0.0
    optimizer: str = "adam"
    momentum: float = 0.9
    adversary_lr: float = 1e-3
    adversary_hidden_sizes: tuple[int, ...] = (32,)
    adversary_use_logits: bool = False
    adversary_warmup_epochs: int = 1
    project: bool = True
    eps: float = 1e-12
    selection: str = Selection.MIN_BIAS.value
    max_accuracy_drop: float = 0.01
    patience: int = 0
    validate_every: int = 1
    seed: int = 0
    mixed_precision: str = "no"
    eval_batch_size: int = 2048
    class_weight: str | None = None
    accuracy_metric: str = "accuracy"

    def __post_init__(self) -> None:
        object.__setattr__(self, "criterion", parse_criterion(self.criterion).value)
        object.__setattr__(self, "adversary_hidden_sizes", tuple(self.adversary_hidden_sizes))
        check_non_negative("lam", self.lam)
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("eval_batch_size", self.eval_batch_size)
        check_positive_int("validate_every", self.validate_every)
        for name in ("lr", "adversary_lr"):
            if check_non_negative(name, getattr(self, name)) == 0:
                raise ValueError(f"{name}={getattr(self, name)!r} is not valid; expected a number > 0.")
        check_non_negative("weight_decay", self.weight_decay)
        check_non_negative("momentum", self.momentum)
        check_non_negative("eps", self.eps)
        check_non_negative("max_accuracy_drop", self.max_accuracy_drop)
        for name in ("patience", "adversary_warmup_epochs", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r} is not valid; expected an integer >= 0.")
        check_choice("optimizer", self.optimizer, ("adam", "sgd"))
        check_choice("selection", self.selection, [s.value for s in Selection])
        check_choice("mixed_precision", self.mixed_precision, ("no", "bf16", "fp16"))
        check_choice("class_weight", self.class_weight, (None, "balanced"))
        check_choice("accuracy_metric", self.accuracy_metric, ("accuracy", "balanced_accuracy"))

    @property
    def criterion_enum(self) -> Criterion:
        """The criterion as a :class:`Criterion`."""
        return parse_criterion(self.criterion)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the options."""
        out = dataclasses.asdict(self)
        out["adversary_hidden_sizes"] = list(self.adversary_hidden_sizes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        known = [f.name for f in dataclasses.fields(cls)]
        bad = sorted(set(data) - set(known))
        if bad:
            raise ValueError(_UNKNOWN_KEYS.format(bad=bad, known=known))
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        """Return a copy with ``changes`` applied (validated)."""
        known = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - known)
        if bad:
            raise ValueError(_UNKNOWN_KEYS.format(bad=bad, known=sorted(known)))
        return dataclasses.replace(self, **changes)
