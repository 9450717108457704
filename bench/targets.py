"""Check a finished (or partly finished) benchmark sweep against its issue's targets.

    python bench/targets.py celeba bench/results/celeba-sweep
    python bench/targets.py celeba-smiling bench/results/celeba-smiling
    python bench/targets.py gab bench/results/gab-sweep

Reads the sweep's run directories (and the speed benchmark's ``speed.json`` when it is
there), and writes ``targets.json`` and ``targets.md`` into the sweep directory. Every
figure is computed from the runs; a target that cannot be checked yet (its runs have not
finished) says so instead of passing or failing.

How each target is measured:

- **quality**: the trigger is chosen on the *validation* split, as a user would choose
  it: among the full-data, tuned (not epoch 0) trigger runs of the sweep's first seed
  whose validation accuracy is within ``MAX_DROP`` of the base model's, the one with
  the lowest validation gap. Its *test* accuracy loss and gap reduction are the
  measured figures.
  The best run chosen on the test split itself is shown beside it, marked as such, and
  so is the run chosen the same way under a floor on validation *balanced* accuracy.
  When the plain floor admits predicting the majority class for every row (on Gab,
  8.4% of test posts are hateful, so that scores within a point of the base model),
  the report says so: accuracy alone does not show that a cut kept the classifier
  useful.
- **matched accuracy**: from the report's comparison, the lowest test gap that each
  method's Pareto front reaches at base accuracy minus ``MAX_DROP``.
  The same on (test balanced accuracy, gap) fronts at base balanced accuracy minus
  ``MAX_DROP`` is shown beside it, without a verdict.
- **data efficiency**: each method's run at the given share of the tuning set, test
  accuracy and gap against the base model's. It "improves on the base" when it lowers
  the gap and loses at most ``MAX_DROP`` of accuracy.
- **how a cut was made**: for each chosen run, the test rate behind its gap per group
  (selection rate, TPR or FPR), before and after, and whether the cut "levels down":
  the better-off group lost more than the worse-off group gained.
- **transfer**: the share of the chosen trigger's bias reduction kept on the other
  seed's base model, and the median over all trials that cut their gap by >= 0.01.

With ``--bootstrap N`` the base model is evaluated again on the test split with N
bootstrap resamples, for 95% intervals of its gaps, and each chosen run (and each data-
efficiency run) is compared with its seed's base model: every resample scores both on
the same rows, so the interval is that of the change itself (on CelebA the EO gap rests
on 44 blond men in the test split, and separate intervals overlap widely).

With ``--shift`` every run of the first seed but its base models (triggers, AdvPost, AdvIn,
ThresholdOptimizer) is set against its base model with the decision threshold moved so
that it flags as many test rows as the run (its top-scored rows): a trigger that cuts a
gap only by flagging fewer rows does no better than that threshold. Only the base models
are predicted again; each run's figures are those its sweep recorded.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairreprogram.engine import compare_probabilities, evaluate_probabilities, group_labels, predict_dataset
from fairreprogram.experiments import (
    BASELINE_METHODS,
    SWEEP_NAME,
    bias_at_accuracy,
    build_task,
    collect_runs,
    pareto_front,
    summarize,
    transfer_summary,
)
from fairreprogram.experiments._trials import TRANSFER_NAME, base_dir
from fairreprogram.metrics import evaluate_fairness
from fairreprogram.models import ReprogrammedModel
from fairreprogram.triggers import Trigger
from fairreprogram.utils import atomic_write_json, atomic_write_text, read_json

BASELINES = (*BASELINE_METHODS, "base", "transfer_target")  # every method that is not a trigger

PROFILES: dict[str, dict[str, Any]] = {
    "celeba": {
        "title": "CelebA Blond_Hair vs Male (issue 4)",
        "quality": [("equalized_odds", "eo_gap", 0.30), ("demographic_parity", "dp_gap", 0.30)],
        "efficiency_fraction": 0.01,
        "speed": "bench/results/celeba-speed/speed.json",
        # The original repository's patch trigger on the same data at 32 px (issue 4).
        "original": {"accuracy": 0.912, "dp_gap": 0.088, "eo_gap": 0.346},
    },
    # The second CelebA task (one lambda per method, one seed): the quality targets only.
    "celeba-smiling": {
        "title": "CelebA Smiling vs Male (issue 4, second task)",
        "quality": [("equalized_odds", "eo_gap", 0.30), ("demographic_parity", "dp_gap", 0.30)],
        "efficiency_fraction": 0.01,
        "speed": None,
        "original": None,
    },
    "gab": {
        "title": "Gab hate speech vs identity mention (issue 5)",
        "quality": [("equalized_odds", "eo_gap", 0.40), ("equalized_odds", "fpr_gap", 0.40)],
        "efficiency_fraction": 0.05,
        "speed": "bench/results/gab-speed/speed.json",
        "original": None,
    },
}
MAX_DROP = 0.01
# The quality picks: the issue's (a floor on validation accuracy), the test-split oracle,
# and the same choice under a floor on validation balanced accuracy, which a classifier
# cannot meet by predicting the majority class more often.
PICKS = ("chosen_on_val", "best_on_test", "chosen_on_val_balanced")
PICK_LABELS = {
    "chosen_on_val": "chosen on val",
    "best_on_test": "best on test (oracle)",
    "chosen_on_val_balanced": "chosen on val, balanced-accuracy floor",
}
TRANSFER_SHARE = 0.70
CHANGE_KEYS = ("accuracy", "dp_gap", "eo_gap", "fpr_gap")  # paired changes that --bootstrap reports
NOT_SHIFTED = ("base", "erm", "transfer_target")  # the base models themselves
SHIFT_KEYS = ("accuracy", "balanced_accuracy", "selection_rate", "dp_gap", "eo_gap", "fpr_gap")


def _verdict(ok: bool | None) -> str:
    return {True: "met", False: "missed", None: "not yet measurable"}[ok]


def _pick(
    rows: pd.DataFrame, gap: str, accuracy_floor: float, prefix: str, metric: str = "accuracy"
) -> pd.Series | None:
    close = rows[rows[f"{prefix}{metric}"] >= accuracy_floor]
    if close.empty:
        return None
    return close.loc[close[f"{prefix}{gap}"].idxmin()]


def _how_cut(base: pd.Series, row: pd.Series, gap: str) -> dict[str, Any]:
    """Per-group test rates behind a gap, before and after, and whether the cut levels down.

    The rate is the one the gap measures (selection rate for DP; TPR or FPR for EO,
    whichever gap is larger for the base model; FPR for the FPR gap). A cut "levels
    down" when the better-off group lost more than the worse-off group gained: for the
    TPR and the selection rate the better-off group has the higher rate, for the FPR
    the lower one.
    """
    tests = {
        name: read_json(Path(source["path"]) / "metrics.json")["test"]
        for name, source in (("before", base), ("after", row))
    }
    overall = tests["before"]["overall"]
    if gap == "dp_gap":
        rate = "selection_rate"
    elif gap == "fpr_gap" or overall["fpr_gap"] > overall["tpr_gap"]:
        rate = "fpr"
    else:
        rate = "tpr"
    rates = {
        name: {str(g["group"]): float(g[rate]) for g in test["by_group"]} for name, test in tests.items()
    }
    sign = -1.0 if rate == "fpr" else 1.0  # +: a rise is good for the group
    before = rates["before"]
    better = max(before, key=lambda g: sign * before[g])
    worse = min(before, key=lambda g: sign * before[g])
    lost = sign * (before[better] - rates["after"][better])
    gained = sign * (rates["after"][worse] - before[worse])
    return {
        "rate": rate,
        "groups": {g: [before[g], rates["after"][g]] for g in before},
        "better_off": better,
        "worse_off": worse,
        "better_off_loss": float(lost),
        "worse_off_gain": float(gained),
        "levels_down": bool(lost > gained),
    }


def _quality(runs: pd.DataFrame, base: pd.Series, criterion: str, gap: str, need: float) -> dict[str, Any]:
    triggers = runs[
        ~runs["method"].isin(BASELINES)
        & (runs["criterion"] == criterion)
        & (runs["tune_fraction"] == 1.0)
        & (runs["degenerate"] == "")
        & ~runs["untuned"].astype(bool)  # an untrained trigger says nothing about tuning
        & (runs["seed"] == base["seed"])
    ]
    out: dict[str, Any] = {"criterion": criterion, "gap": gap, "required_reduction": need}
    out["base"] = {
        "accuracy": float(base["accuracy"]),
        "balanced_accuracy": float(base["balanced_accuracy"]),
        **{g: float(base[g]) for g in ("dp_gap", "eo_gap", "fpr_gap")},
    }
    chosen = _pick(triggers, gap, base["val_accuracy"] - MAX_DROP, "val_")
    oracle = _pick(triggers, gap, base["accuracy"] - MAX_DROP, "")
    balanced = _pick(triggers, gap, base["val_balanced_accuracy"] - MAX_DROP, "val_", "balanced_accuracy")
    constant = float(base["majority_accuracy"])
    out["constant_accuracy"] = constant
    out["floor_admits_constant"] = bool(constant >= base["accuracy"] - MAX_DROP)
    for key, row in zip(PICKS, (chosen, oracle, balanced), strict=True):
        if row is None:
            out[key] = None
            continue
        reduction = (base[gap] - row[gap]) / base[gap]
        out[key] = {
            "run": row["run_id"],
            "accuracy": float(row["accuracy"]),
            "accuracy_loss": float(base["accuracy"] - row["accuracy"]),
            "balanced_accuracy": float(row["balanced_accuracy"]),
            gap: float(row[gap]),
            "reduction": float(reduction),
            # The same run's other gaps, so that one trigger can be read on all of them.
            "reductions": {g: float((base[g] - row[g]) / base[g]) for g in ("dp_gap", "eo_gap", "fpr_gap")},
            "untuned": bool(row.get("untuned", False)),
            "how": _how_cut(base, row, gap),
        }
    pick = out["chosen_on_val"]
    if pick is None:
        out["verdict"] = _verdict(None)
    else:
        within = pick["accuracy_loss"] <= MAX_DROP + 1e-12
        out["verdict"] = _verdict(bool(pick["reduction"] >= need and within and not pick["untuned"]))
    return out


def _matched(summary: dict[str, Any], criterion: str) -> dict[str, Any]:
    short = {"equalized_odds": "eo", "demographic_parity": "dp"}[criterion]
    part = summary[short]
    bias = {m: row["bias_at_matched_accuracy"] for m, row in part["comparison"].items()}
    triggers = {m: b for m, b in bias.items() if m not in BASELINES}
    best = min((b for b in triggers.values() if not math.isnan(b)), default=math.nan)
    rivals = {m: bias.get(m, math.nan) for m in ("advpost", "advin")}
    checkable = not math.isnan(best) and all(m in bias for m in rivals)
    beaten = {m: (not math.isnan(best)) and (math.isnan(b) or best < b) for m, b in rivals.items()}
    return {
        "criterion": criterion,
        "matched_accuracy": part["matched_accuracy"],
        "bias_at_matched_accuracy": bias,
        "best_trigger": best,
        "verdict": _verdict(all(beaten.values()) if checkable else None),
        "note": "NaN: the method's front never reaches the matched accuracy",
    }


def _matched_balanced(runs: pd.DataFrame, base: pd.Series, criterion: str) -> dict[str, Any]:
    """:func:`_matched` on (test balanced accuracy, gap) fronts, at base balanced accuracy - MAX_DROP.

    Seed 0's full-data, non-degenerate runs of each method. On imbalanced labels this
    is the comparison that predicting the majority class cannot win.
    """
    gap = "eo_gap" if criterion == "equalized_odds" else "dp_gap"
    rows = runs[
        (runs["criterion"] == criterion)
        & (runs["tune_fraction"] == 1.0)
        & (runs["degenerate"] == "")
        & (runs["seed"] == base["seed"])
    ]
    target = float(base["balanced_accuracy"]) - MAX_DROP
    bias = {
        str(method): bias_at_accuracy(
            pareto_front(list(zip(part["balanced_accuracy"], part[gap], strict=True))), target
        )
        for method, part in rows.groupby("method")
    }
    triggers = [b for m, b in bias.items() if m not in BASELINES and not math.isnan(b)]
    return {
        "criterion": criterion,
        "matched_balanced_accuracy": target,
        "bias_at_matched_balanced_accuracy": bias,
        "best_trigger": min(triggers, default=math.nan),
        "note": "NaN: the method's front never reaches the matched balanced accuracy",
    }


def _efficiency(runs: pd.DataFrame, base: pd.Series, fraction: float) -> dict[str, Any]:
    part = runs[(runs["tune_fraction"] == fraction) & (runs["criterion"] == "equalized_odds")]
    rows = {}
    for row in part.to_dict("records"):
        gap_change = row["eo_gap"] - base["eo_gap"]
        acc_change = row["accuracy"] - base["accuracy"]
        rows[row["method"]] = {
            "run": row["run_id"],
            "tune_examples": row.get("tune_examples"),
            "accuracy": row["accuracy"],
            "accuracy_change": acc_change,
            "eo_gap": row["eo_gap"],
            "eo_gap_change": gap_change,
            "improves_on_base": bool(gap_change < 0 and acc_change >= -MAX_DROP and not row["degenerate"]),
            "how": _how_cut(base, pd.Series(row), "eo_gap"),
        }
    triggers = [v for m, v in rows.items() if m not in BASELINES]
    ok = None
    if triggers and "advpost" in rows:
        ok = any(t["improves_on_base"] for t in triggers) and not rows["advpost"]["improves_on_base"]
    return {"fraction": fraction, "base_eo_gap": float(base["eo_gap"]), "runs": rows, "verdict": _verdict(ok)}


def _transfer(runs: pd.DataFrame, chosen: list[str]) -> dict[str, Any]:
    records = {}
    for row in runs.to_dict("records"):
        path = Path(row["path"]) / TRANSFER_NAME
        if path.is_file():
            records[row["run_id"]] = read_json(path)
    picked = {}
    for run in chosen:
        record = records.get(run)
        if record:
            picked[run] = {
                name: {"share_kept": t["share_of_reduction_kept"], **t["with_trigger"]}
                for name, t in record["targets"].items()
            }
    summary = transfer_summary(records).to_dict("records")
    shares = [t["share_kept"] for targets in picked.values() for t in targets.values()]
    ok = None if not shares else all(s >= TRANSFER_SHARE for s in shares)
    return {"chosen_triggers": picked, "summary": summary, "verdict": _verdict(ok)}


def _speed(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data = read_json(path)
    keep = (
        "engine_over_bare",
        "engine_over_bare_no_projection",
        "engine_overhead",
        "trigger_over_adv_post",
        "trigger_peak_below_adv_post",
        "cache_over_decode",
        "dynamic_over_padded",
        "peak_memory_mb",
    )
    return {k: data[k] for k in keep if k in data}


def _model(sweep: Path, task: Any, row: pd.Series) -> Any:
    """The run's deployed model: its trigger on its seed's base model, or its own weights."""
    path = Path(row["path"])
    if (path / "trigger").is_dir():
        base = task.load_base(base_dir(sweep, int(row["seed"])) / "model")
        return ReprogrammedModel(
            Trigger.from_pretrained(path / "trigger", input_shape=task.input_shape), base
        )
    if (path / "model").is_dir():
        return task.load_base(path / "model")
    return None  # threshold rules and the like: no model to evaluate again


class _TestSplit:
    """The sweep's test split, and each model's predictions on it, made at most once."""

    def __init__(self, sweep: Path, runs: pd.DataFrame) -> None:
        self.sweep = sweep
        self.task = build_task(read_json(sweep / SWEEP_NAME)["config"]["data"])
        self.test = self.task.dataset("test")
        self.table = runs.set_index("run_id")
        self._predicted: dict[str, Any] = {}

    def base(self, seed: int) -> tuple[Any, Any, Any]:
        """``(probs, y, z)`` of seed ``seed``'s base model."""
        key = f"base-s{seed}"
        if key not in self._predicted:
            model = self.task.load_base(base_dir(self.sweep, seed) / "model")
            self._predicted[key] = predict_dataset(model, self.test)
        return self._predicted[key]

    def run(self, name: str) -> tuple[Any, Any, Any] | None:
        """``(probs, y, z)`` of run ``name``'s deployed model (``None``: no model to run)."""
        if name not in self._predicted:
            model = _model(self.sweep, self.task, self.table.loc[name])
            self._predicted[name] = None if model is None else predict_dataset(model, self.test)
        return self._predicted[name]


