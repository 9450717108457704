"""The runs behind the CLI: train a base model, reprogram it, evaluate either.

Each function writes one run directory (see :mod:`fairreprogram.experiments._rundir`)
and returns its metrics; the CLI commands are thin wrappers around them. The data
is named by a ``data`` section (``{"spec": ..., **loader options}``, as in a sweep
config), so the same commands serve tabular and image data: the
:class:`~fairreprogram.experiments.Task` for that data builds, saves and loads the
base model.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fairreprogram.baselines import ERM_DEFAULTS, train_erm
from fairreprogram.engine import Reprogrammer, TrainConfig, compare_models, evaluate_model
from fairreprogram.experiments._rundir import (
    METRICS_NAME,
    RUN_CONFIG_NAME,
    finish_run,
    prepare_run_dir,
    read_run,
)
from fairreprogram.experiments._tasks import Task, build_task
from fairreprogram.metrics import FairnessComparison, FairnessEvaluation
from fairreprogram.models import ReprogrammedModel
from fairreprogram.triggers import Trigger
from fairreprogram.utils import (
    atomic_write_json,
    directory_lock,
    peak_memory_mb,
    read_json,
    start_memory_window,
)

__all__ = [
    "DATA_NAME",
    "compare_run",
    "epoch_speed",
    "evaluate_run",
    "fit_base",
    "load_base_run",
    "reprogram_run",
    "split_metrics",
    "train_base_run",
]

DATA_NAME = "data.json"
_SWEEP_BASES = ("sweep-base", "sweep-transfer-target")  # the commands of a sweep's base runs
_NOT_BASE = "base={path} is not a finished train-base run ({missing} is missing); run train-base first."
_OLD_BASE = (
    "base={path} was written by an older fairreprogram (its data.json has no 'data' section); "
    "expected a train-base run of this version; train it again."
)
_UNKNOWN_SPLIT = "split={split!r} is not valid; expected one of {known}."
_SPLITS = ("train", "tune", "val", "test")


def split_metrics(model: nn.Module, task: Task, splits: tuple[str, ...] = ("val", "test")) -> dict[str, Any]:
    """Evaluate ``model`` on named splits; return ``{split: FairnessEvaluation.to_dict()}``."""
    return {
        name: evaluate_model(model, task.dataset(name), group_names=task.group_names).to_dict()
        for name in splits
    }


def train_base_run(
    *,
    data: Mapping[str, Any],
    out: str | os.PathLike[str],
    model_options: Mapping[str, Any] | None = None,
    train_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a base model with ERM on the ``train`` split of ``data``; write a run directory.

    Parameters
    ----------
    data : mapping
        ``{"spec": ..., **options}`` for :func:`fairreprogram.data.load_dataset`.
    out : path-like
        The run directory.
    model_options : mapping, optional
        Options of the task's base model: ``hidden_sizes`` and ``dropout`` (tabular
        MLP) or ``arch`` (images: ``resnet18``, ``resnet9``, ``resnet20``).
    train_options : mapping, optional
        :class:`~fairreprogram.engine.TrainConfig` options over ``ERM_DEFAULTS``.
    overwrite, progress
        Replace a finished run; show progress bars.
    """
    config = ERM_DEFAULTS.replace(**dict(train_options or {}))
    section = dict(data)
    run_config = {
        "command": "train-base",
        "data": section,
        "model": dict(model_options or {}),
        "train": config.to_dict(),
    }
    with directory_lock(out, what="run"):
        run = prepare_run_dir(out, run_config, overwrite=overwrite)
        task = build_task(section)
        task.build_base(dict(model_options or {}))  # refuse bad model options before any training
        atomic_write_json(
            run / DATA_NAME,
            {
                "data": section,
                "group_names": task.group_names,
                "class_names": task.class_names,
                "input_shape": list(task.input_shape),
                "feature_names": task.feature_names(),
            },
        )
        return fit_base(task, dict(model_options or {}), config, run, progress=progress)


def epoch_speed(history: list[dict[str, Any]]) -> float:
    """Mean examples/s of the training epochs in a history (``nan`` when none)."""
    rates = [h["examples_per_second"] for h in history if h.get("epoch", 0) > 0]
    rates = [r for r in rates if not math.isnan(r)]
    return float(np.mean(rates)) if rates else math.nan


def fit_base(
    task: Task, options: Mapping[str, Any], config: TrainConfig, run: Path, *, progress: bool
) -> dict[str, Any]:
    """Train a fresh base model of ``task`` with ERM into the prepared run directory ``run``.

    Seeds with ``config.seed``, saves the model to ``run/model``, writes ``metrics.json``
    last and returns the metrics. Shared by ``train-base`` and the sweeps' base models.
    """
    torch.manual_seed(config.seed)
    model = task.build_base(options)
    memory_scope = start_memory_window()
    tic = time.perf_counter()
    result = train_erm(
        model, task.dataset("train"), task.dataset("val"), config=config, output_dir=run, progress=progress
    )
    task.save_base(model, run / "model")
    metrics = {
        **split_metrics(model, task),
        "best_epoch": result.best_epoch,
        "trainable_parameters": result.num_trainable_parameters,
        "wall_time_s": time.perf_counter() - tic + result.earlier_wall_time,  # over every session
        "earlier_wall_time_s": result.earlier_wall_time,
        "peak_memory_mb": peak_memory_mb(),
        "peak_memory_scope": memory_scope,
        "examples_per_second": epoch_speed(result.history),
    }
    finish_run(run, metrics)
    return metrics


