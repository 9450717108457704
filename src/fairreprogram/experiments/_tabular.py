"""Tabular runs behind the CLI: train a base model, reprogram it, evaluate either.

Each function writes one run directory (see :mod:`fairreprogram.experiments._rundir`)
and returns its metrics; the CLI commands are thin wrappers around them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fairreprogram.baselines import ERM_DEFAULTS, train_erm
from fairreprogram.data import TabularData, load_dataset
from fairreprogram.engine import Reprogrammer, TrainConfig, evaluate_model
from fairreprogram.experiments._rundir import finish_run, prepare_run_dir, read_run
from fairreprogram.metrics import FairnessEvaluation
from fairreprogram.models import MLPClassifier, ReprogrammedModel
from fairreprogram.triggers import Trigger, build_trigger
from fairreprogram.utils import atomic_write_json, peak_memory_mb, read_json

__all__ = [
    "DATA_NAME",
    "evaluate_run",
    "load_base_run",
    "reprogram_run",
    "split_metrics",
    "train_base_run",
]

DATA_NAME = "data.json"
_NOT_BASE = "base={path} is not a finished train-base run ({missing} is missing); run train-base first."
_UNKNOWN_SPLIT = "split={split!r} is not valid; expected one of {known}."


def split_metrics(
    model: nn.Module, data: TabularData, splits: tuple[str, ...] = ("val", "test")
) -> dict[str, Any]:
    """Evaluate ``model`` on named splits; return ``{split: FairnessEvaluation.to_dict()}``."""
    out = {}
    for name in splits:
        result = evaluate_model(model, getattr(data, name).to_dataset(), group_names=data.group_names)
        out[name] = result.to_dict()
    return out


def train_base_run(
    *,
    data: str,
    out: str | os.PathLike[str],
    data_options: dict[str, Any] | None = None,
    hidden_sizes: tuple[int, ...] = (64, 64),
    dropout: float = 0.0,
    train_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a base MLP with ERM on the ``train`` split of ``data``; write a run directory."""
    config = ERM_DEFAULTS.replace(**(train_options or {}))
    run_config = {
        "command": "train-base",
        "data": data,
        "data_options": data_options or {},
        "model": {"hidden_sizes": list(hidden_sizes), "dropout": dropout},
        "train": config.to_dict(),
    }
    run = prepare_run_dir(out, run_config, overwrite=overwrite)
    dataset = load_dataset(data, **(data_options or {}))
    atomic_write_json(
        run / DATA_NAME,
        {
            "spec": dataset.spec,
            "summary": dataset.summary(),
            "feature_names": dataset.feature_names,
            "class_names": dataset.class_names,
            "group_names": dataset.group_names,
        },
    )
    torch.manual_seed(config.seed)
    model = MLPClassifier(
        in_features=dataset.num_features,
        num_classes=dataset.num_classes,
        hidden_sizes=tuple(hidden_sizes),
        dropout=dropout,
    )
    tic = time.perf_counter()
    result = train_erm(
        model,
        dataset.train.to_dataset(),
        dataset.val.to_dataset(),
        config=config,
        output_dir=run,
        progress=progress,
    )
    model.save_pretrained(run / "model")
    metrics = {
        **split_metrics(model, dataset),
        "best_epoch": result.best_epoch,
        "trainable_parameters": result.num_trainable_parameters,
        "wall_time_s": time.perf_counter() - tic,
        "peak_memory_mb": peak_memory_mb(),
    }
    finish_run(run, metrics)
    return metrics


def load_base_run(base: str | os.PathLike[str]) -> tuple[MLPClassifier, TabularData]:
    """Load the model and re-create the splits of a finished train-base run."""
    path = Path(base)
    for name in ("model", DATA_NAME, "metrics.json"):
        if not (path / name).exists():
            raise FileNotFoundError(_NOT_BASE.format(path=path, missing=name))
    saved = read_json(path / DATA_NAME)
    data = load_dataset(**saved["spec"])
    return MLPClassifier.from_pretrained(path / "model"), data


def reprogram_run(
    *,
    base: str | os.PathLike[str],
    out: str | os.PathLike[str],
    trigger: str = "mask_offset",
    trigger_options: dict[str, Any] | None = None,
    train_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Tune a trigger for the frozen model of a train-base run on its ``tune`` split."""
    config = TrainConfig().replace(**(train_options or {}))
    run_config = {
        "command": "reprogram",
        "base": str(Path(base).resolve()),
        "trigger": trigger,
        "trigger_options": trigger_options or {},
        "train": config.to_dict(),
    }
    model, data = load_base_run(base)
    new_trigger = build_trigger(trigger, input_shape=(data.num_features,), **(trigger_options or {}))
    run = prepare_run_dir(out, run_config, overwrite=overwrite)
    reprogrammer = Reprogrammer(model, new_trigger, config=config)
    tic = time.perf_counter()
    deployed = reprogrammer.fit(
        data.tune.to_dataset(), data.val.to_dataset(), output_dir=run, progress=progress
    )
    new_trigger.save_pretrained(run / "trigger")
    result = reprogrammer.result_
    metrics = {
        **split_metrics(deployed, data),
        "best_epoch": result.best_epoch if result else -1,
        "trainable_parameters": new_trigger.num_trainable_parameters(),
        "wall_time_s": time.perf_counter() - tic,
        "peak_memory_mb": peak_memory_mb(),
    }
    finish_run(run, metrics)
    return metrics


def evaluate_run(
    *,
    base: str | os.PathLike[str],
    trigger: str | os.PathLike[str] | None = None,
    split: str = "test",
    n_bootstrap: int = 0,
    seed: int = 0,
) -> FairnessEvaluation:
    """Evaluate a base run's model, optionally behind a saved trigger, on one split.

    ``trigger`` is a saved trigger directory or a reprogram run directory.
    """
    known = ("train", "tune", "val", "test")
    if split not in known:
        raise ValueError(_UNKNOWN_SPLIT.format(split=split, known=list(known)))
    model, data = load_base_run(base)
    predictor: nn.Module = model
    if trigger is not None:
        path = Path(trigger)
        if (path / "trigger").is_dir():
            read_run(path)
            path = path / "trigger"
        loaded = Trigger.from_pretrained(path, input_shape=(data.num_features,))
        predictor = ReprogrammedModel(loaded, model)
    return evaluate_model(
        predictor,
        getattr(data, split).to_dataset(),
        group_names=data.group_names,
        n_bootstrap=n_bootstrap,
        random_state=seed,
    )
