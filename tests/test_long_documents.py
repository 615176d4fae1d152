"""`--long_documents windows`: every token of a long text is read in overlapping windows, each trained with its
text's label, and evaluation and predict aggregate the windows' logits per text; with the tiny tokenizer and tiny
random BERTs of conftest.py, data written in tmp_path."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

import loaders
import train
from commands import predict
from conftest import REPO_ROOT, SAMPLES, refused_before_loading
from processing import classification
from processing.batching import feature_lengths, longest_first
from runner.checks import check_task_flags
from runner.config import TrainingConfig
from runner.finish import score_split

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

FILLER = "the movie was a film and it was "
"""Eight whole words of the tiny vocabulary that say nothing about the label."""


def windows_config(**overrides) -> SimpleNamespace:
    settings = {
        "max_seq_length": 16,
        "doc_stride": 4,
        "long_documents": "windows",
        "window_aggregation": "mean",
    }
    return SimpleNamespace(**{**settings, **overrides})


def reviews(texts: list[str], labels: list[int]) -> datasets.Dataset:
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    return datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features)


def test_windows_cover_every_token_once_apart_from_the_stride_overlap(tiny_tokenizer):
    long_text = " ".join(f"{FILLER}{word}" for word in ("good", "bad", "great", "awful", "new", "york"))
    raw = reviews([long_text, "good"], [1, 0])
    features = classification.prepare(raw, tiny_tokenizer, windows_config(), training=False)

    tokens = tiny_tokenizer(long_text, add_special_tokens=False)["input_ids"]
    documents = features["document"]
    windows = [
        ids[1:-1] for ids, document in zip(features["input_ids"], documents, strict=True) if document == 0
    ]
    assert len(windows) > 3 and all(len(ids) <= 16 for ids in features["input_ids"])
    assert all(
        ids[0] == tiny_tokenizer.cls_token_id and ids[-1] == tiny_tokenizer.sep_token_id
        for ids in features["input_ids"]
    )
    for before, after in itertools.pairwise(windows):
        assert after[:4] == before[-4:]
    assert windows[0] + [token for window in windows[1:] for token in window[4:]] == tokens
    assert documents == [0] * len(windows) + [1]
    assert features["labels"] == [1] * len(windows) + [0]


def test_truncation_stays_the_default_one_feature_per_text(tiny_tokenizer):
    raw = reviews([FILLER * 5, "good"], [1, 0])
    features = classification.prepare(raw, tiny_tokenizer, SimpleNamespace(max_seq_length=16), training=False)
    assert len(features) == 2 and "document" not in features.column_names


# Windows of three documents, in data order: document 0 has two windows whose mean says neg and whose max says
# pos, document 1 one window (pos), document 2 three windows (neg either way).
WINDOW_LOGITS = np.array([[0.0, 3.0], [2.0, -4.0], [-1.0, 1.0], [5.0, 0.0], [1.0, 0.5], [0.0, -2.0]])
WINDOW_DOCUMENTS = np.array([0, 0, 1, 2, 2, 2])


@pytest.mark.parametrize(
    "aggregation, expected",
    [
        ("mean", [[1.0, -0.5], [-1.0, 1.0], [2.0, -0.5]]),
        ("max", [[2.0, 3.0], [-1.0, 1.0], [5.0, 0.5]]),
    ],
)
def test_document_logits_mean_or_max_of_their_windows(aggregation, expected):
    logits = classification.document_logits(WINDOW_LOGITS, WINDOW_DOCUMENTS, 3, aggregation)
    np.testing.assert_allclose(logits, expected)


def test_a_document_without_a_window_is_an_error_not_a_prediction():
    with pytest.raises(ValueError, match="expected one or more for each of 4"):
        classification.document_logits(WINDOW_LOGITS, WINDOW_DOCUMENTS, 4, "mean")


def hand_made_split(tiny_tokenizer) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Three documents and six windows of different lengths, so that longest-first evaluation reorders them."""
    raw = reviews(["one", "two", "three"], [0, 1, 1])
    lengths = [3, 9, 5, 2, 12, 7]
    features = datasets.Dataset.from_dict(
        {
            "input_ids": [[tiny_tokenizer.cls_token_id] * n for n in lengths],
            "labels": [raw["label"][d] for d in WINDOW_DOCUMENTS],
            "document": WINDOW_DOCUMENTS.tolist(),
        }
    )
    return raw, features