def load_base_run(base: str | os.PathLike[str]) -> tuple[nn.Module, Task]:
    """Load the model and re-create the data (as a task) of a finished train-base run.

    A sweep's base model (``SWEEP/bases/base-s<seed>``) works too: its ``config.json``
    carries the sweep's data section.
    """
    path = Path(base)
    config = read_json(path / RUN_CONFIG_NAME) if (path / RUN_CONFIG_NAME).is_file() else {}
    swept = config.get("command") in _SWEEP_BASES
    for name in ("model", RUN_CONFIG_NAME if swept else DATA_NAME, METRICS_NAME):
        if not (path / name).exists():
            raise FileNotFoundError(_NOT_BASE.format(path=path, missing=name))
    saved = config if swept else read_json(path / DATA_NAME)
    if "data" not in saved:
        raise ValueError(_OLD_BASE.format(path=path))
    task = build_task(saved["data"])
    return task.load_base(path / "model"), task


def reprogram_run(
    *,
    base: str | os.PathLike[str],
    out: str | os.PathLike[str],
    trigger: str | None = None,
    trigger_options: Mapping[str, Any] | None = None,
    train_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Tune a trigger for the frozen model of a train-base run on its ``tune`` split.

    ``trigger`` is a registered kind; by default ``mask_offset`` for tabular inputs,
    ``border`` for images and ``soft`` for text.
    """
    config = TrainConfig().replace(**dict(train_options or {}))
    model, task = load_base_run(base)
    if trigger is None:
        trigger = {1: "mask_offset", 3: "border"}.get(len(task.input_shape), "soft")
    run_config = {
        "command": "reprogram",
        "base": str(Path(base).resolve()),
        "trigger": trigger,
        "trigger_options": dict(trigger_options or {}),
        "train": config.to_dict(),
    }
    torch.manual_seed(config.seed)  # a random start (sparse, text prompts) follows --seed
    new_trigger = task.build_trigger(trigger, model, dict(trigger_options or {}))
    with directory_lock(out, what="run"):
        run = prepare_run_dir(out, run_config, overwrite=overwrite)
        reprogrammer = Reprogrammer(model, new_trigger, config=config)
        memory_scope = start_memory_window()
        tic = time.perf_counter()
        deployed = reprogrammer.fit(
            task.dataset("tune"), task.dataset("val"), output_dir=run, progress=progress
        )
        new_trigger.save_pretrained(run / "trigger")
        result = reprogrammer.result_
        earlier = result.earlier_wall_time if result else 0.0
        metrics = {
            **split_metrics(deployed, task),
            "best_epoch": result.best_epoch if result else -1,
            "trainable_parameters": new_trigger.num_trainable_parameters(),
            "wall_time_s": time.perf_counter() - tic + earlier,  # over every session
            "earlier_wall_time_s": earlier,
            "peak_memory_mb": peak_memory_mb(),
            "peak_memory_scope": memory_scope,
        }
        finish_run(run, metrics)
    return metrics


def _with_trigger(
    base: str | os.PathLike[str], trigger: str | os.PathLike[str] | None, split: str
) -> tuple[nn.Module, nn.Module, Task]:
    """``(base model, base model behind the trigger or itself, task)`` of a base run."""
    if split not in _SPLITS:
        raise ValueError(_UNKNOWN_SPLIT.format(split=split, known=list(_SPLITS)))
    model, task = load_base_run(base)
    if trigger is None:
        return model, model, task
    path = Path(trigger)
    if (path / "trigger").is_dir():
        read_run(path)
        path = path / "trigger"
    loaded = Trigger.from_pretrained(path, input_shape=task.input_shape)
    return model, ReprogrammedModel(loaded, model), task


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
    _, predictor, task = _with_trigger(base, trigger, split)
    return evaluate_model(
        predictor,
        task.dataset(split),
        group_names=task.group_names,
        n_bootstrap=n_bootstrap,
        random_state=seed,
    )


def compare_run(
    *,
    base: str | os.PathLike[str],
    trigger: str | os.PathLike[str],
    split: str = "test",
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> FairnessComparison:
    """Compare a base run's model behind a saved trigger with the bare model on one split.

    The change (with trigger minus without) gets paired bootstrap intervals: each
    resample scores both on the same rows (:func:`fairreprogram.engine.compare_models`).
    """
    model, predictor, task = _with_trigger(base, trigger, split)
    return compare_models(
        model,
        predictor,
        task.dataset(split),
        group_names=task.group_names,
        n_bootstrap=n_bootstrap,
        random_state=seed,
    )
