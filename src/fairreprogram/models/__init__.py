"""Models: the tabular MLP, residual image classifiers and the deployable reprogrammed wrapper."""

from fairreprogram.models._frozen import ReprogrammedModel, freeze
from fairreprogram.models._mlp import MLPClassifier, MLPConfig
from fairreprogram.models._resnet import (
    RESNET_ARCHS,
    ResNetClassifier,
    ResNetConfig,
    load_torchvision_state_dict,
)

__all__ = [
    "RESNET_ARCHS",
    "MLPClassifier",
    "MLPConfig",
    "ReprogrammedModel",
    "ResNetClassifier",
    "ResNetConfig",
    "freeze",
    "load_torchvision_state_dict",
]