@pytest.mark.parametrize(
    "aggregation, predicted, accuracy",
    [("mean", ["neg", "pos", "neg"], 2 / 3), ("max", ["pos", "pos", "neg"], 1 / 3)],
)
@pytest.mark.parametrize("grouped", [False, True])
def test_scores_are_per_document_in_the_datas_order(
    aggregation, predicted, accuracy, grouped, tiny_tokenizer, tmp_path
):
    raw, features = hand_made_split(tiny_tokenizer)
    order = longest_first(feature_lengths(features)) if grouped else None
    outputs = WINDOW_LOGITS if order is None else WINDOW_LOGITS[order]  # what evaluation batches give back
    config = SimpleNamespace(
        output_dir=str(tmp_path), eval_split="validation", window_aggregation=aggregation
    )
    run = SimpleNamespace(
        config=config,
        task=classification.TASK,
        raw={"validation": raw},
        eval_features={"validation": features},
        eval_orders={"validation": order},
        label_names=["neg", "pos"],
        is_main_process=True,
    )
    if grouped:
        assert not np.array_equal(order, np.arange(len(features)))
        assert not np.array_equal(order[np.argsort(WINDOW_DOCUMENTS[order], kind="stable")], order)

    scored = score_split(run, "validation", {"logits": outputs}, 0.0)

    assert [row["predicted"] for row in scored.predictions] == predicted
    assert [row["index"] for row in scored.predictions] == [0, 1, 2]
    assert [row["windows"] for row in scored.predictions] == [2, 1, 3]
    assert scored.metrics["accuracy"] == pytest.approx(accuracy)
    assert scored.metrics["num_examples"] == 3 and scored.metrics["num_windows"] == 6
    written = [json.loads(line) for line in (tmp_path / "eval_predictions.jsonl").read_text().splitlines()]
    assert [row["predicted"] for row in written] == predicted


def write_long_reviews(root: Path) -> dict[str, list[tuple[str, str]]]:
    """aclImdb-style folders whose deciding word comes after 40 words of filler, past a first window of 16."""
    texts = {"train": [], "validation": []}
    words = {"neg": ["bad", "awful"], "pos": ["good", "great"]}
    for split, count in (("train", 4), ("validation", 2)):
        for label, deciding in words.items():
            for n in range(count):
                text = FILLER * 5 + deciding[n % 2] + (" the film" * n)
                (root / split / label).mkdir(parents=True, exist_ok=True)
                (root / split / label / f"{n}.txt").write_text(text)
                texts[split].append((f"{label}/{n}.txt", text))
    return texts


