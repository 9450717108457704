"""Speed and memory of text-trigger tuning on Gab posts with a frozen MiniLM-L6.

Measures, on the same posts and batch size (32):

1. ``bare``: the unavoidable work per step, written out by hand: one forward pass of
   the frozen model with a 5-token soft prompt, then two backward passes to the
   prompt (task loss and adversary loss, with the projection). The batches are 32
   posts padded to 64 tokens, as in the measurement of the original code, and are
   built beforehand.
2. ``engine``: ``Reprogrammer.fit`` with the same trigger on the same padded batches
   (the engine's own loop, adversary, projection and bookkeeping).
3. ``adv_post``: ``train_adv_post`` (every weight of the model learns) on the same
   batches.
4. ``engine_dynamic``: the engine on the tokenised posts as the library serves them,
   with dynamic padding and length-bucketed batches (what a user gets).

Each measurement runs in its own process, so that its peak memory (max RSS) is its
own. Targets: trigger tuning >= 2x AdvPost's examples/s and below its peak memory;
the engine >= 0.85 of the bare loop (the original code: 17-18 vs 36 examples/s, 0.5).
Writes ``speed.json`` and ``speed.md`` into ``--out``.

    python bench/gab_speed.py [--data-dir ../shared/data] [--out bench/results/gab-speed]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fairreprogram.utils import atomic_write_json, atomic_write_text

BATCH = 32
PAD_TO = 64
TOKENS = 5


def _data(data_dir: Path, n: int) -> dict[str, Any]:
    from fairreprogram.experiments import build_task

    task = build_task(
        {
            "spec": f"text:{data_dir / 'gab' / 'gab_with_identity.csv'}",
            "text_col": "text",
            "label_col": "is_hate",
            "identity_terms": str(data_dir / "gab" / "identity_terms.txt"),
            "split_col": "split",
            "max_length": PAD_TO,
        }
    )
    tune = task.dataset("tune")
    rows = np.arange(n)
    inputs, y, z = tune.batch(rows)
    width = inputs["input_ids"].shape[1]
    padded = {k: F.pad(v, (0, PAD_TO - width), value=0) for k, v in inputs.items()}
    return {"task": task, "padded": padded, "y": y, "z": z, "rows": rows}


class _Padded(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Posts pre-padded to ``PAD_TO`` tokens, served a batch at a time (as the bare loop reads them)."""

    num_groups = 2

    def __init__(self, inputs: dict[str, torch.Tensor], y: torch.Tensor, z: torch.Tensor) -> None:
        self.inputs, self.y, self.z = inputs, y, z

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, rows: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(np.asarray(rows))
        return {k: v[index] for k, v in self.inputs.items()}, self.y[index], self.z[index]


def _model(task: Any) -> Any:
    from fairreprogram.models import freeze

    model = task.build_base({})
    return freeze(model)


def _bare(data: dict[str, Any]) -> float:
    from torch import nn

    model = _model(data["task"])
    trigger = model.build_trigger("soft", num_tokens=TOKENS)
    params = [trigger.scores]
    adversary = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(params, lr=0.1)
    adv_opt = torch.optim.Adam(adversary.parameters(), lr=3e-3)
    x, y, z = data["padded"], data["y"], data["z"]
    tic = time.perf_counter()
    for start in range(0, len(y), BATCH):
        batch = {k: v[start : start + BATCH] for k, v in x.items()}
        yb, zb = y[start : start + BATCH], z[start : start + BATCH]
        logits = model(trigger(batch))
        onehot = F.one_hot(yb, 2).float()

        def features(p: torch.Tensor, onehot: torch.Tensor = onehot) -> torch.Tensor:
            return torch.cat([p, p * (1 - onehot), p * onehot, onehot], dim=1)

        adv_opt.zero_grad()
        F.cross_entropy(adversary(features(logits.detach().softmax(1))), zb).backward()
        adv_opt.step()
        task_loss = F.cross_entropy(logits, yb)
        adv_loss = F.cross_entropy(adversary(features(logits.softmax(1))), zb)
        g_task = torch.autograd.grad(task_loss, params, retain_graph=True)[0].reshape(-1)
        g_adv = torch.autograd.grad(adv_loss, params)[0].reshape(-1)
        unit = g_task / (g_task.norm() + 1e-12)
        trigger.scores.grad = (g_task - (g_adv - (g_adv @ unit) * unit)).view_as(trigger.scores)
        opt.step()
    return len(y) / (time.perf_counter() - tic)


def _rate(history: list[dict[str, Any]]) -> float:
    return float(np.median([h["examples_per_second"] for h in history if h["epoch"] > 0]))