def _bootstrap(split: _TestSplit, base_id: str, names: list[str], n: int) -> dict[str, Any]:
    """95% intervals of the base model's test gaps, and paired intervals of each run's change.

    Each of the ``n`` resamples of the test rows scores the base model and the run on the
    same rows, so the interval is that of the change itself: two separate intervals that
    overlap do not show that a change is noise.
    """
    groups = split.task.group_names
    seed = int(split.table.loc[base_id, "seed"])
    alone = evaluate_probabilities(*split.base(seed), group_names=groups, n_bootstrap=n, random_state=0)
    changes = {}
    for name in names:
        predicted = split.run(name)
        if predicted is None:
            continue
        probs, y, z = predicted
        before = split.base(int(split.table.loc[name, "seed"]))[0]
        result = compare_probabilities(before, probs, y, z, group_names=groups, n_bootstrap=n, random_state=0)
        changes[name] = {
            key: {
                "change": result.difference[key],
                "interval": list(result.confidence_intervals[key]),
                "excludes_zero": result.excludes_zero(key),
            }
            for key in CHANGE_KEYS
        }
    return {
        "resamples": n,
        "base": base_id,
        "base_intervals": {k: list(v) for k, v in alone.confidence_intervals.items() if k.endswith("_gap")},
        "changes": changes,
    }


