"""Multi-label classification: multi-hot features, hand-computed metrics and thresholds, the tuned threshold saved
with the model, and predict telling a multi-label model from a single-label one; checked with the tiny tokenizer
and tiny random BERTs (the tabular loaders are not needed: the splits are built in memory with the loaders'
schema)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, List, Value
from transformers import AutoConfig, AutoTokenizer, pipeline

import train
from commands.predict import predict, read_settings, task_of
from conftest import refused_before_loading
from processing import classification
from processing.multi_label import (
    TASK,
    analyse,
    best_threshold,
    calibrate,
    multi_label_metrics,
    prepare,
    score,
)
from processing.tasks import model_inputs

NAMES = ["action", "comedy", "drama"]
FEATURES = Features(
    {
        "id": Value("string"),
        "text": Value("string"),
        "text_pair": Value("string"),
        "labels": List(ClassLabel(names=NAMES)),
    }
)


def _raw(rows: list[tuple[str, str, list[int]]]) -> Dataset:
    return Dataset.from_dict(
        {
            "id": [f"r{i}" for i in range(len(rows))],
            "text": [text for text, _, _ in rows],
            "text_pair": [pair for _, pair, _ in rows],
            "labels": [labels for _, _, labels in rows],
        },
        features=FEATURES,
    )


RAW = _raw([("the movie", "a film", [0, 2]), ("good", "bad", []), ("it was great", "awful", [1])])


def test_prepare_gives_multi_hot_float_labels_and_pair_segments(tiny_tokenizer):
    features = prepare(RAW, tiny_tokenizer, SimpleNamespace(max_seq_length=16), True)
    assert sorted(features.column_names) == ["attention_mask", "input_ids", "labels", "token_type_ids"]
    assert features["labels"] == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    # [CLS] the movie [SEP] a film [SEP]: the pair is one input, its second text in segment 1.
    assert features[0]["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]
    assert tiny_tokenizer.decode(features[0]["input_ids"]) == "[CLS] the movie [SEP] a film [SEP]"


def test_the_model_trains_with_binary_cross_entropy(tiny_model_dir, tiny_tokenizer):
    model = TASK.load_model(str(tiny_model_dir), NAMES).eval()
    assert model.config.problem_type == "multi_label_classification"
    assert model.config.id2label == {0: "action", 1: "comedy", 2: "drama"}
    features = prepare(RAW, tiny_tokenizer, SimpleNamespace(max_seq_length=16), True)
    formatted = features.with_format("torch", columns=model_inputs(model, features, with_labels=True))
    batch = TASK.collator(tiny_tokenizer, None)([formatted[i] for i in range(len(formatted))])
    assert batch["labels"].dtype == torch.float32
    with torch.no_grad():
        output = model(**batch)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(output.logits, batch["labels"])
    assert output.loss.item() == pytest.approx(expected.item())


def test_metrics_by_hand():
    truth = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 1, 0]])
    predicted = np.array([[1, 0, 0], [0, 0, 0], [0, 1, 0], [1, 0, 1]])
    metrics = multi_label_metrics(truth, predicted, NAMES)
    # action: TP 2 -> F1 1; comedy: TP 1, FN 1 -> 2/3; drama: FP 1, FN 1 -> 0. Micro: TP 3, FP 1, FN 2 -> 6/9.
    assert metrics["per_label"]["action"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "number": 2}
    assert metrics["per_label"]["comedy"]["f1"] == pytest.approx(2 / 3)
    assert metrics["per_label"]["drama"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "number": 1}
    assert metrics["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert metrics["micro_f1"] == pytest.approx(6 / 9)
    assert metrics["exact_match"] == pytest.approx(2 / 4)  # rows 2 and 3 entirely right


def test_best_threshold_is_exact_and_halfway_between_scores():
    scores = np.array([[0.9, 0.2], [0.6, 0.4], [0.3, 0.1]])
    truth = np.array([[1, 0], [0, 1], [1, 0]])
    # Ranked: 0.9 T, 0.6 F, 0.4 T, 0.3 T, 0.2, 0.1 (3 positives). Taking the top 4: TP 3 -> 2*3/(4+3) = 6/7,
    # the best; the threshold is halfway between the 4th and 5th scores.
    threshold, f1 = best_threshold(scores, truth)
    assert threshold == pytest.approx(0.25)
    assert f1 == pytest.approx(6 / 7)
    assert multi_label_metrics(truth, (scores > threshold).astype(int), ["a", "b"])[
        "micro_f1"
    ] == pytest.approx(6 / 7)


def test_best_threshold_never_splits_a_tie():
    # Taking one of the two 0.5 scores would give F1 2/3 but no threshold takes exactly one of them.
    threshold, f1 = best_threshold(np.array([[0.5, 0.5]]), np.array([[1, 0]]))
    assert (threshold, f1) == (0.0, pytest.approx(2 / 3))


def test_score_at_the_configured_threshold_and_predictions_file(tmp_path):
    probabilities = np.array([[0.8, 0.3, 0.45], [0.1, 0.2, 0.3], [0.4, 0.7, 0.1]])
    logits = np.log(probabilities / (1 - probabilities))  # whose sigmoids are those probabilities
    scored = score(RAW, None, {"logits": logits}, NAMES, SimpleNamespace(decision_threshold=0.5))
    # At 0.5: row 0 predicts action (drama 0.45 missed), row 1 nothing (right), row 2 comedy (right).
    assert scored.metrics["exact_match"] == pytest.approx(2 / 3)
    assert scored.metrics["micro_f1"] == pytest.approx(2 * 2 / (2 + 3))
    assert scored.metrics["decision_threshold"] == 0.5
    # Lower than 0.45 and above the next score (0.4) catches drama without a false positive.
    assert scored.metrics["best_threshold"] == pytest.approx(0.425)
    assert scored.metrics["best_micro_f1"] == pytest.approx(1.0)

    paths = scored.write_predictions(tmp_path, "test")
    rows = [json.loads(line) for line in paths[0].read_text().splitlines()]
    assert paths == [tmp_path / "test_predictions.jsonl"]
    assert rows[0] == {
        "index": 0,
        "id": "r0",
        "labels": ["action", "drama"],
        "predicted": ["action"],
        "scores": {"action": 0.8, "comedy": 0.3, "drama": 0.45},
    }
    assert [row["predicted"] for row in rows[1:]] == [[], ["comedy"]]

    written = analyse(tmp_path, "test", scored, RAW, NAMES)
    assert [w.path.name for w in written] == ["test_per_label.png", "test_per_label.json"]
    assert written[0].path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    per_label = json.loads((tmp_path / "test_per_label.json").read_text())
    assert per_label["drama"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "number": 1}


def test_calibrate_takes_the_validation_threshold_unless_told_not_to():
    metrics = {"best_threshold": 0.31}
    assert calibrate(SimpleNamespace(tune_decision_threshold=True, decision_threshold=0.5), metrics) == {
        "decision_threshold": 0.31
    }
    assert calibrate(SimpleNamespace(tune_decision_threshold=False, decision_threshold=0.6), metrics) == {
        "decision_threshold": 0.6
    }


WORDS = ["good", "bad", "great", "awful", "film", "movie"]
TOPICS = ("good", "bad", "film")


def write_splits(folder: Path) -> Path:
    """JSON Lines files of `text`, `pair` and `topics` (names): "good" in the text means topic good, "bad" bad,
    "film" film; any number of them."""
    rng = np.random.default_rng(0)
    for split, size in (("train", 24), ("dev", 8), ("test", 8)):
        rows = []
        for _ in range(size):
            words = list(rng.choice(WORDS, size=3))
            topics = [topic for topic in TOPICS if topic in words]
            rows.append(json.dumps({"text": " ".join(words), "pair": "it was", "topics": topics}) + "\n")
        (folder / f"{split}.jsonl").write_text("".join(rows))
    return folder


@pytest.fixture
def trained(tiny_model_dir, tmp_path_factory, fresh_accelerate_state):
    """A multi-label run of train.py on sentence pairs in JSON Lines, with its own column names."""
    data_dir = write_splits(tmp_path_factory.mktemp("multi_label_data"))
    output_dir = tmp_path_factory.mktemp("multi_label_run")
    argv = [
        "--task", "multi-label-classification", "--data_dir", str(data_dir), "--label_column", "topics",
        "--text_pair_column", "pair", "--label_names", *TOPICS,
        "--model", str(tiny_model_dir), "--output_dir", str(output_dir),
        "--max_seq_length", "32", "--per_device_train_batch_size", "4", "--learning_rate", "1e-3",
        "--num_train_epochs", "1", "--report_to", "none",
    ]  # fmt: skip
    assert train.main(argv) == 0
    return output_dir


def test_a_run_tunes_the_threshold_on_validation_and_saves_it_with_the_model(trained, tmp_path):
    validation = json.loads((trained / "eval_results.json").read_text())
    test = json.loads((trained / "test_results.json").read_text())
    tuned = validation["best_threshold"]
    assert validation["decision_threshold"] == 0.5  # validation is scored at the flag, then tuned on
    assert test["decision_threshold"] == tuned
    assert {"micro_f1", "macro_f1", "exact_match", "per_label"} <= set(test)
    config = AutoConfig.from_pretrained(trained)
    assert config.problem_type == "multi_label_classification" and config.decision_threshold == tuned
    assert json.loads((trained / "training_args.json").read_text())["decision_threshold"] == 0.5
    assert (trained / "test_per_label.png").is_file()

    card = (trained / "README.md").read_text()
    assert "the decision threshold was tuned on it" in card and "Micro F1" in card
    assert f'score"] > {tuned:.4f}'.rstrip("0").rstrip(".") in card

    tokenizer = AutoTokenizer.from_pretrained(trained)
    assert read_settings(str(trained), tokenizer, {}).decision_threshold == tuned
    assert task_of(str(trained)) is TASK

    inputs = tmp_path / "texts"
    inputs.mkdir()
    for name, text in [("a.txt", "good film"), ("b.txt", "bad movie")]:
        (inputs / name).write_text(text)
    rows = list(predict(str(trained), inputs, {}))
    assert [row["file"] for row in rows] == ["a.txt", "b.txt"]
    for row in rows:
        assert set(row["scores"]) == set(TOPICS)
        assert row["labels"] == [name for name, value in row["scores"].items() if value > tuned]
    # A fixed threshold on the command line wins over the tuned one.
    everything = list(predict(str(trained), inputs, {"decision_threshold": 1e-9}))
    assert all(row["labels"] == list(TOPICS) for row in everything)
    with pytest.raises(ValueError, match=r"^--decision_threshold must be between 0 and 1, got 1.0$"):
        predict(str(trained), inputs, {"decision_threshold": 1.0})

    classifier = pipeline("text-classification", model=str(trained), top_k=None, function_to_apply="sigmoid")
    scores = classifier(["good film"])[0]
    assert {s["label"] for s in scores} == set(TOPICS)
    assert {s["label"]: s["score"] for s in scores} == pytest.approx(rows[0]["scores"], abs=1e-5)


def test_a_single_label_model_is_still_single_label(tiny_model_dir, tmp_path):
    model = classification.TASK.load_model(str(tiny_model_dir), ["neg", "pos"])
    model.config.architectures = [type(model).__name__]
    model.save_pretrained(tmp_path)
    assert task_of(str(tmp_path)) is classification.TASK
    model.config.problem_type = "single_label_classification"  # what transformers sets on the first forward
    model.save_pretrained(tmp_path)
    assert task_of(str(tmp_path)) is classification.TASK


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--class_weights", "balanced"], "--class_weights 'balanced': expected none for --task"),
        (["--decision_threshold", "1.5"], "--decision_threshold 1.5: expected a number between 0 and 1"),
    ],
)
def test_flags_that_do_not_fit_are_refused_before_any_work(extra, message, tmp_path, capsys, monkeypatch):
    argv = ["--task", "multi-label-classification", "--output_dir", str(tmp_path), *extra]
    assert message in refused_before_loading(monkeypatch, capsys, argv)
