"""Prediction over a dataset and its fairness evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from fairreprogram.engine._batches import ShardedBatchSampler, dataset_lengths, iterate_batches
from fairreprogram.metrics import FairnessComparison, FairnessEvaluation, compare_fairness, evaluate_fairness
from fairreprogram.utils import as_class_logits, to_device

__all__ = [
    "compare_models",
    "compare_probabilities",
    "evaluate_model",
    "evaluate_probabilities",
    "group_labels",
    "predict_dataset",
]


@torch.no_grad()
def predict_dataset(
    model: nn.Module,
    dataset: Dataset[Any],
    *,
    batch_size: int = 2048,
    device: torch.device | str | None = None,
    autocast: Callable[[], contextlib.AbstractContextManager[object]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(probabilities (n, C), y (n,), z (n,))`` of ``model`` on ``dataset``.

    The dataset yields ``(x, y, z)``; ``z`` is only carried along for evaluation and
    never reaches the model. Rows come back in dataset order, also for datasets with
    ``lengths`` (text), which are read sorted by length so that batches pad little.
    """
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    probs, ys, zs = [], [], []
    sampler = ShardedBatchSampler(
        len(dataset),  # type: ignore[arg-type]
        batch_size=batch_size,
        shuffle=False,
        lengths=dataset_lengths(dataset),
    )
    order = torch.cat(sampler.global_batches())
    try:
        for x, y, z in iterate_batches(dataset, sampler):
            ctx = autocast() if autocast is not None else contextlib.nullcontext()
            with ctx:
                logits = model(to_device(x, device))
            probs.append(torch.softmax(as_class_logits(logits).float(), dim=1).cpu())
            ys.append(torch.as_tensor(y))
            zs.append(torch.as_tensor(z))
    finally:
        model.train(was_training)
    # Length-bucketed datasets are read sorted by length; put the rows back in order.
    restore = torch.argsort(order)
    return tuple(torch.cat(parts)[restore].numpy() for parts in (probs, ys, zs))  # type: ignore[return-value]


def evaluate_model(
    model: nn.Module,
    dataset: Dataset[Any],
    *,
    batch_size: int = 2048,
    device: torch.device | str | None = None,
    group_names: list[str] | None = None,
    n_bootstrap: int = 0,
    random_state: int | None = 0,
) -> FairnessEvaluation:
    """Evaluate accuracy and fairness of ``model`` on a ``(x, y, z)`` dataset."""
    probs, y, z = predict_dataset(model, dataset, batch_size=batch_size, device=device)
    return evaluate_probabilities(
        probs, y, z, group_names=group_names, n_bootstrap=n_bootstrap, random_state=random_state
    )


def evaluate_probabilities(
    probs: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    *,
    group_names: list[str] | None = None,
    n_bootstrap: int = 0,
    random_state: int | None = 0,
) -> FairnessEvaluation:
    """:func:`evaluate_model` on predictions already made by :func:`predict_dataset`.

    ``probs`` are ``(n, C)`` class probabilities; the prediction is their argmax, and
    ``z`` holds integer sensitive codes, named by ``group_names`` when given.
    """
    return evaluate_fairness(
        y_true=y,
        y_pred=probs.argmax(axis=1),
        sensitive_features=group_labels(z, group_names),
        y_score=_scores(probs),
        n_bootstrap=n_bootstrap,
        random_state=random_state,
    )


def group_labels(z: np.ndarray, group_names: list[str] | None) -> np.ndarray:
    """The group name of every integer sensitive code in ``z`` (``z`` itself without names)."""
    return np.asarray(group_names, dtype=object)[z] if group_names is not None else z


def _scores(probs: np.ndarray) -> np.ndarray:
    return probs[:, 1] if probs.shape[1] == 2 else probs


def compare_models(
    before: nn.Module,
    after: nn.Module,
    dataset: Dataset[Any],
    *,
    batch_size: int = 2048,
    device: torch.device | str | None = None,
    group_names: list[str] | None = None,
    n_bootstrap: int = 1000,
    random_state: int | None = 0,
) -> FairnessComparison:
    """Compare two models on the same ``(x, y, z)`` dataset with a paired bootstrap.

    Typically ``before`` is the frozen base model and ``after`` the same model behind a
    trigger; the result holds both models' metrics, the change (after minus before)
    and intervals of the change from resamples that score both models on the same rows
    (see :func:`fairreprogram.metrics.compare_fairness`).
    """
    probs_before, y, z = predict_dataset(before, dataset, batch_size=batch_size, device=device)
    probs_after, _, _ = predict_dataset(after, dataset, batch_size=batch_size, device=device)
    return compare_probabilities(
        probs_before,
        probs_after,
        y,
        z,
        group_names=group_names,
        n_bootstrap=n_bootstrap,
        random_state=random_state,
    )


def compare_probabilities(
    probs_before: np.ndarray,
    probs_after: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    *,
    group_names: list[str] | None = None,
    n_bootstrap: int = 1000,
    random_state: int | None = 0,
) -> FairnessComparison:
    """:func:`compare_models` on predictions already made by :func:`predict_dataset`.

    For comparing many models with one reference on the same rows: predict the
    reference once and pass its probabilities with each candidate's. ``probs_*`` are
    ``(n, C)`` class probabilities of the same rows in the same order; ``y`` and ``z``
    are the labels and integer sensitive codes that :func:`predict_dataset` returned.
    """
    if probs_before.shape != probs_after.shape:
        raise ValueError(
            f"probs_after has shape {probs_after.shape}, but probs_before has {probs_before.shape}; "
            "expected the two models' probabilities on the same rows and classes."
        )
    return compare_fairness(
        y_true=y,
        y_pred_before=probs_before.argmax(axis=1),
        y_pred_after=probs_after.argmax(axis=1),
        sensitive_features=group_labels(z, group_names),
        y_score_before=_scores(probs_before),
        y_score_after=_scores(probs_after),
        n_bootstrap=n_bootstrap,
        random_state=random_state,
    )
