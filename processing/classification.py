"""Sequence classification (a text or a sentence pair per example, one label): tokenize, pad per batch, score
accuracy and macro F1; optionally weight the loss against class imbalance.

A text longer than `max_seq_length` is truncated, or with `--long_documents windows` cut into overlapping windows
as question answering cuts contexts: every window is trained with its document's label, and evaluation and predict
aggregate the window logits per document (their mean, or their maximum per class), so every token is read and
every figure is per document."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.utils.class_weight import compute_class_weight
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    pipeline,
)

from .analysis import Written, save_figure, split_words
from .calibration import softmax, temperature_metrics
from .outputs import atomic_path, write_json
from .predicting import Settings, batches, load_network
from .tasks import Metric, Scored, Task, load_labelled_model, map_batches

CONFIDENCE_ABOUT = "the predicted label"
"""What the confidence of the calibration analysis is about."""

LONG_DOCUMENTS = ("truncate", "windows")
WINDOW_AGGREGATIONS = ("mean", "max")
DOCUMENT_COLUMN = "document"
"""The column of windowed features naming the raw example (its row in the split) each window was cut from."""


def tokenize_texts(
    examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_seq_length: int
) -> dict[str, list]:
    """Truncate but do not pad: the collator pads each batch to its longest member, not every text to the max.

    A sentence pair (a `text_pair` column, as NLI and paraphrase data have) is one input with its segment ids, the
    longer of the two cut first when the pair is too long.
    """
    encoding = tokenizer(
        examples["text"], examples.get("text_pair"), truncation=True, max_length=max_seq_length
    )
    encoding["labels"] = examples["label"]
    return encoding


def tokenize_windows(
    examples: dict[str, list],
    indices: list[int],
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int,
    doc_stride: int,
) -> dict[str, list]:
    """Every text as overlapping windows of at most `max_seq_length` tokens, `doc_stride` tokens shared by
    neighbours (the tokenizer's own overflow, as QA contexts are cut); each window carries its document's label and
    row, so evaluation can put the windows' logits back together per document."""
    encoding = tokenizer(
        examples["text"],
        truncation=True,
        max_length=max_seq_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
    )
    documents = encoding.pop("overflow_to_sample_mapping")
    encoding["labels"] = [examples["label"][document] for document in documents]
    encoding[DOCUMENT_COLUMN] = [indices[document] for document in documents]
    return encoding


def prepare(
    dataset: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, config: Any, training: bool
) -> datasets.Dataset:
    windows = getattr(config, "long_documents", "truncate") == "windows"
    fn_kwargs = {"tokenizer": tokenizer, "max_seq_length": config.max_seq_length}
    return map_batches(
        dataset,
        tokenize_windows if windows else tokenize_texts,
        with_indices=windows,
        fn_kwargs={**fn_kwargs, "doc_stride": config.doc_stride} if windows else fn_kwargs,
        remove_columns=dataset.column_names,
        desc="Cutting texts into windows" if windows else "Tokenizing",
        num_proc=getattr(config, "preprocessing_num_workers", None),
    )


def check_windows(raw: datasets.DatasetDict, tokenizer: PreTrainedTokenizerBase, config: Any) -> None:
    """`--long_documents windows` reads single texts, and each window must hold more tokens than the overlap:
    otherwise the tokenizer panics mid-`map`."""
    if config.long_documents != "windows":
        return
    if any("text_pair" in split.column_names for split in raw.values()):
        raise ValueError(
            "--long_documents windows: expected single texts, the data has sentence pairs (use truncate)"
        )
    check_stride(tokenizer, config.max_seq_length, config.doc_stride)


def check_stride(tokenizer: PreTrainedTokenizerBase, max_seq_length: int, doc_stride: int) -> None:
    room = min(max_seq_length, tokenizer.model_max_length) - tokenizer.num_special_tokens_to_add(pair=False)
    if doc_stride >= room:
        raise ValueError(
            f"--doc_stride {doc_stride}: expected less than the {room} text tokens a window of "
            f"--max_seq_length {max_seq_length} holds"
        )


def document_logits(
    logits: np.ndarray, documents: np.ndarray, num_documents: int, aggregation: str
) -> np.ndarray:
    """One row of logits per document from those of its windows, in document order whatever the windows' order:
    their mean, or with "max" each class's largest logit over the windows (a document is as positive as its most
    positive passage)."""
    counts = np.bincount(documents, minlength=num_documents)
    if counts.size > num_documents or (counts == 0).any():
        raise ValueError(
            f"window logits for {counts.size} documents, expected one or more for each of {num_documents}"
        )
    if aggregation == "max":
        aggregated = np.full((num_documents, logits.shape[1]), -np.inf)
        np.maximum.at(aggregated, documents, logits)
        return aggregated
    if aggregation != "mean":
        raise ValueError(
            f"--window_aggregation {aggregation!r}: expected one of {', '.join(WINDOW_AGGREGATIONS)}"
        )
    sums = np.zeros((num_documents, logits.shape[1]))
    np.add.at(sums, documents, logits)
    return sums / counts[:, None]


def balanced_class_weights(raw_train: datasets.Dataset, label_names: list[str]) -> list[float]:
    """scikit-learn's "balanced" weights from the train split, n_samples / (n_classes * count), in class order.

    A class with no training example (possible when `--label_names` names it) has no such weight: refused by name
    rather than given an infinite one.
    """
    labels = np.asarray(raw_train["label"])
    counts = np.bincount(labels, minlength=len(label_names))
    absent = [name for name, count in zip(label_names, counts, strict=True) if count == 0]
    if absent:
        raise ValueError(f"--class_weights balanced: class {absent[0]!r} has no example in the train split")
    return compute_class_weight("balanced", classes=np.arange(len(label_names)), y=labels).tolist()


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The loss BertForSequenceClassification takes for one label per example, each example weighted by its class
    (the weighted mean: sum of w * loss over sum of w, as `torch.nn.CrossEntropyLoss(weight=...)`).

    In float32 whatever the logits' precision, as autocast computes the model's own loss.
    """
    return torch.nn.functional.cross_entropy(
        logits.view(-1, logits.shape[-1]).float(), labels.view(-1), weight=weights.float()
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
    """Accuracy and macro F1 per example; windowed features (a `document` column) are first aggregated into one
    row of logits per document with `config.window_aggregation`."""
    logits = outputs["logits"]
    windows = None
    if features is not None and DOCUMENT_COLUMN in features.column_names:
        documents = np.asarray(features[DOCUMENT_COLUMN], dtype=np.int64)
        logits = document_logits(logits, documents, len(raw), config.window_aggregation)
        windows = np.bincount(documents, minlength=len(raw))
    temperature = getattr(config, "calibration_temperature", 1.0)
    probabilities = softmax(logits, temperature)
    predictions = probabilities.argmax(axis=1)
    labels = np.asarray(raw["label"])
    names = list(label_names or [])
    metrics = classification_metrics(labels, predictions, len(names))
    figures, confidence = temperature_metrics(logits, labels, temperature, CONFIDENCE_ABOUT)
    metrics.update(figures)
    if windows is not None:
        metrics["num_windows"] = int(windows.sum())
    ids = raw["id"] if "id" in raw.column_names else None
    rows = [
        {
            "index": index,
            **({"id": ids[index]} if ids is not None else {}),
            "label": names[label],
            "predicted": names[predicted],
            "score": round(float(probabilities[index, predicted]), 6),
            **({"windows": int(windows[index])} if windows is not None else {}),
        }
        for index, (label, predicted) in enumerate(zip(labels, predictions, strict=True))
    ]

    def write_predictions(output_dir: Path, split: str) -> list[Path]:
        path = output_dir / f"{split}_predictions.jsonl"
        with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        return [path]

    return Scored(
        metrics=metrics,
        predictions=rows,
        write_predictions=write_predictions,
        confidence=confidence,
        logits_and_labels=lambda: (logits, labels),
    )


def analyse(
    out: Path, split: str, scored: Scored, raw: datasets.Dataset | None, label_names: list[str] | None
) -> list[Written]:
    """The confusion matrix of the scored predictions, as a picture and a table."""
    rows = scored.predictions
    names = list(label_names or sorted({r["label"] for r in rows} | {r["predicted"] for r in rows}))
    index = {name: i for i, name in enumerate(names)}
    matrix = confusion_matrix(
        np.array([index[r["label"]] for r in rows], dtype=np.int64),
        np.array([index[r["predicted"]] for r in rows], dtype=np.int64),
        len(names),
    )
    data = write_json(out / f"{split}_confusion_matrix.json", {"labels": names, "matrix": matrix.tolist()})
    picture = save_figure(_plot_confusion(matrix, names, split), out / f"{split}_confusion_matrix.png")
    caption = (
        f"Confusion matrix on {split_words(split)} ({len(rows)} examples): rows are true labels, columns "
        "predicted ones."
    )
    return [Written(picture, caption), Written(data, caption)]


def _plot_confusion(matrix: np.ndarray, names: list[str], split: str) -> Figure:
    size = max(4.0, 0.6 * len(names) + 2)
    figure = Figure(figsize=(size, size), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, names, rotation=45, ha="right")
    axes.set_yticks(ticks, names)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > threshold else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=color)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"Confusion matrix, {split_words(split)}")
    return figure


def predict_texts(
    model: str, files: list[tuple[str, Callable[[], str]]], settings: Settings
) -> Iterator[dict[str, Any]]:
    """The stock text-classification pipeline, truncating at the training length; for a model trained with
    windows, evaluation's windows and aggregation instead. `files` pairs each text's name in the output with a
    reader of the text, so only a batch of texts is in memory at a time."""
    network = load_network(AutoModelForSequenceClassification, model, settings)
    tokenizer = AutoTokenizer.from_pretrained(model)
    if settings.long_documents == "windows":
        yield from _predict_windows(network, tokenizer, files, settings)
        return
    classify = pipeline("text-classification", model=network, tokenizer=tokenizer, device=settings.device)
    for batch in batches(files, settings.batch_size, "text"):
        texts = [read() for _, read in batch]
        results = classify(
            texts, batch_size=settings.batch_size, truncation=True, max_length=settings.max_seq_length
        )
        for (name, _), result in zip(batch, results, strict=True):
            yield {"file": name, "label": result["label"], "score": round(float(result["score"]), 6)}


def _predict_windows(
    network: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    files: list[tuple[str, Callable[[], str]]],
    settings: Settings,
) -> Iterator[dict[str, Any]]:
    """A batch of texts cut as `tokenize_windows` cuts them, at most `batch_size` windows per forward pass (one
    long text has many), their logits aggregated per text as evaluation aggregates them."""
    check_stride(tokenizer, settings.max_seq_length, settings.doc_stride)
    network = network.to(settings.device).eval()
    names = network.config.id2label
    for batch in batches(files, settings.batch_size, "text"):
        texts = [read() for _, read in batch]
        for (name, _), text in zip(batch, texts, strict=True):
            if not isinstance(text, str):
                raise ValueError(f"{name}: a sentence pair, which a model trained with windows cannot read")
        encoding = tokenizer(
            texts,
            truncation=True,
            max_length=settings.max_seq_length,
            stride=settings.doc_stride,
            return_overflowing_tokens=True,
        )
        documents = np.asarray(encoding.pop("overflow_to_sample_mapping"), dtype=np.int64)
        logits = document_logits(
            _window_logits(network, tokenizer, encoding, settings),
            documents,
            len(texts),
            settings.window_aggregation,
        )
        probabilities = softmax(logits)
        for (name, _), row in zip(batch, probabilities, strict=True):
            predicted = int(row.argmax())
            yield {"file": name, "label": names[predicted], "score": round(float(row[predicted]), 6)}


def _window_logits(
    network: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, encoding: Any, settings: Settings
) -> np.ndarray:
    inputs = [name for name in tokenizer.model_input_names if name in encoding]
    logits = []
    for first in range(0, len(encoding["input_ids"]), settings.batch_size):
        chunk = {name: encoding[name][first : first + settings.batch_size] for name in inputs}
        padded = tokenizer.pad(chunk, return_tensors="pt").to(settings.device)
        with torch.no_grad():
            logits.append(network(**padded).logits.double().cpu().numpy())
    return np.concatenate(logits)


USAGE = """```python
from transformers import pipeline

classifier = pipeline("text-classification", model="{model}")
classifier("I loved every minute of this film.")
```

With `long_documents` windows (see Training), evaluation cut each text into windows overlapping by `doc_stride`
tokens and scored it by its windows' logits (their mean, or each class's largest: `window_aggregation`). The pipeline
reads a text in one piece (pass `truncation=True` for texts longer than the model takes); rawtune's
`python -m commands.predict --model <this model's folder>` reads texts as evaluation did."""
"""The model card's usage snippet."""

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
    analyse=analyse,
    class_weights=balanced_class_weights,
    weighted_loss=weighted_cross_entropy,
    best_model_metrics=(Metric("accuracy"), Metric("f1")),
    scales_temperature=True,
    check=check_windows,
    card_metrics=(("accuracy", "accuracy", "Accuracy"), ("f1", "f1", "Macro F1")),
    card_settings=(
        "class_weights",
        "class_weights_per_label",
        "long_documents",
        "window_aggregation",
        "doc_stride",
    ),
    usage=USAGE,
    architecture_suffix="ForSequenceClassification",
    predict_input="a .txt file or a folder of them",
    predict_format="texts",
    predict=predict_texts,
    keras_head="sequence",
    report_nouns=("text", "texts per label", "text"),
    long_documents=True,
)