def _shifted_base(split: _TestSplit, names: list[str]) -> dict[str, Any]:
    """Each run against its base model with the threshold moved to flag as many test rows.

    A trigger that cuts a gap by flagging fewer (or more) rows may do no more than a
    higher (or lower) threshold on the base model. The base's top-``m`` scores are
    flagged, ``m`` the number of rows the run flags. The run's own figures are those its
    sweep recorded, so only the base models are predicted again.
    """
    out = {}
    for name in names:
        test = read_json(Path(split.table.loc[name, "path"]) / "metrics.json")["test"]
        if len(test.get("classes", [])) != 2:
            continue
        run = test["overall"]
        flagged = round(run["selection_rate"] * run["n"])
        probs, y, z = split.base(int(split.table.loc[name, "seed"]))
        score = probs[:, 1]
        shifted = np.zeros(len(score), dtype=int)
        shifted[np.argsort(-score, kind="stable")[:flagged]] = 1
        base_at_rate = evaluate_fairness(
            y_true=y,
            y_pred=shifted,
            sensitive_features=group_labels(z, split.task.group_names),
            y_score=score,
        ).overall
        out[name] = {
            "flagged": flagged,
            "run": {k: float(run[k]) for k in SHIFT_KEYS},
            "shifted_base": {k: float(base_at_rate[k]) for k in SHIFT_KEYS},
        }
    return out


