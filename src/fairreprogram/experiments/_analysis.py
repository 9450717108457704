"""Turning run directories into the accuracy-fairness picture.

- :func:`collect_runs` reads every finished run under a directory into one table.
- :func:`degeneracy` flags runs whose predictions collapse to one class, overall or
  within a group: their bias can be zero without being fair in any useful sense, so
  they are flagged everywhere and never placed on a Pareto front.
- :func:`pareto_front`, :func:`hypervolume`, :func:`bias_at_accuracy` and
  :func:`accuracy_at_bias` compare methods on (accuracy up, bias down).
- :func:`summarize` aggregates seeds (mean, std) per configuration and builds the
  front, data-efficiency and transfer tables a report shows.

Reference point of the hypervolume: ``(accuracy_ref, gap_ref)`` with
``accuracy_ref = base accuracy - reference_accuracy_drop`` (default 0.10) and
``gap_ref = base gap`` of the criterion, both means over seeds. The hypervolume is
the area of the (accuracy, gap) region that the front dominates and that improves
on the reference in both coordinates; a front that never beats the base's bias has
hypervolume 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairreprogram.engine import Criterion, parse_criterion
from fairreprogram.experiments._rundir import METRICS_NAME, RUN_CONFIG_NAME, read_run
from fairreprogram.metrics import TABLE_KEYS

__all__ = [
    "CONFIG_COLUMNS",
    "accuracy_at_bias",
    "bias_at_accuracy",
    "collect_runs",
    "degeneracy",
    "efficiency_families",
    "hypervolume",
    "majority_accuracy",
    "pareto_front",
    "summarize",
    "transfer_summary",
]

CONFIG_COLUMNS = ("method", "criterion", "lam", "tune_fraction", "options")
"""Columns that identify a configuration; seeds of one configuration are aggregated."""

_NO_RUNS = (
    "directory={path} holds no finished runs (no */{metrics} below it); expected a sweep or run directory."
)


def degeneracy(test: dict[str, Any]) -> str:
    """Why a run is degenerate (``""`` if it is not), from its ``FairnessEvaluation.to_dict()``.

    A run is degenerate when it predicts a single class for everyone, or for every
    member of some group (binary: selection rate 0 or 1; multi-class: one class with
    selection rate 1 in that group).
    """
    overall = test.get("overall", {})
    classes = test.get("classes", [0, 1])
    if len(classes) <= 2:
        rate = overall.get("selection_rate", math.nan)
        if rate in (0.0, 1.0):
            return f"predicts one class for everyone (selection rate {rate:g})"
        for row in test.get("by_group", []):
            if row.get("count", 0) and row.get("selection_rate") in (0.0, 1.0):
                return f"predicts one class for all of group {row['group']!r}"
        return ""
    for row in test.get("by_group_class", []):
        if row.get("count", 0) and row.get("selection_rate") == 1.0:
            return f"predicts class {row['class']!r} for all of group {row['group']!r}"
    return ""


def majority_accuracy(test: dict[str, Any]) -> float:
    """Accuracy of predicting the most frequent true class for every row, from an evaluation.

    ``test`` is a ``FairnessEvaluation.to_dict()``; the class counts come from its
    ``by_group_label`` table (NaN when it has none). On imbalanced data this constant
    classifier can score within an accuracy floor of a real model while every gap is 0,
    so a floor on accuracy alone does not show that a fairer run stayed useful.
    """
    counts: dict[Any, float] = {}
    for cell in test.get("by_group_label", []):
        counts[cell["label"]] = counts.get(cell["label"], 0.0) + float(cell.get("count", 0))
    total = sum(counts.values())
    return max(counts.values()) / total if total else math.nan


def _run_dirs(root: Path) -> Iterable[Path]:
    """Folders holding a run config, except folders inside a run (a saved model's config)."""
    found = sorted(p.parent for p in root.rglob(RUN_CONFIG_NAME))
    runs = set(found)
    return [p for p in found if not any(parent in runs for parent in p.parents)]


def collect_runs(directory: str | os.PathLike[str], *, include_unfinished: bool = False) -> pd.DataFrame:
    """One row per finished run under ``directory`` (its test metrics and identity).

    Columns: ``run_id``, ``path``, ``method``, ``criterion``, ``lam``, ``seed``,
    ``tune_fraction``, ``options`` (trigger and training overrides), ``trigger_options``
    (the trigger's alone), ``family_options`` (``options`` without the step budget,
    ``epochs`` and ``validate_every``, which smaller shares of the tuning split may
    raise; runs that differ only in share and budget form a data-efficiency family),
    every key of :data:`~fairreprogram.metrics.TABLE_KEYS` (test split), the same with
    a ``val_`` prefix, ``trainable_parameters``, ``tune_examples``,
    ``wall_time_s``, ``peak_memory_mb``, ``peak_memory_bound`` (the peak is the worker
    process's so far, an upper bound on the run's: runs recorded before per-run windows,
    or where the OS cannot reset the mark), ``examples_per_second``, ``best_epoch`` (the
    selected epoch, NaN when there is none), ``untuned`` (an adversarial or trigger run
    that kept epoch 0, its untrained starting point, because no trained epoch met the
    selection rule), ``trigger_text`` (the words of a hard text trigger, else ``""``),
    ``uses_z_at_inference``, ``degenerate`` (the reason, or ``""``),
    ``majority_accuracy`` (test accuracy of always predicting the most frequent class,
    see :func:`majority_accuracy`), ``status``
    (``finished`` / ``unfinished``; unfinished runs only with ``include_unfinished``).
    Version compatibility is checked by :func:`~fairreprogram.experiments.read_run`.
    """
    root = Path(directory)
    rows = []
    for path in _run_dirs(root):
        config, metrics = read_run(path)
        if metrics is None and not include_unfinished:
            continue
        metrics = metrics or {}
        trial = config.get("trial", {})
        method = trial.get("method", config.get("command", "run"))
        if config.get("command") in ("sweep-base", "train-base"):
            method = "base"
        elif config.get("command") == "sweep-transfer-target":
            method = "transfer_target"  # another architecture, trained only to receive triggers
        row: dict[str, Any] = {
            "run_id": path.name,
            "path": str(path),
            "method": method,
            "criterion": trial.get("criterion"),
            "lam": trial.get("lam"),
            "seed": trial.get("seed", config.get("seed")),
            "tune_fraction": trial.get("tune_fraction", 1.0),
            "options": _options_label(trial),
            "trigger_options": _options_label({"trigger_options": trial.get("trigger_options", {})}),
            "family_options": _options_label(trial, skip=_STEP_BUDGET),
        }
        for split, prefix in (("test", ""), ("val", "val_")):
            overall = metrics.get(split, {}).get("overall", {})
            for key in TABLE_KEYS:
                row[prefix + key] = overall.get(key, math.nan)
        for key in (
            "trainable_parameters",
            "tune_examples",
            "wall_time_s",
            "peak_memory_mb",
            "examples_per_second",
        ):
            row[key] = metrics.get(key, math.nan)
        row["peak_memory_bound"] = metrics.get("peak_memory_scope") != "run"
        best = metrics.get("best_epoch")
        row["best_epoch"] = math.nan if best is None else best
        row["untuned"] = best == 0 and method not in _NOT_TUNED
        row["trigger_text"] = metrics.get("trigger_text", "")
        row["uses_z_at_inference"] = bool(metrics.get("uses_z_at_inference", False))
        row["degenerate"] = degeneracy(metrics.get("test", {}))
        row["majority_accuracy"] = majority_accuracy(metrics.get("test", {}))
        row["status"] = "finished" if metrics else "unfinished"
        rows.append(row)
    if not rows:
        raise FileNotFoundError(_NO_RUNS.format(path=root, metrics=METRICS_NAME))
    return pd.DataFrame(rows)


_NOT_TUNED = ("base", "erm", "threshold", "transfer_target", "run")
"""Methods without tuning epochs, for which epoch 0 means nothing."""


_STEP_BUDGET = ("epochs", "validate_every")
"""Training overrides that set how long a run trains, not what it trains."""


def _options_label(trial: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    parts = [f"{k}={v}" for k, v in sorted(trial.get("trigger_options", {}).items())]
    parts += [f"{k}={v}" for k, v in sorted(trial.get("train", {}).items()) if k not in skip]
    return ",".join(parts)


def transfer_summary(transfers: dict[str, dict[str, Any]], *, min_reduction: float = 0.01) -> pd.DataFrame:
    """Share of bias reduction kept after transfer, per criterion and kind of target.

    ``transfers`` maps a trial id to its ``transfer.json`` record. The target kind is
    ``"other seed"`` for the base models of other seeds and the architecture name
    (``arch0``, ...) for transfer-target architectures. Pairs whose source run cut the
    gap by less than ``min_reduction`` are left out: a share of a near-zero reduction
    is noise. Columns: criterion, target, pairs, median_share, mean_share,
    pairs_at_least_0.7.
    """
    rows = []
    for record in transfers.values():
        if not record.get("source_reduction", 0.0) >= min_reduction:
            continue
        for name, result in record.get("targets", {}).items():
            share = result.get("share_of_reduction_kept", math.nan)
            kind = name.rsplit("-s", 1)[0]
            if not math.isnan(share):
                rows.append(
                    {
                        "criterion": record.get("criterion"),
                        "target": "other seed" if kind == "base" else kind,
                        "share": share,
                    }
                )
    columns = ["criterion", "target", "pairs", "median_share", "mean_share", "pairs_at_least_0.7"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    return (
        frame.groupby(["criterion", "target"])
        .agg(
            pairs=("share", "size"),
            median_share=("share", "median"),
            mean_share=("share", "mean"),
            **{"pairs_at_least_0.7": ("share", lambda s: int((s >= 0.7).sum()))},
        )
        .reset_index()[columns]
    )


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-dominated ``(accuracy, gap)`` points (higher accuracy, lower gap), by accuracy."""
    clean = sorted({(float(a), float(g)) for a, g in points if not (math.isnan(a) or math.isnan(g))})
    front = []
    for a, g in clean:
        if not any(a2 >= a and g2 <= g and (a2, g2) != (a, g) for a2, g2 in clean):
            front.append((a, g))
    return front


def hypervolume(front: Sequence[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area dominated by ``front`` that beats ``reference = (accuracy, gap)`` in both."""
    acc_ref, gap_ref = reference
    pts = sorted((a, g) for a, g in pareto_front(front) if a > acc_ref and g < gap_ref)
    area, prev_acc = 0.0, acc_ref
    # Sweep accuracy upwards; along a front the gap rises with accuracy.
    for i, (a, _g) in enumerate(pts):
        best_gap = min(g for _, g in pts[i:])
        area += (a - prev_acc) * (gap_ref - best_gap)
        prev_acc = a
    return area


def bias_at_accuracy(front: Sequence[tuple[float, float]], accuracy: float) -> float:
    """Lowest gap the front reaches at accuracy >= ``accuracy`` (linear interpolation).

    NaN when no front point is that accurate.
    """
    pts = pareto_front(front)
    if not pts or accuracy > pts[-1][0]:
        return math.nan
    if accuracy <= pts[0][0]:
        return pts[0][1]
    accs, gaps = zip(*pts, strict=True)
    return float(np.interp(accuracy, accs, gaps))


def accuracy_at_bias(front: Sequence[tuple[float, float]], gap: float) -> float:
    """Highest accuracy the front reaches with gap <= ``gap`` (linear interpolation).

    NaN when no front point is that fair.
    """
    pts = pareto_front(front)
    if not pts or gap < pts[0][1]:
        return math.nan
    if gap >= pts[-1][1]:
        return pts[-1][0]
    accs, gaps = zip(*pts, strict=True)
    return float(np.interp(gap, gaps, accs))


def efficiency_families(configs: pd.DataFrame, criterion: Criterion) -> list[tuple[str, str, pd.DataFrame]]:
    """``(label, method, rows by tune_fraction)`` per family of ``criterion`` with a fraction < 1.

    ``configs`` is :func:`summarize`'s ``configs`` table. A family shares method, lambda
    and options (``family_options``): its smaller shares may only train for more epochs.
    """
    rows = configs[(configs["criterion"] == criterion.value) & (configs["method"] != "base")]
    lines = []
    for (method, lam, options), part in rows.groupby(
        ["method", "lam", "family_options"], dropna=False, sort=True
    ):
        if not (part["tune_fraction"] < 1.0).any():
            continue
        label = str(method) + ("" if pd.isna(lam) else f", λ={lam:g}") + (f", {options}" if options else "")
        lines.append((label, str(method), part.sort_values("tune_fraction")))
    return lines


def _aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    keys = list(CONFIG_COLUMNS)
    frame = runs.fillna({"criterion": "", "lam": -1.0, "options": ""})
    if "trigger_options" not in frame:  # tables from before the column existed
        frame["trigger_options"] = frame["options"]
    if "family_options" not in frame:
        frame["family_options"] = frame["trigger_options"]
    if "untuned" not in frame:
        frame["untuned"] = False
    if "tune_examples" not in frame:
        frame["tune_examples"] = math.nan
    if "peak_memory_bound" not in frame:
        frame["peak_memory_bound"] = True
    metrics = [
        *TABLE_KEYS,
        *(f"val_{k}" for k in TABLE_KEYS),
        "wall_time_s",
        "trainable_parameters",
        "tune_examples",
        "peak_memory_mb",
        "examples_per_second",
    ]
    grouped = frame.groupby(keys, dropna=False)
    mean = grouped[metrics].mean()
    std = grouped[list(TABLE_KEYS)].std(ddof=1).fillna(0.0).add_suffix("_std")
    extra = grouped.agg(
        seeds=("seed", "nunique"),
        degenerate=("degenerate", lambda s: "; ".join(sorted(set(s) - {""}))),
        uses_z_at_inference=("uses_z_at_inference", "max"),
        untuned=("untuned", "max"),
        peak_memory_bound=("peak_memory_bound", "max"),
        trigger_options=("trigger_options", "first"),
        family_options=("family_options", "first"),
    )
    out = pd.concat([mean, std, extra], axis=1).reset_index()
    out["criterion"] = out["criterion"].replace("", None)
    out["lam"] = out["lam"].where(out["lam"] >= 0, None)
    return out


def summarize(
    runs: pd.DataFrame,
    *,
    matched_accuracy_drop: float = 0.01,
    reference_accuracy_drop: float = 0.10,
    matched_bias: float | None = None,
) -> dict[str, Any]:
    """Aggregate seeds and compare methods per criterion.

    Returns a dict with ``configs`` (mean/std per configuration, degenerate flags),
    ``base`` (means of the test metrics and ``majority_accuracy`` over the base models
    of the seeds that the other runs used, all
    base models if there are no other runs; a base trained only to receive transferred
    triggers does not shift the reference), ``base_seeds``, and per criterion short
    name (``dp``, ``eo``): ``fronts`` (method -> front points), ``comparison`` (method ->
    hypervolume, bias at the matched accuracy ``base accuracy - matched_accuracy_drop``,
    accuracy at the matched bias, default half the base gap, and the number of
    degenerate configurations left off the front), plus ``efficiency`` and ``transfer``
    tables when the runs hold them.
    """
    configs = _aggregate(runs)
    bases = runs[runs["method"] == "base"]
    used = set(runs.loc[~runs["method"].isin(["base", "transfer_target"]), "seed"].dropna())
    if used & set(bases["seed"]):
        bases = bases[bases["seed"].isin(used)]
    keys = [k for k in (*TABLE_KEYS, "majority_accuracy") if k in bases]  # tables made elsewhere may lack one
    base = {k: float(bases[k].mean()) for k in keys} if len(bases) else {}
    seeds = sorted(int(s) for s in bases["seed"].dropna())
    out: dict[str, Any] = {"configs": configs, "base": base, "base_seeds": seeds}
    for crit in ("demographic_parity", "equalized_odds"):
        short = parse_criterion(crit).short
        gap = f"{short}_gap"
        rows = configs[(configs["criterion"] == crit) & (configs["tune_fraction"] == 1.0)]
        fronts, comparison = {}, {}
        base_acc, base_gap = base.get("accuracy", math.nan), base.get(gap, math.nan)
        ref = (base_acc - reference_accuracy_drop, base_gap)
        target_acc = base_acc - matched_accuracy_drop
        target_gap = matched_bias if matched_bias is not None else base_gap / 2
        for method, part in rows.groupby("method"):
            usable = part[part["degenerate"] == ""]
            front = pareto_front(list(zip(usable["accuracy"], usable[gap], strict=True)))
            fronts[method] = front
            comparison[method] = {
                "hypervolume": hypervolume(front, ref),
                "bias_at_matched_accuracy": bias_at_accuracy(front, target_acc),
                "accuracy_at_matched_bias": accuracy_at_bias(front, target_gap),
                "degenerate_configs": int((part["degenerate"] != "").sum()),
                "configs": len(part),
            }
        out[short] = {
            "fronts": fronts,
            "comparison": comparison,
            "reference": ref,
            "matched_accuracy": target_acc,
            "matched_bias": target_gap,
        }
    out["efficiency"] = configs[configs["method"] != "base"].sort_values(
        ["criterion", "method", "tune_fraction"], na_position="first"
    )
    return out
