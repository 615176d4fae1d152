"""Multi-label classification (any number of labels per text or sentence pair): one sigmoid per label trained with
binary cross-entropy, a decision threshold tuned on validation, per-label, micro and macro F1.

The model is a sequence classifier whose config says `problem_type="multi_label_classification"`: transformers
then takes `BCEWithLogitsLoss` on float multi-hot labels, its pipeline applies a sigmoid, and predict tells the
model from a single-label one by that field. Metrics are scikit-learn's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    pipeline,
)

from .analysis import Written, save_figure, split_words
from .outputs import atomic_path, write_json
from .predicting import Settings, batches, load_network
from .tasks import Metric, Scored, Task, Tuning, load_labelled_model, map_batches

PROBLEM_TYPE = "multi_label_classification"
DECISION_THRESHOLD = 0.5
"""A label is predicted when its sigmoid score is over this, unless a threshold was tuned on validation."""


def label_names(features: datasets.Features) -> list[str]:
    return list(features["labels"].feature.names)


def multi_hot(label_lists: list[list[int]], num_labels: int) -> np.ndarray:
    """One row per example, 1.0 at each of its labels (floats: `BCEWithLogitsLoss` takes float targets)."""
    rows = np.zeros((len(label_lists), num_labels), dtype=np.float32)
    for row, labels in enumerate(label_lists):
        rows[row, labels] = 1.0
    return rows


def tokenize_texts(
    examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_seq_length: int, num_labels: int
) -> dict[str, list]:
    """Truncated, unpadded texts (or sentence pairs) with multi-hot labels (read from `label_ids`, see `prepare`)."""
    encoding = tokenizer(
        examples["text"], examples.get("text_pair"), truncation=True, max_length=max_seq_length
    )
    encoding["labels"] = multi_hot(examples["label_ids"], num_labels).tolist()
    return encoding


def prepare(
    dataset: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, config: Any, training: bool
) -> datasets.Dataset:
    """Features with float multi-hot `labels`. The raw `labels` column is renamed first: `Dataset.map` keeps the
    type of a column it rewrites under the same name, and would store the floats as class ids."""
    num_labels = dataset.features["labels"].feature.num_classes
    dataset = dataset.rename_column("labels", "label_ids")
    return map_batches(
        dataset,
        tokenize_texts,
        fn_kwargs={"tokenizer": tokenizer, "max_seq_length": config.max_seq_length, "num_labels": num_labels},
        remove_columns=dataset.column_names,
        desc="Tokenizing",
        num_proc=getattr(config, "preprocessing_num_workers", None),
    )


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))


def best_threshold(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """The decision threshold with the best micro F1 over every (example, label) score, and that F1.

    Exact rather than a grid: sorted by score, predicting the k highest scores gives 2 TP(k) / (k + positives),
    and each k that does not split a tie is reached by the threshold halfway to the next lower score (0 for all
    of them). Of equal F1s the highest threshold (fewest predicted labels) wins.
    """
    flat_scores, flat_truth = scores.ravel(), truth.ravel().astype(bool)
    if flat_scores.size == 0:
        return DECISION_THRESHOLD, 0.0
    order = np.argsort(-flat_scores, kind="stable")
    ranked, hits = flat_scores[order], np.cumsum(flat_truth[order])
    f1 = 2 * hits / (np.arange(1, ranked.size + 1) + flat_truth.sum())
    cut = np.append(ranked[1:] < ranked[:-1], True)
    k = int(np.flatnonzero(cut)[np.argmax(f1[cut])])
    threshold = 0.0 if k == ranked.size - 1 else float((ranked[k] + ranked[k + 1]) / 2)
    return threshold, float(f1[k])


def multi_label_metrics(truth: np.ndarray, predicted: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Micro and macro F1 over every label of the label set (one never present nor predicted scores 0 in the
    macro mean), exact match (every label of the example right: subset accuracy), and per-label figures."""
    labels = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, average=None, zero_division=0
    )
    return {
        "micro_f1": float(f1_score(truth, predicted, labels=labels, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        "exact_match": float(accuracy_score(truth, predicted)) if len(truth) else 0.0,
        "per_label": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "number": int(support[i]),
            }
            for i, name in enumerate(names)
        },
    }


def score(
    raw: datasets.Dataset,
    features: datasets.Dataset,
    outputs: dict[str, np.ndarray],
    label_names: list[str] | None,
    config: Any,
) -> Scored:
    """The figures at `config.decision_threshold`, plus the threshold with the best micro F1 on this split (what
    `calibrate` takes from validation)."""
    names = list(label_names or [])
    threshold = float(config.decision_threshold)
    scores = sigmoid(outputs["logits"][:, : len(names)])
    truth = multi_hot(raw["labels"], len(names)).astype(np.int64)
    predicted = (scores > threshold).astype(np.int64)
    best, best_f1 = best_threshold(scores, truth)
    metrics = {
        **multi_label_metrics(truth, predicted, names),
        "decision_threshold": threshold,
        "best_threshold": best,
        "best_micro_f1": best_f1,
    }
    ids = raw["id"] if "id" in raw.column_names else None
    rows = [
        {
            "index": index,
            **({"id": ids[index]} if ids is not None else {}),
            "labels": [names[i] for i in np.flatnonzero(truth[index])],
            "predicted": [names[i] for i in np.flatnonzero(predicted[index])],
            "scores": {name: round(float(scores[index, i]), 6) for i, name in enumerate(names)},
        }
        for index in range(len(truth))
    ]

    def write_predictions(output_dir: Path, split: str) -> list[Path]:
        path = output_dir / f"{split}_predictions.jsonl"
        with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        return [path]

    return Scored(metrics=metrics, predictions=rows, write_predictions=write_predictions)


