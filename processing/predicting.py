"""What every task's `predict` shares: the settings a saved model predicts with, and batches with a progress bar.

A task's `predict(model, examples, settings)` runs a saved model on examples that the predict command already read
and checked, and yields one JSON row per example; files are the command's business, not the task's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from .models import load_pretrained


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
    backend: str = "torch"
    quantize: str | None = None
    stand_in: Callable[[str], Any] | None = None
    """Loads a model folder that holds no PyTorch weights (a Keras output directory) as a stand-in called like the
    PyTorch head; chosen by the caller, so this module imports no framework besides PyTorch."""


BACKENDS = ("torch", "onnx")
"""What runs the model: PyTorch on its weights, or ONNX Runtime on the export `processing.export` wrote."""


def load_network(auto_class: type, model: str, settings: Settings) -> Any:
    """The saved model that a task's predict calls: the PyTorch head `auto_class` loads, or with `--backend onnx`
    its ONNX export, which takes the same inputs and gives the same outputs, so windows and post-processing are
    the task's own either way. `onnx_runtime` is imported only then: ONNX Runtime is an optional extra. A folder
    without PyTorch weights comes with the `stand_in` that loads it."""
    if settings.stand_in is not None:
        return settings.stand_in(model)
    if settings.backend == "onnx":
        from .onnx_runtime import OnnxModel

        return OnnxModel.from_folder(model, settings.quantize)
    return load_pretrained(auto_class, model, use_safetensors=settings.use_safetensors)


def batches(items: list, size: int, unit: str) -> Iterator[list]:
    with tqdm(total=len(items), desc="Predicting", unit=unit) as progress:
        for start in range(0, len(items), size):
            yield items[start : start + size]
            progress.update(min(size, len(items) - start))
