"""What a task supplies to the generic training loop, and the registry of task names.

`train.py` knows nothing about any task: it asks the task for its loader, model class, features, collator and
scoring. Adding a task means adding a module that builds a `Task`, not editing the loop.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .calibration import Confidence
from .models import load_pretrained

Split = datasets.Dataset | datasets.IterableDataset
Prepare = Callable[[Split, PreTrainedTokenizerBase, Any, bool], Split]
Score = Callable[[datasets.Dataset, datasets.Dataset, dict[str, np.ndarray], list[str] | None, Any], "Scored"]
ReduceOutputs = Callable[[dict[str, np.ndarray], datasets.Dataset, Any], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Scored:
    """One split's metrics for the results file, its predictions in memory (what the predictions files hold, in the
    task's own shape) for the error analysis, and a writer for those files.

    `confidence`, where the task has one, feeds the reliability diagram of the analysis; `logits_and_labels` (the
    unscaled logits of every scored decision and its gold class id) is what `--calibrate temperature` fits on: made
    when asked, since a task may hold its logits per example and only that flag needs them as one array.
    """

    metrics: dict[str, Any]
    predictions: Any
    write_predictions: Callable[[Path, str], list[Path]]
    confidence: Confidence | None = None
    logits_and_labels: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None


Analyse = Callable[[Path, str, Scored, datasets.Dataset | None, list[str] | None], list[Any]]


@dataclass(frozen=True)
class Tuning:
    """A setting `Task.calibrate` tunes on validation: its name (a `TrainingConfig` field, kept in the saved model's
    `config.json`, read back by predict, and the `{threshold}` of the card's usage snippet), the flag that turns
    the tuning on, and what the model card calls it."""

    setting: str
    flag: str
    words: str


@dataclass(frozen=True)
class Metric:
    """A scalar figure of `Task.score`'s metrics that can choose the best model of a run (`--metric_for_best_model`),
    and which way is better: the run layer cannot tell a score from a loss by its name."""

    name: str
    greater_is_better: bool = True


@dataclass(frozen=True)
class Task:
    """Everything task-specific, as plain functions over `datasets` objects.

    `label_column` stratifies a held-out validation split; `group_column` keeps its groups whole (SQuAD articles;
    several are tried in order, see `loaders.with_validation_split`).
    `label_names(features)` gives the class names read from the raw data (None for tasks without classes).
    `load_model(name_or_path, label_names, use_safetensors=True)` builds the model with readable
    `id2label`/`label2id`, from safetensors weights only unless `use_safetensors` is False.
    `prepare(raw_split, tokenizer, config, training)` maps raw examples to model features (through `map_batches`,
    so a streamed training split is tokenized the same way, on the fly); evaluation features may keep bookkeeping
    columns (ids, offsets, word ids) that `model_inputs` leaves out of the batches.
    `collator(tokenizer, pad_to_multiple_of)` pads a batch to its longest member.
    `output_names` are the model outputs gathered in evaluation, batch by batch.
    `reduce_outputs(outputs, batch_features, config)`, if given, reduces one gathered batch of those outputs
    (arrays padded to the batch's longest) to what `score` reads, given the batch's evaluation features, so
    evaluation holds a compact form per example whatever the size of the split (see
    `batching.EvaluationOutputs`); without it the outputs are kept as they are (a few logits per example).
    `score(raw_split, features, outputs, label_names, config)` gives metrics and predictions from the (reduced)
    outputs of every feature, in the order of the evaluation features; `score_outputs` scores full outputs.
    `calibrate(config, validation_metrics)`, if given, returns the settings tuned on the validation figures of the
    final model (never on later splits): later splits are scored with them, and the saved model's `config.json`
    keeps them, so what it answers with later is what was measured. `tuning` names the setting it tunes.
    `class_weights(raw_train, label_names)`, if given, returns one loss weight per class ("balanced": inverse
    frequency in train) and `weighted_loss(logits, labels, weights)` the loss the PyTorch loop then trains on;
    tasks without them refuse `--class_weights`.
    `scales_temperature` is True where `score` divides the logits by `config.calibration_temperature` and fills
    `Scored.logits_and_labels`, and the saved model's last linear layer gives the logits (`--calibrate temperature`).
    `check(raw_splits, tokenizer, config)`, if given, refuses flags that do not fit the loaded data, before any of
    it is tokenized (question answering: windows too short for the longest question).
    `analyse(output_dir, split, scored, raw_split, label_names)` writes the error analysis of one scored split
    from `scored.predictions` and returns the `analysis.Written` files with their captions.
    `best_model_metrics` are the figures of `score` that can choose the best evaluation of a run
    (`--metric_for_best_model`), the first the default; known before any data, so another name is refused at once.
    `card_metrics` are the model-index entries of the model card: (key in the results, metric type, metric name).
    `card_settings` are the task's own flags worth a row in the card; `usage` is the card's snippet, formatted
    with `model` and `threshold`; `card_note` ends the card's evaluation note.
    `architecture_suffix` ends the class names in a saved `config.json` that mean this task (predict reads it),
    with `problem_type` telling apart tasks of one head class (a multi-label classifier is a sequence classifier);
    `predict_input` says what predict reads for the task, `predict_format` which reader of the predict command
    reads it; `predict(model, examples, settings)` yields a JSON row per example already read from the input.
    `keras_head` names the Keras head (`processing.keras_models.HEADS`): "sequence", "multi_label", "token" or "span".
    `report_nouns` say what the data report counts: (example, what the counts count, what a length measures).
    `cuts_windows` is True when evaluation cuts examples into `doc_stride` windows (the report counts them).
    `long_documents` is True when the task can read long examples in windows (`--long_documents windows`); tasks
    without it refuse the flag.
    """

    name: str
    pipeline_tag: str
    default_max_seq_length: int
    label_column: str | None
    group_column: str | tuple[str, ...] | None
    label_names: Callable[[datasets.Features], list[str] | None]
    load_model: Callable[..., PreTrainedModel]
    prepare: Prepare
    collator: Callable[[PreTrainedTokenizerBase, int | None], Callable]
    output_names: tuple[str, ...]
    score: Score
    reduce_outputs: ReduceOutputs | None = None
    calibrate: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    tuning: Tuning | None = None
    class_weights: Callable[[datasets.Dataset, list[str]], list[float]] | None = None
    weighted_loss: Callable[[Any, Any, Any], Any] | None = None
    scales_temperature: bool = False
    check: Callable[[datasets.DatasetDict, PreTrainedTokenizerBase, Any], None] | None = None
    analyse: Analyse | None = None
    best_model_metrics: tuple[Metric, ...] = ()
    card_metrics: tuple[tuple[str, str, str], ...] = ()
    card_settings: tuple[str, ...] = ()
    usage: str = ""
    card_note: str = ""
    architecture_suffix: str = ""
    problem_type: str | None = None
    predict_input: str = ""
    predict_format: str = ""
    predict: Callable[..., Iterator[dict[str, Any]]] | None = None
    keras_head: str = ""
    report_nouns: tuple[str, str, str] = ("example", "examples", "example")
    cuts_windows: bool = False
    long_documents: bool = False


def score_outputs(
    task: Task,
    raw: datasets.Dataset,
    features: datasets.Dataset,
    outputs: dict[str, np.ndarray],
    label_names: list[str] | None,
    config: Any,
) -> Scored:
    """`task.score` of the full outputs of every feature (as one batch), reduced first where the task reduces."""
    if task.reduce_outputs is not None:
        outputs = task.reduce_outputs(outputs, features, config)
    return task.score(raw, features, outputs, label_names, config)


def map_batches(
    dataset: Split, function: Callable, *, desc: str, num_proc: int | None, **kwargs: Any
) -> Split:
    """`map(function, batched=True)` of a map-style or a streamed split: the same function, the same columns.

    An `IterableDataset` maps lazily, batch by batch as examples are drawn, in the process drawing them: it takes
    neither a progress bar's `desc` nor `num_proc` (`--preprocessing_num_workers` then tokenizes the map-style
    evaluation splits only).
    """
    if isinstance(dataset, datasets.IterableDataset):
        return dataset.map(function, batched=True, **kwargs)
    return dataset.map(function, batched=True, desc=desc, num_proc=num_proc, **kwargs)


def model_inputs(model: PreTrainedModel, features: datasets.Dataset, with_labels: bool) -> list[str]:
    """The feature columns the model's `forward` takes, so `set_format` hands it exactly those tensors."""
    return input_columns(model, features.column_names, with_labels)


def input_columns(model: PreTrainedModel, columns: Iterable[str], with_labels: bool) -> list[str]:
    """Of `columns` (a split's, or a streamed example's keys), those the model's `forward` takes."""
    accepted = set(inspect.signature(model.forward).parameters)
    label_columns = {"labels", "start_positions", "end_positions"}
    return [c for c in columns if c in accepted and (with_labels or c not in label_columns)]


def load_labelled_model(
    auto_class: type,
    name_or_path: str,
    label_names: list[str] | None,
    *,
    use_safetensors: bool = True,
    **config_kwargs: Any,
) -> PreTrainedModel:
    """A classification head sized for the data's labels, with readable `id2label`/`label2id` in its config (and
    any other config values a task sets, such as `problem_type`).

    Weights are read from safetensors only unless `use_safetensors` is False (see `models.load_pretrained`).
    """
    names = list(label_names or [])
    return load_pretrained(
        auto_class,
        name_or_path,
        use_safetensors=use_safetensors,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={name: i for i, name in enumerate(names)},
        **config_kwargs,
    )
