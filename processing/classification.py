"""Sequence classification (IMDb-style folders of texts): tokenize, pad per batch, score accuracy and macro F1."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
)

from .outputs import atomic_path
from .tasks import Scored, Task, load_labelled_model


def tokenize_texts(
    examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_seq_length: int
) -> dict[str, list]:
    """Truncate but do not pad: the collator pads each batch to its longest member, not every text to the max."""
    encoding = tokenizer(examples["text"], truncation=True, max_length=max_seq_length)
    encoding["labels"] = examples["label"]
    return encoding


def prepare(
    dataset: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, config: Any, training: bool
) -> datasets.Dataset:
    return dataset.map(
        tokenize_texts,
        batched=True,
        fn_kwargs={"tokenizer": tokenizer, "max_seq_length": config.max_seq_length},
        remove_columns=dataset.column_names,
        desc="Tokenizing",
        num_proc=getattr(config, "preprocessing_num_workers", None),
    )


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted ones."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, -1)


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy and macro F1 over every class of the label set (one absent from both labels and predictions
    scores F1 0 and still counts in the mean, like scikit-learn with `labels=` all classes)."""
    matrix = confusion_matrix(labels, predictions, num_classes)
    true_positives = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(predicted + actual > 0, 2 * true_positives / (predicted + actual), 0.0)
    return {"accuracy": float(true_positives.sum() / max(len(labels), 1)), "f1": float(f1.mean())}


def score(
    raw: datasets.Dataset,
    features: datasets.Dataset,
    outputs: dict[str, np.ndarray],
    label_names: list[str] | None,
    config: Any,
) -> Scored:
    logits = outputs["logits"]
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    predictions = probabilities.argmax(axis=1)
    labels = np.asarray(raw["label"])
    names = list(label_names or [])
    metrics = classification_metrics(labels, predictions, len(names))

    def write_predictions(output_dir: Path, split: str) -> list[Path]:
        path = output_dir / f"{split}_predictions.jsonl"
        with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
            for index, (label, predicted) in enumerate(zip(labels, predictions, strict=True)):
                row = {
                    "index": index,
                    "label": names[label],
                    "predicted": names[predicted],
                    "score": round(float(probabilities[index, predicted]), 6),
                }
                f.write(json.dumps(row) + "\n")
        return [path]

    return Scored(metrics=metrics, write_predictions=write_predictions)


TASK = Task(
    name="text-classification",
    pipeline_tag="text-classification",
    default_max_seq_length=256,
    group_column=None,
    label_column="label",
    label_names=lambda features: list(features["label"].names),
    load_model=partial(load_labelled_model, AutoModelForSequenceClassification),
    prepare=prepare,
    collator=lambda tokenizer, multiple: DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple),
    output_names=("logits",),
    score=score,
)
