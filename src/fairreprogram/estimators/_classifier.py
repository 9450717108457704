"""A scikit-learn-style estimator: base MLP + mask-offset trigger, fitted in one call."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.utils.data import TensorDataset

from fairreprogram.baselines import train_erm
from fairreprogram.data import TabularPreprocessor
from fairreprogram.engine import Reprogrammer, TrainConfig, parse_criterion
from fairreprogram.models import MLPClassifier, ReprogrammedModel
from fairreprogram.triggers import MaskOffsetTrigger
from fairreprogram.utils import check_finite_array, check_probability

__all__ = ["FairReprogramClassifier"]

_LENGTH_MISMATCH = "{name} has {n} rows but X has {m}; expected one entry per row of X."
_SINGLE_GROUP = "sensitive_features has {k} distinct group(s) ({groups}); expected at least 2 groups."
_FEW_CLASSES = "y has {k} distinct class(es) ({classes}); expected at least 2."


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X.reset_index(drop=True)
    values = np.asarray(X)
    if values.ndim != 2:
        raise ValueError(
            f"X of shape {values.shape} is not valid; expected a 2-D array (n_samples, n_features)."
        )
    return pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])])


def _group_codes(sensitive_features: Any, n: int) -> tuple[np.ndarray, list[str]]:
    if isinstance(sensitive_features, pd.DataFrame):
        values = sensitive_features.astype(str).agg("|".join, axis=1).to_numpy()
    else:
        arr = np.asarray(sensitive_features, dtype=object)
        values = (
            np.array(["|".join(map(str, row)) for row in arr], dtype=object)
            if arr.ndim == 2
            else arr.astype(str)
        )
    if len(values) != n:
        raise ValueError(_LENGTH_MISMATCH.format(name="sensitive_features", n=len(values), m=n))
    groups, codes = np.unique(values.astype(str), return_inverse=True)
    if len(groups) < 2:
        raise ValueError(_SINGLE_GROUP.format(k=len(groups), groups=list(groups)))
    return codes.astype(np.int64), [str(g) for g in groups]


class FairReprogramClassifier(ClassifierMixin, BaseEstimator):
    """Fit a classifier, then reprogram it for fairness; predict without Z.

    ``fit(X, y, sensitive_features=z)`` standardises numeric and one-hot encodes
    categorical columns (fitted on the base model's rows only), trains an MLP with
    ERM on ``1 - tune_fraction - val_fraction`` of the rows (or takes the given
    frozen ``model``, which then receives ``X`` as numeric features, unpreprocessed),
    then tunes a :class:`~fairreprogram.triggers.MaskOffsetTrigger` on the disjoint
    ``tune_fraction`` with the min-max objective and selects an epoch on the
    ``val_fraction``. ``predict`` and ``predict_proba`` need only ``X``.

    Parameters
    ----------
    model
        Optional trained torch model on the preprocessed features; if given, no base
        model is trained and all but the validation rows tune the trigger.
    hidden_sizes
        Hidden widths of the base MLP.
    criterion, lam
        Fairness criterion and adversary weight of the trigger's objective.
    tune_fraction, val_fraction
        Shares of the rows used to tune the trigger and to select its epoch.
    epochs, batch_size, lr
        Trigger-tuning options (see :class:`~fairreprogram.engine.TrainConfig`).
    max_accuracy_drop
        Accuracy floor of the selection rule, as a fraction.
    base_epochs
        Maximum ERM epochs of the base MLP.
    random_state
        Seed of splits, initialisation and shuffling.
    progress
        Show progress bars.
    """

    def __init__(
        self,
        *,
        model: nn.Module | None = None,
        hidden_sizes: tuple[int, ...] = (64, 64),
        criterion: str = "equalized_odds",
        lam: float = 1.0,
        tune_fraction: float = 0.3,
        val_fraction: float = 0.2,
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 1e-2,
        max_accuracy_drop: float = 0.01,
        base_epochs: int = 30,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        self.model = model
        self.hidden_sizes = hidden_sizes
        self.criterion = criterion
        self.lam = lam
        self.tune_fraction = tune_fraction
        self.val_fraction = val_fraction
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.max_accuracy_drop = max_accuracy_drop
        self.base_epochs = base_epochs
        self.random_state = random_state
        self.progress = progress

    def _split(self, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.arange(len(y))
        strata = z * (int(y.max()) + 1) + y
        rest, val = train_test_split(
            rows, test_size=self.val_fraction, random_state=self.random_state, stratify=strata
        )
        if self.model is not None:
            return np.array([], dtype=int), rest, val
        share = self.tune_fraction / (1.0 - self.val_fraction)
        base, tune = train_test_split(
            rest, test_size=share, random_state=self.random_state, stratify=strata[rest]
        )
        return base, tune, val

    def fit(self, X: Any, y: Any, *, sensitive_features: Any) -> FairReprogramClassifier:
        """Train (or take) the base model and tune the trigger; return ``self``."""
        check_probability("tune_fraction", self.tune_fraction, allow_zero=False, allow_one=False)
        check_probability("val_fraction", self.val_fraction, allow_zero=False, allow_one=False)
        if self.model is None and self.tune_fraction + self.val_fraction >= 1:
            raise ValueError(
                f"tune_fraction + val_fraction = {self.tune_fraction + self.val_fraction!r} is not valid; "
                "expected < 1 so that rows remain to train the base model."
            )
        parse_criterion(self.criterion)
        frame = _as_frame(X)
        labels = np.asarray(y)
        if len(labels) != len(frame):
            raise ValueError(_LENGTH_MISMATCH.format(name="y", n=len(labels), m=len(frame)))
        self.classes_, y_codes = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(_FEW_CLASSES.format(k=len(self.classes_), classes=list(self.classes_)))
        z, self.groups_ = _group_codes(sensitive_features, len(frame))
        base_rows, tune_rows, val_rows = self._split(y_codes, z)
        self.preprocessor_ = (
            None if self.model is not None else TabularPreprocessor().fit(frame.iloc[base_rows])
        )
        features = self._features(frame)
        self.n_features_in_ = frame.shape[1]

        def subset(rows: np.ndarray) -> TensorDataset:
            return TensorDataset(
                torch.as_tensor(features[rows]), torch.as_tensor(y_codes[rows]), torch.as_tensor(z[rows])
            )

        torch.manual_seed(self.random_state)
        if self.model is None:
            base = MLPClassifier(
                in_features=features.shape[1],
                num_classes=len(self.classes_),
                hidden_sizes=tuple(self.hidden_sizes),
            )
            train_erm(
                base,
                subset(base_rows),
                subset(val_rows),
                epochs=self.base_epochs,
                seed=self.random_state,
                progress=self.progress,
            )
            self.base_model_: nn.Module = base
        else:
            self.base_model_ = self.model
        trigger = MaskOffsetTrigger(num_features=features.shape[1])
        config = TrainConfig(
            criterion=self.criterion,
            lam=self.lam,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            max_accuracy_drop=self.max_accuracy_drop,
            seed=self.random_state,
        )
        reprogrammer = Reprogrammer(self.base_model_, trigger, config=config)
        self.reprogrammed_: ReprogrammedModel = reprogrammer.fit(
            subset(tune_rows), subset(val_rows), progress=self.progress
        )
        self.trigger_ = trigger
        self.history_ = reprogrammer.history_
        return self

    def _features(self, frame: pd.DataFrame) -> np.ndarray:
        # A given model was trained on the caller's own features: pass them through as is.
        if self.preprocessor_ is None:
            return check_finite_array("X", frame.to_numpy(dtype=np.float32))
        return check_finite_array("X", self.preprocessor_.transform(frame))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the reprogrammed model, shape ``(n, n_classes)``."""
        check_is_fitted(self, "reprogrammed_")
        features = self._features(_as_frame(X))
        device = next(self.reprogrammed_.parameters()).device
        probs = self.reprogrammed_.predict_proba(torch.as_tensor(features, device=device))
        return probs.cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (in the original label space)."""
        check_is_fitted(self, "reprogrammed_")
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
