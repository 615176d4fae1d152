"""Token classification (CoNLL files): word tags aligned to sub-tokens, scored per word at the entity level.

Scoring runs over every word of every document: a word whose sub-tokens were cut off by truncation has no
prediction and counts as `O`, so a long document cannot inflate the score by hiding its tail.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from matplotlib.figure import Figure
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.metrics.v1 import _precision_recall_fscore_support
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .analysis import Written, save_figure, split_words
from .calibration import temperature_metrics
from .outputs import atomic_path, write_json, write_text
from .predicting import Settings, batches, load_network
from .tasks import Metric, Scored, Task, load_labelled_model, map_batches

TOP_CONFUSIONS = 10
EXAMPLE_WORDS = 3
CONFIDENCE_ABOUT = "each word's predicted tag"
"""What the confidence of the calibration analysis is about: one decision per word the model saw."""
ROWS_PER_READ = 1000
"""Documents read from a split's Arrow table at a time while scoring and writing predictions."""
IGNORE_INDEX = -100
"""Label id that PyTorch's cross-entropy (and the Keras loss with `ignore_class`) skips."""


def split_tag(tag: str) -> tuple[str | None, str]:
    """`B-PER` -> ("B", "PER"), `I-PER` -> ("I", "PER"), any other tag (`O`, IO-style `PER`) -> (None, tag).

    The one reading of BIO tags for training, analysis, predict and the data report (seqeval parses its own).
    """
    return (tag[0], tag[2:]) if tag[:2] in ("B-", "I-") else (None, tag)


def continuation_label_ids(label_names: list[str]) -> list[int]:
    """For each label id, the id a word's later sub-tokens get when every sub-token is labelled: B-X becomes I-X."""
    index = {name: i for i, name in enumerate(label_names)}
    tags = [split_tag(name) for name in label_names]
    return [index.get(f"I-{kind}", i) if prefix == "B" else i for i, (prefix, kind) in enumerate(tags)]


def tokenize_and_align_labels(
    examples: dict[str, list],
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int,
    continuation_ids: list[int] | None = None,
) -> dict[str, list]:
    """Align word tags with sub-tokens through `word_ids()`, which stays correct when truncation cuts a document.

    The first sub-token of a word carries its tag; later sub-tokens get -100, or, with `continuation_ids`, the
    word's tag mapped through it. Special tokens always get -100. `word_ids` is kept (-1 for special tokens) so
    predictions can be mapped back to words.
    """
    encoding = tokenizer(
        examples["tokens"], is_split_into_words=True, truncation=True, max_length=max_seq_length
    )
    all_labels, all_word_ids = [], []
    for row, tags in enumerate(examples["ner_tags"]):
        labels, word_ids, previous = [], [], None
        for word in encoding.word_ids(row):
            if word is None:
                labels.append(IGNORE_INDEX)
            elif word != previous:
                labels.append(tags[word])
            else:
                labels.append(IGNORE_INDEX if continuation_ids is None else continuation_ids[tags[word]])
            word_ids.append(-1 if word is None else word)
            previous = word
        all_labels.append(labels)
        all_word_ids.append(word_ids)
    encoding["labels"] = all_labels
    encoding["word_ids"] = all_word_ids
    return encoding


def prepare(
    dataset: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, config: Any, training: bool
) -> datasets.Dataset:
    label_names = dataset.features["ner_tags"].feature.names
    continuation = continuation_label_ids(label_names) if getattr(config, "label_all_tokens", False) else None
    features = map_batches(
        dataset,
        tokenize_and_align_labels,
        fn_kwargs={
            "tokenizer": tokenizer,
            "max_seq_length": config.max_seq_length,
            "continuation_ids": continuation,
        },
        remove_columns=dataset.column_names,
        desc="Tokenizing and aligning labels",
        num_proc=getattr(config, "preprocessing_num_workers", None),
    )
    return features.remove_columns("word_ids") if training else features


def first_sub_tokens(word_ids: list[int]) -> tuple[list[int], list[int]]:
    """The positions a feature's words are predicted from (each word's first sub-token) and those words' ids, in
    order; special tokens (-1) and truncated words have none."""
    positions, words = [], []
    previous = -1
    for position, word in enumerate(word_ids):
        if word >= 0 and word != previous:
            positions.append(position)
            words.append(word)
        previous = word
    return positions, words