def test_a_windowed_run_scores_and_predicts_one_line_per_document(tiny_model_dir, tiny_tokenizer, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    texts = write_long_reviews(data)
    argv = [
        "--task", "imdb", "--data_dir", str(data), "--model", str(tiny_model_dir), "--output_dir", str(out),
        "--max_seq_length", "16", "--doc_stride", "4", "--per_device_train_batch_size", "4",
        "--num_train_epochs", "2", "--report_to", "none", "--long_documents", "windows",
        "--window_aggregation", "max",
    ]  # fmt: skip
    assert train.main(argv) == 0

    results = json.loads((out / "eval_results.json").read_text())
    rows = [json.loads(line) for line in (out / "eval_predictions.jsonl").read_text().splitlines()]
    validation = loaders.load_dataset("imdb", data_dir=str(data))["validation"]
    assert results["num_examples"] == len(rows) == len(validation) == 4
    cut = tiny_tokenizer(
        list(validation["text"]), truncation=True, max_length=16, stride=4, return_overflowing_tokens=True
    )
    windows = np.bincount(cut["overflow_to_sample_mapping"])
    assert [row["windows"] for row in rows] == windows.tolist() and min(windows) > 2
    assert results["num_windows"] == windows.sum()

    # Each document's score is the max of its windows' logits, from the saved model run window by window.
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    with torch.no_grad():
        logits = np.concatenate(
            [model(input_ids=torch.tensor([ids])).logits.numpy() for ids in cut["input_ids"]]
        )
    expected = classification.softmax(
        classification.document_logits(logits, np.asarray(cut["overflow_to_sample_mapping"]), 4, "max")
    )
    assert [row["predicted"] for row in rows] == [model.config.id2label[i] for i in expected.argmax(axis=1)]
    assert [row["score"] for row in rows] == pytest.approx(expected.max(axis=1).tolist(), abs=1e-4)
    settings = json.loads((out / "training_args.json").read_text())
    assert (settings["long_documents"], settings["window_aggregation"]) == ("windows", "max")

    # predict reads the windows and the aggregation from training_args.json: one line per text, as evaluation.
    predicted = out / "predicted.jsonl"
    assert (
        predict.main(["--model", str(out), "--input", str(data / "validation"), "--out", str(predicted)]) == 0
    )
    lines = [json.loads(line) for line in predicted.read_text().splitlines()]
    assert [line["file"] for line in lines] == sorted(name for name, _ in texts["validation"])
    by_text = {text: row for text, row in zip(list(validation["text"]), rows, strict=True)}
    for line in lines:
        row = by_text[(data / "validation" / line["file"]).read_text()]
        assert line["label"] == row["predicted"] and line["score"] == pytest.approx(row["score"], abs=1e-4)


def test_predict_truncates_unless_told_to_cut_windows(tiny_model_dir, tiny_tokenizer, tmp_path):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=2, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1}
    )
    model.save_pretrained(tmp_path / "model")
    tiny_tokenizer.save_pretrained(tmp_path / "model")
    folder = tmp_path / "texts"
    folder.mkdir()
    for n in range(3):
        (folder / f"{n}.txt").write_text(FILLER * (n + 3) + "good")
    runs = {}
    for mode in ("truncate", "windows"):
        out = tmp_path / f"{mode}.jsonl"
        argv = ["--model", str(tmp_path / "model"), "--input", str(folder), "--out", str(out)]
        argv += ["--max_seq_length", "16", "--doc_stride", "4", "--long_documents", mode, "--batch_size", "2"]
        assert predict.main(argv) == 0
        runs[mode] = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["file"] for line in runs["windows"]] == ["0.txt", "1.txt", "2.txt"]
    assert len(runs["truncate"]) == 3
    assert [line["score"] for line in runs["windows"]] != [line["score"] for line in runs["truncate"]]


@pytest.mark.parametrize(
    "task, extra, message",
    [
        (
            "multi-label-classification",
            [],
            "--long_documents 'windows': expected truncate for --task multi-label-classification (single-label only)",
        ),
    ],
)
def test_windows_are_refused_in_one_line_where_they_do_not_fit(
    task, extra, message, tmp_path, capsys, monkeypatch
):
    argv = ["--task", task, "--output_dir", str(tmp_path), "--long_documents", "windows", *extra]
    assert message in refused_before_loading(monkeypatch, capsys, argv)


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"window_aggregation": "median"}, "--window_aggregation 'median': expected mean or max"),
        ({"long_documents": "chunks"}, "--long_documents 'chunks': expected truncate or windows"),
        (
            {"window_aggregation": "max"},
            "--window_aggregation 'max': expected no value without --long_documents windows",
        ),
    ],
)
def test_settings_that_cannot_take_effect_are_refused(flags, message, tmp_path):
    """A YAML or JSON config file is not checked against the flags' choices by the parser."""
    config = TrainingConfig(task="imdb", output_dir=str(tmp_path), **flags)
    with pytest.raises(ValueError, match=f"^{message}$"):
        check_task_flags(config)


