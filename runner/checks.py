"""Every flag checked before any work, and the flags that name splits right after loading: one line naming the flag.

Each of these would otherwise fail (or, worse, be quietly ignored or clamped) after data loading and tokenizing, or
deep inside the loop.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
from accelerate import tracking
from accelerate.utils import LoggerType
from transformers import AutoConfig

from processing import classification
from processing.models import resolve_model
from processing.registry import TASKS

from .checkpoints import STATE_FILE
from .config import TrainingConfig
from .formats import data_format, loader_options
from .output_dir import check_output_dir
from .precision import check_mixed_precision

TRACKERS = {"auto", "none", *(tracker.value for tracker in LoggerType)}


def check_config(config: TrainingConfig) -> None:
    """Refuse a bad flag before any work, in one line naming it: each of these would otherwise fail (or, worse, be
    quietly ignored or clamped) after data loading and tokenizing, or deep inside the loop."""
    check_flags(config)
    check_task_flags(config)
    choice = TASKS[config.task]
    loader_options(config, data_format(config, choice.loader), choice.task)
    check_output_dir(config)
    check_max_seq_length(config)


def refuse(flag: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"--{flag} {value!r}: expected {expected}")


def check_flags(config: TrainingConfig) -> None:
    """The flags whose validity depends on nothing but their own values."""
    required = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps")
    required += ("n_best_size", "max_answer_length")
    optional = ("max_seq_length", "max_train_samples", "max_eval_samples", "save_total_limit")
    optional += ("preprocessing_num_workers", "early_stopping_patience")
    for flag in (*required, *optional):
        value = getattr(config, flag)
        if (value is None and flag not in optional) or (value is not None and value < 1):
            raise refuse(flag, value, "an integer >= 1")
    for flag in ("num_train_epochs", "learning_rate"):
        value = getattr(config, flag)
        if not (math.isfinite(value) and value > 0):
            raise refuse(flag, value, "a number > 0")
    if not (math.isfinite(config.weight_decay) and config.weight_decay >= 0):
        raise refuse("weight_decay", config.weight_decay, "a number >= 0")
    if not 0 <= config.warmup_ratio <= 1:
        raise refuse("warmup_ratio", config.warmup_ratio, "a share of the steps between 0 and 1")
    size = config.validation_size
    if not (0 < size < 1 or (size >= 1 and float(size).is_integer())):
        raise refuse("validation_size", size, "a share between 0 and 1, or a whole number of examples")
    if not 0 <= config.seed < 2**32:
        raise refuse("seed", config.seed, "an integer from 0 to 2**32 - 1")
    if config.doc_stride < 0:
        raise refuse("doc_stride", config.doc_stride, "an integer >= 0")
    if not math.isfinite(config.null_score_diff_threshold):
        raise refuse("null_score_diff_threshold", config.null_score_diff_threshold, "a finite number")
    if not 0 < config.decision_threshold < 1:
        raise refuse("decision_threshold", config.decision_threshold, "a number between 0 and 1")
    every = config.checkpointing_steps
    if every is not None and every != "epoch" and not (every.isdigit() and int(every) >= 1):
        raise refuse("checkpointing_steps", every, "an integer >= 1 or 'epoch'")
    steps = config.eval_steps
    if steps != "epoch" and not (steps.isdigit() and int(steps) >= 1):
        raise refuse("eval_steps", steps, "an integer >= 1 or 'epoch'")
    if config.report_to not in TRACKERS:
        raise refuse("report_to", config.report_to, f"one of {', '.join(sorted(TRACKERS))}")
    check_tracker_installed(config.report_to)
    check_resume_flags(config)


def check_task_flags(config: TrainingConfig) -> None:
    """Flags the task or the framework cannot honour, refused rather than ignored."""
    task = TASKS[config.task].task
    if config.class_weights not in ("none", "balanced"):
        raise refuse("class_weights", config.class_weights, "none or balanced")
    if config.class_weights != "none" and task.class_weights is None:
        raise refuse(
            "class_weights",
            config.class_weights,
            f"none for --task {config.task} (one label per example only)",
        )
    if config.calibrate not in ("none", "temperature"):
        raise refuse("calibrate", config.calibrate, "none or temperature")
    if config.calibrate != "none" and not task.scales_temperature:
        raise refuse(
            "calibrate",
            config.calibrate,
            f"none for --task {config.task} (one softmax over classes per example or per word only)",
        )
    if config.tf_devices is not None and (config.framework != "tensorflow" or config.tf_devices < 1):
        raise refuse(
            "tf_devices",
            config.tf_devices,
            "a count of at least 1 with --framework tensorflow (PyTorch: accelerate launch --num_processes)",
        )
    if config.framework == "tensorflow" and not task.keras_head:
        raise ValueError(
            f"--framework tensorflow does not train --task {config.task}: use --framework pytorch"
        )
    check_long_documents(config)
    check_best_model_flags(config)
    check_mixed_precision(config.mixed_precision, config.framework)
    check_streaming_flags(config)


def check_streaming_flags(config: TrainingConfig) -> None:
    """A stream's length may be unknown, so its run counts steps; the Keras path has no stream to train on."""
    if config.shuffle_buffer_size < 1:
        raise refuse("shuffle_buffer_size", config.shuffle_buffer_size, "an integer >= 1")
    if not config.streaming:
        if config.max_steps is not None:
            raise refuse(
                "max_steps", config.max_steps, "no value without --streaming (runs count --num_train_epochs)"
            )
        return
    if config.framework == "tensorflow":
        raise ValueError("--streaming is not supported with --framework tensorflow: use --framework pytorch")
    if not config.do_train:
        raise ValueError("--streaming reads the train split, which --do_train false does not read")
    if config.max_steps is None or config.max_steps < 1:
        raise refuse(
            "max_steps",
            config.max_steps,
            "an integer >= 1 with --streaming (a stream's length may be unknown)",
        )


