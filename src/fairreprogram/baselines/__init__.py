"""Baselines: ERM, adversarial in-processing (AdvIn) and adversarial fine-tuning (AdvPost)."""

from fairreprogram.baselines._baselines import (
    ERM_DEFAULTS,
    FINETUNE_DEFAULTS,
    train_adv_in,
    train_adv_post,
    train_erm,
)
from fairreprogram.baselines._threshold import FrozenTorchClassifier, fit_threshold_optimizer

__all__ = [
    "ERM_DEFAULTS",
    "FINETUNE_DEFAULTS",
    "FrozenTorchClassifier",
    "fit_threshold_optimizer",
    "train_adv_in",
    "train_adv_post",
    "train_erm",
]
