"""Raw splits for a run: the data's format chosen, loaded, a validation split held out when the data has none,
selected, checked."""

from __future__ import annotations

import datasets
import numpy as np

import loaders
from processing.batching import EvaluationOutputs, feature_lengths, longest_first
from processing.tasks import Task

from .checks import check_splits, refuse
from .config import TrainingConfig
from .formats import data_format, loader_options


def class_weights(
    config: TrainingConfig, task: Task, train_split: datasets.Dataset, label_names: list[str] | None
) -> tuple[list[float] | None, dict[str, dict[str, float]]]:
    """With `--class_weights`, the task's weight per class, counted on the train split before any tokenizing, and
    the setting both frameworks record in `training_args.json` and the card; nothing otherwise."""
    if not config.do_train or config.class_weights == "none":
        return None, {}
    weights = task.class_weights(train_split, label_names)
    per_label = {name: round(weight, 6) for name, weight in zip(label_names or [], weights, strict=True)}
    return weights, {"class_weights_per_label": per_label}


def load_raw(config: TrainingConfig, loader: str | None, task: Task) -> datasets.DatasetDict:
    """Raw splits from the loaders, with a seeded validation split held out of train when the data has none."""
    files = {"train": config.train_file, "validation": config.validation_file, "test": config.test_file}
    data_files = {split: path for split, path in files.items() if path} or None
    name = data_format(config, loader)
    raw = loaders.load_dataset(
        name, data_dir=config.data_dir, data_files=data_files, **loader_options(config, name, task)
    )
    size = int(config.validation_size) if config.validation_size >= 1 else config.validation_size
    if "validation" not in raw and isinstance(size, int) and size >= len(raw["train"]):
        raise refuse(
            "validation_size", size, f"fewer examples than the {len(raw['train'])} of the train split"
        )
    raw = loaders.with_validation_split(
        raw, size, seed=config.seed, stratify_by_column=task.label_column, group_by_column=task.group_column
    )
    if config.max_train_samples is not None:
        raw["train"] = raw["train"].select(range(min(config.max_train_samples, len(raw["train"]))))
    for split in raw:
        if split != "train" and config.max_eval_samples is not None:
            raw[split] = raw[split].select(range(min(config.max_eval_samples, len(raw[split]))))
    check_splits(config, raw)
    return raw


def eval_splits(config: TrainingConfig, raw: datasets.DatasetDict) -> list[str]:
    """The evaluation split first (scored after each epoch and tuned on), then test when the data has one."""
    return [config.eval_split] + [s for s in ("test",) if s in raw and s != config.eval_split]


def eval_orders(
    config: TrainingConfig, features: dict[str, datasets.Dataset]
) -> dict[str, np.ndarray | None]:
    """Longest first when batches are grouped by length (less padding); the scores restore the data's order."""
    return {
        split: longest_first(feature_lengths(split_features)) if config.group_by_length else None
        for split, split_features in features.items()
    }


def evaluation_outputs(
    task: Task, config: TrainingConfig, features: datasets.Dataset, order: np.ndarray | None
) -> EvaluationOutputs:
    """Where evaluation keeps a split's outputs: reduced batch by batch as the task says (both loops use it)."""
    reduce = task.reduce_outputs
    return EvaluationOutputs(
        features, order, None if reduce is None else lambda outputs, batch: reduce(outputs, batch, config)
    )
