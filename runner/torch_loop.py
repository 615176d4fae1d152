"""The PyTorch loop: Accelerate's `nlp_example` with checkpoints that record where in the data they were taken.

Set up in three explicit steps (data and model, loaders, optimizer), then `train_loop`; the finishing step (scoring, saving,
card) is the run layer's, shared with the Keras loop.
"""

from __future__ import annotations

import json
import math
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerBase, get_scheduler

from processing import calibration
from processing.batching import EpochLengthGroupedSampler, EvaluationOutputs, feature_lengths
from processing.models import resolve_model
from processing.registry import TASKS
from processing.tasks import Task, input_columns, model_inputs

from . import best_model
from .checkpoints import (
    CHECKPOINTS,
    SIGTERM_LINE,
    STATE_FILE,
    check_same_run,
    checkpoint_folder,
    checkpoint_to_resume,
    read_process_state,
    run_identity,
    save_checkpoint,
)
from .config import TrainingConfig
from .data import class_weights, eval_orders, eval_splits, evaluation_outputs, load_raw
from .finish import evaluate, metrics_line, scalars
from .output_dir import clear_earlier_outputs
from .precision import cpu_run, resolve_mixed_precision
from .streaming import StreamBatches, training_stream


@dataclass
class Run:
    """What one run is made of: built by `setup`, trained by `train_loop`, finished by `runner.finish`."""

    config: TrainingConfig
    task: Task
    accelerator: Accelerator
    raw: datasets.DatasetDict
    label_names: list[str] | None
    tokenizer: PreTrainedTokenizerBase
    model: torch.nn.Module
    eval_features: dict[str, datasets.Dataset]
    eval_orders: dict[str, np.ndarray | None]
    eval_dataloaders: dict[str, DataLoader] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)
    train_features: datasets.Dataset | None = None
    train_dataloader: DataLoader | None = None
    train_stream: StreamBatches | None = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None
    max_steps: int = 0
    class_weights: torch.Tensor | None = None
    data_settings: dict[str, Any] = field(default_factory=dict)
    best: best_model.BestModel | None = None
    training_outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def trained(self) -> bool:
        return self.train_dataloader is not None or self.train_stream is not None

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    def model_outputs(self, split: str) -> dict[str, np.ndarray]:
        kept = evaluation_outputs(self.task, self.config, self.eval_features[split], self.eval_orders[split])
        return predict(
            self.model, self.eval_dataloaders[split], self.accelerator, self.task.output_names, kept
        )

    def model_saver(self) -> Callable[[Path], None]:
        self.accelerator.wait_for_everyone()
        # Every process takes part: under FSDP or DeepSpeed the full weights are gathered from the shards.
        state_dict = self.accelerator.get_state_dict(self.model)
        model = self.accelerator.unwrap_model(self.model)
        return lambda folder: model.save_pretrained(folder, state_dict=state_dict, safe_serialization=True)

    def fold_temperature(self, model_dir: Path, temperature: float) -> None:
        model = self.task.load_model(str(model_dir), self.label_names)
        calibration.fold_temperature(model, temperature)
        model.save_pretrained(model_dir, safe_serialization=True)

    def log(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.accelerator.log(metrics, step=self.max_steps if step is None else step)

    def print(self, line: str) -> None:
        self.accelerator.print(line)


def setup(config: TrainingConfig, accelerator: Accelerator | None = None) -> Run:
    """The torchtune recipe's order: data and model, then loaders, then optimizer and schedule; one function each."""
    accelerator = accelerator or make_accelerator(config, None)
    run = setup_data(config, accelerator)
    setup_loaders(run)
    if config.do_train:
        setup_optimizer(run)
    else:
        run.model = accelerator.prepare(run.model)
    return run


def make_accelerator(config: TrainingConfig, log_with: str | list[str] | None) -> Accelerator:
    """The run's Accelerator; `config.mixed_precision` becomes the precision it settled on, so that
    `training_args.json` and the card say what the run trained in, not what was asked."""
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=log_with,
        project_dir=config.output_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
        mixed_precision=resolve_mixed_precision(config.mixed_precision, cpu_run()),
    )
    config.mixed_precision = str(accelerator.mixed_precision)
    return accelerator