def check_best_model_flags(config: TrainingConfig) -> None:
    """The figure named must be one the task scores; the flags need training, and the PyTorch loop."""
    task = TASKS[config.task].task
    names = [metric.name for metric in task.best_model_metrics]
    metric = config.metric_for_best_model
    if metric is not None and metric not in names:
        raise refuse("metric_for_best_model", metric, f"one of {', '.join(names)} for --task {config.task}")
    defaults = {"metric_for_best_model": None, "early_stopping_patience": None, "eval_steps": "epoch"}
    given = [f"--{flag}" for flag, default in defaults.items() if getattr(config, flag) != default]
    if given and not config.do_train:
        raise ValueError(f"{' and '.join(given)}: evaluations during training, none with --do_train false")
    if given and config.framework == "tensorflow":
        raise ValueError(
            f"{' and '.join(given)}: not supported with --framework tensorflow (it scores after each epoch and "
            "keeps the final model); use --framework pytorch"
        )


def check_tracker_installed(report_to: str) -> None:
    """A tracker whose package is missing would be left out by Accelerate with a debug message: no logs, silently."""
    if report_to in ("auto", "none", "all"):
        return
    installed = [tracker.value for tracker in tracking.get_available_trackers()]
    if LoggerType(report_to) not in tracking.get_available_trackers():
        raise refuse(
            "report_to",
            report_to,
            f"a tracker whose package is installed ({', '.join([*installed, 'auto', 'all', 'none'])})",
        )


