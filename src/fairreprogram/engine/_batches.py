"""Batch iteration: deterministic per-epoch shuffling, sharded across processes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset, TensorDataset

__all__ = ["ShardedBatchSampler", "dataset_column", "dataset_lengths", "iterate_batches", "num_batches"]

_COLUMN_BATCH = 1024  # rows per batch when a whole label or group column is read
_LENGTHS = "lengths has {found} entries; expected one per example ({n})."


class ShardedBatchSampler(Sampler[list[int]]):
    """Global batches of a seeded permutation, each split into per-process chunks.

    Global batch ``b`` holds the same indices whatever the number of processes;
    process ``rank`` receives its contiguous chunk. The permutation depends only on
    ``seed + epoch``, so a resumed epoch replays exactly. A final global batch
    smaller than the number of processes is dropped so that no process is idle.

    With ``lengths`` (one per example, e.g. token counts) the batches are
    length-bucketed so that dynamic padding pads little: the shuffled order is cut
    into buckets of ``bucket_batches`` batches, each bucket is sorted by length and
    cut into batches, and the batches of all buckets are shuffled. Without shuffling
    the order is simply by length (stable), for evaluation.
    """

    def __init__(
        self,
        n: int,
        *,
        batch_size: int,
        seed: int = 0,
        epoch: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        lengths: Sequence[int] | np.ndarray | None = None,
        bucket_batches: int = 50,
    ) -> None:
        self.n = n
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = epoch
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.lengths = None if lengths is None else torch.as_tensor(np.asarray(lengths, dtype=np.int64))
        if self.lengths is not None and len(self.lengths) != n:
            raise ValueError(_LENGTHS.format(found=len(self.lengths), n=n))
        self.bucket_batches = bucket_batches

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)

    def global_batches(self) -> list[torch.Tensor]:
        """Every global batch of this epoch, in order."""
        generator = self._generator()
        if not self.shuffle:
            order = torch.arange(self.n)
            if self.lengths is not None:
                order = torch.argsort(self.lengths, stable=True)
            return list(order.split(self.batch_size))
        order = torch.randperm(self.n, generator=generator)
        if self.lengths is None:
            return list(order.split(self.batch_size))
        batches: list[torch.Tensor] = []
        for bucket in order.split(self.batch_size * self.bucket_batches):
            ranked = bucket[torch.argsort(self.lengths[bucket], stable=True)]
            batches.extend(ranked.split(self.batch_size))
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in shuffled]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches():
            if batch.numel() < self.world_size:
                continue
            yield batch.tensor_split(self.world_size)[self.rank].tolist()

    def __len__(self) -> int:
        return num_batches(self.n, self.batch_size, self.world_size)


def dataset_lengths(dataset: Dataset[Any]) -> np.ndarray | None:
    """Per-example lengths of a dataset that has them (``lengths``), through ``Subset`` s."""
    source, rows = _unwrap_subsets(dataset)
    lengths = getattr(source, "lengths", None)
    if lengths is None:
        return None
    lengths = np.asarray(lengths, dtype=np.int64)
    return lengths if rows is None else lengths[rows]


def dataset_column(dataset: Dataset[Any], position: int) -> torch.Tensor:
    """Column ``position`` (1: the labels, 2: the groups) of a ``(x, y, z)`` dataset, in row order.

    Read through :func:`iterate_batches`, so that a dataset that serves only whole
    batches (``batch(indices)``), or a ``Subset`` of one, is read as the engine reads it.
    """
    sampler = ShardedBatchSampler(len(dataset), batch_size=_COLUMN_BATCH, shuffle=False)  # type: ignore[arg-type]
    parts = [
        torch.as_tensor(batch[position]).long().reshape(-1) for batch in iterate_batches(dataset, sampler)
    ]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def num_batches(n: int, batch_size: int, world_size: int = 1) -> int:
    """Number of global batches :class:`ShardedBatchSampler` yields."""
    full, rest = divmod(n, batch_size)
    return full + int(rest >= world_size and rest > 0)


def _unwrap_subsets(dataset: Dataset[Any]) -> tuple[Dataset[Any], np.ndarray | None]:
    """The dataset under any :class:`Subset` wrappers and the rows of it they select."""
    rows: np.ndarray | None = None
    while isinstance(dataset, Subset):
        picked = np.asarray(dataset.indices, dtype=np.int64)
        rows = picked if rows is None else picked[rows]
        dataset = dataset.dataset
    return dataset, rows


def iterate_batches(
    dataset: Dataset[Any], sampler: ShardedBatchSampler, *, num_workers: int = 0
) -> Iterator[Any]:
    """Yield batches of ``dataset`` in the order of ``sampler``.

    Tensor datasets are indexed directly and datasets with a ``batch(indices)``
    method (returning the stacked ``(x, y, z)``, e.g. the cached image datasets) are
    asked for whole batches, so neither pays per-example collation; so are
    :class:`~torch.utils.data.Subset` s of either (nested or not). Any other dataset
    goes through a :class:`~torch.utils.data.DataLoader`.
    """
    source, rows = _unwrap_subsets(dataset)
    if isinstance(source, TensorDataset):
        for indices in sampler:
            idx = torch.as_tensor(indices if rows is None else rows[indices], dtype=torch.long)
            yield tuple(t[idx] for t in source.tensors)
        return
    batch = getattr(source, "batch", None)
    if callable(batch):
        for indices in sampler:
            yield batch(indices if rows is None else rows[indices])
        return
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers)
    yield from loader
