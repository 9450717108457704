"""Models: the tabular MLP, residual image classifiers, the text adapter and the reprogrammed wrapper."""

from fairreprogram.models._frozen import ReprogrammedModel, freeze
from fairreprogram.models._mlp import MLPClassifier, MLPConfig
from fairreprogram.models._resnet import (
    RESNET_ARCHS,
    ResNetClassifier,
    ResNetConfig,
    load_torchvision_state_dict,
)
from fairreprogram.models._text import (
    TEXT_MODEL_NAME,
    TextClassifier,
    default_text_model_path,
    vocabulary_fingerprint,
)

__all__ = [
    "RESNET_ARCHS",
    "TEXT_MODEL_NAME",
    "MLPClassifier",
    "MLPConfig",
    "ReprogrammedModel",
    "ResNetClassifier",
    "ResNetConfig",
    "TextClassifier",
    "default_text_model_path",
    "freeze",
    "load_torchvision_state_dict",
    "vocabulary_fingerprint",
]