def check_long_documents(config: TrainingConfig) -> None:
    """Windows only where the task aggregates them per example (single-label classification)."""
    for flag, choices in (
        ("long_documents", classification.LONG_DOCUMENTS),
        ("window_aggregation", classification.WINDOW_AGGREGATIONS),
    ):
        if getattr(config, flag) not in choices:
            raise refuse(flag, getattr(config, flag), " or ".join(choices))
    if config.long_documents == "truncate":
        if config.window_aggregation != "mean":
            raise refuse(
                "window_aggregation", config.window_aggregation, "no value without --long_documents windows"
            )
        return
    if not TASKS[config.task].task.long_documents:
        raise refuse(
            "long_documents", config.long_documents, f"truncate for --task {config.task} (single-label only)"
        )


def check_resume_flags(config: TrainingConfig) -> None:
    """A resume that could not happen must not be dropped silently into a run from scratch."""
    resume = config.resume_from_checkpoint
    if resume is None:
        return
    if not config.do_train:
        raise refuse("resume_from_checkpoint", resume, "no value with --do_train false (nothing is trained)")
    if config.overwrite_output_dir:
        raise ValueError(
            "--overwrite_output_dir removes the checkpoints --resume_from_checkpoint would continue from: "
            "give one or the other"
        )
    if resume != "latest" and not (Path(resume) / STATE_FILE).is_file():
        raise refuse(
            "resume_from_checkpoint", resume, f"'latest' or a checkpoint folder holding {STATE_FILE}"
        )


def check_max_seq_length(config: TrainingConfig) -> None:
    """Longer windows than the model has position embeddings for crash in the first forward pass (or are cut to
    the tokenizer's limit without a word); the model's config is a small file, read before any data."""
    length = config.max_seq_length or TASKS[config.task].task.default_max_seq_length
    limit, source = model_length_limit(resolve_model(config.model), config.model)
    if limit is not None and length > limit:
        default = "" if config.max_seq_length else " (the task's default)"
        raise refuse("max_seq_length", length, f"at most {limit}{default}, the model's {source}")


def model_length_limit(model_path: str, flag_value: str) -> tuple[int | None, str]:
    """The model's `max_position_embeddings`; for a folder without `config.json` (a Keras model written by this
    project) the `model_max_length` its tokenizer was saved with."""
    tokenizer_config = Path(model_path) / "tokenizer_config.json"
    if Path(model_path).is_dir() and not (Path(model_path) / "config.json").is_file():
        if tokenizer_config.is_file():
            limit = json.loads(tokenizer_config.read_text()).get("model_max_length")
            return (limit if isinstance(limit, int) else None), "tokenizer's model_max_length"
        return None, ""
    try:
        model_config = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"--model {flag_value}: cannot read its config ({first_line})") from err
    limit = getattr(model_config, "max_position_embeddings", None)
    return (limit if isinstance(limit, int) else None), "max_position_embeddings"


def check_splits(config: TrainingConfig, raw: datasets.DatasetDict) -> None:
    """Flags that name splits or sizes of the data, checked right after loading, before any tokenizing."""
    if config.eval_split not in raw:
        raise ValueError(f"--eval_split {config.eval_split!r} is not in the data (splits: {list(raw)})")
    used = [config.eval_split, *(s for s in ("test",) if s in raw)] + (["train"] if config.do_train else [])
    for split in dict.fromkeys(used):
        missing = unlabelled_examples(raw[split])
        if missing:
            flag = "--eval_split" if split == config.eval_split else "the split"
            raise ValueError(
                f"{flag} {split!r} has {missing} missing labels (-1, unlabelled examples): it can be neither "
                "scored nor trained on; use a split with labels"
            )


def unlabelled_examples(split: datasets.Dataset) -> int:
    """Labels of -1 (the missing class) in any `ClassLabel` column, or in any position of a sequence of them."""
    missing = 0
    for name, feature in split.features.items():
        labels = feature if isinstance(feature, datasets.ClassLabel) else getattr(feature, "feature", None)
        if isinstance(labels, datasets.ClassLabel):
            column = split.with_format("arrow")[name]
            values = column if labels is feature else pa.compute.list_flatten(column)
            missing += pa.compute.sum(pa.compute.less(values, 0)).as_py() or 0
    return missing