def _config(**extra: Any) -> Any:
    from fairreprogram.engine import TrainConfig

    options = dict(criterion="eo", lam=1.0, batch_size=BATCH, adversary_warmup_epochs=0, **extra)
    return TrainConfig(**options)


def _engine(data: dict[str, Any], *, dynamic: bool = False) -> float:
    from fairreprogram.engine import Reprogrammer

    model = _model(data["task"])
    trigger = model.build_trigger("soft", num_tokens=TOKENS)
    if dynamic:
        tune = torch.utils.data.Subset(data["task"].dataset("tune"), data["rows"].tolist())
    else:
        tune = _Padded(data["padded"], data["y"], data["z"])
    val = torch.utils.data.Subset(tune, list(range(BATCH)))
    reprogrammer = Reprogrammer(model, trigger, config=_config(epochs=2, lr=0.1))
    reprogrammer.fit(tune, val, progress=False)
    return _rate(reprogrammer.result_.history)  # type: ignore[union-attr]


def _adv_post(data: dict[str, Any]) -> float:
    from fairreprogram.baselines import train_adv_post

    model = _model(data["task"])
    tune = _Padded(data["padded"], data["y"], data["z"])
    val = torch.utils.data.Subset(tune, list(range(BATCH)))
    _, result = train_adv_post(model, tune, val, config=_config(epochs=1, lr=2e-5), progress=False)
    return _rate(result.history)


def _measure(name: str, data_dir: str, n: int, threads: int) -> tuple[float, float]:
    """Run one measurement in this (fresh) process; return examples/s and peak RSS in MB."""
    from fairreprogram.utils import peak_memory_mb

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = _data(Path(data_dir), n)
    before = peak_memory_mb()
    runner = {
        "bare": _bare,
        "engine": _engine,
        "adv_post": _adv_post,
        "engine_dynamic": lambda d: _engine(d, dynamic=True),
    }[name]
    rate = runner(data)
    return rate, max(peak_memory_mb(), before)


def main() -> None:
    from fairreprogram.data import default_data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, default=Path("bench/results/gab-speed"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="Training steps per timing.")
    args = parser.parse_args()
    n = args.steps * BATCH
    threads = torch.get_num_threads()
    names = ("bare", "engine", "adv_post", "engine_dynamic")
    rates: dict[str, list[float]] = {k: [] for k in names}
    peaks: dict[str, list[float]] = {k: [] for k in names}
    context = multiprocessing.get_context("spawn")
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats}", flush=True)
        for name in names:
            with context.Pool(1) as pool:
                rate, peak = pool.apply(_measure, (name, str(args.data_dir), n, threads))
            rates[name].append(rate)
            peaks[name].append(peak)
            print(f"  {name}: {rate:.1f} examples/s, peak {peak:.0f} MB", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    peak = {k: max(v) for k, v in peaks.items()}
    result = {
        "data": str(args.data_dir / "gab"),
        "model": "all-MiniLM-L6-v2 (frozen, fresh 2-class head)",
        "batch_size": BATCH,
        "padded_to": PAD_TO,
        "trigger": {"kind": "soft", "num_tokens": TOKENS},
        "examples_per_timing": n,
        "threads": threads,
        "repeats": args.repeats,
        "examples_per_second": med,
        "peak_memory_mb": peak,
        "all_rates": rates,
        "trigger_over_adv_post": med["engine"] / med["adv_post"],
        "engine_over_bare": med["engine"] / med["bare"],
        "engine_overhead": med["bare"] / med["engine"] - 1,
        "dynamic_over_padded": med["engine_dynamic"] / med["engine"],
        "trigger_peak_below_adv_post": peak["engine"] < peak["adv_post"],
        "original_code": {"trigger": "17-18", "bare": 36, "ratio": 0.5},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "speed.json", result)
    lines = [
        f"# Gab speed (MiniLM-L6, batch {BATCH}, posts padded to {PAD_TO} tokens, soft trigger of {TOKENS})",
        "",
        "| measure | examples/s | peak memory (MB) |",
        "|---|---|---|",
        *[f"| {k} | {med[k]:.1f} | {peak[k]:.0f} |" for k in names],
        "",
        f"- trigger tuning / AdvPost: {result['trigger_over_adv_post']:.2f}x (target >= 2x)",
        f"- engine / bare loop: {result['engine_over_bare']:.3f} (overhead {result['engine_overhead']:.1%}; "
        "target >= 0.85; the original code: about 0.5)",
        f"- dynamic padding and bucketing / padded to {PAD_TO}: {result['dynamic_over_padded']:.2f}x",
        f"- trigger peak memory below AdvPost's: {result['trigger_peak_below_adv_post']}",
    ]
    atomic_write_text(args.out / "speed.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
