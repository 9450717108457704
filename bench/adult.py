"""UCI Adult benchmark: mask-offset trigger vs AdvIn, AdvPost and fairlearn's ThresholdOptimizer.

Target income >50K, sensitive attribute sex. For each seed: a base MLP trained with ERM
on the train split; the trigger (DP and EO) at several lambdas on the tuning split;
AdvPost (full fine-tuning of the base model) at the same lambdas on the same tuning
split; AdvIn (adversarial training from scratch on the train split); ThresholdOptimizer
(post-processing that needs Z at inference); and the trigger and AdvPost tuned on 5% of
the tuning split, with as many optimisation steps as on the full split (epochs scaled
by 1/fraction, at most 600) and, per method and criterion, the lambda whose full-data
run had the lowest validation gap within the accuracy floor. Every adversarial run uses
the same selection rule: the lowest validation gap with validation accuracy at most 2
points below the base model's.

Resumable: finished runs are appended to ``runs.jsonl`` and skipped on a rerun; a run
interrupted mid-way resumes from its last epoch checkpoint. Writes ``results.json``
and ``results.md`` into ``--out``.

    python bench/adult.py [--data-dir ../shared/data/adult] [--out bench/results/adult]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch.utils.data import TensorDataset

from fairreprogram.baselines import train_adv_in, train_adv_post, train_erm
from fairreprogram.data import TabularData, default_data_dir, load_adult
from fairreprogram.engine import Reprogrammer, TrainConfig, evaluate_model
from fairreprogram.metrics import TABLE_KEYS as KEYS
from fairreprogram.metrics import evaluate_fairness
from fairreprogram.models import MLPClassifier
from fairreprogram.triggers import MaskOffsetTrigger
from fairreprogram.utils import atomic_write_json, atomic_write_text

LAMBDAS = (0.1, 0.3, 1.0, 3.0, 10.0)
ADV_IN_LAMBDAS = (0.3, 1.0, 3.0)
EFFICIENCY_FRACTION = 0.05
MAX_EPOCHS = 600
MAX_DROP = 0.02
CRITERIA = ("demographic_parity", "equalized_odds")

TRIGGER = TrainConfig(
    lam=1.0,
    epochs=30,
    batch_size=256,
    lr=0.02,
    adversary_lr=3e-3,
    adversary_warmup_epochs=2,
    max_accuracy_drop=MAX_DROP,
)
ADV_POST = TrainConfig(
    lam=1.0,
    epochs=30,
    batch_size=256,
    lr=1e-3,
    adversary_lr=3e-3,
    adversary_warmup_epochs=2,
    max_accuracy_drop=MAX_DROP,
)
ADV_IN = ADV_POST.replace(epochs=30)
ERM = TrainConfig(adversarial=False, lr=1e-3, epochs=30, batch_size=256, selection="accuracy", patience=5)


def subset(data: TensorDataset, fraction: float, seed: int) -> TensorDataset:
    n = len(data)
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: max(int(n * fraction), 16)]
    return TensorDataset(*(t[idx] for t in data.tensors))


class _Frozen(ClassifierMixin, BaseEstimator):
    """A fitted scikit-learn-style view of a torch model, for ThresholdOptimizer."""

    def __init__(self, model: torch.nn.Module | None = None) -> None:
        self.model = model

    def fit(self, X: Any, y: Any) -> _Frozen:
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        with torch.no_grad():
            probs = torch.softmax(self.model(torch.as_tensor(np.asarray(X, dtype=np.float32))), 1)
            return probs.numpy().astype(np.float64)  # fairlearn writes float64 into this array

    def predict(self, X: Any) -> np.ndarray:
        return self.predict_proba(X).argmax(1)


class Bench:
    def __init__(self, data_dir: Path, out: Path, seeds: list[int]) -> None:
        self.data_dir, self.out, self.seeds = data_dir, out, seeds
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = self.out / "runs.jsonl"
        self.done: dict[str, dict[str, Any]] = {}
        if self.log.exists():
            for line in self.log.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.done[record["id"]] = record

    def record(self, record: dict[str, Any]) -> None:
        self.done[record["id"]] = record
        with self.log.open("a") as handle:  # one complete line per finished run
            handle.write(json.dumps(record) + "\n")
        print(
            f"[{len(self.done)}] {record['id']}: acc {record['test']['accuracy']:.4f} "
            f"dp {record['test']['dp_gap']:.4f} eo {record['test']['eo_gap']:.4f} "
            f"({record['wall_time_s']:.1f} s)",
            flush=True,
        )

    def evaluate(self, model: torch.nn.Module, data: TabularData) -> dict[str, dict[str, float]]:
        out = {}
        for split in ("val", "test"):
            result = evaluate_model(model, getattr(data, split).to_dataset(), group_names=data.group_names)
            out[split] = {k: float(result.overall[k]) for k in KEYS}
        return out

    def base_model(self, data: TabularData, seed: int) -> MLPClassifier:
        folder = self.out / f"seed{seed}" / "base"
        if (folder / "model.safetensors").exists() and f"base/s{seed}" in self.done:
            return MLPClassifier.from_pretrained(folder)
        torch.manual_seed(seed)
        model = MLPClassifier(in_features=data.num_features)
        tic = time.perf_counter()
        train_erm(
            model,
            data.train.to_dataset(),
            data.val.to_dataset(),
            config=ERM.replace(seed=seed),
            output_dir=folder,
            progress=False,
        )
        wall = time.perf_counter() - tic
        model.save_pretrained(folder)
        self.record(
            {
                "id": f"base/s{seed}",
                "method": "base",
                "seed": seed,
                "criterion": None,
                "lam": None,
                "fraction": 1.0,
                "wall_time_s": wall,
                "trainable_parameters": sum(p.numel() for p in model.parameters()),
                **self.evaluate(model, data),
            }
        )
        return model

    def run_seed(self, seed: int) -> None:
        data = load_adult(self.data_dir, sensitive="sex", seed=seed)
        base = self.base_model(data, seed)
        tune, val = data.tune.to_dataset(), data.val.to_dataset()
        base_val_acc = self.done[f"base/s{seed}"]["val"]["accuracy"]
        jobs = []
        for crit in CRITERIA:
            short = "dp" if crit.startswith("demo") else "eo"
            for lam in LAMBDAS:
                jobs.append(("trigger", crit, lam, 1.0, f"trigger/{short}/l{lam}/s{seed}"))
                jobs.append(("advpost", crit, lam, 1.0, f"advpost/{short}/l{lam}/s{seed}"))
            for lam in ADV_IN_LAMBDAS:
                jobs.append(("advin", crit, lam, 1.0, f"advin/{short}/l{lam}/s{seed}"))
            jobs.append(("threshold", crit, None, 1.0, f"threshold/{short}/s{seed}"))
            for method in ("trigger", "advpost"):
                # lambda None: chosen when the job runs, from the full-data runs (see best_lambda).
                jobs.append(
                    (
                        method,
                        crit,
                        None,
                        EFFICIENCY_FRACTION,
                        f"{method}/{short}/f{EFFICIENCY_FRACTION}/s{seed}",
                    )
                )
        runners = {
            "trigger": self.trigger,
            "advpost": self.adv_post,
            "advin": self.adv_in,
            "threshold": self.threshold,
        }
        context = {"data": data, "base": base, "val": val, "base_val_acc": base_val_acc, "seed": seed}
        for method, crit, lam, fraction, run_id in jobs:
            if run_id in self.done:
                continue
            train_set = tune if fraction == 1.0 else subset(tune, fraction, seed)
            if lam is None and method != "threshold":
                lam = self.best_lambda(method, crit, seed, base_val_acc)
            # Same number of optimisation steps whatever the tuning-set size.
            epochs = min(math.ceil(TRIGGER.epochs / fraction), MAX_EPOCHS)
            tic = time.perf_counter()
            outcome = runners[method](
                crit=crit,
                lam=lam,
                train_set=train_set,
                epochs=epochs,
                folder=self.out / run_id.replace("/", "_"),
                **context,
            )
            wall = time.perf_counter() - tic
            self.record(
                {
                    "id": run_id,
                    "method": method,
                    "seed": seed,
                    "criterion": crit,
                    "lam": lam,
                    "fraction": fraction,
                    "epochs": epochs,
                    "wall_time_s": wall,
                    **outcome,
                }
            )

    def best_lambda(self, method: str, crit: str, seed: int, base_val_acc: float) -> float:
        """The lambda whose full-data run had the lowest validation gap within the accuracy floor.

        Chosen on validation metrics only, so the data-efficiency runs never see the test split.
        """
        gap = "dp_gap" if crit == "demographic_parity" else "eo_gap"
        runs = [
            r
            for r in self.done.values()
            if r["method"] == method and r["criterion"] == crit and r["seed"] == seed and r["fraction"] == 1.0
        ]
        ok = [r for r in runs if r["val"]["accuracy"] >= base_val_acc - MAX_DROP] or runs
        return float(min(ok, key=lambda r: r["val"][gap])["lam"])

    def _outcome(
        self, model: torch.nn.Module, data: TabularData, params: int, best_epoch: int
    ) -> dict[str, Any]:
        return {"trainable_parameters": params, "best_epoch": best_epoch, **self.evaluate(model, data)}

    def trigger(
        self, *, crit, lam, train_set, epochs, folder, data, base, val, seed, **_: Any
    ) -> dict[str, Any]:
        trigger = MaskOffsetTrigger(num_features=data.num_features)
        cfg = TRIGGER.replace(criterion=crit, lam=lam, seed=seed, epochs=epochs)
        reprogrammer = Reprogrammer(base, trigger, config=cfg)
        model = reprogrammer.fit(train_set, val, output_dir=folder, progress=False)
        return self._outcome(model, data, trigger.num_trainable_parameters(), reprogrammer.result_.best_epoch)

    def adv_post(
        self, *, crit, lam, train_set, epochs, folder, data, base, val, seed, **_: Any
    ) -> dict[str, Any]:
        cfg = ADV_POST.replace(criterion=crit, lam=lam, seed=seed, epochs=epochs)
        model, result = train_adv_post(base, train_set, val, config=cfg, output_dir=folder, progress=False)
        return self._outcome(model, data, result.num_trainable_parameters, result.best_epoch)

    def adv_in(self, *, crit, lam, folder, data, val, base_val_acc, seed, **_: Any) -> dict[str, Any]:
        torch.manual_seed(seed)
        model = MLPClassifier(in_features=data.num_features)
        cfg = ADV_IN.replace(criterion=crit, lam=lam, seed=seed)
        result = train_adv_in(
            model,
            data.train.to_dataset(),
            val,
            config=cfg,
            reference_accuracy=base_val_acc,
            output_dir=folder,
            progress=False,
        )
        return self._outcome(model, data, result.num_trainable_parameters, result.best_epoch)

    def threshold(self, *, crit: str, base: torch.nn.Module, data: TabularData, **_: Any) -> dict[str, Any]:
        from fairlearn.postprocessing import ThresholdOptimizer

        optimizer = ThresholdOptimizer(
            estimator=_Frozen(base).fit(None, None),
            constraints=crit,
            prefit=True,
            predict_method="predict_proba",
        )
        optimizer.fit(data.tune.X, data.tune.y, sensitive_features=data.tune.z)
        out = {}
        for split in ("val", "test"):
            part = getattr(data, split)
            pred = optimizer.predict(part.X, sensitive_features=part.z, random_state=0)
            result = evaluate_fairness(y_true=part.y, y_pred=pred, sensitive_features=part.z)
            out[split] = {k: float(result.overall[k]) for k in KEYS}
        return {"trainable_parameters": 0, "best_epoch": None, **out}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds per (method, criterion, lambda, fraction)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records.values():
        # Data-efficiency runs pick their lambda per seed; they are grouped across lambdas.
        lam = r["lam"] if r["fraction"] == 1.0 else None
        groups.setdefault((r["method"], r["criterion"], lam, r["fraction"]), []).append(r)
    rows = []
    for (method, crit, lam, fraction), rs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        row: dict[str, Any] = {
            "method": method,
            "criterion": crit,
            "lam": lam,
            "fraction": fraction,
            "seeds": len(rs),
            "trainable_parameters": rs[0]["trainable_parameters"],
            "lambdas": sorted({r["lam"] for r in rs if r["lam"] is not None}),
        }
        for key in KEYS:
            row[key], row[key + "_std"] = _mean_std([r["test"][key] for r in rs])
        row["wall_time_s"], row["wall_time_s_std"] = _mean_std([r["wall_time_s"] for r in rs])
        rows.append(row)
    return {"rows": rows}


def _front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-dominated (accuracy up, gap down) points."""
    return [p for p in points if not any(q[0] >= p[0] and q[1] <= p[1] and q != p for q in points)]


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    base = next(r for r in rows if r["method"] == "base")
    out: dict[str, Any] = {}
    for crit, gap in (("demographic_parity", "dp_gap"), ("equalized_odds", "eo_gap")):
        short = gap[:2]
        trig = [
            r for r in rows if r["method"] == "trigger" and r["criterion"] == crit and r["fraction"] == 1.0
        ]
        post = [
            r for r in rows if r["method"] == "advpost" and r["criterion"] == crit and r["fraction"] == 1.0
        ]
        ok = [r for r in trig if base["accuracy"] - r["accuracy"] <= MAX_DROP]
        best = min(ok, key=lambda r: r[gap]) if ok else None
        out[f"{short}_halved"] = {
            "base_gap": base[gap],
            "best_trigger_gap_within_2pt": best[gap] if best else None,
            "best_lambda": best["lam"] if best else None,
            "accuracy_loss_points": 100 * (base["accuracy"] - best["accuracy"]) if best else None,
            "reduction": 1 - best[gap] / base[gap] if best else None,
            "met": bool(best and best[gap] <= base[gap] / 2),
        }
        t_front = _front([(r["accuracy"], r[gap]) for r in trig])
        p_front = _front([(r["accuracy"], r[gap]) for r in post])
        undominated = [
            p for p in t_front if not any(q[0] >= p[0] and q[1] <= p[1] and q != p for q in p_front)
        ]
        out[f"{short}_front_not_dominated_by_advpost"] = {
            "trigger_front": t_front,
            "advpost_front": p_front,
            "trigger_points_not_dominated": len(undominated),
            "met": len(undominated) > 0,
        }
        eff = [
            r
            for r in rows
            if r["method"] == "trigger" and r["criterion"] == crit and r["fraction"] == EFFICIENCY_FRACTION
        ]
        eff_post = [
            r
            for r in rows
            if r["method"] == "advpost" and r["criterion"] == crit and r["fraction"] == EFFICIENCY_FRACTION
        ]
        if eff:
            e = eff[0]
            out[f"{short}_5pct_tuning"] = {
                "trigger_gap": e[gap],
                "trigger_accuracy": e["accuracy"],
                "advpost_gap": eff_post[0][gap] if eff_post else None,
                "advpost_accuracy": eff_post[0]["accuracy"] if eff_post else None,
                "base_gap": base[gap],
                "base_accuracy": base["accuracy"],
                "met": e[gap] < base[gap] and base["accuracy"] - e["accuracy"] <= MAX_DROP,
            }
    return out


