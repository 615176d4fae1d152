"""Batches of similar lengths, so that padding each batch to its longest member wastes little.

On IMDb most random batches hold one review at the truncation length, so dynamic padding alone barely helps;
grouping by length is what removes the padding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow.compute as pc
import torch
from datasets import Dataset
from transformers.trainer_pt_utils import LengthGroupedSampler


def feature_lengths(features: Dataset, column: str = "input_ids") -> np.ndarray:
    """Token counts read from the Arrow list offsets, without materialising the token lists in Python."""
    return pc.list_value_length(features.data.column(column)).to_numpy(zero_copy_only=False)


class EpochLengthGroupedSampler(LengthGroupedSampler):
    """transformers' length-grouped sampler (shuffle, mega-batches sorted by length, longest batch first), with its
    order a function of (seed, epoch) only.

    `set_epoch`, which Accelerate's data loaders call, reseeds it, so a run resumed mid-epoch sees the same order.
    """

    def __init__(self, batch_size: int, lengths: np.ndarray, seed: int) -> None:
        super().__init__(batch_size, lengths=lengths.tolist())
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return super().__iter__()


def longest_first(lengths: np.ndarray) -> np.ndarray:
    """Evaluation order (stable, longest first); `restore_order` puts outputs back in dataset order."""
    return np.argsort(-lengths, kind="stable")


def restore_order(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    restored = np.empty_like(values)
    restored[order] = values
    return restored


def concatenate_padded(arrays: list[np.ndarray], fill: float = -1e4) -> np.ndarray:
    """Batches are padded to their own longest member; stack them at the longest overall."""
    if arrays[0].ndim == 1:
        return np.concatenate(arrays)
    width = max(a.shape[1] for a in arrays)
    padded = [
        np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2), constant_values=fill)
        for a in arrays
    ]
    return np.concatenate(padded)


Reduce = Callable[[dict[str, np.ndarray], Dataset], dict[str, np.ndarray]]
"""A task's reduction of one batch's outputs, given that batch's evaluation features (see `Task.reduce_outputs`)."""


class EvaluationOutputs:
    """What evaluation holds of a split's model outputs: each batch reduced as it comes in, so what is kept grows
    with the examples in the task's compact form (a window's best span, a word's logits), never as full logits of
    every token of every window padded to the longest.

    The counterpart of transformers' `preprocess_logits_for_metrics`, run on the batch just gathered (after
    Accelerate's `gather_for_metrics` dropped the last batch's duplicated samples) because the reduction reads the
    features' bookkeeping columns (word ids, character offsets), which never go to the device. Batches arrive in
    evaluation order (`order`, or the features' own order when None): the running count of rows says which
    features a batch holds.
    """

    def __init__(self, features: Dataset, order: np.ndarray | None, reduce: Reduce | None) -> None:
        self.features = features
        self.order = np.arange(len(features)) if order is None else np.asarray(order)
        self.reduce = reduce
        self.seen = 0
        self.kept: dict[str, list[np.ndarray]] = {}

    def add(self, outputs: dict[str, np.ndarray]) -> None:
        rows = len(next(iter(outputs.values())))
        if self.seen + rows > len(self.order):
            raise ValueError(f"outputs for {self.seen + rows} features, expected {len(self.order)}")
        if self.reduce is not None:
            batch = self.features.select(self.order[self.seen : self.seen + rows])
            outputs = self.reduce(outputs, batch)
        self.seen += rows
        for name, values in outputs.items():
            self.kept.setdefault(name, []).append(values)

    def result(self) -> dict[str, np.ndarray]:
        """The kept outputs, one row per feature in evaluation order (what `restore_order` undoes)."""
        if self.seen != len(self.order):
            raise ValueError(f"outputs for {self.seen} features, expected {len(self.order)}")
        return {name: concatenate_padded(arrays) for name, arrays in self.kept.items()}