def word_predictions(word_ids: list[int], token_predictions: np.ndarray, num_words: int) -> list[int]:
    """One prediction per word, read from its first sub-token; words never seen (truncated) get label 0 (`O`)."""
    predicted = [0] * num_words
    positions, words = first_sub_tokens(word_ids)
    for position, word in zip(positions, words, strict=True):
        predicted[word] = int(token_predictions[position])
    return predicted


def reduce_outputs(
    outputs: dict[str, np.ndarray], features: datasets.Dataset, config: Any
) -> dict[str, np.ndarray]:
    """One batch's token logits reduced to what scoring reads: per feature, the logits of each word it predicts
    (its first sub-token's, all labels: the ECE and `--calibrate temperature` need the whole row, the argmax alone
    would not do) and those words' ids, as arrays of one entry per feature. Other sub-tokens, special tokens and
    padding are dropped, so a split costs its words' logits, not (windows x longest window x labels)."""
    logits = outputs["logits"]
    word_logits = np.empty(len(features), dtype=object)
    words = np.empty(len(features), dtype=object)
    for row, ids in enumerate(features["word_ids"]):
        positions, scored = first_sub_tokens(ids)
        word_logits[row] = logits[row, np.asarray(positions, dtype=np.int64)]  # a copy: the batch is let go
        words[row] = np.asarray(scored, dtype=np.int32)
    return {"word_logits": word_logits, "words": words}