PAIRS = """\
    premise,hypothesis,label
    the movie was good,it was great,yes
    the film was bad,it was great,no
    a good film,it was good,yes
    an awful movie,it was good,no
    """


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--text_column", "premise", "--text_pair_column", "hypothesis"],
            "--long_documents windows: expected single texts",
        ),
        (
            ["--text_column", "premise", "--doc_stride", "14"],
            "--doc_stride 14: expected less than the 14 text tokens",
        ),
    ],
)
def test_pairs_and_a_stride_as_long_as_the_window_are_refused(
    extra, message, tiny_model_dir, tmp_path, capsys
):
    table = tmp_path / "train.csv"
    table.write_text(textwrap.dedent(PAIRS))
    argv = [
        "--task", "text-classification", "--train_file", str(table), "--validation_size", "2",
        "--model", str(tiny_model_dir), "--output_dir", str(tmp_path / "out"), "--max_seq_length", "16",
        "--doc_stride", "4", "--report_to", "none", "--long_documents", "windows",
    ]  # fmt: skip
    assert train.main([*argv, *extra]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(err) == 1 and message in err[0]


def test_the_report_counts_windows_per_text_as_training_cuts_them(
    tiny_model_dir, tiny_tokenizer, tmp_path, capsys
):
    from commands import report

    argv = [
        "imdb",
        "--data_dir",
        str(SAMPLES / "imdb"),
        "--model",
        str(tiny_model_dir),
        "--max_seq_length",
        "64",
    ]
    argv += ["--doc_stride", "16", "--long_documents", "windows", "--cache_dir", str(tmp_path / "cache")]
    assert report.main([*argv, "--out", str(tmp_path / "report")]) == 0

    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    for stats in summary["splits"]:
        rows = loaders.load_dataset("imdb", data_dir=str(SAMPLES / "imdb"), cache_dir=str(tmp_path / "cache"))
        cut = tiny_tokenizer(
            list(rows[stats["split"]]["text"]),
            truncation=True,
            max_length=64,
            stride=16,
            return_overflowing_tokens=True,
        )
        per_text = np.bincount(cut["overflow_to_sample_mapping"])
        assert {int(k): n for k, n in stats["windows"].items()} == dict(
            zip(*np.unique(per_text, return_counts=True), strict=True)
        )
        assert stats["windows"].get("1", 0) == stats["examples"] - stats["longer_than_max"]
    assert "texts per number of windows: " in capsys.readouterr().out
    assert (tmp_path / "report" / "windows.png").is_file()


def test_the_report_refuses_windows_for_sentence_pairs_in_one_line(tiny_model_dir, tmp_path, capsys):
    from commands import report

    table = tmp_path / "train.csv"
    table.write_text(textwrap.dedent(PAIRS))
    argv = ["text-classification", "--train_file", str(table), "--text_column", "premise"]
    argv += [
        "--text_pair_column",
        "hypothesis",
        "--model",
        str(tiny_model_dir),
        "--long_documents",
        "windows",
    ]
    assert (
        report.main([*argv, "--cache_dir", str(tmp_path / "cache"), "--out", str(tmp_path / "report")]) == 2
    )
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert err == [
        "error: --long_documents windows: expected single texts, the data has sentence pairs (use truncate)"
    ]


def test_the_benchmark_scores_the_runs_held_out_texts_as_its_evaluation_did(tiny_model_dir, tmp_path):
    """benchmarks/long_reviews.py on the samples: its windows reading of every held-out review is the run's own
    evaluation (same reviews, windows and accuracy), and truncation reads one window per review."""
    out = tmp_path / "out"
    argv = [
        "--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--model", str(tiny_model_dir), "--output_dir", str(out),
        "--max_seq_length", "64", "--doc_stride", "16", "--num_train_epochs", "1", "--report_to", "none",
        "--long_documents", "windows",
    ]  # fmt: skip
    assert train.main(argv) == 0
    script = REPO_ROOT / "benchmarks" / "long_reviews.py"
    flags = ["--data", str(SAMPLES / "imdb"), "--model", str(out), "--min_tokens", "0"]
    flags += ["--max_seq_length", "64", "--doc_stride", "16", "--device", "cpu"]
    completed = subprocess.run(
        [sys.executable, str(script), *flags], capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-2000:]

    readings = {}
    for line in completed.stdout.splitlines():
        kind, *parts = line.split()
        fields = dict(part.split("=", 1) for part in parts)
        if kind == "long_reviews":
            readings[fields["reading"]] = fields
    windows, truncated = readings["windows"], readings["truncate"]
    results = json.loads((out / "eval_results.json").read_text())
    assert int(windows["reviews"]) == int(windows["held_out"]) == results["num_examples"]
    assert int(windows["windows"]) == results["num_windows"] > results["num_examples"]
    assert float(windows["accuracy"]) == pytest.approx(results["accuracy"], abs=1e-4)
    assert int(truncated["windows"]) == int(truncated["reviews"]) == results["num_examples"]
