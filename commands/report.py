"""`python -m commands.report NAME --data_dir DIR --out report/`: look at a data set before training on it.

NAME is a task (`text-classification`, `imdb`, ...) or a format that holds one task's data (`conll`,
`label_studio`); the data flags are `train.py`'s (`--data_format`, `--train_file`, the column and label flags), so
the report reads the data exactly as training will. With `--long_documents windows` a classification report also
counts the windows each text is cut into, as `train.py --long_documents windows` cuts them.

One function, `compute_report`, counts everything (examples per label, token lengths under the model's tokenizer,
SQuAD windows or text windows, what the loader repaired or skipped); the printed summary, the PNG plots and `summary.json` are all
read from its result, so they cannot disagree. Input the loaders reject is not counted here: it stops the report
with the same `DataFormatError` (file, line and what was expected) as training would.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from transformers import AutoTokenizer, HfArgumentParser, PreTrainedTokenizerBase

from loaders import LOADERS, DataFormatError, load_with_repairs
from loaders.repairs import REPAIRS
from processing import classification
from processing.models import DEFAULT_MODEL, resolve_model
from processing.question_answering import DOC_STRIDE, prepare_eval_features
from processing.registry import TASKS
from processing.token_classification import split_tag
from runner import formats
from runner.config import ColumnFlags, TrainingConfig

TOKENIZE_CHUNK = 1000
"""Rows tokenized per call: bounds memory on 25,000 IMDb reviews without a per-row call's overhead."""


@dataclass(frozen=True)
class Nouns:
    """What a format's numbers are about, for the summary and the plots' labels."""

    example: str
    counted: str
    """What the counts count: texts per label, entities per type, questions answerable or not."""
    length_unit: str


@dataclass
class SplitStats:
    """One split's numbers. `lengths` are tokens per text, per document, or per distinct SQuAD context (alone,
    with the special tokens); `windows` maps a window count to how many questions `prepare_eval_features` cuts
    into that many windows (SQuAD), or texts `tokenize_windows` cuts into that many (classification with
    `--long_documents windows`); `loader` counts what the loader repaired or skipped, keyed as in
    `loaders.repairs.REPAIRS`."""

    split: str
    examples: int
    counts: dict[str, int]
    lengths: list[int]
    longer_than_max: int
    length_quantiles: dict[str, int]
    windows: dict[int, int] | None
    loader: dict[str, int]


@dataclass
class DataReport:
    """Everything the summary, the plots and `summary.json` show; `model` names the tokenizer that counted."""

    name: str
    data_dir: str
    model: str
    max_seq_length: int
    doc_stride: int | None
    nouns: Nouns
    splits: list[SplitStats]


def compute_report(
    name: str,
    data_dir: str | Path | None = None,
    model: str = DEFAULT_MODEL,
    max_seq_length: int | None = None,
    doc_stride: int = DOC_STRIDE,
    cache_dir: str | None = None,
    long_documents: str = "truncate",
    **data_flags: Any,
) -> DataReport:
    """Load the data as training does and count everything the summary and the plots show.

    `max_seq_length` defaults to the task's training default (256 for texts, 128 for CoNLL, 384 for SQuAD).
    `data_flags` are `train.py`'s data, column and label flags (`train_file=...`, `text_column=...`).
    `long_documents="windows"` counts the windows of single-label classification texts, as training cuts them.
    """
    config = _data_config(name, data_dir, data_flags)
    choice = TASKS[config.task]
    task = choice.task
    max_seq_length = max_seq_length or task.default_max_seq_length
    data_format = formats.data_format(config, choice.loader)
    files = {"train": config.train_file, "validation": config.validation_file, "test": config.test_file}
    dataset, fixes = load_with_repairs(
        data_format,
        data_dir=config.data_dir,
        data_files={split: path for split, path in files.items() if path} or None,
        cache_dir=cache_dir,
        **formats.loader_options(config, data_format, task),
    )
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))
    windows = _text_windows(config, task, dataset, long_documents)
    stride = doc_stride if task.cuts_windows or windows else None
    if windows:
        classification.check_stride(tokenizer, max_seq_length, doc_stride)
    splits = [
        _split_stats(split, rows, tokenizer, max_seq_length, stride, fixes.get(split, {}))
        for split, rows in dataset.items()
    ]
    return DataReport(
        name=name,
        data_dir=str(data_dir or config.train_file),
        model=model,
        max_seq_length=max_seq_length,
        doc_stride=stride,
        nouns=Nouns(*task.report_nouns),
        splits=splits,
    )


