"""`--framework tensorflow` runs that survive faults, log to trackers and publish to the Hub (up to the network).

A Keras run stopped by SIGTERM (which saves a checkpoint and exits with 0), resumed, killed (SIGKILL) after its next
checkpoint and resumed with `--resume_from_checkpoint latest` must end with exactly the weights and figures of an
uninterrupted run on CPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from accelerate import tracking
from accelerate.tracking import GeneralTracker
from accelerate.utils import LoggerType

pytest.importorskip("keras_hub", reason="the TensorFlow path needs the tf extra: pip install '.[tf]'")

from test_hub import RecordingHfApi

import train
from conftest import REPO_ROOT, SAMPLES
from processing import keras_models
from runner import checkpoints, hub, keras_checkpoints

RUN = [
    "--framework", "tensorflow", "--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--max_seq_length", "32",
    "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8", "--learning_rate", "1e-3",
    "--num_train_epochs", "3", "--report_to", "none",
]  # fmt: skip
"""24 training examples: 6 batches an epoch, 18 optimizer steps; dropout on, so its random state must resume too."""

ONE_THREAD = {"OMP_NUM_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1"}


def start(model: Path, output_dir: Path, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "train.py",
        *RUN,
        "--model",
        str(model),
        "--output_dir",
        str(output_dir),
        *extra,
    ]
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **ONE_THREAD},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return out


def wait_for(condition, process: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before the moment the test waited for"
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.02)


def final_state(output_dir: Path) -> tuple[dict, list[np.ndarray]]:
    results = json.loads((output_dir / "test_results.json").read_text())
    model, _, _ = keras_models.load(output_dir)
    return {k: v for k, v in results.items() if k != "runtime_s"}, model.get_weights()


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tmp_path_factory) -> tuple[dict, list[np.ndarray]]:
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    finish(start(tiny_model_dir, output_dir))
    return final_state(output_dir)


def completed_steps(checkpoint: Path) -> int:
    return json.loads((checkpoint / checkpoints.STATE_FILE).read_text())["completed_steps"]


def test_stopped_by_sigterm_then_killed_and_resumed_it_ends_exactly_as_uninterrupted(
    tiny_model_dir, tmp_path, uninterrupted
):
    """One run through both faults, each resumed: SIGTERM saves where it arrives and exits with 0; SIGKILL after
    the next checkpoint loses the steps since; the run resumed from that checkpoint ends bit for bit as one never
    stopped."""
    process = start(tiny_model_dir, tmp_path, "--checkpointing_steps", "2")
    wait_for((tmp_path / "checkpoints" / "step_2").is_dir, process)  # training is under way, 16 steps to go
    process.send_signal(signal.SIGTERM)
    out = finish(process)
    stopped_at = completed_steps(checkpoints.latest_checkpoint(tmp_path))
    assert 2 < stopped_at < 18  # saved where the signal arrived, not at a --checkpointing_steps step
    assert f"SIGTERM: saved a checkpoint at step {stopped_at} and stopped" in out
    assert not (tmp_path / "model.keras").exists()  # stopped: no final model pretending to be finished
    assert not (tmp_path / "training_args.json").exists()

    every_step = ("--checkpointing_steps", "1", "--save_total_limit", "2")
    process = start(tiny_model_dir, tmp_path, *every_step, "--resume_from_checkpoint", "latest")
    wait_for((tmp_path / "checkpoints" / f"step_{stopped_at + 1}").is_dir, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    latest = checkpoints.latest_checkpoint(tmp_path)
    killed_at = completed_steps(latest)
    assert json.loads((latest / checkpoints.STATE_FILE).read_text())["framework"] == "tensorflow"
    assert stopped_at < killed_at < 18

    out = finish(start(tiny_model_dir, tmp_path, *every_step, "--resume_from_checkpoint", "latest"))
    assert f"Resumed from {latest} at step {killed_at}" in out
    results, weights = final_state(tmp_path)
    expected_results, expected_weights = uninterrupted
    assert results == expected_results
    assert len(weights) == len(expected_weights)
    assert all(np.array_equal(w, e) for w, e in zip(weights, expected_weights, strict=True))  # exact, on CPU
    assert [p.name for p in checkpoints.complete_checkpoints(tmp_path)] == ["step_17", "step_18"]


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]


def test_resuming_another_frameworks_checkpoint_is_one_clear_line(tiny_model_dir, tmp_path, capsys):
    checkpoint = tmp_path / "checkpoints" / "step_1"
    checkpoint.mkdir(parents=True)
    state = {"completed_steps": 1, "epoch": 0, "batches_in_epoch": 1, "task": "text-classification"}
    (checkpoint / checkpoints.STATE_FILE).write_text(json.dumps(state))  # a PyTorch run's: no "framework"
    argv = [
        *RUN,
        "--model",
        str(tiny_model_dir),
        "--output_dir",
        str(tmp_path),
        "--resume_from_checkpoint",
        "latest",
    ]
    assert train.main(argv) == 2
    (error,) = error_lines(capsys)
    assert "another run's checkpoint" in error and "--framework 'pytorch' there, 'tensorflow' here" in error


@pytest.mark.parametrize("framework", ["tensorflow", "pytorch"])
def test_a_tracker_that_is_not_installed_is_one_clear_line(
    framework, tiny_model_dir, tmp_path, capsys, monkeypatch
):
    """Accelerate would leave it out with a debug message: a run without the logs asked for."""
    monkeypatch.setattr(tracking, "get_available_trackers", lambda: [LoggerType.TENSORBOARD])
    argv = [*RUN, "--model", str(tiny_model_dir), "--output_dir", str(tmp_path), "--report_to", "wandb"]
    assert train.main([*argv, "--framework", framework]) == 2
    (error,) = error_lines(capsys)
    assert "--report_to 'wandb'" in error and "a tracker whose package is installed (tensorboard" in error


def test_with_gradient_accumulation_the_steps_are_the_updates_keras_applies(tiny_model_dir, tmp_path, capsys):
    """6 batches, 4 to an update: one update, and the 2 batches after it, which no update would use, are said to be
    left out; a resume with another accumulation would count other steps, and is refused in one line."""
    argv = [*RUN, "--model", str(tiny_model_dir), "--output_dir", str(tmp_path), "--num_train_epochs", "1",
            "--checkpointing_steps", "1"]  # fmt: skip
    assert train.main([*argv, "--gradient_accumulation_steps", "4"]) == 0
    assert "the run's last 2 of 6 batches make no whole optimizer step" in capsys.readouterr().out
    (checkpoint,) = checkpoints.complete_checkpoints(tmp_path)
    assert checkpoint.name == "step_1" and completed_steps(checkpoint) == 1

    resume = [*argv, "--gradient_accumulation_steps", "2", "--resume_from_checkpoint", "latest"]
    assert train.main(resume) == 2
    (error,) = error_lines(capsys)
    assert "gradient_accumulation_steps 4 there, 2 here" in error and str(checkpoint) in error


class RecordingTracker(GeneralTracker):
    """Stands in for an installed tracker other than TensorBoard (here under MLflow's name): what it was given."""

    name = "mlflow"
    requires_logging_directory = False
    started: ClassVar[list[RecordingTracker]] = []

    def __init__(self, run_name: str) -> None:
        super().__init__()
        self.run_name = run_name
        self.settings: dict = {}
        self.logged: list[tuple[int, dict]] = []
        self.finished = False
        RecordingTracker.started.append(self)

    @property
    def tracker(self) -> RecordingTracker:
        return self

    def store_init_configuration(self, values: dict) -> None:
        self.settings = values

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        self.logged.append((step, values))

    def finish(self) -> None:
        self.finished = True


def scalar_steps(folder: Path) -> dict[str, list[int]]:
    """The steps each scalar was written at, in the TensorBoard event files under `folder`."""
    import tensorflow as tf

    steps: dict[str, list[int]] = {}
    for events in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                steps.setdefault(value.tag, []).append(event.step)
    return steps


def test_the_trackers_and_the_hub_upload_of_a_keras_run(tiny_model_dir, tmp_path, monkeypatch):
    api = RecordingHfApi(tmp_path / "remote")
    monkeypatch.setattr(hub, "HfApi", lambda: api)
    monkeypatch.setitem(tracking.LOGGER_TYPE_TO_CLASS, "mlflow", RecordingTracker)
    installed = [LoggerType.TENSORBOARD, LoggerType.MLFLOW]
    monkeypatch.setattr(tracking, "get_available_trackers", lambda: installed)
    RecordingTracker.started.clear()
    out = tmp_path / "out"
    argv = [*RUN, "--model", str(tiny_model_dir), "--output_dir", str(out), "--num_train_epochs", "2",
            "--report_to", "all", "--push_to_hub", "--hub_model_id", "someone/imdb-keras"]  # fmt: skip
    assert train.main(argv) == 0

    logs = out / "train-imdb"  # where the PyTorch path's tracker writes
    assert scalar_steps(logs / "train")["epoch_loss"] == [0, 1]  # Keras's TensorBoard callback, per epoch
    evaluations = scalar_steps(logs / "eval")
    assert evaluations["eval/accuracy"] == [6, 12]  # after the first epoch, then the final model
    (tracker,) = RecordingTracker.started  # Accelerate's tracker: the PyTorch loop's names at its steps
    assert tracker.run_name == "train-imdb" and tracker.settings["task"] == "imdb" and tracker.finished
    assert [step for step, values in tracker.logged if "train/loss" in values and "train/lr" in values] == [
        6,
        12,
    ]
    assert [step for step, values in tracker.logged if "eval/accuracy" in values] == [6, 12]

    sent = api.sent("someone/imdb-keras")
    assert {"model.keras", "label_names.json", "README.md", "tokenizer.json", "test_results.json"} <= set(
        sent
    )
    assert not [name for name in sent if name.startswith(("checkpoints/", "train-imdb/"))]
    card = (tmp_path / "remote" / "someone/imdb-keras" / "README.md").read_text()
    assert "library_name: keras" in card and "--framework tensorflow" in card and hub.KERAS_NOTE in card
    model, task, label_names = keras_models.load(tmp_path / "remote" / "someone/imdb-keras")
    assert (task, label_names) == ("text-classification", ["neg", "pos"])
    local, _, _ = keras_models.load(out)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), local.get_weights(), strict=True))