@dataclass
class EntityCounts:
    """Gold, predicted and correct entities per type, counted one document at a time, so scoring a split holds a
    few counters instead of every document's tag strings.

    The figures are seqeval's own (conlleval rules, as `classification_report` gives them): its entity reading
    (`get_entities`) per document, and its arithmetic (`_precision_recall_fscore_support`, the function behind
    `classification_report`, which takes the counting step as an argument) on the summed counts. Counting per
    document is exact: seqeval reads a list of documents as one sequence with an `O` between documents, so no
    entity crosses a document boundary.
    """

    gold: Counter[str] = field(default_factory=Counter)
    predicted: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)

    def add(self, true_tags: list[str], predicted_tags: list[str]) -> None:
        gold, found = set(get_entities(true_tags)), set(get_entities(predicted_tags))
        self.gold.update(kind for kind, _, _ in gold)
        self.predicted.update(kind for kind, _, _ in found)
        self.correct.update(kind for kind, _, _ in gold & found)

    def metrics(self) -> dict[str, Any]:
        """Entity-level micro precision/recall/F1 overall and per entity type (types sorted, as seqeval does)."""
        types = sorted(set(self.gold) | set(self.predicted))

        def counts(*_: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return tuple(np.array([c[t] for t in types], dtype=np.int32) for c in self._sums())

        def figures(average: str | None) -> tuple:
            return _precision_recall_fscore_support(
                [[]], [[]], average=average, zero_division=0, extract_tp_actual_correct=counts
            )

        precision, recall, f1, number = figures(None)
        overall = figures("micro")
        per_type = {
            kind: {"precision": float(p), "recall": float(r), "f1": float(f), "number": int(n)}
            for kind, p, r, f, n in zip(types, precision, recall, f1, number, strict=True)
        }
        return {
            "precision": float(overall[0]),
            "recall": float(overall[1]),
            "f1": float(overall[2]),
            "per_type": per_type,
        }

    def _sums(self) -> tuple[Counter[str], Counter[str], Counter[str]]:
        return self.predicted, self.correct, self.gold


def entity_metrics(true_tags: list[list[str]], predicted_tags: list[list[str]]) -> dict[str, Any]:
    """Entity-level micro precision/recall/F1 (seqeval, conlleval rules) overall and per entity type."""
    counts = EntityCounts()
    for gold, predicted in zip(true_tags, predicted_tags, strict=True):
        counts.add(gold, predicted)
    return counts.metrics()


@dataclass(frozen=True)
class TaggedDocuments(Sequence):
    """The predictions file's rows (id, words, gold and predicted tags), made from the split's Arrow table and the
    predicted label ids each time they are read, so a scored split keeps one label id per word in memory rather
    than every word and tag as Python strings."""

    raw: datasets.Dataset
    predicted: np.ndarray
    """Every document's predicted label ids, one after another (a document has one per word)."""
    ends: np.ndarray
    """Where each document's labels end in `predicted`."""
    names: list[str]

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        position = range(len(self))[index]  # negative indices count from the end; others raise IndexError
        return next(self._rows(position, position + 1))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._rows(0, len(self))

    def _rows(self, start: int, stop: int) -> Iterator[dict[str, Any]]:
        for first in range(start, stop, ROWS_PER_READ):
            batch = self.raw[first : min(first + ROWS_PER_READ, stop)]
            for index, (example_id, tokens, tags) in enumerate(
                zip(batch["id"], batch["tokens"], batch["ner_tags"], strict=True), first
            ):
                predicted = self.predicted[self.ends[index] - len(tokens) : self.ends[index]].tolist()
                yield {
                    "id": example_id,
                    "tokens": tokens,
                    "tags": [self.names[t] for t in tags],
                    "predicted": [self.names[p] for p in predicted],
                }


def score(
    raw: datasets.Dataset,
    features: datasets.Dataset,
    outputs: dict[str, np.ndarray],
    label_names: list[str] | None,
    config: Any,
) -> Scored:
    """Entity-level figures from `reduce_outputs`' word logits; the ECE over every word the model saw.

    The split is read from its Arrow table a slice at a time and counted as it goes (`EntityCounts`), and the word
    logits are read where `reduce_outputs` left them (`WordLogits`), so what scoring adds to them is a predicted
    and a gold label per word, not the split's words and tags as Python objects nor a second copy of the logits.
    """
    names = list(label_names or [])
    temperature = getattr(config, "calibration_temperature", 1.0)
    counts = EntityCounts()
    predicted_ids, gold_ids, lengths = (
        [np.zeros(0, np.int32)],
        [np.zeros(0, np.int64)],
        [np.zeros(0, np.int64)],
    )
    gold_tags = raw.select_columns(["ner_tags"])
    for start in range(0, len(raw), ROWS_PER_READ):
        predicted_here, gold_here = [np.zeros(0, np.int32)], [np.zeros(0, np.int64)]
        for row, tags in enumerate(gold_tags[start : start + ROWS_PER_READ]["ner_tags"], start):
            predicted = np.zeros(len(tags), dtype=np.int32)  # a word never seen (truncated) counts as `O`
            words = outputs["words"][row]
            predicted[words] = outputs["word_logits"][row].argmax(axis=-1)
            gold_here.append(np.asarray(tags, dtype=np.int64)[words])
            counts.add([names[t] for t in tags], [names[p] for p in predicted.tolist()])
            predicted_here.append(predicted)
        lengths.append(np.array([len(labels) for labels in predicted_here[1:]], dtype=np.int64))
        predicted_ids.append(np.concatenate(predicted_here))  # one array per slice, not per document
        gold_ids.append(np.concatenate(gold_here))
    metrics = counts.metrics()
    word_logits = WordLogits(outputs["word_logits"], len(names))
    word_labels = np.concatenate(gold_ids)
    figures, confidence = temperature_metrics(word_logits, word_labels, temperature, CONFIDENCE_ABOUT)
    metrics.update(figures)
    ends = np.cumsum(np.concatenate(lengths))
    rows = TaggedDocuments(
        raw.select_columns(["id", "tokens", "ner_tags"]), np.concatenate(predicted_ids), ends, names
    )

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
        logits_and_labels=lambda: (word_logits.whole(), word_labels),
    )


@dataclass(frozen=True)
class WordLogits:
    """Every scored word's logits, in document order, as `reduce_outputs` keeps them (one array per document):
    iterated as blocks of `ROWS_PER_READ` documents for the ECE, made into one array only when asked (what
    `--calibrate temperature` fits on)."""

    per_document: np.ndarray
    num_labels: int

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, len(self.per_document), ROWS_PER_READ):
            yield self._joined(self.per_document[start : start + ROWS_PER_READ])

    def whole(self) -> np.ndarray:
        """Every word's logits as one array: a copy, made only for what needs them together (fitting a temperature)."""
        return self._joined(self.per_document)

    def _joined(self, documents: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros((0, self.num_labels), np.float32), *documents])