def markdown(rows: list[dict[str, Any]], goal: dict[str, Any]) -> str:
    head = (
        "| method | criterion | λ | tune frac | seeds | test acc | DP gap | EO gap | DP gap (paper) | "
        "EO gap (paper) | worst-group acc | trainable params | wall time (s) |"
    )
    lines = [head, "|" + "---|" * 13]

    def cell(r: dict[str, Any], k: str) -> str:
        return f"{r[k]:.4f} ± {r[k + '_std']:.4f}"

    for r in rows:
        crit = {"demographic_parity": "DP", "equalized_odds": "EO"}.get(r["criterion"], "–")
        lam = "/".join(f"{value:g}" for value in r["lambdas"]) or "–"
        lines.append(
            f"| {r['method']} | {crit} | {lam} | {r['fraction']:g} | {r['seeds']} | {cell(r, 'accuracy')} "
            f"| {cell(r, 'dp_gap')} | {cell(r, 'eo_gap')} | {cell(r, 'dp_gap_paper')} | "
            f"{cell(r, 'eo_gap_paper')} | {cell(r, 'worst_group_accuracy')} | "
            f"{r['trainable_parameters']} | {r['wall_time_s']:.1f} |"
        )
    lines += ["", "## Targets", "", "```json", json.dumps(goal, indent=2, default=str), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="Folder with adult.data and adult.test (default: <data dir>/adult).",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/adult"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    data_dir = args.data_dir or default_data_dir() / "adult"
    bench = Bench(data_dir, args.out, args.seeds)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    for seed in args.seeds:
        bench.run_seed(seed)
    summary = aggregate(bench.done)
    goal = targets(summary["rows"])
    atomic_write_json(
        args.out / "results.json",
        {
            "runs": list(bench.done.values()),
            **summary,
            "targets": goal,
            "command": " ".join(sys.argv),
            "data_dir": str(data_dir),
        },
    )
    atomic_write_text(args.out / "results.md", markdown(summary["rows"], goal))
    print(markdown(summary["rows"], goal))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
