"""What every task's `predict` shares: the settings a saved model predicts with, and batches with a progress bar.

A task's `predict(model, examples, settings)` runs a saved model on examples that the predict command already read
and checked, and yields one JSON row per example; files are the command's business, not the task's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tqdm.auto import tqdm


@dataclass(frozen=True)
class Settings:
    max_seq_length: int
    doc_stride: int
    n_best_size: int
    max_answer_length: int
    null_score_diff_threshold: float
    batch_size: int
    device: str
    use_safetensors: bool = True
    decision_threshold: float = 0.5
    long_documents: str = "truncate"
    window_aggregation: str = "mean"


def batches(items: list, size: int, unit: str) -> Iterator[list]:
    with tqdm(total=len(items), desc="Predicting", unit=unit) as progress:
        for start in range(0, len(items), size):
            yield items[start : start + size]
            progress.update(min(size, len(items) - start))