def analyse(
    out: Path, split: str, scored: Scored, raw: datasets.Dataset | None, label_names: list[str] | None
) -> list[Written]:
    """The per-type figures as a chart, and the words whose entity type was confused, as tables."""
    per_type = scored.metrics["per_type"]
    chart = save_figure(_plot_per_type(per_type, split), out / f"{split}_per_type.png")
    confusions = entity_confusions(scored.predictions)
    table = write_json(out / f"{split}_entity_confusions.json", confusions)
    markdown = write_text(out / f"{split}_entity_confusions.md", confusions_markdown(confusions))
    caption = (
        f"Most frequent word-level confusions between entity types on {split_words(split)} (O: no entity)."
    )
    return [
        Written(
            chart,
            f"Entity-level precision, recall and F1 per type on {split_words(split)} (n: gold entities).",
        ),
        Written(markdown, caption),
        Written(table, caption),
    ]


def _plot_per_type(per_type: dict[str, dict[str, float]], split: str) -> Figure:
    types = sorted(per_type)
    figure = Figure(figsize=(max(6.0, 1.3 * len(types) + 2), 4), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(types))
    for i, metric in enumerate(("precision", "recall", "f1")):
        bars = axes.bar(positions + (i - 1) * 0.27, [per_type[t][metric] for t in types], 0.27, label=metric)
        axes.bar_label(bars, fmt="%.2f", fontsize=7)
    axes.set_xticks(positions, [f"{t}\n(n={per_type[t]['number']})" for t in types])
    axes.set_ylim(0, 1.05)
    axes.set_title(f"Per entity type, {split_words(split)}")
    axes.legend()
    return figure


def _entity_type(tag: str) -> str:
    return split_tag(tag)[1]


