"""Pictures and tables of where a trained model goes wrong, written beside its metrics in the output directory.

Everything is read back from the files `train.py` already writes for an evaluated split (`<split>_results.json`,
`<split>_predictions.jsonl`, or for QA `predictions.json`), so the analysis shows exactly the predictions that were
scored, and it can be rerun on an old output directory. `write_analysis` returns the files it wrote with a one-line
caption each (also saved as `<split>_analysis.json`), for the model card to embed.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from matplotlib.figure import Figure

from .classification import confusion_matrix
from .outputs import atomic_path, write_json, write_text
from .squad_metric import compute_exact, compute_f1, normalize_answer
from .token_classification import split_tag

TOP_CONFUSIONS = 10
EXAMPLE_WORDS = 3
CONTEXT_WORD_BUCKETS = (100, 200, 400)
"""Upper bounds (exclusive) of the context-length buckets in words; the last bucket is open. At the default 384
tokens, contexts past about 300 words need more than one window."""


@dataclass(frozen=True)
class Written:
    """A file `write_analysis` wrote, and the one-line caption a model card shows with it."""

    path: Path
    caption: str


def write_analysis(
    output_dir: str | Path,
    split: str,
    task_name: str,
    raw: datasets.Dataset | None = None,
    label_names: list[str] | None = None,
) -> list[Written]:
    """Write the analysis of one evaluated split, named as `train.py` names its files (`eval`, `test`).

    `task_name` is `Task.name`. `raw` (the raw split as scored) is needed for question answering only, for the gold
    answers and contexts; `label_names` (classification) orders the confusion matrix and keeps classes that were
    never predicted, defaulting to the labels seen.
    """
    out = Path(output_dir)
    if task_name == "text-classification":
        written = _classification(out, split, label_names)
    elif task_name == "token-classification":
        written = _token_classification(out, split)
    elif task_name == "question-answering":
        if raw is None:
            raise ValueError("question-answering analysis needs the raw split (gold answers and contexts)")
        written = _question_answering(out, split, raw)
    else:
        raise ValueError(f"no analysis for task {task_name!r}")
    index = out / f"{split}_analysis.json"
    write_json(index, [{"file": w.path.name, "caption": w.caption} for w in written])
    return written


def _split_words(split: str) -> str:
    """How captions name a split: `train.py` files the `--eval_split` under "eval", whatever its name."""
    return "the evaluation split" if split == "eval" else f"the {split} split"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _save(figure: Figure, path: Path) -> Path:
    """`Figure.savefig` renders PNG with the Agg canvas without pyplot, so it works headless and keeps no global
    figure state across a training run. The format is named because the temporary file's suffix is not `.png`."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    return path