def _text_windows(
    config: TrainingConfig, task: Any, dataset: datasets.DatasetDict, long_documents: str
) -> bool:
    """Whether to count text windows: asked for, and refused in training's words where training refuses them."""
    if long_documents not in classification.LONG_DOCUMENTS:
        raise ValueError(f"--long_documents {long_documents!r}: expected truncate or windows")
    if long_documents == "truncate":
        return False
    if not task.long_documents:
        raise ValueError(
            f"--long_documents 'windows': expected truncate for --task {config.task} (single-label only)"
        )
    if any("text_pair" in rows.column_names for rows in dataset.values()):
        raise ValueError(
            "--long_documents windows: expected single texts, the data has sentence pairs (use truncate)"
        )
    return True


def _data_config(name: str, data_dir: str | Path | None, data_flags: dict[str, Any]) -> TrainingConfig:
    """`train.py`'s settings for reading the data: NAME as a task, or as a format holding one task's data."""
    if name not in TASKS:
        schema = getattr(LOADERS[name][0], "SCHEMA", None) if name in LOADERS else None
        task_name = next((task for task, choice in TASKS.items() if choice.task.name == schema), None)
        if task_name is None:
            raise ValueError(
                f"{name}: expected a task ({', '.join(TASKS)}) or a format that holds one task's data"
            )
        data_flags = {**data_flags, "data_format": data_flags.get("data_format") or name}
        name = task_name
    return TrainingConfig(task=name, data_dir=None if data_dir is None else str(data_dir), **data_flags)


def _split_stats(
    split: str,
    rows: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int,
    doc_stride: int | None,
    fixes: dict[str, int],
) -> SplitStats:
    lengths = token_lengths(rows, tokenizer)
    return SplitStats(
        split=split,
        examples=len(rows),
        counts=label_counts(rows),
        lengths=lengths,
        longer_than_max=sum(length > max_seq_length for length in lengths),
        length_quantiles=_quantiles(lengths),
        windows=None if doc_stride is None else window_counts(rows, tokenizer, max_seq_length, doc_stride),
        loader=fixes,
    )


def label_counts(rows: datasets.Dataset) -> dict[str, int]:
    """Examples per class (`unlabelled` for label -1), examples per label of a multi-label set (an example counts
    once for each of its labels), entities per type (counted by their B- tag), or answerable/unanswerable
    questions."""
    features = rows.features
    if "labels" in features:
        names = features["labels"].feature.names
        counts = Counter(i for row in rows["labels"] for i in row)
        return {name: counts[i] for i, name in enumerate(names)}
    if "label" in features:
        names = features["label"].names
        counts = Counter(rows["label"])
        return {names[i] if i >= 0 else "unlabelled": n for i, n in sorted(counts.items())}
    if "ner_tags" in features:
        names = features["ner_tags"].feature.names
        tags = [split_tag(name) for name in names]
        types = sorted({kind for prefix, kind in tags if prefix is not None})
        counts = Counter(tags[t][1] for row in rows["ner_tags"] for t in row if tags[t][0] == "B")
        return {entity_type: counts[entity_type] for entity_type in types}
    unanswerable = sum(not answers["text"] for answers in rows["answers"])
    return {"answerable": len(rows) - unanswerable, "unanswerable": unanswerable}


