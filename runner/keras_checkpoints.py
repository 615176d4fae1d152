"""Checkpoints, resuming and SIGTERM for the Keras loop, in the PyTorch path's layout and with its run check.

A checkpoint is `checkpoints/step_N` as on the PyTorch path (written under `step_N.partial`, renamed when complete,
pruned by `--save_total_limit`, found by `--resume_from_checkpoint latest`), holding `trainer_state.json` (the
step, the position in the data, the run's identity) and Keras's own weights file.

Why a callback of our own around `Model.save_weights` rather than `keras.callbacks.BackupAndRestore` or
`tf.train.CheckpointManager`: `BackupAndRestore` rewrites one folder in place (a kill mid-save tears it), keeps no
numbered history for `--save_total_limit`, and restores only the epoch, not the batch within it, so a run killed
mid-epoch would train that epoch's first batches twice. `CheckpointManager` numbers its own files in one folder and
knows nothing of the data. Both save through the same machinery used here: Keras's `.weights.h5` holds the layers'
weights and the compiled optimizer's variables (its step counter, which drives the learning-rate schedule, Adam's
moments and any gradients being accumulated), and loads them back with `Model.load_weights`.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

# First: keras_models sets KERAS_BACKEND and TF_CPP_MIN_LOG_LEVEL, read once when Keras and TensorFlow load.
from processing import keras_models  # noqa: F401

# isort: split
import keras
import numpy as np

from .checkpoints import CHECKPOINTS, SIGTERM_LINE, STATE_FILE, checkpoint_to_resume, write_checkpoint
from .config import TrainingConfig

WEIGHTS_FILE = "model.weights.h5"
SEED_STATES_FILE = "seed_states.json"


def unsaved_variables(model: keras.Model) -> list[keras.Variable]:
    """The model's variables that its weights file does not hold: each dropout layer's seed generator state.

    Dropout draws its masks from a counter that moves at every training step; restored, a resumed run draws the
    masks the uninterrupted run would have drawn.
    """
    saved = {id(variable) for variable in model.weights}
    return [variable for variable in model.variables if id(variable) not in saved]


def save_state(model: keras.Model, folder: Path) -> None:
    """Everything a resumed run needs to draw what the uninterrupted run would: the weights and the optimizer's
    variables (Keras's weights file) and the dropout seed states, which that file leaves out."""
    model.save_weights(folder / WEIGHTS_FILE)
    seeds = [{"path": v.path, "value": np.asarray(v.numpy()).tolist()} for v in unsaved_variables(model)]
    (folder / SEED_STATES_FILE).write_text(json.dumps(seeds), encoding="utf-8")


def load_state(model: keras.Model, folder: Path) -> None:
    """`save_state` back into a model built and compiled as the saving run's was."""
    model.load_weights(folder / WEIGHTS_FILE)
    seeds = json.loads((folder / SEED_STATES_FILE).read_text(encoding="utf-8"))
    variables = unsaved_variables(model)
    # Shapes, not paths: Keras numbers seed generators per process, so a model built second is named otherwise.
    if [np.shape(seed["value"]) for seed in seeds] != [tuple(variable.shape) for variable in variables]:
        raise ValueError(f"{folder} was saved from a model with other dropout layers than this run's")
    for seed, variable in zip(seeds, variables, strict=True):
        variable.assign(np.asarray(seed["value"], dtype=variable.dtype))


def resume_position(config: TrainingConfig, model: keras.Model) -> dict[str, int]:
    """Load the checkpoint asked for (its run, global batch size and accumulation were checked by `setup`) and say
    where in training it was taken."""
    start = {"completed_steps": 0, "epoch": 0, "batches_in_epoch": 0}
    checkpoint = checkpoint_to_resume(config)
    if checkpoint is None:
        if config.resume_from_checkpoint:
            print(f"No checkpoint in {config.output_dir}/{CHECKPOINTS}: starting from scratch")
        return start
    position = json.loads((checkpoint / STATE_FILE).read_text())
    load_state(model, checkpoint)
    print(f"Resumed from {checkpoint} at step {position['completed_steps']}")
    return {key: position[key] for key in start}


class Preemption:
    """SIGTERM (how clusters preempt) noted while training and acted on at the next optimizer step's end, where a
    checkpoint is consistent; the handler only sets a flag, since TensorFlow may be mid-step. The handler that was
    there before comes back when training ends."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> Preemption:
        self._previous = signal.signal(signal.SIGTERM, self._note)
        return self

    def __exit__(self, *_: Any) -> None:
        signal.signal(signal.SIGTERM, self._previous)

    def _note(self, *_: Any) -> None:
        self.requested = True


class Checkpointing(keras.callbacks.Callback):
    """Checkpoints of one epoch's `fit`: every `--checkpointing_steps` optimizer steps or at the epoch's end, and on
    SIGTERM (then `fit` stops and `stopped` is set).

    `fit` numbers the batches it is given from 0; `skip` batches of this epoch were trained before (a resumed epoch),
    and `batches_per_epoch` is a full epoch's count, so `epoch * batches_per_epoch + batches_in_epoch` batches are
    done. With gradient accumulation an optimizer step ends every `accumulation` batches, counted over the whole run
    (Keras carries an incomplete accumulation into the next epoch).
    """

    def __init__(
        self,
        config: TrainingConfig,
        identity: dict[str, Any],
        preemption: Preemption,
        *,
        epoch: int,
        skip: int,
        batches_per_epoch: int,
    ) -> None:
        super().__init__()
        self.config, self.identity, self.preemption = config, identity, preemption
        self.epoch, self.skip, self.batches_per_epoch = epoch, skip, batches_per_epoch
        self.accumulation = config.gradient_accumulation_steps
        self.batches_in_epoch = self.skip
        self.stopped = False

    def state(self, epoch_end: bool = False) -> dict[str, Any]:
        """The position after the batches trained so far; at the epoch's end, the start of the next epoch."""
        done = self.epoch * self.batches_per_epoch + self.batches_in_epoch
        epoch, batches_in_epoch = (self.epoch + 1, 0) if epoch_end else (self.epoch, self.batches_in_epoch)
        step = {
            "completed_steps": done // self.accumulation,
            "epoch": epoch,
            "batches_in_epoch": batches_in_epoch,
        }
        return {**step, **self.identity}

    def save(self, state: dict[str, Any]) -> None:
        write_checkpoint(self.config, state, lambda folder: save_state(self.model, folder))

    def stop(self) -> None:
        """SIGTERM's checkpoint, where training is, then the line the PyTorch path prints."""
        state = self.state()
        self.save(state)
        print(SIGTERM_LINE.format(state["completed_steps"]))
        self.stopped = self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.batches_in_epoch = self.skip + batch + 1
        if (self.epoch * self.batches_per_epoch + self.batches_in_epoch) % self.accumulation:
            return  # mid-accumulation: no optimizer step ended here
        if logs and not np.isfinite(float(logs.get("loss", 0.0))):
            return  # diverged: the loop stops with an error, and no checkpoint holds the broken weights
        if self.preemption.requested:
            self.stop()
            return
        state = self.state()
        every = self.config.checkpointing_steps
        if every not in (None, "epoch") and state["completed_steps"] % int(every) == 0:
            self.save(state)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        finite = not logs or np.isfinite(float(logs.get("loss", 0.0)))
        if self.config.checkpointing_steps == "epoch" and not self.stopped and finite:
            self.save(self.state(epoch_end=True))