def entity_confusions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Words whose predicted entity type differs from the gold one, counted per (gold, predicted) pair, most
    frequent first; B-/I- boundaries are ignored, `O` stands for "no entity". Each pair keeps a few of its words
    (first seen) to show what was confused."""
    pairs: Counter[tuple[str, str]] = Counter()
    words: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        for word, gold, predicted in zip(row["tokens"], row["tags"], row["predicted"], strict=True):
            pair = (_entity_type(gold), _entity_type(predicted))
            if pair[0] == pair[1]:
                continue
            pairs[pair] += 1
            if len(words[pair]) < EXAMPLE_WORDS and word not in words[pair]:
                words[pair].append(word)
    return [
        {"gold": gold, "predicted": predicted, "words": count, "examples": words[(gold, predicted)]}
        for (gold, predicted), count in pairs.most_common(TOP_CONFUSIONS)
    ]


def confusions_markdown(confusions: list[dict[str, Any]]) -> str:
    lines = ["| gold | predicted | words | examples |", "|---|---|---:|---|"]
    for c in confusions:
        examples = ", ".join(w.replace("|", "\\|") for w in c["examples"])
        lines.append(f"| {c['gold']} | {c['predicted']} | {c['words']} | {examples} |")
    return "\n".join(lines) + "\n"


def word_windows(sub_tokens: list[int], budget: int) -> list[range]:
    """Word ranges whose sub-tokens fit in `budget`, each starting halfway through the one before.

    Every word gets its tag from the window where it is most central (farthest from both ends, the earlier window
    on a tie; see `assign_windows`), so a word is tagged with context on both sides wherever the document allows.
    A window that would end where the one before ends adds nothing and is skipped. A single word longer than the
    budget gets a window of its own (truncated: its first sub-token still counts).
    """
    windows: list[range] = []
    start = 0
    while True:
        end = _fitting_end(sub_tokens, start, budget)
        if not windows or end > windows[-1].stop:
            windows.append(range(start, end))
        if end >= len(sub_tokens):
            return windows
        start = max(start + 1, (start + end) // 2)


def _fitting_end(sub_tokens: list[int], start: int, budget: int) -> int:
    """The end of the longest run of words from `start` within `budget` (at least one word)."""
    end, used = start + 1, sub_tokens[start]
    while end < len(sub_tokens) and used + sub_tokens[end] <= budget:
        used += sub_tokens[end]
        end += 1
    return end


def assign_windows(windows: list[range], num_words: int) -> list[int]:
    """For each word, the index of the window where it is most central."""
    best = [-1] * num_words
    centrality = [-1] * num_words
    for index, window in enumerate(windows):
        for word in window:
            here = min(word - window.start, window.stop - 1 - word)
            if here > centrality[word]:
                best[word], centrality[word] = index, here
    return best


def entity_spans(words: list[str], tags: list[str]) -> list[dict[str, Any]]:
    """Entities as word spans (end exclusive): a span continues while the tag is not a B- tag and keeps its type,
    so I-X after O or after another type starts an entity (conlleval's rule) and IO-style tags work too."""
    spans: list[dict[str, Any]] = []
    for index, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        if kind == "O":
            continue
        previous = spans[-1] if spans else None
        if previous and previous["end"] == index and previous["type"] == kind and prefix != "B":
            previous["end"] = index + 1
        else:
            spans.append({"type": kind, "start": index, "end": index + 1})
    for span in spans:
        span["text"] = " ".join(words[span["start"] : span["end"]])
    return spans


def predict_words(
    model: str, documents: list[tuple[str, int, list[str]]], settings: Settings
) -> Iterator[dict[str, Any]]:
    tokenizer = AutoTokenizer.from_pretrained(model)
    network = load_network(AutoModelForTokenClassification, model, settings)
    network = network.to(settings.device).eval()
    budget = settings.max_seq_length - tokenizer.num_special_tokens_to_add(pair=False)
    windows = [word_windows(_sub_token_counts(tokenizer, words), budget) for _, _, words in documents]
    jobs = [(doc, window) for doc, doc_windows in enumerate(windows) for window in doc_windows]
    window_labels: list[list[list[int]]] = [[] for _ in documents]  # per document, per window, per word
    for batch in batches(jobs, settings.batch_size, "window"):
        words = [[documents[doc][2][w] for w in window] for doc, window in batch]
        for (doc, _), labels in zip(batch, _tag_windows(network, tokenizer, words, settings), strict=True):
            window_labels[doc].append(labels)
    names = network.config.id2label
    for doc, (file, index, words) in enumerate(documents):
        chosen = assign_windows(windows[doc], len(words))
        tags = [names[window_labels[doc][w][word - windows[doc][w].start]] for word, w in enumerate(chosen)]
        yield {
            "file": file,
            "document": index,
            "tokens": words,
            "tags": tags,
            "entities": entity_spans(words, tags),
        }


def _sub_token_counts(tokenizer: PreTrainedTokenizerBase, words: list[str]) -> list[int]:
    word_ids = tokenizer(words, is_split_into_words=True, add_special_tokens=False).word_ids()
    counts = [0] * len(words)
    for word in word_ids:
        counts[word] += 1
    return counts


def _tag_windows(
    network: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, windows: list[list[str]], settings: Settings
) -> list[list[int]]:
    """Label ids per word of each window, read from the word's first sub-token, as evaluation reads them."""
    encoding = tokenizer(
        windows,
        is_split_into_words=True,
        truncation=True,
        max_length=settings.max_seq_length,
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        logits = network(**encoding.to(settings.device)).logits
    token_labels = logits.argmax(dim=-1).cpu().numpy()
    return [
        word_predictions(
            [-1 if w is None else w for w in encoding.word_ids(row)], token_labels[row], len(words)
        )
        for row, words in enumerate(windows)
    ]


USAGE = """```python
from transformers import pipeline

tagger = pipeline("token-classification", model="{model}", aggregation_strategy="simple")
tagger("Sam Okafor just landed in Seattle")
```"""
"""The model card's usage snippet."""

TASK = Task(
    name="token-classification",
    pipeline_tag="token-classification",
    default_max_seq_length=128,
    group_column=None,
    label_column=None,
    label_names=lambda features: list(features["ner_tags"].feature.names),
    load_model=partial(load_labelled_model, AutoModelForTokenClassification),
    prepare=prepare,
    collator=lambda tokenizer, multiple: DataCollatorForTokenClassification(
        tokenizer, pad_to_multiple_of=multiple
    ),
    output_names=("logits",),
    reduce_outputs=reduce_outputs,
    score=score,
    analyse=analyse,
    best_model_metrics=(Metric("f1"), Metric("precision"), Metric("recall")),
    card_metrics=(
        ("precision", "precision", "Entity precision (micro, seqeval)"),
        ("recall", "recall", "Entity recall (micro, seqeval)"),
        ("f1", "f1", "Entity F1 (micro, seqeval)"),
    ),
    card_settings=("label_all_tokens",),
    scales_temperature=True,
    usage=USAGE,
    architecture_suffix="ForTokenClassification",
    predict_input=(
        "CoNLL text: one token per line, optionally followed by its tag, documents separated by blank lines"
    ),
    predict_format="conll",
    predict=predict_words,
    keras_head="token",
    report_nouns=("document", "entities per type", "document"),
)