def test_a_sigterm_after_the_last_update_saves_the_end_and_the_resumed_run_only_finishes(
    tiny_model_dir, tmp_path, capsys, monkeypatch
):
    """No step's end is left to act on it: the run saves where training ended and stops; resumed, nothing is left
    to fit, and the run scores and saves its model."""
    on_epoch_end = keras_checkpoints.Checkpointing.on_epoch_end

    def then_sigterm(self, epoch, logs=None):
        on_epoch_end(self, epoch, logs)
        os.kill(os.getpid(), signal.SIGTERM)  # the loop's own handler notes it

    monkeypatch.setattr(keras_checkpoints.Checkpointing, "on_epoch_end", then_sigterm)
    argv = [*RUN, "--model", str(tiny_model_dir), "--output_dir", str(tmp_path), "--num_train_epochs", "1"]
    assert train.main(argv) == 0
    assert "SIGTERM: saved a checkpoint at step 6 and stopped" in capsys.readouterr().out
    assert [p.name for p in checkpoints.complete_checkpoints(tmp_path)] == ["step_6"]
    assert not (tmp_path / "model.keras").exists()

    monkeypatch.undo()
    assert train.main([*argv, "--resume_from_checkpoint", "latest"]) == 0
    assert f"Resumed from {tmp_path / 'checkpoints' / 'step_6'} at step 6" in capsys.readouterr().out
    assert (tmp_path / "model.keras").is_file() and (tmp_path / "test_results.json").is_file()
