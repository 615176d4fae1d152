"""The Keras loop (`python train.py --framework tensorflow ...`): the same data, batches, scoring and outputs as the
PyTorch loop, trained by Keras 3 on TensorFlow.

Everything but the model and the loop is the run layer's: loading and the validation split, each task's `prepare`,
collator and `score`, and the finishing step (results, predictions, error analysis, `training_args.json`, the
model card, the Hub upload). The model is a `.keras` file with `label_names.json` and the tokenizer beside it. Keras
runs on one process, on one device or on several through `tf.distribute.MirroredStrategy` (see `device_strategy`);
multi-process launches stay PyTorch-only. Checkpoints, resuming and SIGTERM are `runner.keras_checkpoints`'s, in the
PyTorch path's layout; trackers are `runner.keras_tracking`'s.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# First: keras_models sets KERAS_BACKEND and TF_CPP_MIN_LOG_LEVEL, read once when Keras and TensorFlow load.
from processing import keras_models

# isort: split
import datasets
import keras
import numpy as np
import tensorflow as tf
from huggingface_hub import snapshot_download
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from processing.batching import EvaluationOutputs
from processing.models import resolve_model
from processing.registry import TASKS
from processing.tasks import Task
from processing.tf_data import splittable, to_tf_dataset, training_order

from . import keras_checkpoints
from .checkpoints import check_same_run, checkpoint_to_resume, run_identity
from .config import TrainingConfig
from .data import class_weights, eval_orders, eval_splits, evaluation_outputs, load_raw
from .finish import evaluate, metrics_line, scalars
from .keras_tracking import Tracking
from .output_dir import clear_earlier_outputs


@dataclass
class KerasRun:
    """What one run is made of, built by `setup` (the counterpart of `runner.torch_loop.Run`), finished by
    `runner.finish`."""

    config: TrainingConfig
    task: Task
    raw: datasets.DatasetDict
    label_names: list[str] | None
    tokenizer: PreTrainedTokenizerBase
    model: keras.Model
    collator: Callable
    eval_features: dict[str, datasets.Dataset]
    eval_orders: dict[str, np.ndarray | None]
    eval_batches: dict[str, tf.data.Dataset]
    tracking: Tracking
    train_features: datasets.Dataset | None = None
    max_steps: int = 0
    is_main_process: bool = True  # Keras runs on one process
    class_weights: list[float] | None = None  # `--class_weights`: the head's loss weighs each class
    data_settings: dict[str, Any] = field(default_factory=dict)
    training_outcome: dict[str, Any] = field(default_factory=dict)  # none: the final model is kept
    identity: dict[str, Any] = field(default_factory=dict)  # what a checkpoint must share with a resuming run

    @property
    def trained(self) -> bool:
        return self.train_features is not None

    def model_outputs(self, split: str) -> dict[str, np.ndarray]:
        kept = evaluation_outputs(self.task, self.config, self.eval_features[split], self.eval_orders[split])
        return predict(self.model, self.eval_batches[split], self.task.output_names, kept)

    def model_saver(self) -> Callable[[Path], None]:
        return lambda folder: keras_models.save(self.model, folder, self.task.name, self.label_names)

    def fold_temperature(self, model_dir: Path, temperature: float) -> None:
        keras_models.fold_temperature(model_dir, temperature)

    def log(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.tracking.log(metrics, self.max_steps if step is None else step)

    def print(self, line: str) -> None:
        print(line)


def check_supported(config: TrainingConfig) -> None:
    """Refuse what only the PyTorch path does, instead of silently ignoring it."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError(
            "--framework tensorflow trains on one process: run it with python, not a multi-process launch"
        )


def model_folder(name_or_path: str) -> str:
    """A local folder for KerasHub, which reads the Hugging Face files itself: Hub ids are downloaded first."""
    path = resolve_model(name_or_path)
    return path if Path(path).is_dir() else snapshot_download(path)


