"""Worker of test_distributed: one trigger-tuning run, in however many processes launched it.

Usage: python _distributed_worker.py OUT_FILE (under torch.distributed.run or plain python).
"""

from __future__ import annotations

import sys

import torch
from torch.utils.data import TensorDataset

from fairreprogram.engine import Runtime, TrainConfig, train
from fairreprogram.models import MLPClassifier, ReprogrammedModel
from fairreprogram.triggers import MaskOffsetTrigger
from fairreprogram.utils import save_tensors

CONFIG = TrainConfig(
    criterion="eo", lam=1.0, epochs=3, batch_size=64, lr=0.05, adversary_lr=5e-3, selection="last", seed=3
)


def make_data() -> TensorDataset:
    g = torch.Generator().manual_seed(11)
    x = torch.randn(256, 5, generator=g)
    z = (torch.rand(256, generator=g) < 0.5).long()
    x[:, 4] = z.float()
    y = ((x[:, 0] + z.float() + 0.3 * torch.randn(256, generator=g)) > 0.5).long()
    return TensorDataset(x, y, z)


def run() -> tuple[MaskOffsetTrigger, list]:
    torch.manual_seed(0)
    model = MLPClassifier(in_features=5, hidden_sizes=(8,))
    trigger = MaskOffsetTrigger(num_features=5)
    data = make_data()
    result = train(
        predictor=ReprogrammedModel(trigger, model),
        trainable=trigger,
        train_data=data,
        val_data=data,
        config=CONFIG,
        num_classes=2,
        num_groups=2,
        progress=False,
    )
    return trigger, result.history


def main(out: str) -> None:
    runtime = Runtime.from_accelerate()
    trigger, history = run()
    if runtime.is_main_process:
        save_tensors(
            out,
            {f"trigger.{k}": v for k, v in trigger.state_dict().items()},
            metadata={"world_size": str(runtime.world_size), "task_loss": str(history[-1]["task_loss"])},
        )


if __name__ == "__main__":
    main(sys.argv[1])
