"""Batches of similar lengths, so that padding each batch to its longest member wastes little.

On IMDb most random batches hold one review at the truncation length, so dynamic padding alone barely helps;
grouping by length is what removes the padding.
"""

from __future__ import annotations

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