def setup(config: TrainingConfig) -> KerasRun:
    """Load and process as the PyTorch path does; build (or load) the Keras model and its `tf.data` batches.

    A `--model` folder written by this path (holding `model.keras`) is loaded with its trained head; any other is a
    Hugging Face BERT folder that gets a new head.
    """
    check_supported(config)
    strategy = device_strategy(config)
    if config.overwrite_output_dir:
        clear_earlier_outputs(config)
    choice = TASKS[config.task]
    task = choice.task
    config.max_seq_length = config.max_seq_length or task.default_max_seq_length
    keras.utils.set_random_seed(config.seed)
    model_dir = model_folder(config.model)
    raw = load_raw(config, choice.loader, task)
    label_names = task.label_names(raw["train"].features)
    weights, weight_settings = class_weights(config, task, raw["train"], label_names)
    identity = checked_identity(config, task, raw["train"], label_names, strategy)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if task.check is not None:
        task.check(raw, tokenizer, config)
    with strategy.scope():  # the model's variables are mirrored on every device
        model = load_or_build(model_dir, task, label_names)

    features = {
        split: task.prepare(raw[split], tokenizer, config, False) for split in eval_splits(config, raw)
    }
    collator = task.collator(tokenizer, 8 if tf.config.list_physical_devices("GPU") else None)
    orders = eval_orders(config, features)
    eval_size = config.per_device_eval_batch_size * strategy.num_replicas_in_sync
    eval_batches = {
        split: for_devices(
            strategy, to_tf_dataset(split_features, collator, eval_size, order=orders[split]), eval_size
        )
        for split, split_features in features.items()
    }
    run = KerasRun(
        config,
        task,
        raw,
        label_names,
        tokenizer,
        model,
        collator,
        features,
        orders,
        eval_batches,
        Tracking(config),
    )
    run.identity, run.class_weights, run.data_settings = identity, weights, weight_settings
    if not config.do_train:
        return run

    run.train_features = task.prepare(raw["train"], tokenizer, config, True)
    run.max_steps = optimizer_steps(
        config,
        math.ceil(len(run.train_features) / global_batch_size(run.config, run.model.distribute_strategy)),
    )
    with strategy.scope():  # the optimizer's variables too
        compile_model(run)
    return run


def optimizer_steps(config: TrainingConfig, batches_per_epoch: int) -> int:
    """The updates Keras applies over the run's batches.

    Keras carries an incomplete accumulation from one epoch into the next and applies none at the run's end, where
    Accelerate applies one at every epoch's end: the steps are whole groups of `--gradient_accumulation_steps` over
    all the run's batches, and the batches after the last group, which no update would use, are left out (said).
    """
    batches = math.ceil(config.num_train_epochs * batches_per_epoch)
    steps, left_out = divmod(batches, config.gradient_accumulation_steps)
    if steps == 0:
        raise ValueError(
            f"--gradient_accumulation_steps {config.gradient_accumulation_steps}: the run has {batches} batches, "
            "fewer than one optimizer step (expected at most as many as the batches)"
        )
    if left_out:
        print(
            f"--gradient_accumulation_steps {config.gradient_accumulation_steps}: the run's last {left_out} of "
            f"{batches} batches make no whole optimizer step and are not trained on"
        )
    return steps


def compile_model(run: KerasRun) -> None:
    """AdamW and the task's losses, on the schedule of `run.max_steps` updates (see `compile_for_training`)."""
    config = run.config
    keras_models.compile_for_training(
        run.model,
        run.task.keras_head,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=int(config.warmup_ratio * run.max_steps),
        total_steps=run.max_steps,
        accumulation_steps=config.gradient_accumulation_steps,
        class_weights=run.class_weights,
    )


