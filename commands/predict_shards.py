"""Predict under a distributed launcher (`accelerate launch`, `torchrun`): each process predicts every N-th
input and the main process writes all rows in input order.

Strided shards, not the contiguous ones of Accelerate's `split_between_processes`: the j-th rows of the
processes, taken in process order, are then consecutive inputs, so rows can be gathered and written a round at
a time, and the main process holds one round of rows, not every prediction (with contiguous shards the later
shards' rows would wait in memory until the first shard is written). Rows travel with Accelerate's
`gather_object` (torch.distributed's `all_gather_object`), on gloo or NCCL, on one machine or several.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import islice
from typing import Any

from accelerate import PartialState
from accelerate.utils import gather_object

from runner.precision import cpu_run


def launched_state() -> PartialState | None:
    """The process group when a launcher started several processes (`WORLD_SIZE`, which torchrun and
    accelerate launch set), else None: a plain run makes no Accelerate state, which a training run in the same
    Python process would otherwise reuse without its own settings. `cpu` is said explicitly: unlike
    `Accelerator`, `PartialState` does not read `ACCELERATE_USE_CPU`, and without it a CPU-only machine would
    start every process alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return PartialState(cpu=cpu_run())


def shard(items: list, state: PartialState) -> list:
    """This process's inputs: every `num_processes`-th one, from its own index."""
    return items[state.process_index :: state.num_processes]


def agree(problem: str | None) -> None:
    """One round in which every process says whether it can go on: a problem on any process is raised on all, as a
    ValueError with its message, so none goes on to wait for one that stopped."""
    failed = [problem for problem in gather_object([problem]) if problem is not None]
    if failed:
        raise ValueError(failed[0])


def gathered_rows(
    rows: Iterator[dict[str, Any]], rows_per_round: int, errors: tuple[type[Exception], ...]
) -> Iterator[dict[str, Any]]:
    """Every process's rows in input order, on every process, from the rows of this process's `shard`.

    Each round, every process contributes its next `rows_per_round` rows; the rounds end when no process has
    any left. A user error (`errors`) on one process is sent in its round and raised on all as a ValueError
    with the same message, so no process waits in a collective for one that stopped.
    """
    while True:
        chunk: list[dict[str, Any]] = []
        problem = None
        try:
            chunk.extend(islice(rows, rows_per_round))
        except errors as err:
            problem = str(err)
        gathered = gather_object([(chunk, problem)])
        failed = [problem for _, problem in gathered if problem is not None]
        if failed:
            raise ValueError(failed[0])
        chunks = [chunk for chunk, _ in gathered]
        if not any(chunks):
            return
        yield from interleave(chunks)


def interleave(chunks: list[list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """Rows of one round in input order: the first row of each process in process order, then the second...

    Strided shards differ in length by at most one input, so only the last processes lack a row, and only at
    the end of the last round."""
    for index in range(max(len(chunk) for chunk in chunks)):
        yield from (chunk[index] for chunk in chunks if index < len(chunk))
