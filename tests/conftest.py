"""Shared fixtures: a tiny synthetic biased tabular task and a base model trained on it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import TensorDataset

from fairreprogram.baselines import train_erm
from fairreprogram.models import MLPClassifier


def make_biased(
    n: int, *, seed: int, num_features: int = 6, num_groups: int = 2, agreement: float = 0.5
) -> TensorDataset:
    """A noisy signal decides y; the group z is visible in a feature.

    With ``agreement`` > 0.5, z agrees with y that often (a spurious shortcut that a
    model trained on such data picks up); 0.5 makes z independent of y.
    """
    g = torch.Generator().manual_seed(seed)
    signal = torch.randn(n, num_features - 2, generator=g)
    y = (signal[:, 0] + 0.5 * signal[:, 1] + 0.8 * torch.randn(n, generator=g) > 0).long()
    agree = torch.rand(n, generator=g) < agreement
    other = torch.randint(0, num_groups, (n,), generator=g)
    z = torch.where(agree, y.clamp(max=num_groups - 1), other)
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
    train, tune = make_biased(1200, seed=1, agreement=0.9), make_biased(600, seed=2)
    val, test = make_biased(400, seed=3), make_biased(600, seed=4)
    torch.manual_seed(0)
    base = MLPClassifier(in_features=6, hidden_sizes=(16,))
    train_erm(base, train, val, epochs=15, lr=1e-2, progress=False, patience=0)
    return Task(train, tune, val, test, base)


@pytest.fixture
def make_data():
    """The :func:`make_biased` factory, for tests that need their own data."""
    return make_biased


@pytest.fixture
def noisy_start(monkeypatch):
    """Register (for one test) a tabular trigger with a random start, as the sparse and
    text triggers have, and return its kind."""
    from fairreprogram.triggers import MaskOffsetTrigger, _base

    class NoisyStart(MaskOffsetTrigger):
        kind = "noisy_start"

        def __init__(self, config=None, **options):
            super().__init__(config, **options)
            with torch.no_grad():
                self.offset.add_(torch.randn_like(self.offset))

    monkeypatch.setitem(_base._REGISTRY, NoisyStart.kind, NoisyStart)
    return NoisyStart.kind