def _classification(out: Path, split: str, label_names: list[str] | None) -> list[Written]:
    rows = _read_jsonl(out / f"{split}_predictions.jsonl")
    names = list(label_names or sorted({r["label"] for r in rows} | {r["predicted"] for r in rows}))
    index = {name: i for i, name in enumerate(names)}
    matrix = confusion_matrix(
        np.array([index[r["label"]] for r in rows], dtype=np.int64),
        np.array([index[r["predicted"]] for r in rows], dtype=np.int64),
        len(names),
    )
    data = write_json(out / f"{split}_confusion_matrix.json", {"labels": names, "matrix": matrix.tolist()})
    picture = _save(_plot_confusion(matrix, names, split), out / f"{split}_confusion_matrix.png")
    caption = (
        f"Confusion matrix on {_split_words(split)} ({len(rows)} examples): rows are true labels, columns "
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
    axes.set_title(f"Confusion matrix, {_split_words(split)}")
    return figure


def _token_classification(out: Path, split: str) -> list[Written]:
    per_type = json.loads((out / f"{split}_results.json").read_text(encoding="utf-8"))["per_type"]
    chart = _save(_plot_per_type(per_type, split), out / f"{split}_per_type.png")
    confusions = entity_confusions(_read_jsonl(out / f"{split}_predictions.jsonl"))
    table = write_json(out / f"{split}_entity_confusions.json", confusions)
    markdown = write_text(out / f"{split}_entity_confusions.md", confusions_markdown(confusions))
    caption = (
        f"Most frequent word-level confusions between entity types on {_split_words(split)} (O: no entity)."
    )
    return [
        Written(
            chart,
            f"Entity-level precision, recall and F1 per type on {_split_words(split)} (n: gold entities).",
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
    axes.set_title(f"Per entity type, {_split_words(split)}")
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


def _question_answering(out: Path, split: str, raw: datasets.Dataset) -> list[Written]:
    prefix = "" if split == "eval" else f"{split}_"
    predictions = json.loads((out / f"{prefix}predictions.json").read_text(encoding="utf-8"))
    breakdown = qa_breakdown(raw, predictions)
    data = write_json(out / f"{split}_qa_breakdown.json", breakdown)
    chart = _save(_plot_qa(breakdown, split), out / f"{split}_qa_breakdown.png")
    caption = (
        f"Exact match and F1 on {_split_words(split)} by answerability and by context length in words "
        "(n: questions)."
    )
    return [Written(chart, caption), Written(data, caption)]


def _question_scores(golds: list[str], prediction: str) -> tuple[int, float]:
    """Exact and F1 against the best gold answer; golds that normalise to nothing count as "", as in the official
    script, so an unanswerable question scores 1 exactly when the prediction is empty."""
    golds = [g for g in golds if normalize_answer(g)] or [""]
    return max(compute_exact(g, prediction) for g in golds), max(compute_f1(g, prediction) for g in golds)


def context_buckets() -> list[str]:
    """The bucket names, shortest contexts first: "0-99 words", ..., "400+ words"."""
    lowers = (0, *CONTEXT_WORD_BUCKETS)
    closed = [
        f"{lower}-{upper - 1} words" for lower, upper in zip(lowers, CONTEXT_WORD_BUCKETS, strict=False)
    ]
    return [*closed, f"{lowers[-1]}+ words"]


def _context_bucket(context: str) -> str:
    return context_buckets()[bisect.bisect_right(CONTEXT_WORD_BUCKETS, len(context.split()))]


def qa_breakdown(
    raw: datasets.Dataset, predictions: dict[str, str]
) -> dict[str, dict[str, dict[str, float]]]:
    """Exact match and F1 (percent, as the official script reports them) and question counts per group."""
    groups: dict[str, dict[str, list[tuple[int, float]]]] = {
        "answerability": defaultdict(list),
        "context_length": defaultdict(list),
    }
    for example in raw.select_columns(["id", "context", "answers"]):
        golds = example["answers"]["text"]
        scores = _question_scores(golds, predictions[example["id"]])
        groups["answerability"]["answerable" if golds else "unanswerable"].append(scores)
        groups["context_length"][_context_bucket(example["context"])].append(scores)
    return {
        "answerability": _summaries(groups["answerability"], ["answerable", "unanswerable"]),
        "context_length": _summaries(groups["context_length"], context_buckets()),
    }


def _summaries(groups: dict[str, list[tuple[int, float]]], order: list[str]) -> dict[str, dict[str, float]]:
    return {
        name: {
            "questions": len(groups[name]),
            "exact": 100.0 * sum(e for e, _ in groups[name]) / len(groups[name]),
            "f1": 100.0 * sum(f for _, f in groups[name]) / len(groups[name]),
        }
        for name in order
        if groups.get(name)
    }


def _plot_qa(breakdown: dict[str, dict[str, dict[str, float]]], split: str) -> Figure:
    figure = Figure(figsize=(10, 4), layout="constrained")
    all_axes = figure.subplots(1, 2, sharey=True)
    for axes, (group, groups) in zip(all_axes, breakdown.items(), strict=True):
        names = list(groups)
        positions = np.arange(len(names))
        for i, metric in enumerate(("exact", "f1")):
            bars = axes.bar(
                positions + (i - 0.5) * 0.4, [groups[n][metric] for n in names], 0.4, label=metric
            )
            axes.bar_label(bars, fmt="%.0f", fontsize=8)
        axes.set_xticks(positions, [f"{n}\n(n={groups[n]['questions']})" for n in names])
        axes.set_title(f"By {group.replace('_', ' ')}")
    all_axes[0].set_ylim(0, 105)
    all_axes[0].set_ylabel("percent")
    all_axes[-1].legend()
    figure.suptitle(f"Question answering, {_split_words(split)}")
    return figure
