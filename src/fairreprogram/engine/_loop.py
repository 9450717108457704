"""The training loop around :func:`minmax_step`: data, evaluation, selection, checkpoints.

One loop serves trigger tuning (trainable = the trigger, the model frozen) and the
baselines (trainable = the whole model). It runs under Accelerate: the device, the
process group and the process rank come from :class:`accelerate.PartialState`
(so ``accelerate launch`` configures it), and in a multi-process run each process
takes its chunk of every global batch while the small gradients are averaged with
one all-reduce per backward quantity. Mixed precision is a per-run autocast
(``torch.autocast``), not Accelerate's process-wide setting, so runs with different
precisions can share one process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from accelerate import PartialState
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from fairreprogram._version import __version__
from fairreprogram.engine._adversary import Adversary
from fairreprogram.engine._batches import (
    ShardedBatchSampler,
    dataset_column,
    dataset_lengths,
    iterate_batches,
    num_batches,
)
from fairreprogram.engine._checkpoint import load_checkpoint, optimizer_from_parts, save_checkpoint
from fairreprogram.engine._config import Selection, TrainConfig
from fairreprogram.engine._evaluate import predict_dataset
from fairreprogram.engine._step import GradientSync, StepLosses, adversary_step, minmax_step
from fairreprogram.metrics import evaluate_fairness
from fairreprogram.utils import FairnessWarning, atomic_write_json, to_device

__all__ = [
    "CHECKPOINT_NAME",
    "HISTORY_NAME",
    "Runtime",
    "TrainingResult",
    "balanced_class_weights",
    "train",
]

CHECKPOINT_NAME = "checkpoint.safetensors"
HISTORY_NAME = "history.json"

_FLOOR_ADMITS_CONSTANT = (
    "the selection floor on validation accuracy ({floor:.4f}: the reference {ref:.4f} minus "
    "max_accuracy_drop={drop:g}) is met by predicting class {cls} for every row ({share:.4f} of the "
    "validation labels), so the 'min_bias' rule may choose a run that cuts its gap by predicting that "
    "class more often. Expected a floor the constant classifier cannot meet: consider "
    "accuracy_metric='balanced_accuracy' (with class_weight='balanced'), or a smaller max_accuracy_drop."
)
_CONFIG_MISMATCH = (
    "output_dir={path} holds a checkpoint of a run with a different configuration "
    "(differing options: {diff}); use another output directory, or resume=False to start over."
)
_NO_PARAMS = "trainable={name} has no parameters with requires_grad=True; nothing would be learned."
_SCALE_GROWTH_INTERVAL = 200


@dataclasses.dataclass
class TrainingResult:
    """What :func:`train` returns.

    Attributes
    ----------
    history
        One dict per evaluated epoch (epoch 0 is the starting point): mean losses,
        validation metrics (``val``), seconds, examples per second.
    best_epoch
        The epoch whose trainable state was restored (see ``TrainConfig.selection``).
    best_val
        Validation metrics of that epoch.
    adversary
        The trained adversary (``None`` for ERM).
    wall_time
        Seconds spent in this call.
    stopped_early
        Whether patience ended the run before ``epochs``.
    earlier_wall_time
        Seconds that earlier, interrupted calls spent on this run, up to their last
        checkpoint (0 for a fresh run): ``wall_time + earlier_wall_time`` is the time
        of all the work the run kept.
    """

    history: list[dict[str, Any]]
    best_epoch: int
    best_val: dict[str, float]
    adversary: Adversary | None
    wall_time: float
    stopped_early: bool
    num_trainable_parameters: int
    earlier_wall_time: float = 0.0


@dataclasses.dataclass
class _Progress:
    epoch: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best_epoch: int = -1
    best_val: dict[str, float] = dataclasses.field(default_factory=dict)
    since_best: int = 0
    loss_scale: float = 1.0
    good_steps: int = 0
    reference_accuracy: float | None = None
    elapsed_s: float = 0.0  # seconds of work up to this checkpoint, over every call


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Where a run executes: device, process rank and count, autocast precision."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    mixed_precision: str = "no"

    @classmethod
    def from_accelerate(cls, mixed_precision: str = "no", *, cpu: bool | None = None) -> Runtime:
        """Read the device and processes from Accelerate's (launcher-configured) state.

        ``cpu=None`` uses an accelerator when torch sees one and the CPU otherwise;
        on the CPU, processes started by ``torchrun`` / ``accelerate launch`` join a
        gloo process group.
        """
        if cpu is None:
            cpu = not (torch.cuda.is_available() or torch.backends.mps.is_available())
        state = PartialState(cpu=cpu)
        return cls(
            device=state.device,
            rank=state.process_index,
            world_size=state.num_processes,
            mixed_precision=mixed_precision,
        )

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """Autocast context of the forward pass (a no-op without mixed precision)."""
        if self.mixed_precision == "no":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.mixed_precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)


def _make_sync(runtime: Runtime) -> GradientSync | None:
    if runtime.world_size == 1:
        return None

    def sync(flat: torch.Tensor, weight: float) -> torch.Tensor:
        buffer = torch.cat([flat * weight, flat.new_tensor([weight])])
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
        return buffer[:-1] / buffer[-1]

    return sync


def _broadcast_parameters(runtime: Runtime, *modules: nn.Module | None) -> None:
    if runtime.world_size == 1:
        return
    for module in modules:
        if module is not None:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor.data, src=0)


def _make_optimizer(params: Sequence[torch.Tensor], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def _validation_metrics(predictor: nn.Module, dataset: Dataset[Any], config: TrainConfig) -> dict[str, float]:
    probs, y, z = predict_dataset(predictor, dataset, batch_size=config.eval_batch_size)
    score = probs[:, 1] if probs.shape[1] == 2 else probs
    result = evaluate_fairness(y_true=y, y_pred=probs.argmax(axis=1), sensitive_features=z, y_score=score)
    return {k: float(v) for k, v in result.overall.items()}


def _better(
    candidate: Mapping[str, float], incumbent: Mapping[str, float], *, config: TrainConfig, floor: float
) -> bool:
    """Whether validation metrics ``candidate`` should replace ``incumbent``."""
    if not incumbent:
        return True
    rule = Selection(config.selection)
    if rule is Selection.LAST:
        return True
    acc = config.accuracy_metric
    if rule is Selection.ACCURACY:
        return candidate[acc] > incumbent[acc]
    if rule is Selection.WORST_GROUP_ACCURACY:
        return candidate["worst_group_accuracy"] > incumbent["worst_group_accuracy"]
    key = config.criterion_enum.gap_key
    cand_ok, inc_ok = candidate[acc] >= floor, incumbent[acc] >= floor
    if cand_ok != inc_ok:
        return cand_ok
    if not cand_ok:
        return candidate[acc] > incumbent[acc]
    cand_bias, inc_bias = candidate[key], incumbent[key]
    if math.isnan(inc_bias):
        return not math.isnan(cand_bias)
    return cand_bias < inc_bias or (cand_bias == inc_bias and candidate[acc] > incumbent[acc])


class _Run:
    """State and helpers of one call to :func:`train` (kept out of the public API)."""

    def __init__(
        self,
        *,
        predictor: nn.Module,
        trainable: nn.Module,
        adversary: Adversary | None,
        config: TrainConfig,
        output_dir: Path | None,
        runtime: Runtime,
    ) -> None:
        self.predictor = predictor
        self.trainable = trainable
        self.adversary = adversary
        self.config = config
        self.output_dir = output_dir
        self.runtime = runtime
        self.params = [p for p in trainable.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError(_NO_PARAMS.format(name=type(trainable).__name__))
        self.optimizer = _make_optimizer(self.params, config)
        self.adversary_optimizer = (
            torch.optim.Adam(adversary.parameters(), lr=config.adversary_lr)
            if adversary is not None
            else None
        )
        self.sync = _make_sync(runtime)
        self.best_state: dict[str, torch.Tensor] = {}
        self.progress = _Progress(loss_scale=2.0**14 if config.mixed_precision == "fp16" else 1.0)
        self.started = time.perf_counter()
        self.earlier = 0.0  # seconds that earlier calls spent on this run (set on restore)
        self.meta: dict[str, Any] = {"library_version": __version__, "config": config.to_dict()}

    # -- checkpoints ---------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.output_dir is None else self.output_dir / CHECKPOINT_NAME

    def save(self) -> None:
        path = self.checkpoint_path
        if path is None or not self.runtime.is_main_process:
            return
        modules = {"trainable": self.trainable.state_dict(), "best": self.best_state}
        optimizers: dict[str, torch.optim.Optimizer] = {"trainable": self.optimizer}
        if self.adversary is not None and self.adversary_optimizer is not None:
            modules["adversary"] = self.adversary.state_dict()
            optimizers["adversary"] = self.adversary_optimizer
        self.progress.elapsed_s = self.earlier + time.perf_counter() - self.started
        state = {**self.meta, "progress": dataclasses.asdict(self.progress)}
        save_checkpoint(path, modules=modules, optimizers=optimizers, state=state)
        atomic_write_json(path.parent / HISTORY_NAME, self.progress.history)

    def restore(self) -> bool:
        path = self.checkpoint_path
        if path is None or not path.is_file():
            return False
        modules, optimizers, state = load_checkpoint(path)
        saved = state.get("config", {})
        if saved != self.meta["config"]:
            keys = sorted(
                k for k in set(saved) | set(self.meta["config"]) if saved.get(k) != self.meta["config"].get(k)
            )
            raise ValueError(_CONFIG_MISMATCH.format(path=path.parent, diff=keys))
        device = self.params[0].device
        self.trainable.load_state_dict(to_device(modules["trainable"], device))
        self.best_state = {k: v.to(device) for k, v in modules.get("best", {}).items()}
        optimizer_from_parts(self.optimizer, *optimizers["trainable"])
        if self.adversary is not None and self.adversary_optimizer is not None:
            self.adversary.load_state_dict(to_device(modules["adversary"], device))
            optimizer_from_parts(self.adversary_optimizer, *optimizers["adversary"])
        self.progress = _Progress(**state["progress"])
        self.earlier = self.progress.elapsed_s  # 0 for checkpoints from before it was kept
        return True

    # -- evaluation and selection ----------------------------------------------------------
    def floor(self) -> float:
        ref = self.progress.reference_accuracy
        if ref is None:
            accs = [h["val"][self.config.accuracy_metric] for h in self.progress.history]
            ref = max(accs) if accs else 0.0
        return ref - self.config.max_accuracy_drop

    def record(self, epoch: int, losses: dict[str, float], seconds: float, examples: int) -> None:
        val = _validation_metrics(self.predictor, self.val_data, self.config)
        entry = {
            "epoch": epoch,
            **losses,
            "seconds": seconds,
            "examples_per_second": examples / seconds if seconds > 0 else math.nan,
            "val": val,
        }
        self.progress.history.append(entry)
        if _better(val, self.progress.best_val, config=self.config, floor=self.floor()):
            self.progress.best_epoch = epoch
            self.progress.best_val = val
            self.progress.since_best = 0
            self.best_state = {k: v.detach().clone() for k, v in self.trainable.state_dict().items()}
        else:
            self.progress.since_best += 1
        self.progress.epoch = epoch

    # -- training ------------------------------------------------------------------------
    def batches(self, epoch: int) -> Any:
        sampler = ShardedBatchSampler(
            len(self.train_data),  # type: ignore[arg-type]
            batch_size=self.config.batch_size,
            seed=self.config.seed,
            epoch=epoch,
            rank=self.runtime.rank,
            world_size=self.runtime.world_size,
            lengths=self.lengths,
        )
        for batch in iterate_batches(self.train_data, sampler):
            yield to_device(batch, self.runtime.device)

    def warmup_adversary(self, bar: tqdm) -> None:
        if self.adversary is None or self.adversary_optimizer is None:
            return
        self.predictor.eval()
        for w in range(self.config.adversary_warmup_epochs):
            for x, y, z in self.batches(-1 - w):
                with torch.no_grad(), self.runtime.autocast():
                    logits = self.predictor(x)
                adversary_step(
                    self.adversary,
                    self.adversary_optimizer,
                    logits.float(),
                    y,
                    z,
                    weight=float(y.shape[0]),
                    sync=self.sync,
                )
                bar.update(1)

    def epoch(self, epoch: int, bar: tqdm) -> tuple[dict[str, float], int]:
        torch.manual_seed(self.config.seed * 100_003 + epoch)
        self.predictor.train()
        totals: dict[str, float] = {"task_loss": 0.0, "adversary_loss": 0.0, "objective": 0.0}
        examples = 0
        for batch in self.batches(epoch):
            losses = minmax_step(
                predictor=self.predictor,
                params=self.params,
                optimizer=self.optimizer,
                batch=batch,
                adversary=self.adversary,
                adversary_optimizer=self.adversary_optimizer,
                lam=self.config.lam,
                project=self.config.project,
                eps=self.config.eps,
                sync=self.sync,
                autocast=self.runtime.autocast,
                loss_scale=self.progress.loss_scale,
                class_weights=self.class_weights,
            )
            self.update_loss_scale(losses)
            n = int(batch[1].shape[0])
            examples += n
            for key in totals:
                totals[key] += getattr(losses, key) * n
            bar.update(1)
            bar.set_postfix(task=f"{losses.task_loss:.3f}", adv=f"{losses.adversary_loss:.3f}", refresh=False)
        return {k: v / max(examples, 1) for k, v in totals.items()}, examples

    def start(self, bar: tqdm, *, reference_accuracy: float | None, evaluate_initial: bool) -> None:
        """Warm the adversary up, evaluate epoch 0 and write the first checkpoint."""
        self.progress.reference_accuracy = reference_accuracy
        self.warmup_adversary(bar)
        if evaluate_initial:
            self.record(0, {"task_loss": math.nan, "adversary_loss": math.nan, "objective": math.nan}, 0.0, 0)
            if self.progress.reference_accuracy is None:
                self.progress.reference_accuracy = self.progress.history[0]["val"][
                    self.config.accuracy_metric
                ]
        self.check_floor()
        self.save()

    def check_floor(self) -> None:
        """Warn when predicting the majority class meets the ``min_bias`` accuracy floor.

        On imbalanced labels a run can then keep its accuracy while cutting its gap by
        predicting the majority class more often; only a floor on balanced accuracy
        rules that out.
        """
        config = self.config
        ref = self.progress.reference_accuracy
        if (
            ref is None
            or Selection(config.selection) is not Selection.MIN_BIAS
            or config.accuracy_metric != "accuracy"
            or not self.runtime.is_main_process
        ):
            return
        counts = torch.bincount(dataset_column(self.val_data, 1))
        if counts.sum() == 0:
            return
        share = float(counts.max() / counts.sum())
        floor = ref - config.max_accuracy_drop
        if share >= floor:
            warnings.warn(
                _FLOOR_ADMITS_CONSTANT.format(
                    floor=floor,
                    ref=ref,
                    drop=config.max_accuracy_drop,
                    cls=int(counts.argmax()),
                    share=share,
                ),
                FairnessWarning,
                stacklevel=2,
            )

    def update_loss_scale(self, losses: StepLosses) -> None:
        if self.config.mixed_precision != "fp16":
            return
        if losses.skipped:
            self.progress.loss_scale = max(self.progress.loss_scale / 2, 1.0)
            self.progress.good_steps = 0
        else:
            self.progress.good_steps += 1
            if self.progress.good_steps % _SCALE_GROWTH_INTERVAL == 0:
                self.progress.loss_scale *= 2

    train_data: Dataset[Any]
    val_data: Dataset[Any]
    lengths: np.ndarray | None = None
    class_weights: torch.Tensor | None = None


def balanced_class_weights(dataset: Dataset[Any], num_classes: int) -> torch.Tensor:
    """Per-class weights ``n / (C * n_c)`` of the labels of a ``(x, y, z)`` dataset."""
    counts = torch.bincount(dataset_column(dataset, 1), minlength=num_classes).float()
    return counts.sum() / (num_classes * counts.clamp(min=1))


def _resolve_runtime(runtime: Runtime | None, predictor: nn.Module, config: TrainConfig) -> Runtime:
    if runtime is None:
        runtime = Runtime.from_accelerate(config.mixed_precision)
        first = next(predictor.parameters(), None)
        if runtime.world_size == 1 and first is not None:
            # A single process runs where the model already is; a launcher decides otherwise.
            runtime = dataclasses.replace(runtime, device=first.device)
    return dataclasses.replace(runtime, mixed_precision=config.mixed_precision)


def _build_adversary(config: TrainConfig, num_classes: int, num_groups: int) -> Adversary | None:
    if not config.adversarial:
        return None
    return Adversary(
        num_classes=num_classes,
        num_groups=num_groups,
        criterion=config.criterion,
        hidden_sizes=config.adversary_hidden_sizes,
        use_logits=config.adversary_use_logits,
    )


def train(
    *,
    predictor: nn.Module,
    trainable: nn.Module,
    train_data: Dataset[Any],
    val_data: Dataset[Any],
    config: TrainConfig,
    num_classes: int,
    num_groups: int,
    output_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
    progress: bool = True,
    reference_accuracy: float | None = None,
    evaluate_initial: bool = True,
    description: str = "train",
    runtime: Runtime | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> TrainingResult:
    """Train ``trainable`` (a part of ``predictor``) with the min-max objective.

    The predictor maps a batch input to logits; the parameters of ``trainable`` with
    ``requires_grad`` are updated, nothing else. Each epoch ends with a validation
    pass, the model-selection rule of ``config`` and, when ``output_dir`` is given, a
    checkpoint (``checkpoint.safetensors``) plus ``history.json``; an interrupted run
    with the same configuration resumes from the last finished epoch. On return, the
    trainable holds the selected epoch's state.

    A single process runs on the device the predictor's parameters are on; under
    ``torchrun`` / ``accelerate launch`` each process uses the device Accelerate gives
    it (pass ``runtime`` to choose explicitly).
    """
    started = time.perf_counter()
    runtime = _resolve_runtime(runtime, predictor, config)
    torch.manual_seed(config.seed)
    adversary = _build_adversary(config, num_classes, num_groups)
    predictor.to(runtime.device)
    if adversary is not None:
        adversary.to(runtime.device)
    _broadcast_parameters(runtime, trainable, adversary)
    out = Path(output_dir) if output_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    run = _Run(
        predictor=predictor,
        trainable=trainable,
        adversary=adversary,
        config=config,
        output_dir=out,
        runtime=runtime,
    )
    run.train_data, run.val_data = train_data, val_data
    run.lengths = dataset_lengths(train_data)
    if config.class_weight == "balanced":
        run.class_weights = balanced_class_weights(train_data, num_classes).to(runtime.device)
    resumed = resume and run.restore()
    steps = num_batches(len(train_data), config.batch_size, runtime.world_size)  # type: ignore[arg-type]
    warmup = config.adversary_warmup_epochs * steps if adversary is not None else 0
    total = warmup + config.epochs * steps
    done = 0 if not resumed else warmup + run.progress.epoch * steps
    bar = tqdm(
        total=total,
        initial=done,
        desc=description,
        unit="step",
        dynamic_ncols=True,
        disable=not progress or not runtime.is_main_process,
    )
    stopped_early = False
    try:
        if not resumed:
            run.start(bar, reference_accuracy=reference_accuracy, evaluate_initial=evaluate_initial)
        for epoch in range(run.progress.epoch + 1, config.epochs + 1):
            if config.patience and run.progress.since_best >= config.patience:
                stopped_early = True
                break
            tic = time.perf_counter()
            losses, examples = run.epoch(epoch, bar)
            validated = epoch % config.validate_every == 0 or epoch == config.epochs
            if validated:
                run.record(epoch, losses, time.perf_counter() - tic, examples * runtime.world_size)
            else:
                run.progress.epoch = epoch
            run.save()
            if validated and on_epoch_end is not None:
                on_epoch_end(run.progress.history[-1])
            bar.set_description(f"{description} (epoch {epoch}, best {run.progress.best_epoch})")
    finally:
        bar.close()
    if run.best_state:
        trainable.load_state_dict(run.best_state)
    return TrainingResult(
        history=run.progress.history,
        best_epoch=run.progress.best_epoch,
        best_val=run.progress.best_val,
        adversary=adversary,
        wall_time=time.perf_counter() - started,
        stopped_early=stopped_early,
        num_trainable_parameters=sum(p.numel() for p in run.params),
        earlier_wall_time=run.earlier,
    )
