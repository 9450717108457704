"""Shared fixtures: a tiny synthetic biased tabular task and a base model trained on it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import TensorDataset

from fairreprogram.baselines import train_erm
from fairreprogram.models import MLPClassifier


def make_biased(n: int, *, seed: int, num_features: int = 6, num_groups: int = 2) -> TensorDataset:
    """Labels depend on a signal and on the group; the group is visible in the features."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randint(0, num_groups, (n,), generator=g)
    signal = torch.randn(n, num_features - 2, generator=g)
    logit = signal[:, 0] + 0.5 * signal[:, 1] + 1.5 * (z.float() - (num_groups - 1) / 2)
    y = (logit + 0.3 * torch.randn(n, generator=g) > 0).long()
    group_feature = z.float().unsqueeze(1) + 0.1 * torch.randn(n, 1, generator=g)
    noise = torch.randn(n, 1, generator=g)
    x = torch.cat([signal, group_feature, noise], dim=1)
    return TensorDataset(x, y, z)


@dataclasses.dataclass
class Task:
    train: TensorDataset
    tune: TensorDataset
    val: TensorDataset
    test: TensorDataset
    base: MLPClassifier


@pytest.fixture(scope="session")
def task() -> Task:
    train, tune = make_biased(1200, seed=1), make_biased(600, seed=2)
    val, test = make_biased(400, seed=3), make_biased(600, seed=4)
    torch.manual_seed(0)
    base = MLPClassifier(in_features=6, hidden_sizes=(16,))
    train_erm(base, train, val, epochs=15, lr=1e-2, progress=False, patience=0)
    return Task(train, tune, val, test, base)
