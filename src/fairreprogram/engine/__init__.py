"""The modality-agnostic min-max engine: adversary, one step, the loop, the Reprogrammer."""

from fairreprogram.engine._adversary import Adversary
from fairreprogram.engine._batches import ShardedBatchSampler, iterate_batches
from fairreprogram.engine._config import Selection, TrainConfig
from fairreprogram.engine._criteria import Criterion, parse_criterion
from fairreprogram.engine._evaluate import (
    compare_models,
    compare_probabilities,
    evaluate_model,
    evaluate_probabilities,
    group_labels,
    predict_dataset,
)
from fairreprogram.engine._loop import CHECKPOINT_NAME, HISTORY_NAME, Runtime, TrainingResult, train
from fairreprogram.engine._reprogrammer import Reprogrammer, infer_num_groups, sample_input
from fairreprogram.engine._step import (
    GradientSync,
    StepLosses,
    adversary_step,
    combine_gradients,
    minmax_step,
)

__all__ = [
    "CHECKPOINT_NAME",
    "HISTORY_NAME",
    "Adversary",
    "Criterion",
    "GradientSync",
    "Reprogrammer",
    "Runtime",
    "Selection",
    "ShardedBatchSampler",
    "StepLosses",
    "TrainConfig",
    "TrainingResult",
    "adversary_step",
    "combine_gradients",
    "compare_models",
    "compare_probabilities",
    "evaluate_model",
    "evaluate_probabilities",
    "group_labels",
    "infer_num_groups",
    "iterate_batches",
    "minmax_step",
    "parse_criterion",
    "predict_dataset",
    "sample_input",
    "train",
]
