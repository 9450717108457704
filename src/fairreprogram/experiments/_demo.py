"""The demo on the embedded default data set (scikit-lego's arrests data; no download)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from fairreprogram.baselines import train_erm
from fairreprogram.data import TabularData, load_arrests
from fairreprogram.engine import Reprogrammer, TrainConfig, evaluate_model
from fairreprogram.metrics import TABLE_KEYS
from fairreprogram.models import MLPClassifier, ReprogrammedModel
from fairreprogram.triggers import MaskOffsetTrigger
from fairreprogram.utils import atomic_path, atomic_write_json

__all__ = ["DEMO_KEYS", "DEMO_TRIGGER_CONFIG", "format_table", "run_demo"]

DEMO_KEYS = TABLE_KEYS
"""Metric keys printed in the demo's table (all metric keys go to ``summary.json``)."""

DEMO_TRIGGER_CONFIG = TrainConfig(
    lam=0.3,
    epochs=60,
    batch_size=128,
    lr=0.02,
    adversary_lr=3e-3,
    adversary_warmup_epochs=2,
    max_accuracy_drop=0.015,
    class_weight="balanced",
)
"""Trigger-tuning options of the demo (the criterion is set per trigger).

Only about 17% of the arrests are not released, so a plain-accuracy base model
predicts "released" for everyone (and is trivially "fair"). The base model is
therefore trained with class-balanced loss, and the triggers keep that loss.
"""


def format_table(rows: dict[str, dict[str, float]], keys: tuple[str, ...]) -> str:
    """Plain-text table: one row per model, one column per metric key."""
    width = max(len(name) for name in rows) + 2
    header = "model".ljust(width) + "".join(k.rjust(max(len(k), 8) + 2) for k in keys)
    lines = [header, "-" * len(header)]
    for name, metrics in rows.items():
        cells = "".join(f"{metrics.get(k, float('nan')):.4f}".rjust(max(len(k), 8) + 2) for k in keys)
        lines.append(name.ljust(width) + cells)
    return "\n".join(lines)


def _plot(
    out: Path,
    rows: dict[str, dict[str, float]],
    triggers: dict[str, MaskOffsetTrigger],
    feature_names: list[str],
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1.1, 1, 1]})
    keys = ("accuracy", "dp_gap", "eo_gap", "worst_group_accuracy")
    names = list(rows)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        axes[0].bar(
            [k + i * width for k in range(len(keys))], [rows[name][k] for k in keys], width, label=name
        )
    axes[0].set_xticks([k + width * (len(names) - 1) / 2 for k in range(len(keys))], keys, rotation=15)
    axes[0].set_title("test metrics (arrests, sensitive: colour)")
    axes[0].legend()
    for ax, (name, trigger) in zip(axes[1:], triggers.items(), strict=True):
        with torch.no_grad():
            mask = trigger.mask().cpu().numpy()
            offset = trigger.offset.cpu().numpy()
        ypos = range(len(feature_names))
        ax.barh([y + 0.2 for y in ypos], offset, 0.4, label="offset δ")
        ax.barh([y - 0.2 for y in ypos], mask, 0.4, label="mask m")
        ax.set_yticks(list(ypos), feature_names, fontsize=7)
        ax.set_title(f"{name}: x·m + δ")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "demo.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def _evaluate(model: torch.nn.Module, data: TabularData) -> dict[str, Any]:
    result = evaluate_model(model, data.test.to_dataset(), group_names=data.group_names)
    return {**result.overall, "by_group": result.to_dict()["by_group"]}


def run_demo(
    *,
    out: str | os.PathLike[str] = "demo-output",
    seed: int = 0,
    progress: bool = True,
    epochs: int | None = None,
) -> dict[str, Any]:
    """Train a base MLP on arrests, tune a DP and an EO trigger, and report.

    Writes ``demo.png``, ``trigger_dp/``, ``trigger_eo/`` (saved triggers) and
    ``summary.json`` (one entry per model with its test metrics) into ``out``, and
    returns the summary. ``epochs`` overrides the trigger's epoch budget (tests).
    """
    tic = time.perf_counter()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    data = load_arrests(seed=seed)
    torch.manual_seed(seed)
    base = MLPClassifier(in_features=data.num_features, num_classes=data.num_classes)
    train_erm(
        base,
        data.train.to_dataset(),
        data.val.to_dataset(),
        seed=seed,
        progress=progress,
        class_weight="balanced",
        accuracy_metric="balanced_accuracy",
    )
    rows = {"base": _evaluate(base, data)}
    triggers = {}
    for criterion in ("demographic_parity", "equalized_odds"):
        config = DEMO_TRIGGER_CONFIG.replace(criterion=criterion, seed=seed)
        if epochs is not None:
            config = config.replace(epochs=epochs)
        trigger = MaskOffsetTrigger(num_features=data.num_features)
        deployed: ReprogrammedModel = Reprogrammer(base, trigger, config=config).fit(
            data.tune.to_dataset(), data.val.to_dataset(), progress=progress
        )
        name = f"trigger_{config.criterion_enum.short}"
        trigger.save_pretrained(folder / name)
        triggers[name] = trigger
        rows[name] = {**_evaluate(deployed, data), "trainable_parameters": trigger.num_trainable_parameters()}
    plot = _plot(folder, rows, triggers, data.feature_names)
    summary = {
        "data": {
            "name": "arrests",
            "sensitive": data.sensitive,
            "target": data.target,
            "groups": data.group_names,
            "sizes": {k: len(v) for k, v in data.splits.items()},
        },
        "split": "test",
        "models": rows,
        **rows,
        "plot": plot.name,
        "seed": seed,
        "wall_time_s": time.perf_counter() - tic,
    }
    atomic_write_json(folder / "summary.json", summary)
    return summary
