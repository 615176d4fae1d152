"""Pinned regression: the first five training losses of a seeded tiny run, per task, equal values saved once.

A refactor that changes training (the model's head, data processing or order, batching, dropout, the optimizer,
weight decay or the schedule) moves these losses by far more than 1e-4, while reorganising the code leaves them
alone; torchtune's recipe tests guard refactors the same way. The test goes only through the command line and the
TensorBoard log, so it holds however train.py is laid out. The run is forced onto the CPU in float32, where the
losses agree to about 1e-6 across thread counts and CPU instruction sets. When a change is meant to alter
training, pin the new values in the same commit and say why there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import train
from conftest import SAMPLES, reset_accelerate

pytest.importorskip(
    "tensorboard", reason="reading the logged losses needs the tracking extra: pip install '.[tracking]'"
)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

COMMON = [
    "--per_device_eval_batch_size", "8",
    "--max_eval_samples", "1",
    "--learning_rate", "1e-3",
    "--num_train_epochs", "1",
    "--seed", "1234",
    "--report_to", "tensorboard",
]  # fmt: skip

# task: (samples folder, its own flags, the first five losses)
RUNS = {
    "imdb": (
        "imdb",
        "--max_seq_length 64 --per_device_train_batch_size 2",
        [0.691478, 0.692950, 0.694216, 0.694640, 0.696986],
    ),
    "wnut17": (
        "wnut17",
        "--max_seq_length 64 --per_device_train_batch_size 2",
        [2.554351, 2.499791, 2.503797, 2.448880, 2.456062],
    ),
    # Letter-by-letter tokens cut one question's context into nine batches of windows: enough steps.
    "squad_v2": (
        "squad",
        "--max_seq_length 128 --doc_stride 32 --max_train_samples 1 --per_device_train_batch_size 4",
        [4.849985, 4.765882, 4.736686, 4.637892, 4.590124],
    ),
}


@pytest.fixture(autouse=True)
def cpu_float32_run(monkeypatch):
    """Each in-process run starts as a new process would, on the CPU in full precision wherever the test runs."""
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    reset_accelerate()
    yield
    reset_accelerate()


def logged_losses(output_dir: Path) -> list[float]:
    """`train/loss` from every TensorBoard event file of the run, in step order."""
    points = []
    for events in output_dir.rglob("events.out.tfevents*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if "train/loss" in accumulator.Tags()["scalars"]:
            points += [(event.step, event.value) for event in accumulator.Scalars("train/loss")]
    return [value for _, value in sorted(points)]


@pytest.mark.parametrize("task", RUNS)
def test_first_five_losses_of_a_seeded_tiny_run_are_unchanged(task, tiny_model_dir, tmp_path):
    folder, task_flags, pinned = RUNS[task]
    argv = [
        "--task", task,
        "--data_dir", str(SAMPLES / folder),
        "--model", str(tiny_model_dir),
        "--output_dir", str(tmp_path),
        *task_flags.split(),
        *COMMON,
    ]  # fmt: skip

    assert train.main(argv) == 0

    losses = logged_losses(tmp_path)
    assert len(losses) >= 5, f"only {len(losses)} optimizer steps were logged"
    assert losses[:5] == pytest.approx(pinned, abs=1e-4)
