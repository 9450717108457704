"""fairreprogram: fairness reprogramming of frozen classifiers.

A small input trigger is tuned with a min-max objective (task loss against an
adversary that tries to recover the sensitive attribute from the model's output)
while the model's weights stay frozen. See the README for a quick start.
"""

from fairreprogram._version import __version__
from fairreprogram.engine import (
    Adversary,
    Criterion,
    Reprogrammer,
    TrainConfig,
    compare_models,
    evaluate_model,
    minmax_step,
)
from fairreprogram.estimators import FairReprogramClassifier
from fairreprogram.metrics import FairnessComparison, FairnessEvaluation, compare_fairness, evaluate_fairness
from fairreprogram.models import MLPClassifier, ReprogrammedModel, ResNetClassifier
from fairreprogram.triggers import (
    BorderTrigger,
    MaskOffsetTrigger,
    PatchTrigger,
    SparseTrigger,
    Trigger,
    available_triggers,
    build_trigger,
)
from fairreprogram.utils import FairnessWarning

__all__ = [
    "Adversary",
    "BorderTrigger",
    "Criterion",
    "FairReprogramClassifier",
    "FairnessComparison",
    "FairnessEvaluation",
    "FairnessWarning",
    "MLPClassifier",
    "MaskOffsetTrigger",
    "PatchTrigger",
    "ReprogrammedModel",
    "Reprogrammer",
    "ResNetClassifier",
    "SparseTrigger",
    "TrainConfig",
    "Trigger",
    "__version__",
    "available_triggers",
    "build_trigger",
    "compare_fairness",
    "compare_models",
    "evaluate_fairness",
    "evaluate_model",
    "minmax_step",
]