def setup_data(config: TrainingConfig, accelerator: Accelerator) -> Run:
    """Raw splits, class weights if asked for, the checkpoint check, the tokenizer, the model with a head sized for
    the labels, the features."""
    choice = TASKS[config.task]
    task = choice.task
    config.max_seq_length = config.max_seq_length or task.default_max_seq_length
    if config.overwrite_output_dir and accelerator.is_main_process:
        clear_earlier_outputs(config)
    accelerator.wait_for_everyone()
    set_seed(config.seed)
    model_path = resolve_model(config.model)
    with accelerator.main_process_first():
        raw = load_raw(config, choice.loader, task)
    label_names = task.label_names(raw["train"].features)
    weights, weight_settings = class_weights(config, task, raw["train"], label_names)
    global_batch_size = config.per_device_train_batch_size * accelerator.num_processes
    identity = (
        run_identity(config, task, raw["train"], label_names, global_batch_size) if config.do_train else {}
    )
    checkpoint = checkpoint_to_resume(config) if config.do_train else None
    if checkpoint is not None:
        check_same_run(checkpoint, identity)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if task.check is not None:
        task.check(raw, tokenizer, config)
    model = task.load_model(model_path, label_names, use_safetensors=config.use_safetensors)
    with accelerator.main_process_first():
        features = {
            split: task.prepare(raw[split], tokenizer, config, False) for split in eval_splits(config, raw)
        }
        map_style = config.do_train and not config.streaming
        train_features = task.prepare(raw["train"], tokenizer, config, True) if map_style else None
    run = Run(
        config, task, accelerator, raw, label_names, tokenizer, model, features, eval_orders(config, features)
    )
    run.identity, run.train_features = identity, train_features
    metric = best_model.chosen_metric(config, task) if config.do_train else None
    if metric is not None:
        run.best = best_model.BestModel(metric, config.early_stopping_patience)
    if weights is not None:
        run.class_weights = torch.tensor(weights, device=accelerator.device)
        run.data_settings = weight_settings
    return run


def setup_loaders(run: Run) -> None:
    """Evaluation loaders in the order `eval_orders` chose, the training loader; batches padded to their longest."""
    config, accelerator = run.config, run.accelerator
    collator = run.task.collator(run.tokenizer, 8 if accelerator.device.type == "cuda" else None)
    for split, features in run.eval_features.items():
        loader = DataLoader(
            features.with_format("torch", columns=model_inputs(run.model, features, with_labels=False)),
            sampler=None if run.eval_orders[split] is None else run.eval_orders[split].tolist(),
            collate_fn=collator,
            batch_size=config.per_device_eval_batch_size,
            generator=_loader_generator(config.seed),
        )
        run.eval_dataloaders[split] = accelerator.prepare(loader)
    if run.config.streaming and run.config.do_train:
        run.train_stream = stream_batches(run, collator)
    if run.train_features is not None:
        features = run.train_features
        run.train_dataloader = DataLoader(
            features.with_format("torch", columns=model_inputs(run.model, features, with_labels=True)),
            sampler=EpochLengthGroupedSampler(
                config.per_device_train_batch_size, feature_lengths(features), config.seed
            )
            if config.group_by_length
            else None,
            shuffle=not config.group_by_length,
            collate_fn=collator,
            batch_size=config.per_device_train_batch_size,
            generator=_loader_generator(config.seed),
        )


def stream_batches(run: Run, collator: Callable) -> StreamBatches:
    """This process's part of the train split as a stream of batches (see `runner.streaming`), holding only the
    columns the model takes, as the map-style loader's `set_format` does."""
    config, accelerator = run.config, run.accelerator
    stream = training_stream(
        run.raw["train"],
        lambda split: run.task.prepare(split, run.tokenizer, config, True),
        seed=config.seed,
        buffer_size=config.shuffle_buffer_size,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )
    columns = input_columns(run.model, next(iter(stream.take(1))), with_labels=True)
    return StreamBatches(
        stream,
        config.per_device_train_batch_size,
        lambda rows: collator([{column: row[column] for column in columns} for row in rows]),
        accelerator.device,
    )