def load_or_build(model_dir: str, task: Task, label_names: list[str] | None) -> keras.Model:
    """The model of a folder this path wrote, checked against the task, or a new head on a BERT folder."""
    if not (Path(model_dir) / keras_models.MODEL_FILE).is_file():
        return keras_models.build_model(task.keras_head, model_dir, label_names, task.name)
    model, trained_task, trained_labels = keras_models.load(Path(model_dir))
    if (trained_task, trained_labels) != (task.name, label_names):
        raise ValueError(
            f"{model_dir} was trained for {trained_task} with labels {trained_labels}, "
            f"not {task.name} with {label_names}"
        )
    return model


def device_strategy(config: TrainingConfig) -> tf.distribute.Strategy:
    """`MirroredStrategy` over `--tf_devices` devices, by default every GPU when there are several; the default
    (one-device) strategy otherwise.

    Without GPUs the devices are the CPU's logical devices: one unless the CPU was split
    (`tf.config.set_logical_device_configuration`), which is how several devices are checked without GPUs.
    Keras's gradient accumulation synchronises the devices inside a conditional, which tf.distribute cannot run
    (`merge_call` in a `Cond`): it is refused on several devices rather than failing in the first step.
    """
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    wanted = config.tf_devices or max(1, len(gpus))
    if wanted > 1 and config.gradient_accumulation_steps > 1:
        raise ValueError(
            f"--gradient_accumulation_steps {config.gradient_accumulation_steps}: Keras cannot accumulate "
            f"gradients on {wanted} devices (expected 1, or --tf_devices 1 to accumulate on one device)"
        )
    if wanted > len(devices):
        kind = "GPU" if gpus else "CPU"
        raise ValueError(f"--tf_devices {wanted}: TensorFlow sees {len(devices)} {kind} device(s)")
    if wanted == 1:
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy([device.name for device in devices[:wanted]])


def for_devices(
    strategy: tf.distribute.Strategy, batches: tf.data.Dataset, batch_size: int
) -> tf.data.Dataset:
    """Batches as they are for one device; on several, in a form tf.distribute can split (`splittable`)."""
    return batches if strategy.num_replicas_in_sync == 1 else splittable(batches, batch_size)


def global_batch_size(config: TrainingConfig, strategy: tf.distribute.Strategy) -> int:
    """Training examples per update step: every device takes a `--per_device_train_batch_size` slice, as each
    process of a PyTorch launch takes its own batch."""
    return config.per_device_train_batch_size * strategy.num_replicas_in_sync


def epoch_batches(run: KerasRun, epoch: int) -> tf.data.Dataset:
    """One epoch of training batches: the PyTorch path's batches of that epoch (see `training_order`).

    On several devices a batch joins as many consecutive per-device batches of that order, which tf.distribute
    splits between the devices again in order: the batches the processes of a PyTorch launch take in turn.
    """
    config = run.config
    order = training_order(
        run.train_features, config.per_device_train_batch_size, config.seed, epoch, config.group_by_length
    )
    label_outputs = keras_models.HEADS[run.task.keras_head].label_outputs
    return to_tf_dataset(
        run.train_features,
        run.collator,
        global_batch_size(run.config, run.model.distribute_strategy),
        label_outputs,
        order,
    )


def checked_identity(
    config: TrainingConfig,
    task: Task,
    train_split: datasets.Dataset,
    label_names: list[str] | None,
    strategy: tf.distribute.Strategy,
) -> dict[str, Any]:
    """The run's identity for its checkpoints; a checkpoint to resume from must share it (before any tokenizing)."""
    if not config.do_train:
        return {}
    identity = run_identity(config, task, train_split, label_names, global_batch_size(config, strategy))
    checkpoint = checkpoint_to_resume(config)
    if checkpoint is not None:
        check_same_run(checkpoint, identity)
    return identity


