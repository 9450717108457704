"""fairlearn's ThresholdOptimizer on a frozen torch model, as a reference point.

Unlike the trigger and the adversarial baselines, the threshold optimiser needs the
sensitive attribute at inference: it picks group-specific thresholds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from fairreprogram.utils import as_class_logits

__all__ = ["FrozenTorchClassifier", "fit_threshold_optimizer"]


class FrozenTorchClassifier(ClassifierMixin, BaseEstimator):
    """A fitted scikit-learn view of a trained torch classifier on array inputs."""

    def __init__(self, model: nn.Module | None = None, batch_size: int = 4096) -> None:
        self.model = model
        self.batch_size = batch_size

    def fit(self, X: Any = None, y: Any = None) -> FrozenTorchClassifier:
        """Nothing to learn: the model is already trained (sets ``classes_``)."""
        self.classes_ = np.array([0, 1])
        return self

    @torch.no_grad()
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities as float64 (fairlearn writes into this array)."""
        if self.model is None:
            raise ValueError("model=None is not valid; expected a trained torch classifier.")
        device = next(self.model.parameters()).device
        self.model.eval()
        values = torch.as_tensor(np.asarray(X, dtype=np.float32))
        parts = [
            torch.softmax(as_class_logits(self.model(chunk.to(device))).float(), 1).cpu()
            for chunk in values.split(self.batch_size)
        ]
        return torch.cat(parts).numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class indices."""
        return self.predict_proba(X).argmax(1)


def fit_threshold_optimizer(
    model: nn.Module, X: np.ndarray, y: np.ndarray, z: np.ndarray, *, constraints: str
) -> Any:
    """Fit fairlearn's ``ThresholdOptimizer`` on ``model``'s scores (``prefit=True``).

    ``constraints`` is ``"demographic_parity"`` or ``"equalized_odds"``. Call the
    result's ``predict(X, sensitive_features=z, random_state=...)``.
    """
    from fairlearn.postprocessing import ThresholdOptimizer

    optimizer = ThresholdOptimizer(
        estimator=FrozenTorchClassifier(model).fit(),
        constraints=constraints,
        prefit=True,
        predict_method="predict_proba",
    )
    return optimizer.fit(X, y, sensitive_features=z)