def setup_optimizer(run: Run) -> None:
    """AdamW without decay on biases and LayerNorm, linear warmup and decay over the whole run; then `prepare`."""
    config, accelerator, model = run.config, run.accelerator, run.model
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    decay = [p for n, p in model.named_parameters() if not n.endswith(no_decay)]
    rest = [p for n, p in model.named_parameters() if n.endswith(no_decay)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=config.learning_rate,
        fused=accelerator.device.type in ("cpu", "cuda"),  # one kernel for all parameters, not a loop
    )
    if run.train_stream is not None:
        run.max_steps = config.max_steps
    else:
        steps_per_epoch = math.ceil(
            len(run.train_dataloader) / (config.gradient_accumulation_steps * accelerator.num_processes)
        )
        run.max_steps = math.ceil(config.num_train_epochs * steps_per_epoch)
    # Accelerate's prepared scheduler steps once per process at each optimizer step (unless batches are split),
    # so its schedule is counted in those steps, as transformers' `run_*_no_trainer` scripts count it
    ticks = 1 if accelerator.split_batches else accelerator.num_processes
    scheduler = get_scheduler(
        "linear",
        optimizer,
        num_warmup_steps=int(config.warmup_ratio * run.max_steps) * ticks,
        num_training_steps=run.max_steps * ticks,
    )
    if run.train_stream is not None:  # not prepared: see `StreamBatches`
        run.model, run.optimizer, run.scheduler = accelerator.prepare(model, optimizer, scheduler)
        return
    run.model, run.optimizer, run.train_dataloader, run.scheduler = accelerator.prepare(
        model, optimizer, run.train_dataloader, scheduler
    )


def predict(
    model: torch.nn.Module,
    dataloader: DataLoader,
    accelerator: Accelerator,
    output_names: tuple[str, ...],
    kept: EvaluationOutputs,
) -> dict[str, np.ndarray]:
    """Model outputs for every evaluation feature exactly once, across processes, each batch reduced by `kept`
    as soon as it is gathered."""
    model.eval()
    for batch in tqdm(
        dataloader, desc="Evaluating", disable=not accelerator.is_local_main_process, leave=False
    ):
        with torch.no_grad():
            outputs = model(**batch)
        gathered = {}
        for name in output_names:
            values = accelerator.pad_across_processes(outputs[name], dim=1, pad_index=-1e4)
            gathered[name] = accelerator.gather_for_metrics(values).float().cpu().numpy()
        kept.add(gathered)
    return kept.result()


def _loader_generator(seed: int) -> torch.Generator:
    """A DataLoader draws a seed from the global RNG each time it is iterated unless it has its own generator.

    With its own, dropout's random stream does not depend on how often loaders were iterated, so a run resumed
    mid-epoch (whose loader is iterated once more, to skip batches) trains exactly like an uninterrupted one.
    """
    return torch.Generator().manual_seed(seed)


def resume_position(run: Run) -> dict[str, int]:
    """Load the checkpoint asked for and say where in training it was taken."""
    config = run.config
    start = {"completed_steps": 0, "epoch": 0, "batches_in_epoch": 0}
    checkpoint = checkpoint_to_resume(config)
    if checkpoint is None:
        if config.resume_from_checkpoint:
            run.accelerator.print(
                f"No checkpoint in {config.output_dir}/{CHECKPOINTS}: starting from scratch"
            )
        return start
    position = json.loads((checkpoint / STATE_FILE).read_text())
    run.accelerator.load_state(str(checkpoint))
    if run.best is not None and best_model.STATE_KEY in position:
        run.best.restore(position[best_model.STATE_KEY])
    run.accelerator.print(f"Resumed from {checkpoint} at step {position['completed_steps']}")
    return position


