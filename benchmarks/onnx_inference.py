"""Predict on the CPU with PyTorch fp32, ONNX Runtime fp32 and ONNX Runtime int8: samples/s, agreement with
PyTorch, and the task's score on real held-out data.

    python -m processing.export --model outputs/imdb --onnx --quantize int8
    python benchmarks/onnx_inference.py --task imdb --data ../shared/data/imdb/aclImdb-train.tar.gz \\
        --model outputs/imdb --samples 2000 --max_seq_length 256
    python benchmarks/onnx_inference.py --task wnut17 --data ../shared/data/wnut17/emerging.dev.conll \\
        --model outputs/wnut17
    python benchmarks/onnx_inference.py --task squad_v2 --data squad16/test-v2.0.json --model outputs/squad16

IMDb: the reviews are the validation split `train.py --task imdb` held out for that model (its seed and
`--validation_size`, from the model folder's `training_args.json`), so none was trained on; agreement is the share
of reviews given PyTorch's label, accuracy is against the gold label. W-NUT: the documents of a CoNLL file with
gold tags (the dev file for a model trained on the train file); agreement is the share of words given PyTorch's
tag, and the score is seqeval's entity F1. SQuAD: the questions of a SQuAD 2.0 file the model was not trained on
(e.g. the held-out articles of `squad_split_by_article.py`); agreement is the share of questions given PyTorch's
answer (the same text, or no answer), and the score is the official F1. Every backend runs the predict command's own task code
(`Task.predict`, through `--backend`), so tokenization, windows and post-processing are timed as users get them.
The backends run one after another, `--rounds` times, interleaved; each line reports the median samples/s and
the slowest and fastest round. Both
runtimes use their default thread count, one per physical core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from _bench import ensure_repo_on_path, quiet_libraries, result_line

RUNS = {
    "pytorch-fp32": {"backend": "torch"},
    "onnx-fp32": {"backend": "onnx"},
    "onnx-int8": {"backend": "onnx", "quantize": "int8"},
}
"""predict's settings for each measured backend; PyTorch's rows are the reference for agreement."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=["imdb", "wnut17", "squad_v2"], required=True)
    parser.add_argument(
        "--data",
        required=True,
        help="aclImdb archive (imdb), a tagged CoNLL file (wnut17) or a SQuAD 2.0 JSON file (squad_v2)",
    )
    parser.add_argument("--model", required=True, help="a train.py output directory, exported with --onnx")
    parser.add_argument("--samples", type=int, help="score the first N reviews or documents (default: all)")
    parser.add_argument("--max_seq_length", type=int, help="default: the length the model was trained with")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="timed passes per backend, interleaved")
    return parser.parse_args(argv)


def imdb_inputs(data: str, model: Path, samples: int | None) -> tuple[list, list[str]]:
    """(predict's (name, reader) pairs, gold label names) of the held-out reviews."""
    from long_reviews import held_out_reviews

    reviews = held_out_reviews(data, model)
    if samples:
        reviews = reviews.select(range(min(samples, len(reviews))))
    names = reviews.features["label"].names
    inputs = [(str(i), partial(str, text)) for i, text in enumerate(reviews["text"])]
    return inputs, [names[label] for label in reviews["label"]]


def wnut_inputs(data: str, samples: int | None) -> tuple[list, list[list[str]]]:
    """(predict's documents, gold tags) of a tagged CoNLL file, read by the project's CoNLL loader."""
    from loaders.conll import read_conll

    documents = list(read_conll(Path(data)))[:samples]
    inputs = [(Path(data).name, i, doc.tokens) for i, doc in enumerate(documents)]
    return inputs, [doc.tags for doc in documents]


def squad_inputs(data: str, samples: int | None) -> tuple[list, list[dict]]:
    """(predict's questions, the file's articles holding just those questions, for the official scorer)."""
    from commands.predict import read_json, read_questions

    questions = read_questions(Path(data))[:samples]
    kept = {question["id"] for question in questions}
    articles = [
        {
            **article,
            "paragraphs": [
                {**p, "qas": [q for q in p["qas"] if q["id"] in kept]} for p in article["paragraphs"]
            ],
        }
        for article in read_json(Path(data))["data"]
    ]
    return questions, articles


def imdb_scores(rows: list[dict], reference: list[dict], gold: list[str]) -> dict[str, float]:
    labels = [row["label"] for row in rows]
    return {
        "agreement": _share(labels, [row["label"] for row in reference]),
        "accuracy": _share(labels, gold),
    }


def wnut_scores(rows: list[dict], reference: list[dict], gold: list[list[str]]) -> dict[str, float]:
    from seqeval.metrics import f1_score

    tags = [row["tags"] for row in rows]
    flat = [tag for doc in tags for tag in doc]
    return {
        "agreement": _share(flat, [tag for row in reference for tag in row["tags"]]),
        "entity_f1": f1_score(gold, tags),
    }


def squad_scores(rows: list[dict], reference: list[dict], articles: list[dict]) -> dict[str, float]:
    from processing.squad_metric import evaluate

    answers = {row["id"]: row["answer"] for row in rows}
    scored = evaluate(articles, answers)
    return {
        "agreement": _share([row["answer"] for row in rows], [row["answer"] for row in reference]),
        "f1": scored["f1"],
        "scored_questions": scored["total"],
    }


def _share(values: list, expected: list) -> float:
    return sum(a == b for a, b in zip(values, expected, strict=True)) / len(expected)


def timed(run: Callable[[], list[dict]]) -> tuple[list[dict], float]:
    start = time.perf_counter()
    rows = run()
    return rows, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_libraries()
    ensure_repo_on_path()
    from transformers import AutoTokenizer

    from commands.predict import read_settings, task_of
    from processing.export import onnx_file

    model = Path(args.model)
    try:
        onnx_file(model)
        onnx_file(model, "int8")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.task == "imdb":
        inputs, gold = imdb_inputs(args.data, model, args.samples)
        scores = imdb_scores
    elif args.task == "wnut17":
        inputs, gold = wnut_inputs(args.data, args.samples)
        scores = wnut_scores
    else:
        inputs, gold = squad_inputs(args.data, args.samples)
        scores = squad_scores
    task = task_of(str(model))
    tokenizer = AutoTokenizer.from_pretrained(model)
    overrides = {"batch_size": args.batch_size, "max_seq_length": args.max_seq_length, "device": "cpu"}
    seconds: dict[str, list[float]] = {name: [] for name in RUNS}
    rows: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for name, backend in RUNS.items():
            settings = read_settings(str(model), tokenizer, {**overrides, **backend})
            rows[name], elapsed = timed(
                lambda settings=settings: list(task.predict(str(model), inputs, settings))
            )
            seconds[name].append(elapsed)
    for name in RUNS:
        rates = [len(inputs) / elapsed for elapsed in seconds[name]]
        fields = {"task": args.task, "backend": name, "samples": len(inputs)}
        fields |= {"samples_per_s": statistics.median(rates), "min": min(rates), "max": max(rates)}
        fields |= {"rounds": args.rounds}
        fields |= scores(rows[name], rows["pytorch-fp32"], gold)
        print(result_line("onnx", fields))
    return 0


if __name__ == "__main__":
    sys.exit(main())