def token_lengths(rows: datasets.Dataset, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Tokens with special tokens, as the model would get them untruncated (a sentence pair as one input); each
    SQuAD context counts once, since its questions share it."""
    if "text_pair" in rows.column_names:
        return [
            len(ids)
            for texts, pairs in zip(_chunks(rows["text"]), _chunks(rows["text_pair"]), strict=True)
            for ids in tokenizer(texts, pairs, verbose=False)["input_ids"]
        ]
    if "text" in rows.column_names:
        texts, split_into_words = rows["text"], False
    elif "tokens" in rows.column_names:
        texts, split_into_words = rows["tokens"], True
    else:
        texts, split_into_words = list(dict.fromkeys(rows["context"])), False
    lengths: list[int] = []
    for chunk in _chunks(texts):
        encoding = tokenizer(chunk, is_split_into_words=split_into_words, verbose=False)
        lengths.extend(len(ids) for ids in encoding["input_ids"])
    return lengths


def window_counts(
    rows: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, max_seq_length: int, doc_stride: int
) -> dict[int, int]:
    """How many questions (or texts) get 1, 2, ... windows, through the very function that cuts evaluation
    features."""
    if "question" not in rows.column_names:
        return _text_window_counts(rows, tokenizer, max_seq_length, doc_stride)
    per_question: Counter[str] = Counter()
    columns = {"id": rows["id"], "question": rows["question"], "context": rows["context"]}
    for start in range(0, len(rows), TOKENIZE_CHUNK):
        batch = {key: values[start : start + TOKENIZE_CHUNK] for key, values in columns.items()}
        per_question.update(prepare_eval_features(batch, tokenizer, max_seq_length, doc_stride)["example_id"])
    return dict(sorted(Counter(per_question.values()).items()))


def _text_window_counts(
    rows: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, max_seq_length: int, doc_stride: int
) -> dict[int, int]:
    per_text: Counter[int] = Counter()
    for start in range(0, len(rows), TOKENIZE_CHUNK):
        batch = rows[start : start + TOKENIZE_CHUNK]
        indices = list(range(start, start + len(batch["text"])))
        cut = classification.tokenize_windows(batch, indices, tokenizer, max_seq_length, doc_stride)
        per_text.update(cut[classification.DOCUMENT_COLUMN])
    return dict(sorted(Counter(per_text.values()).items()))


def _chunks(items: list) -> Iterator[list]:
    for start in range(0, len(items), TOKENIZE_CHUNK):
        yield items[start : start + TOKENIZE_CHUNK]


def _quantiles(lengths: list[int]) -> dict[str, int]:
    if not lengths:
        return {}
    values = np.asarray(lengths)
    return {
        "min": int(values.min()),
        "median": int(np.percentile(values, 50, method="nearest")),
        "p95": int(np.percentile(values, 95, method="nearest")),
        "max": int(values.max()),
    }


def loader_fixes(name: str, data_dir: str | Path, cache_dir: str | None = None) -> dict[str, dict[str, int]]:
    """Per split, what the loader of format `name` repaired or skipped, as it counted them reading the files."""
    return load_with_repairs(name, data_dir=data_dir, cache_dir=cache_dir)[1]


def summary_lines(report: DataReport) -> list[str]:
    """The printed summary: per split, the counts, the length distribution and the loader's fixes."""
    windows = f", doc_stride {report.doc_stride}" if report.doc_stride is not None else ""
    lines = [
        f"{report.name} ({report.data_dir}): tokens under {report.model}, "
        f"max_seq_length {report.max_seq_length}{windows}"
    ]
    indent = " " * 14
    for stats in report.splits:
        counts = ", ".join(f"{key}={n}" for key, n in stats.counts.items())
        lines.append(
            f"{stats.split:>12}: {stats.examples} {report.nouns.example}s; {report.nouns.counted}: {counts}"
        )
        lines.append(indent + _lengths_text(report, stats))
        if stats.windows is not None:
            lines.append(indent + _windows_text(stats.windows, report.nouns.example))
        lines.append(indent + _fixes_text(stats.loader))
    return lines


def _lengths_text(report: DataReport, stats: SplitStats) -> str:
    unit = report.nouns.length_unit
    if not stats.lengths:
        return f"no {unit}s"
    q = stats.length_quantiles
    return (
        f"tokens per {unit}: min {q['min']}, median {q['median']}, 95th percentile {q['p95']}, max {q['max']}; "
        f"longer than {report.max_seq_length}: {_share(stats.longer_than_max, len(stats.lengths))}"
    )


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({100 * part / max(whole, 1):.1f}%)"


def _windows_text(windows: dict[int, int], example: str) -> str:
    per_count = ", ".join(f"{n} in {count}" for count, n in windows.items())
    total = sum(count * n for count, n in windows.items())
    return f"{example}s per number of windows: {per_count} ({total} windows in all)"


def _fixes_text(fixes: dict[str, int]) -> str:
    done = [f"{REPAIRS[key]}: {n}" for key, n in fixes.items() if n]
    return "loader: " + ("; ".join(done) if done else "nothing repaired or skipped")


def write_report(report: DataReport, out_dir: str | Path) -> list[Path]:
    """`summary.json` and the PNG plots; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = out / "summary.json"
    summary.write_text(json.dumps(dataclasses.asdict(report), indent=2) + "\n", encoding="utf-8")
    written = [summary, _save(plot_counts(report), out / "counts.png")]
    written.append(_save(plot_lengths(report), out / "lengths.png"))
    if report.doc_stride is not None:
        written.append(_save(plot_windows(report), out / "windows.png"))
    return written


def _save(figure: Figure, path: Path) -> Path:
    """`Figure.savefig` renders PNG with the Agg canvas and never touches pyplot's GUI backends or global state,
    so plotting works headless (servers, CI) whatever `MPLBACKEND` says."""
    figure.savefig(path, dpi=100)
    return path


def _grouped_bars(axes: Axes, categories: list, values_per_split: dict[str, list[int]]) -> None:
    """One group of bars per category, one bar per split, each labelled with its value."""
    width = 0.8 / len(values_per_split)
    positions = np.arange(len(categories))
    for i, (split, values) in enumerate(values_per_split.items()):
        axes.bar_label(axes.bar(positions + i * width, values, width, label=split), fontsize=8)
    axes.set_xticks(positions + width * (len(values_per_split) - 1) / 2, [str(c) for c in categories])
    axes.legend()


def plot_counts(report: DataReport) -> Figure:
    categories = list(dict.fromkeys(key for stats in report.splits for key in stats.counts))
    figure = Figure(figsize=(max(6.0, 1.2 * len(categories) + 2), 4), layout="constrained")
    axes = figure.add_subplot()
    _grouped_bars(
        axes,
        categories,
        {stats.split: [stats.counts.get(c, 0) for c in categories] for stats in report.splits},
    )
    axes.set_ylabel(report.nouns.counted.split()[0])
    axes.set_title(f"{report.name}: {report.nouns.counted}, per split")
    return figure


def plot_lengths(report: DataReport) -> Figure:
    """One histogram per split on shared bins, with the truncation length marked and the share beyond it."""
    unit = report.nouns.length_unit
    bins = np.histogram_bin_edges([n for stats in report.splits for n in stats.lengths] or [0], bins=40)
    figure = Figure(figsize=(7, 2.2 * len(report.splits) + 0.6), layout="constrained")
    all_axes = figure.subplots(len(report.splits), 1, squeeze=False, sharex=True)[:, 0]
    for axes, stats in zip(all_axes, report.splits, strict=True):
        axes.hist(stats.lengths, bins=bins, color="tab:blue")
        axes.axvline(report.max_seq_length, color="tab:red", linestyle="--", label="max_seq_length")
        share = _share(stats.longer_than_max, len(stats.lengths))
        axes.set_title(f"{stats.split}: {share} longer than {report.max_seq_length}", fontsize=10)
        axes.set_ylabel(f"{unit}s")
    all_axes[0].legend()
    all_axes[-1].set_xlabel(f"tokens per {unit} ({report.model})")
    figure.suptitle(f"{report.name}: token lengths")
    return figure


def plot_windows(report: DataReport) -> Figure:
    """Questions (or texts) per number of windows, as evaluation cuts them."""
    counts = sorted({count for stats in report.splits for count in stats.windows or {}})
    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    _grouped_bars(
        axes,
        counts,
        {stats.split: [(stats.windows or {}).get(c, 0) for c in counts] for stats in report.splits},
    )
    axes.set_xlabel(f"windows per {report.nouns.example}")
    axes.set_ylabel(f"{report.nouns.example}s")
    axes.set_title(
        f"{report.name}: windows (max_seq_length {report.max_seq_length}, doc_stride {report.doc_stride})"
    )
    return figure


def _parser() -> HfArgumentParser:
    """The report's own flags, then `train.py`'s column and label flags (same names, same help)."""
    parser = HfArgumentParser(
        ColumnFlags, prog="python -m commands.report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("name", help=f"a task ({', '.join(TASKS)}) or a format: {', '.join(sorted(LOADERS))}")
    parser.add_argument("--data_format", choices=sorted(LOADERS))
    parser.add_argument("--data_dir")
    for split in ("train", "validation", "test"):
        parser.add_argument(f"--{split}_file")
    parser.add_argument("--cache_dir")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="whose tokenizer counts the tokens")
    parser.add_argument(
        "--max_seq_length", type=int, help="truncation length (default: the task's training default)"
    )
    parser.add_argument(
        "--doc_stride", type=int, default=DOC_STRIDE, help="overlap between QA context or text windows"
    )
    parser.add_argument(
        "--long_documents",
        choices=classification.LONG_DOCUMENTS,
        default="truncate",
        help="classification: windows also counts the windows each text is cut into, as training cuts them",
    )
    parser.add_argument("--out", default="report", help="folder for summary.json and the PNG plots")
    return parser


def main(argv: list[str] | None = None) -> int:
    columns, args = _parser().parse_args_into_dataclasses(args=argv)
    data_flags = {
        **dataclasses.asdict(columns),
        **{key: getattr(args, key) for key in ("data_format", "train_file", "validation_file", "test_file")},
    }
    try:
        report = compute_report(
            args.name,
            args.data_dir,
            args.model,
            args.max_seq_length,
            args.doc_stride,
            args.cache_dir,
            args.long_documents,
            **data_flags,
        )
    except (DataFormatError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(report)))
    for path in write_report(report, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