def batch_loss(run: Run, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's own loss, or with `--class_weights` the task's weighted loss on the model's logits (the labels
    are then kept from the model, which would compute an unweighted loss for nothing)."""
    if run.class_weights is None:
        return run.model(**batch).loss
    logits = run.model(**{name: value for name, value in batch.items() if name != "labels"}).logits
    return run.task.weighted_loss(logits, batch["labels"], run.class_weights)


def training_step(run: Run, batch: dict[str, torch.Tensor], step: int) -> torch.Tensor:
    """Forward, backward and (every `gradient_accumulation_steps` batches) an optimizer step."""
    with run.accelerator.accumulate(run.model):
        loss = batch_loss(run, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at step {step}: stopping instead of training on it"
            )
        run.accelerator.backward(loss)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad()
    return loss


def train_loop(run: Run) -> bool:
    """The loop of Accelerate's nlp_example, with checkpoints that record where in the data they were taken.

    With `--metric_for_best_model` or `--early_stopping_patience` it also keeps the best evaluation's weights, stops
    when patience runs out, and ends holding the best weights (see `load_best_model`).
    Returns False when SIGTERM (how clusters preempt) stopped it after saving a checkpoint.
    """
    config, accelerator, model = run.config, run.accelerator, run.model
    signal.signal(signal.SIGTERM, lambda *_: accelerator.set_trigger())
    if run.train_stream is not None:
        return stream_loop(run)
    position = resume_position(run)
    completed_steps = position["completed_steps"]
    with progress_bar(run, completed_steps) as progress:
        last_epoch = math.ceil(config.num_train_epochs) - 1
        for epoch in range(position["epoch"], last_epoch + 1):
            if stopping_early(run):
                break
            model.train()
            run.train_dataloader.set_epoch(epoch)
            skip = position["batches_in_epoch"] if epoch == position["epoch"] else 0
            batches = (
                accelerator.skip_first_batches(run.train_dataloader, skip) if skip else run.train_dataloader
            )
            batches_in_epoch = skip
            for batch in batches:
                loss = training_step(run, batch, completed_steps + 1)
                batches_in_epoch += 1
                if accelerator.sync_gradients:
                    completed_steps += 1
                    progress.update(1)
                    lr = run.scheduler.get_last_lr()[0]
                    accelerator.log({"train/loss": loss.item(), "train/lr": lr}, step=completed_steps)
                    step_position = {"completed_steps": completed_steps, "epoch": epoch}
                    if not after_step(run, {**step_position, "batches_in_epoch": batches_in_epoch}, False):
                        return False
                if completed_steps >= run.max_steps or stopping_early(run):
                    break
            if not stopping_early(run):
                after_step(
                    run, {"completed_steps": completed_steps, "epoch": epoch + 1, "batches_in_epoch": 0}, True
                )
    load_best_model(run, completed_steps)
    return True


def stream_loop(run: Run) -> bool:
    """`train_loop` over a stream: `--max_steps` steps, the end of the run taking the place of an epoch's end.

    Each checkpoint holds every process's position in its part of the stream; resuming loads it, so the run reads
    on from the next example (what a shuffle buffer held is not restored: see README).
    """
    accelerator, stream = run.accelerator, run.train_stream
    position = resume_position(run)
    completed_steps = position["completed_steps"]
    if completed_steps:
        checkpoint = checkpoint_to_resume(run.config)
        stream.load_state_dict(
            read_process_state(checkpoint, accelerator.process_index, accelerator.num_processes)
        )
    run.model.train()
    with progress_bar(run, completed_steps) as progress:
        batches = iter(stream)
        while completed_steps < run.max_steps and not stopping_early(run):
            loss = training_step(run, next(batches), completed_steps + 1)
            if accelerator.sync_gradients:
                completed_steps += 1
                progress.update(1)
                lr = run.scheduler.get_last_lr()[0]
                accelerator.log({"train/loss": loss.item(), "train/lr": lr}, step=completed_steps)
                step_position = {"completed_steps": completed_steps, "passes": stream.passes}
                if not after_step(run, step_position, False):
                    return False
    if not stopping_early(run):
        after_step(run, {"completed_steps": completed_steps, "passes": stream.passes}, True)
    load_best_model(run, completed_steps)
    return True


def progress_bar(run: Run, completed_steps: int) -> tqdm:
    """The training bar, on one process per machine, counting optimizer steps (a resumed run starts where it was)."""
    return tqdm(
        total=run.max_steps,
        initial=completed_steps,
        desc="Training",
        disable=not run.accelerator.is_local_main_process,
    )


def stopping_early(run: Run) -> bool:
    return run.best is not None and run.best.should_stop


def evaluation_due(run: Run, step: int, epoch_end: bool) -> bool:
    """Every `--eval_steps` steps or at each epoch's end; the final weights are scored by the finishing step, and
    here only when they compete for the best model (once, at the end of the last epoch)."""
    if step >= run.max_steps:
        return epoch_end and run.best is not None
    if run.config.eval_steps == "epoch":
        return epoch_end
    return not epoch_end and step % int(run.config.eval_steps) == 0


def checkpoint_due(config: TrainingConfig, step: int, epoch_end: bool) -> bool:
    every = config.checkpointing_steps
    if every == "epoch":
        return epoch_end
    return bool(every) and not epoch_end and step % int(every) == 0


def after_step(run: Run, position: dict[str, int], epoch_end: bool) -> bool:
    """Evaluate, then checkpoint, after an optimizer step or at an epoch's end: a checkpoint taken here records the
    evaluation's outcome (the best so far, the patience counter) with the position in the data.

    A new best is saved as a checkpoint at once (kept through `--save_total_limit`). Returns False when SIGTERM
    asked to stop (a checkpoint was saved).
    """
    config, accelerator = run.config, run.accelerator
    step = position["completed_steps"]
    improved = evaluation_due(run, step, epoch_end) and evaluate_in_training(run, step)
    state = {**position, **run.identity}
    if run.best is not None:
        state[best_model.STATE_KEY] = run.best.state()
    keep = run.best.best_step if run.best is not None else None
    own = run.train_stream.state_dict() if run.train_stream is not None else None
    if improved:
        save_checkpoint(accelerator, config, state, keep, own)
    if not epoch_end and accelerator.check_trigger():
        save_checkpoint(accelerator, config, state, keep, own)
        accelerator.print(SIGTERM_LINE.format(step))
        return False
    if checkpoint_due(config, step, epoch_end):
        save_checkpoint(accelerator, config, state, keep, own)
    return True


def evaluate_in_training(run: Run, step: int) -> bool:
    """Score the evaluation split and log it; True when it is the best evaluation so far."""
    metrics = evaluate(run, run.config.eval_split)
    run.accelerator.print(f"step {step}: " + metrics_line(metrics))
    run.accelerator.log(scalars(metrics), step=step)
    run.model.train()  # evaluation switched dropout off; a mid-epoch evaluation returns to training
    return run.best is not None and run.best.update(metrics, step, run.config.eval_split)


def load_best_model(run: Run, last_step: int) -> None:
    """`load_best_model_at_end`: the best evaluation's checkpoint back into the model, so what the finishing step
    scores, saves and describes is that model; the outcome goes to `training_args.json` and the card."""
    best = run.best
    if best is None or best.best_step is None:
        return
    run.training_outcome = best.outcome(last_step, run.max_steps)
    run.accelerator.print(
        f"Best model: step {best.best_step}, {best.metric.name}={best.best_score:.4f}; training stopped "
        + run.training_outcome["stopped"]
    )
    if best.best_step == last_step:
        return  # the model holds those weights
    checkpoint = checkpoint_folder(run.config, best.best_step)
    if not (checkpoint / STATE_FILE).is_file():
        raise FileNotFoundError(
            f"{checkpoint}: the best model's checkpoint (step {best.best_step}) is missing; it cannot be loaded back"
        )
    run.accelerator.load_state(str(checkpoint))
