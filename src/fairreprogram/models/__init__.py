"""Models: the tabular MLP and the deployable reprogrammed wrapper."""

from fairreprogram.models._frozen import ReprogrammedModel, freeze
from fairreprogram.models._mlp import MLPClassifier, MLPConfig

__all__ = ["MLPClassifier", "MLPConfig", "ReprogrammedModel", "freeze"]
