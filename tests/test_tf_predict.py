"""`python -m commands.predict` and `python -m commands.report` on a `train.py --framework tensorflow` output
directory: the same windows and post-processing as for a PyTorch model, on the Keras model's own outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

pytest.importorskip("keras_hub", reason="the TensorFlow path needs the tf extra: pip install '.[tf]'")

from test_multi_label import TOPICS, write_splits

import train
from commands.predict import main, read_settings, text_files
from commands.report import compute_report
from conftest import REPO_ROOT, SAMPLES
from loaders.files import read_text
from processing import keras_folder, keras_models

DATA = {"imdb": SAMPLES / "imdb", "wnut17": SAMPLES / "wnut17", "squad_v2": SAMPLES / "squad"}


def trained(task: str, model: Path, output_dir: Path, *extra: str) -> Path:
    argv = [
        "--framework", "tensorflow",
        "--task", task,
        "--data_dir", str(DATA[task]),
        "--model", str(model),
        "--output_dir", str(output_dir),
        "--per_device_train_batch_size", "4",
        "--learning_rate", "1e-3",
        "--num_train_epochs", "1",
        "--report_to", "none",
        *extra,
    ]  # fmt: skip
    assert train.main(argv) == 0
    return output_dir


@pytest.fixture(scope="module")
def classifier(tiny_model_dir, tmp_path_factory) -> Path:
    """Calibrated: its `model.keras` has the fitted temperature folded into the classifier layer."""
    output_dir = tmp_path_factory.mktemp("keras_imdb")
    return trained("imdb", tiny_model_dir, output_dir, "--max_seq_length", "64", "--calibrate", "temperature")


def predicted(model: Path, input_path: Path, out: Path, *extra: str) -> list[dict]:
    assert main(["--model", str(model), "--input", str(input_path), "--out", str(out), *extra]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_text_classification_gives_the_keras_models_own_labels_and_scores(classifier, tmp_path):
    rows = predicted(classifier, SAMPLES / "imdb" / "test", tmp_path / "out.jsonl")

    model, _, label_names = keras_models.load(classifier)
    tokenizer = AutoTokenizer.from_pretrained(classifier)
    files = text_files(SAMPLES / "imdb" / "test")
    assert [r["file"] for r in rows] == [f.relative_to(SAMPLES / "imdb" / "test").as_posix() for f in files]
    for row, file in zip(rows, files, strict=True):
        encoding = tokenizer(read_text(file), truncation=True, max_length=64, return_tensors="np")
        logits = model.predict_on_batch(
            {
                "token_ids": encoding["input_ids"],
                "segment_ids": encoding["token_type_ids"],
                "padding_mask": encoding["attention_mask"],
            }
        )["logits"][0].astype(np.float64)
        probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert row["label"] == label_names[int(probabilities.argmax())], row["file"]
        assert row["score"] == pytest.approx(probabilities.max(), abs=1e-5), row["file"]


def test_a_calibrated_classifier_predicts_the_scores_its_run_scored_at_the_temperature(classifier, tmp_path):
    """The temperature is folded into `model.keras`: predict, which divides by nothing, gives the scores the run's
    test split was scored with at that temperature (the unfolded model's would differ)."""
    temperature = keras_folder.read_labels(classifier)["settings"]["calibration_temperature"]
    assert temperature != 1.0
    assert (
        json.loads((classifier / "training_args.json").read_text())["calibration_temperature"] == temperature
    )
    rows = predicted(classifier, SAMPLES / "imdb" / "test", tmp_path / "out.jsonl")
    scored = [json.loads(line) for line in (classifier / "test_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == len(scored) == 16  # in the same order: the loader's, which is the files'
    assert [r["score"] for r in rows] == pytest.approx([s["score"] for s in scored], abs=1e-5)
    assert [r["label"] for r in rows] == [s["predicted"] for s in scored]


def test_a_classifier_trained_on_windows_predicts_each_text_as_evaluation_did(tiny_model_dir, tmp_path):
    """`--long_documents windows` on the Keras path: trained and scored on windows, each text's logits the mean of
    its windows', as predict reads the folder."""
    windows = ("--max_seq_length", "32", "--doc_stride", "8", "--long_documents", "windows")
    folder = trained("imdb", tiny_model_dir, tmp_path / "windows", *windows)
    results = json.loads((folder / "test_results.json").read_text())
    assert results["num_windows"] > results["num_examples"] == 16
    rows = predicted(folder, SAMPLES / "imdb" / "test", tmp_path / "out.jsonl")
    scored = [json.loads(line) for line in (folder / "test_predictions.jsonl").read_text().splitlines()]
    assert [r["score"] for r in rows] == pytest.approx([s["score"] for s in scored], abs=1e-5)
    assert [r["label"] for r in rows] == [s["predicted"] for s in scored]
    assert sum(s["windows"] for s in scored) == results["num_windows"]


def test_multi_label_classification_predicts_at_the_tuned_threshold_as_evaluation_did(
    tiny_model_dir, tmp_path
):
    """Sigmoid scores trained with binary cross-entropy; the threshold tuned on validation is kept in
    `label_names.json`, and predict answers the test split with it as the run's scoring did."""
    (tmp_path / "data").mkdir()
    data = write_splits(tmp_path / "data")
    argv = [
        "--framework", "tensorflow", "--task", "multi-label-classification", "--data_dir", str(data),
        "--label_column", "topics", "--text_pair_column", "pair", "--label_names", *TOPICS,
        "--model", str(tiny_model_dir), "--output_dir", str(tmp_path / "out"), "--max_seq_length", "32",
        "--per_device_train_batch_size", "4", "--learning_rate", "1e-3", "--num_train_epochs", "1",
        "--report_to", "none",
    ]  # fmt: skip
    assert train.main(argv) == 0
    folder = tmp_path / "out"
    tuned = json.loads((folder / "eval_results.json").read_text())["best_threshold"]
    assert keras_folder.read_labels(folder)["settings"] == {"decision_threshold": tuned}
    assert json.loads((folder / "test_results.json").read_text())["decision_threshold"] == tuned

    rows = predicted(folder, data / "test.jsonl", tmp_path / "p.jsonl", "--text_pair_column", "pair")
    scored = [json.loads(line) for line in (folder / "test_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == len(scored) == 8
    for row, expected in zip(rows, scored, strict=True):
        assert row["scores"] == pytest.approx(expected["scores"], abs=1e-5)
        assert row["labels"] == expected["predicted"]


def test_token_classification_tags_each_document_as_evaluation_did(tiny_model_dir, tmp_path):
    """The run's `eval_predictions.jsonl` holds the tags evaluation read from the Keras model's outputs."""
    folder = trained("wnut17", tiny_model_dir, tmp_path / "tagger", "--max_seq_length", "128")

    rows = predicted(folder, SAMPLES / "wnut17" / "emerging.dev.conll", tmp_path / "out.jsonl")

    evaluated = [json.loads(line) for line in (folder / "eval_predictions.jsonl").read_text().splitlines()]
    assert [r["tokens"] for r in rows] == [e["tokens"] for e in evaluated]
    assert [r["tags"] for r in rows] == [e["predicted"] for e in evaluated]
    assert len({tag for r in rows for tag in r["tags"]}) > 1  # not one tag everywhere


def test_question_answering_reads_the_tuned_threshold_and_answers_at_evaluations_as_evaluation_did(
    tiny_model_dir, tmp_path
):
    """Predict reads the threshold the run tuned from `label_names.json` (a Keras model has no `config.json`);
    at evaluation's threshold it gives evaluation's answers, and the null odds evaluation computed."""
    argv = ["--max_seq_length", "128", "--doc_stride", "32"]
    folder = trained("squad_v2", tiny_model_dir, tmp_path / "qa", *argv)
    tuned = keras_folder.read_labels(folder)["settings"]["null_score_diff_threshold"]
    assert (
        read_settings(str(folder), AutoTokenizer.from_pretrained(folder), {}).null_score_diff_threshold
        == tuned
    )

    threshold = json.loads((folder / "eval_results.json").read_text())["null_score_diff_threshold"]
    dev = SAMPLES / "squad" / "dev-v2.0.json"
    rows = predicted(folder, dev, tmp_path / "out.jsonl", "--null_score_diff_threshold", str(threshold))

    answers = json.loads((folder / "predictions.json").read_text())
    null_odds = json.loads((folder / "null_odds.json").read_text())
    assert [r["id"] for r in rows] == list(answers)
    assert {r["id"]: r["answer"] for r in rows} == answers
    assert [r["null_odds"] for r in rows] == pytest.approx([null_odds[r["id"]] for r in rows], abs=1e-4)


def test_a_keras_folder_refuses_the_onnx_backend_in_one_line(classifier, tmp_path, capsys):
    argv = [
        "--model",
        str(classifier),
        "--input",
        str(SAMPLES / "imdb" / "test"),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main([*argv, "--backend", "onnx"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --backend onnx: {classifier} holds a Keras model (expected --backend torch, the default)"
    )


def test_the_data_report_counts_with_a_keras_folders_tokenizer(classifier, tiny_model_dir, tmp_path):
    cache = str(tmp_path / "cache")
    with_keras = compute_report("imdb", DATA["imdb"], model=str(classifier), cache_dir=cache)
    with_base = compute_report("imdb", DATA["imdb"], model=str(tiny_model_dir), cache_dir=cache)
    assert [s.lengths for s in with_keras.splits] == [s.lengths for s in with_base.splits]
    assert with_keras.model == str(classifier)


def test_predict_and_the_report_import_tensorflow_only_for_a_keras_folder():
    """They tell a Keras folder by its files: a PyTorch model is predicted on without TensorFlow installed."""
    script = (
        "import sys, commands.predict, commands.report, runner.finish\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras', 'keras_hub') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