def calibrate(config: Any, validation_metrics: dict[str, Any]) -> dict[str, Any]:
    """The decision threshold later splits are scored at and the saved model predicts with: the one that maximised
    validation micro F1, unless the user fixed one (`--tune_decision_threshold false`)."""
    if config.tune_decision_threshold:
        return {"decision_threshold": float(validation_metrics["best_threshold"])}
    return {"decision_threshold": float(config.decision_threshold)}


def analyse(
    out: Path, split: str, scored: Scored, raw: datasets.Dataset | None, label_names: list[str] | None
) -> list[Written]:
    """Precision, recall and F1 of each label, as a table and a bar chart: which labels the model misses."""
    rows = scored.predictions
    names = list(label_names or sorted({n for r in rows for n in r["labels"] + r["predicted"]}))
    index = {name: i for i, name in enumerate(names)}
    truth = multi_hot([[index[n] for n in r["labels"]] for r in rows], len(names)).astype(np.int64)
    predicted = multi_hot([[index[n] for n in r["predicted"]] for r in rows], len(names)).astype(np.int64)
    per_label = multi_label_metrics(truth, predicted, names)["per_label"]
    data = write_json(out / f"{split}_per_label.json", per_label)
    picture = save_figure(_plot_per_label(per_label, split), out / f"{split}_per_label.png")
    caption = (
        f"Precision, recall and F1 per label on {split_words(split)} ({len(rows)} examples), at the decision "
        "threshold the split was scored with."
    )
    return [Written(picture, caption), Written(data, caption)]


def _plot_per_label(per_label: dict[str, dict[str, float]], split: str) -> Figure:
    names = list(per_label)
    figure = Figure(figsize=(max(4.0, 0.8 * len(names) + 2), 4), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(names))
    for offset, key in zip((-0.25, 0.0, 0.25), ("precision", "recall", "f1"), strict=True):
        axes.bar(positions + offset, [per_label[n][key] for n in names], width=0.25, label=key)
    axes.set_xticks(positions, [f"{n}\n({per_label[n]['number']})" for n in names], rotation=45, ha="right")
    axes.set_ylim(0, 1)
    axes.legend()
    axes.set_title(f"Per label, {split_words(split)} (support in brackets)")
    return figure


def predict_texts(
    model: str, files: list[tuple[str, Callable[[], str]]], settings: Settings
) -> Iterator[dict[str, Any]]:
    """The stock text-classification pipeline with every label's sigmoid score; the labels are those over the
    decision threshold the model was saved with (or `--decision_threshold`), in the model's label order."""
    if settings.long_documents == "windows":
        raise ValueError("--long_documents windows: expected truncate for a multi-label model")
    network = load_network(AutoModelForSequenceClassification, model, settings)
    names = [network.config.id2label[i] for i in range(network.config.num_labels)]
    classify = pipeline(
        "text-classification",
        model=network,
        tokenizer=AutoTokenizer.from_pretrained(model),
        device=settings.device,
        top_k=None,
        function_to_apply="sigmoid",
    )
    for batch in batches(files, settings.batch_size, "text"):
        texts = [read() for _, read in batch]
        results = classify(
            texts, batch_size=settings.batch_size, truncation=True, max_length=settings.max_seq_length
        )
        for (name, _), result in zip(batch, results, strict=True):
            scores = {r["label"]: float(r["score"]) for r in result}  # the pipeline sorts them by score
            yield {
                "file": name,
                "labels": [label for label in names if scores[label] > settings.decision_threshold],
                "scores": {label: round(scores[label], 6) for label in names},
            }


USAGE = """```python
from transformers import pipeline

classifier = pipeline("text-classification", model="{model}", top_k=None, function_to_apply="sigmoid")
scores = classifier(["I loved every minute of this film."])[0]
labels = [s["label"] for s in scores if s["score"] > {threshold}]  # the decision threshold tuned in training
```"""
"""The model card's usage snippet (formatted with the model id and the tuned threshold)."""

TASK = Task(
    name="multi-label-classification",
    pipeline_tag="text-classification",
    default_max_seq_length=256,
    group_column=None,
    label_column=None,  # a list of labels cannot stratify the held-out validation split
    label_names=label_names,
    # problem_type makes transformers train it with binary cross-entropy over the labels
    load_model=partial(load_labelled_model, AutoModelForSequenceClassification, problem_type=PROBLEM_TYPE),
    prepare=prepare,
    collator=lambda tokenizer, multiple: DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple),
    output_names=("logits",),
    score=score,
    calibrate=calibrate,
    tuning=Tuning("decision_threshold", "tune_decision_threshold", "the decision threshold"),
    analyse=analyse,
    best_model_metrics=(
        Metric("micro_f1"),
        Metric("macro_f1"),
        Metric("exact_match"),
        Metric("best_micro_f1"),
    ),
    card_metrics=(
        ("micro_f1", "f1", "Micro F1"),
        ("macro_f1", "f1", "Macro F1"),
        ("exact_match", "accuracy", "Exact match (subset accuracy)"),
    ),
    card_settings=("decision_threshold", "tune_decision_threshold"),
    usage=USAGE,
    card_note="A label is predicted when its sigmoid score is over the decision threshold.",
    architecture_suffix="ForSequenceClassification",
    keras_head="multi_label",
    problem_type=PROBLEM_TYPE,
    predict_input="a .txt file or a folder of them",
    predict_format="texts",
    predict=predict_texts,
    report_nouns=("text", "texts per label", "text"),
)
