"""Running one base model or one trial of a sweep into its run directory.

The functions here take plain dicts (the sweep config and the trial) so that any
backend can ship them to a worker process or a Ray task. A trial whose run
directory is finished is skipped; an interrupted one resumes from its checkpoint.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from fairreprogram.baselines import (
    ERM_DEFAULTS,
    fit_threshold_optimizer,
    train_adv_in,
    train_adv_post,
)
from fairreprogram.engine import Reprogrammer, TrainConfig, evaluate_model
from fairreprogram.experiments._rundir import finish_run, prepare_run_dir, read_run, reuse_finished
from fairreprogram.experiments._runs import epoch_speed, fit_base, split_metrics
from fairreprogram.experiments._sweep_config import SweepConfig, Trial
from fairreprogram.experiments._tasks import Task, build_task
from fairreprogram.metrics import evaluate_fairness
from fairreprogram.models import ReprogrammedModel
from fairreprogram.triggers import Trigger
from fairreprogram.utils import atomic_write_json, peak_memory_mb, read_json, start_memory_window

__all__ = [
    "BASES_DIR",
    "RUNS_DIR",
    "TRANSFER_NAME",
    "base_run_config",
    "run_base",
    "run_transfer",
    "run_trial",
    "trial_run_config",
]

BASES_DIR = "bases"
RUNS_DIR = "runs"
TRANSFER_NAME = "transfer.json"


def _set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def base_dir(sweep_dir: Path, seed: int, architecture: int | None = None) -> Path:
    """Run directory of the base model of ``seed`` (or of a transfer-target architecture)."""
    name = f"base-s{seed}" if architecture is None else f"arch{architecture}-s{seed}"
    return sweep_dir / BASES_DIR / name


def _base_setup(
    sweep: SweepConfig, seed: int, architecture: int | None
) -> tuple[dict[str, Any], TrainConfig, dict[str, Any]]:
    options = {
        **sweep.base,
        **(sweep.transfer_architectures[architecture] if architecture is not None else {}),
    }
    train = ERM_DEFAULTS.replace(**{**dict(options.get("train", {})), "seed": seed})
    run_config = {
        "command": "sweep-base" if architecture is None else "sweep-transfer-target",
        "seed": seed,
        "data": dict(sweep.data),
        "model": {k: v for k, v in options.items() if k != "train"},
        "train": train.to_dict(),
    }
    return options, train, run_config


def base_run_config(sweep: SweepConfig, seed: int, architecture: int | None = None) -> dict[str, Any]:
    """The run config that the base model of ``seed`` (or a transfer target) is run with."""
    return _base_setup(sweep, seed, architecture)[2]


def trial_run_config(sweep: SweepConfig, trial: Trial) -> dict[str, Any]:
    """The run config that ``trial`` is run with (compared with a finished run's own)."""
    return {
        "command": "sweep-trial",
        "trial": trial.to_dict(),
        "base": base_dir(Path("."), trial.seed).name,
        "data": dict(sweep.data),
        "train": sweep.train_config(trial).to_dict(),
    }


def run_base(
    *,
    sweep_dir: str | os.PathLike[str],
    config: dict[str, Any],
    seed: int,
    architecture: int | None = None,
    threads: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train (or reuse) the ERM base model of ``seed``, shared by every trial of that seed.

    With ``architecture``, train instead the transfer target built from
    ``transfer.architectures[architecture]`` merged over the ``base`` options.
    """
    _set_threads(threads)
    sweep = SweepConfig.from_dict(config)
    out = base_dir(Path(sweep_dir), seed, architecture)
    options, train, run_config = _base_setup(sweep, seed, architecture)
    if reuse_finished(out, run_config):
        return read_run(out)[1] or {}
    prepare_run_dir(out, run_config)
    return fit_base(build_task(sweep.data), options, train, out, progress=progress)


def tune_indices(n: int, fraction: float, seed: int) -> np.ndarray:
    """Rows of the tuning split a trial uses: all of them, or a seeded random share.

    Trials of one seed and fraction get the same rows, whatever their method.
    """
    if fraction >= 1.0:
        return np.arange(n)
    keep = max(round(n * fraction), 2)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(10_007 + seed))[:keep]
    return np.sort(order.numpy())


def _take(dataset: Dataset[Any], rows: np.ndarray) -> Dataset[Any]:
    if len(rows) == len(dataset):  # type: ignore[arg-type]
        return dataset
    if isinstance(dataset, torch.utils.data.TensorDataset):  # keep the engine's fast path
        idx = torch.as_tensor(rows)
        return torch.utils.data.TensorDataset(*(t[idx] for t in dataset.tensors))
    return Subset(dataset, rows.tolist())


_Runner = Callable[..., tuple[nn.Module | None, dict[str, Any]]]


def _trigger(
    trial: Trial, *, task: Task, base: nn.Module, tune: Dataset[Any], config: TrainConfig, out: Path, **_: Any
) -> tuple[nn.Module | None, dict[str, Any]]:
    torch.manual_seed(config.seed)  # a random start depends on the seed, not on earlier trials
    trigger = task.build_trigger(trial.method, base, trial.trigger_options)
    reprogrammer = Reprogrammer(base, trigger, config=config)
    model = reprogrammer.fit(tune, task.dataset("val"), output_dir=out, progress=False)
    trigger.save_pretrained(out / "trigger")
    result = reprogrammer.result_
    extra: dict[str, Any] = {
        "trainable_parameters": trigger.num_trainable_parameters(),
        "best_epoch": result.best_epoch if result else -1,
        "examples_per_second": epoch_speed(result.history) if result else math.nan,
        "earlier_wall_time_s": result.earlier_wall_time if result else 0.0,
    }
    if isinstance(getattr(type(trigger), "text", None), property):  # hard prompts: their words
        extra["trigger_text"] = str(trigger.text)
    return model, extra


def _adv_post(
    trial: Trial, *, task: Task, base: nn.Module, tune: Dataset[Any], config: TrainConfig, out: Path, **_: Any
) -> tuple[nn.Module | None, dict[str, Any]]:
    model, result = train_adv_post(
        base, tune, task.dataset("val"), config=config, output_dir=out, progress=False
    )
    task.save_base(model, out / "model")
    return model, {
        "trainable_parameters": result.num_trainable_parameters,
        "best_epoch": result.best_epoch,
        "examples_per_second": epoch_speed(result.history),
        "earlier_wall_time_s": result.earlier_wall_time,
    }


def _adv_in(
    trial: Trial,
    *,
    task: Task,
    base: nn.Module,
    tune: Dataset[Any],
    config: TrainConfig,
    out: Path,
    base_metrics: dict[str, Any],
    sweep: SweepConfig,
    **_: Any,
) -> tuple[nn.Module | None, dict[str, Any]]:
    torch.manual_seed(trial.seed)
    model = task.build_base(sweep.base)
    reference = base_metrics["val"]["overall"][config.accuracy_metric]
    result = train_adv_in(
        model,
        task.dataset("train"),
        task.dataset("val"),
        config=config,
        reference_accuracy=reference,
        output_dir=out,
        progress=False,
    )
    task.save_base(model, out / "model")
    return model, {
        "trainable_parameters": result.num_trainable_parameters,
        "best_epoch": result.best_epoch,
        "examples_per_second": epoch_speed(result.history),
        "earlier_wall_time_s": result.earlier_wall_time,
    }


def _erm(trial: Trial, *, base: nn.Module, **_: Any) -> tuple[nn.Module | None, dict[str, Any]]:
    # ERM is the shared base model itself; the trial records it as a row of its own.
    return base, {"trainable_parameters": sum(p.numel() for p in base.parameters()), "best_epoch": 0}


def _threshold(
    trial: Trial, *, task: Task, base: nn.Module, rows: np.ndarray, **_: Any
) -> tuple[nn.Module | None, dict[str, Any]]:
    x, y, z = (np.asarray(a)[rows] for a in task.arrays("tune"))
    optimizer = fit_threshold_optimizer(base, x, y, z, constraints=trial.criterion or "demographic_parity")
    metrics: dict[str, Any] = {"trainable_parameters": 0, "best_epoch": None, "uses_z_at_inference": True}
    names = np.asarray(task.group_names, dtype=object)
    for split in ("val", "test"):
        xs, ys, zs = task.arrays(split)
        pred = optimizer.predict(xs, sensitive_features=zs, random_state=trial.seed)
        metrics[split] = evaluate_fairness(y_true=ys, y_pred=pred, sensitive_features=names[zs]).to_dict()
    return None, metrics


_RUNNERS: dict[str, _Runner] = {"erm": _erm, "advin": _adv_in, "advpost": _adv_post, "threshold": _threshold}


def run_trial(
    *,
    sweep_dir: str | os.PathLike[str],
    config: dict[str, Any],
    trial: dict[str, Any],
    threads: int | None = None,
) -> dict[str, Any]:
    """Run one trial into ``sweep_dir/runs/<trial_id>`` (skipped when finished) and return its metrics."""
    _set_threads(threads)
    sweep = SweepConfig.from_dict(config)
    spec = Trial.from_dict(trial)
    root = Path(sweep_dir)
    out = root / RUNS_DIR / spec.trial_id
    train = sweep.train_config(spec)
    base_path = base_dir(root, spec.seed)
    run_config = trial_run_config(sweep, spec)
    if reuse_finished(out, run_config):  # a changed config is refused, never silently reused
        return read_run(out)[1] or {}
    prepare_run_dir(out, run_config)
    task = build_task(sweep.data)
    base = task.load_base(base_path / "model")
    base_metrics = read_json(base_path / "metrics.json")
    full_tune = task.dataset("tune")
    rows = tune_indices(len(full_tune), spec.tune_fraction, spec.seed)  # type: ignore[arg-type]
    tune = _take(full_tune, rows)
    runner = _RUNNERS.get(spec.method, _trigger)
    memory_scope = start_memory_window()
    tic = time.perf_counter()
    model, extra = runner(
        spec,
        task=task,
        base=base,
        tune=tune,
        rows=rows,
        config=train,
        out=out,
        base_metrics=base_metrics,
        sweep=sweep,
    )
    wall = time.perf_counter() - tic
    metrics = {
        **(split_metrics(model, task) if model is not None else {}),
        **extra,
        # The whole run's time: a resumed run adds what earlier sessions spent on it.
        "wall_time_s": wall + extra.get("earlier_wall_time_s", 0.0),
        "peak_memory_mb": peak_memory_mb(),
        "peak_memory_scope": memory_scope,
        "tune_examples": len(rows),
    }
    finish_run(out, metrics)
    return metrics


def run_transfer(
    *,
    sweep_dir: str | os.PathLike[str],
    config: dict[str, Any],
    trial: dict[str, Any],
    seeds: list[int],
    threads: int | None = None,
) -> dict[str, Any]:
    """Evaluate a finished trigger trial on other base models.

    The targets are the base models of the other ``seeds`` and the transfer-target
    architectures of every seed.

    Writes ``transfer.json`` into the trial's run directory: for every other base, its
    test metrics alone and behind the transferred trigger, and the share of the
    source's bias reduction that survives (for the trial's criterion).
    """
    _set_threads(threads)
    sweep = SweepConfig.from_dict(config)
    spec = Trial.from_dict(trial)
    root = Path(sweep_dir)
    out = root / RUNS_DIR / spec.trial_id
    if (out / TRANSFER_NAME).is_file():
        return read_json(out / TRANSFER_NAME)
    task = build_task(sweep.data)
    trigger = Trigger.from_pretrained(out / "trigger", input_shape=task.input_shape)
    gap = f"{'dp' if spec.criterion == 'demographic_parity' else 'eo'}_gap"
    own = read_json(out / "metrics.json")["test"]["overall"]
    own_base = read_json(base_dir(root, spec.seed) / "metrics.json")["test"]["overall"]
    source_cut = own_base[gap] - own[gap]
    targets = {}
    target_dirs = [base_dir(root, seed) for seed in seeds if seed != spec.seed]
    target_dirs += [
        base_dir(root, seed, i) for i in range(len(sweep.transfer_architectures)) for seed in seeds
    ]
    for target_dir in target_dirs:
        other = task.load_base(target_dir / "model")
        alone = read_json(target_dir / "metrics.json")["test"]["overall"]
        moved = evaluate_model(
            ReprogrammedModel(trigger, other), task.dataset("test"), group_names=task.group_names
        ).overall
        cut = alone[gap] - moved[gap]
        targets[target_dir.name] = {
            "base": {k: alone[k] for k in ("accuracy", gap)},
            "with_trigger": {k: float(moved[k]) for k in ("accuracy", gap)},
            "share_of_reduction_kept": cut / source_cut if source_cut > 0 else math.nan,
        }
    record = {
        "source": base_dir(root, spec.seed).name,
        "criterion": spec.criterion,
        "gap": gap,
        "source_reduction": source_cut,
        "targets": targets,
    }
    atomic_write_json(out / TRANSFER_NAME, record)
    return record
