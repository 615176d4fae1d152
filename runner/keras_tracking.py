"""The Keras loop's trackers (`--report_to`).

TensorBoard is Keras's own callback (`tensorboard`, `auto`, `all`: TensorFlow brings TensorBoard), which logs per
epoch (`epoch_loss` at the epoch's index); the evaluations go beside it at their optimizer steps. Every other
tracker (`wandb`, `mlflow`, ..., or each one installed with `all`) is Accelerate's tracker class, the one the PyTorch
loop logs through: those classes take plain numbers and need no Accelerator, so they are started here as
`Accelerator.init_trackers` starts them and given the PyTorch loop's names at optimizer steps, rather than through
each tracker's own Keras callback, which would log other names at other steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# First: keras_models sets KERAS_BACKEND and TF_CPP_MIN_LOG_LEVEL, read once when Keras and TensorFlow load.
from processing import keras_models  # noqa: F401

# isort: split
import keras
import tensorflow as tf
from accelerate import tracking
from accelerate.utils import LoggerType

from .config import TrainingConfig, tracked_settings
from .output_dir import tracker_dir

KERAS_TENSORBOARD = ("tensorboard", "auto", "all")


def tensorboard_dir(config: TrainingConfig) -> Path | None:
    """Where TensorBoard logs go when `--report_to` asks for it: the folder the PyTorch path's tracker writes to."""
    return tracker_dir(config) if config.report_to in KERAS_TENSORBOARD else None


def start_trackers(config: TrainingConfig) -> list[tracking.GeneralTracker]:
    """Accelerate's trackers other than TensorBoard, named `train-<task>` as train.py names the PyTorch run's."""
    if config.report_to in ("none", "auto", "tensorboard"):
        return []
    trackers = []
    for name in tracking.filter_trackers([config.report_to], config.output_dir):
        if LoggerType(name) == LoggerType.TENSORBOARD:
            continue  # Keras's callback writes it
        tracker_class = tracking.LOGGER_TYPE_TO_CLASS[str(LoggerType(name))]
        run_name = tracker_dir(config).name
        if tracker_class.requires_logging_directory:
            tracker = tracker_class(run_name, config.output_dir)
        else:
            tracker = tracker_class(run_name)
        tracker.start()
        tracker.store_init_configuration(tracked_settings(config))
        trackers.append(tracker)
    return trackers


class Tracking:
    """A run's trackers: Keras's TensorBoard callback and event files, and Accelerate's trackers."""

    def __init__(self, config: TrainingConfig) -> None:
        self.folder = tensorboard_dir(config)
        self.trackers = start_trackers(config)
        self.summary_writer: tf.summary.SummaryWriter | None = None

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Evaluation figures at the optimizer step they were taken at: into TensorBoard's `eval/`, beside the
        callback's `train/`, and into Accelerate's trackers."""
        for tracker in self.trackers:
            tracker.log(metrics, step=step)
        if self.folder is None:
            return
        if self.summary_writer is None:
            self.summary_writer = tf.summary.create_file_writer(str(self.folder / "eval"))
        with self.summary_writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
        self.summary_writer.flush()

    def callbacks(self, step_at_end: int) -> list[keras.callbacks.Callback]:
        """For one `fit` of one epoch that ends at optimizer step `step_at_end`.

        Keras's TensorBoard callback logs the epoch's loss and learning rate under `train/`, per epoch, not per batch:
        it counts batches from 0 in each `fit`, and the loop fits one epoch at a time. No graph: writing a BERT's
        graph takes longer than a short run.
        """
        callbacks: list[keras.callbacks.Callback] = []
        if self.folder is not None:
            callbacks.append(WholeEpochTensorBoard(log_dir=str(self.folder), write_graph=False))
        if self.trackers:
            callbacks.append(EpochLogging(self.trackers, step_at_end))
        return callbacks

    def finish(self) -> None:
        """As `Accelerator.end_training` ends the PyTorch run's trackers."""
        for tracker in self.trackers:
            tracker.finish()
        if self.summary_writer is not None:
            self.summary_writer.close()


class EpochLogging(keras.callbacks.Callback):
    """An epoch's mean training loss and its last learning rate, under the PyTorch loop's names (`train/loss`,
    `train/lr`)."""

    def __init__(self, trackers: list[tracking.GeneralTracker], step_at_end: int) -> None:
        super().__init__()
        self.trackers = trackers
        self.step_at_end = step_at_end

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.model.stop_training:
            return  # SIGTERM cut the epoch short: its step is not reached yet, and the resumed run logs it
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        figures = {"train/loss": float((logs or {})["loss"]), "train/lr": learning_rate}
        for tracker in self.trackers:
            tracker.log(figures, step=self.step_at_end)


class WholeEpochTensorBoard(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback, without the figures of an epoch SIGTERM cut short (Keras still ends the epoch):
    the resumed run logs that epoch."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.model.stop_training:
            super().on_epoch_end(epoch, logs)
