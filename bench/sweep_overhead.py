"""Overhead of the sweep machinery: 8 trigger runs as a sweep vs the same runs from Python.

Both sides use the same UCI Adult split, the same shared base model (trained once,
beforehand, and not timed) and the same trigger-tuning configs (about 10 s each on 2
cores). "Direct" is what a user would write: load the data once, then, one after
another, tune each trigger and evaluate it on the validation and test splits.
"Sweep" is ``run_sweep`` on the same 8 trials with 1 local worker (worker start-up,
per-trial data loading, run directories and checkpoints included), and again with 2
workers. Writes ``overhead.json`` and ``overhead.md`` into ``--out``.

    python bench/sweep_overhead.py [--data-dir ../shared/data] [--out bench/results/overhead]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch

from fairreprogram.data import default_data_dir
from fairreprogram.engine import Reprogrammer, evaluate_model
from fairreprogram.experiments import SweepConfig, build_task, run_sweep
from fairreprogram.triggers import build_trigger
from fairreprogram.utils import atomic_write_json, atomic_write_text

EPOCHS = 100  # about 10 s per run on 2 cores


def make_config(data_dir: Path, grid: list[dict]) -> SweepConfig:
    return SweepConfig.from_dict(
        {
            "name": "overhead",
            "data": {"spec": f"adult:{data_dir / 'adult'}", "sensitive": "sex", "seed": 0},
            "base": {"hidden_sizes": [64, 64], "train": {"epochs": 30, "patience": 5}},
            "train": {
                "epochs": EPOCHS,
                "lr": 0.02,
                "adversary_lr": 0.003,
                "adversary_warmup_epochs": 2,
                "max_accuracy_drop": 0.02,
            },
            "seeds": [0],
            "grid": grid,
        }
    )


TRIALS = [{"method": "mask_offset", "criterion": ["dp", "eo"], "lam": [0.3, 1.0, 3.0, 10.0]}]


def direct(config: SweepConfig, base_dir: Path) -> float:
    tic = time.perf_counter()
    task = build_task(config.data)
    for trial in config.trials():
        base = task.load_base(base_dir / "model")
        trigger = build_trigger(trial.method, input_shape=task.input_shape)
        model = Reprogrammer(base, trigger, config=config.train_config(trial)).fit(
            task.dataset("tune"), task.dataset("val"), progress=False
        )
        for split in ("val", "test"):
            evaluate_model(model, task.dataset(split), group_names=task.group_names)
    return time.perf_counter() - tic


def swept(config: SweepConfig, out: Path, workers: int) -> float:
    if (out / "runs").exists():
        shutil.rmtree(out / "runs")
    tic = time.perf_counter()
    run_sweep(config, out=out, workers=workers, progress=False)
    return time.perf_counter() - tic


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/results/overhead"))
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    data_dir = args.data_dir or default_data_dir()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    config = make_config(data_dir, TRIALS)
    run_sweep(make_config(data_dir, [{"method": "erm"}]), out=out / "sweep", progress=False)  # shared base
    torch.set_num_threads(os.cpu_count() or 1)
    results = {"direct_s": [], "sweep_1_worker_s": [], "sweep_2_workers_s": []}
    for _ in range(args.repeats):
        results["direct_s"].append(direct(config, out / "sweep" / "bases" / "base-s0"))
        results["sweep_1_worker_s"].append(swept(config, out / "sweep", 1))
        results["sweep_2_workers_s"].append(swept(config, out / "sweep", 2))
    best = {k: min(v) for k, v in results.items()}
    summary = {
        "runs": len(config.trials()),
        "epochs_per_run": EPOCHS,
        **results,
        "ratio_sweep_1_worker_over_direct": best["sweep_1_worker_s"] / best["direct_s"],
        "speedup_2_workers_over_1": best["sweep_1_worker_s"] / best["sweep_2_workers_s"],
        "cpu_count": os.cpu_count(),
        "data_dir": str(data_dir),
    }
    atomic_write_json(out / "overhead.json", summary)
    table = "\n".join(
        [
            "| measure | value |",
            "|---|---|",
            f"| runs x epochs | {summary['runs']} x {EPOCHS} |",
            f"| direct (s) | {best['direct_s']:.1f} |",
            f"| sweep, 1 worker (s) | {best['sweep_1_worker_s']:.1f} |",
            f"| sweep, 2 workers (s) | {best['sweep_2_workers_s']:.1f} |",
            f"| ratio sweep(1) / direct | {summary['ratio_sweep_1_worker_over_direct']:.3f} |",
            f"| speed-up 2 workers / 1 | {summary['speedup_2_workers_over_1']:.2f} |",
        ]
    )
    atomic_write_text(out / "overhead.md", table + "\n")
    print(table)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
