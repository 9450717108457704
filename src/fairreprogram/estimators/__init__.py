"""Estimators with the scikit-learn interface."""

from fairreprogram.estimators._classifier import FairReprogramClassifier

__all__ = ["FairReprogramClassifier"]