def check(profile: str, sweep: Path, *, bootstrap: int = 0, shift: bool = False) -> dict[str, Any]:
    spec = PROFILES[profile]
    runs = collect_runs(sweep)
    summary = summarize(runs)  # its base_seeds: the seeds the trials ran on
    bases = runs[runs["method"] == "base"]
    base = bases[bases["seed"] == summary["base_seeds"][0]].iloc[0]
    out: dict[str, Any] = {"profile": profile, "title": spec["title"], "sweep": str(sweep)}
    out["runs"] = {"finished": len(runs), "by_method": runs["method"].value_counts().sort_index().to_dict()}
    out["quality"] = [_quality(runs, base, c, g, need) for c, g, need in spec["quality"]]
    criteria = sorted({c for c, _, _ in spec["quality"]})
    out["matched_accuracy"] = [_matched(summary, c) for c in criteria]
    out["matched_balanced_accuracy"] = [_matched_balanced(runs, base, c) for c in criteria]
    out["data_efficiency"] = _efficiency(runs, base, spec["efficiency_fraction"])
    chosen = [q["chosen_on_val"]["run"] for q in out["quality"] if q["chosen_on_val"]]
    out["transfer"] = _transfer(runs, sorted(set(chosen)))
    if spec["original"]:
        ref = spec["original"]
        triggers = runs[~runs["method"].isin(BASELINES) & (runs["degenerate"] == "")]
        fronts = {}
        for criterion, gap in (("equalized_odds", "eo_gap"), ("demographic_parity", "dp_gap")):
            rows = triggers[(triggers["criterion"] == criterion) & (triggers["tune_fraction"] == 1.0)]
            points = list(zip(rows["accuracy"], rows[gap], strict=True))
            fronts[gap] = bias_at_accuracy(points, ref["accuracy"])
        better = triggers[(triggers["accuracy"] > ref["accuracy"]) & (triggers["eo_gap"] < ref["eo_gap"])]
        out["original_code"] = {
            "original_patch": ref,
            "our_gap_at_its_accuracy": fronts,
            "runs_better_in_accuracy_and_eo": sorted(better["run_id"]),
            "verdict": _verdict(bool(len(better)) if len(triggers) else None),
        }
    out["speed"] = _speed(Path(spec["speed"])) if spec["speed"] else None
    if bootstrap or shift:
        chosen_keys = ("chosen_on_val", "chosen_on_val_balanced")
        picked = {q[k]["run"] for q in out["quality"] for k in chosen_keys if q[k]}
        picked |= {row["run"] for row in out["data_efficiency"]["runs"].values()}
        split = _TestSplit(sweep, runs)
        if bootstrap:
            out["bootstrap"] = _bootstrap(split, str(base["run_id"]), sorted(picked), bootstrap)
        if shift:  # every model of the base seed that is not the base model itself
            own = runs[(runs["seed"] == base["seed"]) & ~runs["method"].isin(NOT_SHIFTED)]
            out["shifted_base"] = _shifted_base(split, sorted(own["run_id"]))
    return out


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _quality_lines(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines += ["## Quality (trigger chosen on validation; test figures)", ""]
    lines += [
        "| criterion | gap | base | run | accuracy (change) | bal. acc. | gap | reduction | "
        "needed | verdict | its DP / EO / FPR cuts |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|---|---|---|"]
    for q in result["quality"]:
        gap = q["gap"]
        for key in PICKS:
            pick = q[key]
            label = PICK_LABELS[key]
            if pick is None:
                empty = " – |" * 7
                lines.append(f"| {q['criterion']} | {gap} | {_fmt(q['base'][gap])} | – ({label}) |{empty}")
                continue
            verdict = q["verdict"] if key == "chosen_on_val" else "–"
            lines.append(
                f"| {q['criterion']} | {gap} | {_fmt(q['base'][gap])} | {pick['run']} ({label}) | "
                f"{_fmt(pick['accuracy'])} ({-pick['accuracy_loss'] * 100:+.2f} pt) | "
                f"{_fmt(pick['balanced_accuracy'])} | {_fmt(pick[gap])} | "
                f"{pick['reduction'] * 100:.1f}% | {q['required_reduction'] * 100:.0f}% | {verdict} | "
                + " / ".join(f"{pick['reductions'][g] * 100:.0f}%" for g in ("dp_gap", "eo_gap", "fpr_gap"))
                + " |"
            )
    for q in result["quality"][:1]:
        if q["floor_admits_constant"]:
            lines += [
                "",
                f"Predicting the majority class for every row scores test accuracy "
                f"{q['constant_accuracy']:.4f}, within {MAX_DROP * 100:g} pt of the base model's "
                f"{q['base']['accuracy']:.4f}, with every gap 0: the accuracy floor alone does not "
                "rule out a classifier that has stopped predicting the minority class. The "
                "balanced-accuracy rows choose under a floor on validation balanced accuracy instead.",
            ]
    lines += ["", "How each cut was made (test rate per group, base → run):", ""]
    for q in result["quality"]:
        for key in PICKS:
            if q[key]:
                label = PICK_LABELS[key].replace(" (oracle)", "")
                lines.append(f"- {q['gap']}, {q[key]['run']} ({label}): {_how_text(q[key]['how'])}")
    return lines


def _how_text(how: dict[str, Any]) -> str:
    parts = ", ".join(f"{g} {a:.3f} → {b:.3f}" for g, (a, b) in how["groups"].items())
    if how["better_off_loss"] == how["worse_off_gain"] == 0:
        verdict = "unchanged"
    elif how["levels_down"]:
        verdict = f"levels down ({how['better_off']} lost more than {how['worse_off']} gained)"
    elif how["better_off_loss"] <= 0 and how["worse_off_gain"] >= 0:
        verdict = f"both groups better off, {how['worse_off']} by more"
    else:
        verdict = f"{how['worse_off']} gained at least what {how['better_off']} lost"
    return f"{how['rate']}: {parts}; {verdict}"


def _extra_lines(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "original_code" in result:
        oc = result["original_code"]
        lines += ["", "## Against the original code's patch trigger", ""]
        lines.append(f"- original: {oc['original_patch']}")
        lines.append(f"- our trigger fronts at its accuracy: {oc['our_gap_at_its_accuracy']}")
        lines.append(f"- our runs better in both accuracy and EO gap: {oc['runs_better_in_accuracy_and_eo']}")
        lines.append(f"- verdict: {oc['verdict']}")
    if result.get("bootstrap"):
        boot = result["bootstrap"]
        lines += ["", f"## 95% bootstrap intervals, test split ({boot['resamples']} resamples)", ""]
        parts = ", ".join(
            f"{k} [{lo:.3f}, {hi:.3f}]" for k, (lo, hi) in sorted(boot["base_intervals"].items())
        )
        lines += [f"Base model ({boot['base']}): {parts}.", ""]
        lines += ["Change against the base model, paired (* : the interval excludes 0):", ""]
        lines += ["| run | " + " | ".join(CHANGE_KEYS) + " |", "|---|" + "---|" * len(CHANGE_KEYS)]
        for run, keys in boot["changes"].items():
            cells = [
                f"{c['change']:+.4f} [{c['interval'][0]:+.3f}, {c['interval'][1]:+.3f}]"
                + (" *" if c["excludes_zero"] else "")
                for c in (keys[k] for k in CHANGE_KEYS)
            ]
            lines.append(f"| {run} | " + " | ".join(cells) + " |")
    if result.get("shifted_base"):
        lines += ["", "## Against the base model's threshold moved to flag as many test rows", ""]
        header = " | ".join(f"{k} (run / shifted base)" for k in SHIFT_KEYS)
        lines += [f"| run | rows flagged | {header} |", "|---|---|" + "---|" * len(SHIFT_KEYS)]
        for run, row in result["shifted_base"].items():
            cells = [f"{row['run'][k]:.4f} / {row['shifted_base'][k]:.4f}" for k in SHIFT_KEYS]
            lines.append(f"| {run} | {row['flagged']} | " + " | ".join(cells) + " |")
    if result.get("speed"):
        lines += ["", "## Speed (from the speed benchmark)", "", f"{result['speed']}"]
    return lines


def to_markdown(result: dict[str, Any]) -> str:
    lines = [f"# Targets: {result['title']}", "", f"Sweep: `{result['sweep']}`; runs: {result['runs']}", ""]
    lines += _quality_lines(result)
    lines += ["", "## Bias at matched accuracy (test Pareto fronts)", ""]
    for m in result["matched_accuracy"]:
        parts = ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(m["bias_at_matched_accuracy"].items()))
        at = _fmt(m["matched_accuracy"])
        lines.append(f"- {m['criterion']} at accuracy {at}: {parts} → {m['verdict']}")
    lines += ["", "On (test balanced accuracy, gap) fronts instead (seed 0; not an issue target):", ""]
    for m in result["matched_balanced_accuracy"]:
        bias = sorted(m["bias_at_matched_balanced_accuracy"].items())
        parts = ", ".join(f"{k} {_fmt(v)}" for k, v in bias)
        at = _fmt(m["matched_balanced_accuracy"])
        lines.append(f"- {m['criterion']} at balanced accuracy {at}: {parts}")
    eff = result["data_efficiency"]
    lines += ["", f"## Data efficiency ({eff['fraction']:g} of the tuning set, EO)", ""]
    lines.append(f"Base EO gap {_fmt(eff['base_eo_gap'])}.")
    for method, row in sorted(eff["runs"].items()):
        lines.append(
            f"- {method}: {_fmt(row['tune_examples'], 0)} examples, accuracy {_fmt(row['accuracy'])} "
            f"({row['accuracy_change'] * 100:+.2f} pt), EO gap {_fmt(row['eo_gap'])} "
            f"({row['eo_gap_change']:+.4f}); improves on base: {row['improves_on_base']}; "
            + _how_text(row["how"])
        )
    lines.append(f"- verdict: {eff['verdict']}")
    tr = result["transfer"]
    lines += ["", "## Transfer to the other seed's base model", ""]
    for run, targets in tr["chosen_triggers"].items():
        for name, t in targets.items():
            lines.append(f"- {run} → {name}: share kept {_fmt(t['share_kept'], 3)}")
    for row in tr["summary"]:
        lines.append(
            f"- all {row['criterion']} trials → {row['target']}: {row['pairs']} pairs, median share "
            f"{_fmt(row['median_share'], 3)}, {row['pairs_at_least_0.7']} keep >= 70%"
        )
    lines.append(f"- verdict (chosen triggers keep >= {TRANSFER_SHARE:.0%}): {tr['verdict']}")
    lines += _extra_lines(result)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", choices=sorted(PROFILES))
    parser.add_argument("sweep", type=Path, help="the sweep directory")
    parser.add_argument("--bootstrap", type=int, default=0, help="resamples for test-gap intervals (0: none)")
    parser.add_argument(
        "--shift",
        action="store_true",
        help="also score each chosen run against its base model thresholded to flag as many test rows",
    )
    args = parser.parse_args(argv)
    if args.bootstrap < 0:
        parser.error(
            f"--bootstrap={args.bootstrap} is negative; expected 0 (no intervals) or a count of resamples"
        )
    result = check(args.profile, args.sweep, bootstrap=args.bootstrap, shift=args.shift)
    atomic_write_json(args.sweep / "targets.json", result)
    atomic_write_text(args.sweep / "targets.md", to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
