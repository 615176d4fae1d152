"""The train split as a stream (`--streaming`): a `datasets.IterableDataset` of which each process reads its own
part, tokenized on the fly by the task's `prepare`, shuffled through a buffer, pass after pass until `--max_steps`.

The stream is read from the train split the loaders built, with `Dataset.to_iterable_dataset(num_shards=...)`, not
from `builder.as_streaming_dataset()`. Before any step, our builders read every row for reasons a stream cannot skip:
each row is checked (one error line naming the file and row, not a crash hours in), the label names are collected
from the whole train split, repairs are counted, and the run holds a seeded validation split out of train when the
data has none and fingerprints the training examples for its checkpoints; archives are read by extracting them,
which the streaming download manager of `datasets` does not do. The built split is Arrow files memory-mapped from
the cache, so what streaming is for is kept: no tokenized copy of the split is made, in memory or on disk, and the
features exist one batch at a time. Parquet or JSON Lines shards (such as the `data/` folder `python -m loaders push`
writes) are read the same way, through the `parquet` and `jsonl` formats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import datasets
import torch
from accelerate.utils import send_to_device
from datasets.distributed import split_dataset_by_node
from torch.utils.data import DataLoader

SHARDS_PER_PROCESS = 16
"""Shards of the built split per process. A whole number per process, so `split_dataset_by_node` gives each process
shards of its own, which it alone reads (otherwise every process would read every example to keep one in N);
several, so that the shard order, reshuffled at each pass, mixes the examples beyond the shuffle buffer."""


def stream_shards(num_examples: int, num_processes: int) -> int:
    """As many shards as `SHARDS_PER_PROCESS` allows with at least one example each, a multiple of the processes."""
    if num_examples < num_processes:
        raise ValueError(
            f"--streaming: the train split has {num_examples} examples, fewer than the {num_processes} processes "
            "that each read a part of it"
        )
    return num_processes * min(SHARDS_PER_PROCESS, num_examples // num_processes)


def training_stream(
    train: datasets.Dataset,
    prepare: Callable[[datasets.IterableDataset], datasets.IterableDataset],
    *,
    seed: int,
    buffer_size: int,
    rank: int,
    world_size: int,
) -> datasets.IterableDataset:
    """Process `rank`'s part of the train split as a stream of model features.

    Shuffling uses the same `seed` in every process, so each pass deals the shards out the same way everywhere:
    across the processes, a pass reads every example once.
    """
    stream = train.to_iterable_dataset(num_shards=stream_shards(len(train), world_size))
    stream = split_dataset_by_node(stream, rank=rank, world_size=world_size)
    return prepare(stream.shuffle(seed=seed, buffer_size=buffer_size))


class StreamBatches:
    """One process's batches of its part of the stream, without end: when it has read its part, it starts the next
    pass (`set_epoch`, which deals the shards out anew and reseeds the buffer), and the step count ends the run.

    Why cycling rather than `accelerator.join_uneven_inputs`: the processes' parts differ in length (shards hold
    different numbers of examples, and a task can cut one example into several windows), and every training step
    all-reduces the gradients of every process, so the process whose part ends first would leave the others waiting
    for it forever. Joining would let the others go on without it: the last steps of a pass would average fewer
    processes' gradients, and `--max_steps` would count different steps in each process. Cycling keeps every
    process in every step; one that has read its part sooner begins its next pass sooner, and within a pass each
    of its examples is still read once.

    Why a plain `DataLoader`, not one prepared by the Accelerator: `prepare` splits a data set across the processes
    itself (`IterableDataset.shard` or its own `IterableDatasetShard`, even with
    `DataLoaderConfiguration(dispatch_batches=False, split_batches=False)`; by default it has process 0 read every
    batch and dispatch them), which would split the parts `split_dataset_by_node` made once more; and it reads one
    batch ahead, so the stream's `state_dict()` would be one batch past the last one trained on. Read here without
    worker processes, the stream's own state is exactly where training is, and batches go to the device with
    Accelerate's `send_to_device`.
    """

    def __init__(
        self,
        stream: datasets.IterableDataset,
        batch_size: int,
        collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
        device: torch.device,
    ) -> None:
        self.stream = stream
        self.batch_size = batch_size
        self.collate = collate
        self.device = device

    @property
    def passes(self) -> int:
        """Passes over this process's part completed so far (the stream's epoch)."""
        return self.stream.epoch

    def state_dict(self) -> dict[str, Any]:
        """Where this process is in its part: the pass, the shard and the example in it (`datasets`' own state)."""
        return self.stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's position; the pass is set too, since each pass deals the shards anew."""
        self.stream.load_state_dict(state)
        self.stream.set_epoch(state["epoch"])

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            # Its own generator: a loader without one draws its seed from the global RNG each pass, and the resumed
            # run, starting a loader mid-pass, would shift dropout's random stream against the uninterrupted one.
            loader = DataLoader(
                self.stream, batch_size=self.batch_size, collate_fn=self.collate, generator=torch.Generator()
            )
            for batch in loader:
                yield send_to_device(batch, self.device)
            self.stream.set_epoch(self.stream.epoch + 1)