def train_loop(run: KerasRun) -> bool:
    """`fit` one epoch at a time, scoring the evaluation split between epochs as the PyTorch loop does.

    The run stops after `max_steps` updates (see `optimizer_steps` for how they are counted with gradient
    accumulation), within its last epoch when the epochs are fractional, like the PyTorch loop. A resumed run starts
    at the checkpoint's epoch, past the batches of it already trained (`tf.data`'s `skip`: the epoch's batches are
    drawn again in the same order). Returns False when SIGTERM stopped it after saving a checkpoint.
    """
    with keras_checkpoints.Preemption() as preemption:
        return fit_epochs(run, preemption)


def fit_epochs(run: KerasRun, preemption: keras_checkpoints.Preemption) -> bool:
    """`train_loop`'s epochs, from where the checkpoint resumed (if any) to the last.

    A SIGTERM after the last update, which no step's end acted on, saves the finished training and stops too: the
    resumed run only scores and saves.
    """
    config = run.config
    position = keras_checkpoints.resume_position(config, run.model)
    batches_per_epoch = math.ceil(
        len(run.train_features) / global_batch_size(run.config, run.model.distribute_strategy)
    )
    total_batches = run.max_steps * config.gradient_accumulation_steps
    last_epoch = math.ceil(total_batches / batches_per_epoch) - 1
    checkpointing = None  # none when a checkpoint of the run's end is resumed: nothing is left to fit
    for epoch in range(position["epoch"], last_epoch + 1):
        count = min(batches_per_epoch, total_batches - epoch * batches_per_epoch)
        step_at_end = (epoch * batches_per_epoch + count) // config.gradient_accumulation_steps
        skip = position["batches_in_epoch"] if epoch == position["epoch"] else 0
        checkpointing = keras_checkpoints.Checkpointing(
            config,
            run.identity,
            preemption,
            epoch=epoch,
            skip=skip,
            batches_per_epoch=batches_per_epoch,
        )
        checkpointing.set_model(run.model)
        if skip < count:
            batches = epoch_batches(run, epoch).take(count).skip(skip)
            history = run.model.fit(
                for_devices(
                    run.model.distribute_strategy,
                    batches,
                    global_batch_size(run.config, run.model.distribute_strategy),
                ),
                epochs=epoch + 1,
                initial_epoch=epoch,
                shuffle=False,  # the batches come in the order `training_order` drew
                callbacks=[
                    keras.callbacks.TerminateOnNaN(),
                    checkpointing,
                    *run.tracking.callbacks(step_at_end),
                ],
            )
            loss = history.history["loss"][-1]
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} in epoch {epoch}: stopping")
        if checkpointing.stopped:
            return False
        if epoch < last_epoch:
            metrics = evaluate(run, config.eval_split)
            print(f"epoch {epoch}: " + metrics_line(metrics))
            run.log(scalars(metrics), step=step_at_end)
    if preemption.requested and checkpointing is not None:
        checkpointing.stop()
        return False
    return True


def predict(
    model: keras.Model, batches: tf.data.Dataset, output_names: tuple[str, ...], kept: EvaluationOutputs
) -> dict[str, np.ndarray]:
    """Outputs for every feature in order, each batch reduced by `kept` as the PyTorch loop's are.

    Batch by batch because `Model.predict` cannot stack batches padded to different lengths.
    """
    for outputs in batch_outputs(model, batches):
        kept.add({name: np.asarray(outputs[name], dtype=np.float32) for name in output_names})
    return kept.result()


def batch_outputs(model: keras.Model, batches: tf.data.Dataset) -> Iterator[dict[str, Any]]:
    """The model's outputs batch by batch, each example's once.

    On several devices tf.distribute splits each batch between them and Keras's predict step joins their outputs
    in order; `predict_on_batch` would hand every device the whole batch and return each example once per device.
    """
    strategy = model.distribute_strategy
    if strategy.num_replicas_in_sync == 1:
        for inputs in batches:
            yield model.predict_on_batch(inputs)
        return
    model.make_predict_function()
    for inputs in strategy.experimental_distribute_dataset(batches):
        yield model.predict_function([inputs])
