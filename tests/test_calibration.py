"""Calibrated confidence: ECE and the reliability diagram, temperature fitting and folding, `--calibrate`, and the
robust tuning of the no-answer threshold."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from datasets import Dataset
from transformers import AutoConfig, BertForSequenceClassification

import train
from commands.predict import predict
from conftest import SAMPLES, refused_before_loading, tiny_bert_config
from processing import question_answering
from processing.analysis import write_reliability
from processing.calibration import (
    TEMPERATURE_RANGE,
    Confidence,
    calibration_bins,
    expected_calibration_error,
    fit_temperature,
    fold_temperature,
    logits_top_class,
    softmax,
)
from processing.question_answering import Answers, abstention_confidence, shrunk_null_threshold
from processing.token_classification import reduce_outputs
from runner.checks import check_task_flags
from runner.config import TrainingConfig

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def test_ece_of_hand_made_probabilities():
    # Four predictions at confidence 0.9 (three right) and two at 0.55 (one right):
    # 4/6 * |0.75 - 0.9| + 2/6 * |0.5 - 0.55| = 0.1 + 0.0166...
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9], [0.55, 0.45], [0.45, 0.55]])
    labels = np.array([0, 0, 1, 0, 0, 0])
    confidence = logits_top_class(np.log(probabilities), labels, 1.0, "the predicted label")

    assert confidence.confidences.tolist() == pytest.approx([0.9, 0.9, 0.9, 0.9, 0.55, 0.55])
    assert confidence.correct.tolist() == [True, True, True, False, True, False]
    assert expected_calibration_error(confidence) == pytest.approx(0.1 + 0.05 / 3)
    counts = [b["count"] for b in calibration_bins(confidence)]
    assert len(counts) == 15 and counts[13] == 4 and counts[8] == 2 and sum(counts) == 6


def test_bins_are_closed_on_the_right_and_a_calibrated_model_has_no_error():
    # 0.6 is the upper edge of bin 8, (8/15, 9/15]; 1.0 belongs to the last bin.
    at_edges = Confidence(np.array([0.6, 1.0]), np.array([True, True]), "x")
    counts = [b["count"] for b in calibration_bins(at_edges)]
    assert counts[8] == 1 and counts[14] == 1

    calibrated = Confidence(np.array([1.0, 1.0, 0.5, 0.5]), np.array([True, True, True, False]), "x")
    assert expected_calibration_error(calibrated) == 0.0


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_fitting_recovers_the_temperature_the_labels_were_drawn_with(true_temperature):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20000, 5))
    probabilities = softmax(logits, true_temperature)
    labels = np.array([rng.choice(5, p=p) for p in probabilities])

    assert fit_temperature(logits, labels) == pytest.approx(true_temperature, rel=0.05)


def test_a_split_without_a_finite_optimum_keeps_the_temperature_in_range():
    logits = np.array([[3.0, -1.0], [-2.0, 2.0]])
    all_right = fit_temperature(logits, np.array([0, 1]))  # the likelihood grows as T -> 0
    all_wrong = fit_temperature(logits, np.array([1, 0]))  # ... and as T -> infinity
    assert TEMPERATURE_RANGE[0] <= all_right < 1 < all_wrong <= TEMPERATURE_RANGE[1]


def test_folding_divides_the_logits_and_keeps_the_predictions(tiny_tokenizer):
    model = BertForSequenceClassification(tiny_bert_config(len(tiny_tokenizer), num_labels=3)).eval()
    inputs = tiny_tokenizer(["a great film", "dull"], padding=True, return_tensors="pt")
    before = model(**inputs).logits.detach()

    fold_temperature(model, 2.0)

    after = model(**inputs).logits.detach()
    assert np.allclose(after.numpy(), before.numpy() / 2.0, atol=1e-6)
    assert after.argmax(-1).tolist() == before.argmax(-1).tolist()


def test_word_confidence_is_read_from_each_seen_words_first_sub_token():
    logits = np.arange(2 * 5 * 3, dtype=float).reshape(2, 5, 3)
    word_ids = [[-1, 0, 0, 1, -1], [-1, 0, 1, 1, -1]]  # the first document's third word was truncated

    reduced = reduce_outputs({"logits": logits}, Dataset.from_dict({"word_ids": word_ids}), None)

    word_logits = np.concatenate(list(reduced["word_logits"]))
    assert word_logits.tolist() == [logits[0, 1].tolist(), logits[0, 3].tolist(), logits[1, 1].tolist(),
                                    logits[1, 2].tolist()]  # fmt: skip
    assert [words.tolist() for words in reduced["words"]] == [[0, 1], [0, 1]]


def test_the_answer_or_abstain_decision_is_scored_against_answerability():
    answers = Answers(
        ids=["a", "b", "c"],
        best_texts=["x", "y", "z"],
        start_chars=np.zeros(3),
        end_chars=np.zeros(3),
        null_odds=np.array([-2.0, 1.0, 3.0]),
        answered=np.array(
            [True, True, False]
        ),  # at threshold 2: "b" is answered though its null odds are > 0
    )
    raw = {"answers": [{"text": ["x"]}, {"text": []}, {"text": []}]}

    confidence = abstention_confidence(answers, raw, threshold=2.0)

    sigmoid = [1 / (1 + math.exp(-v)) for v in (4.0, 1.0, -1.0)]  # threshold - null odds
    assert confidence.confidences.tolist() == pytest.approx([sigmoid[0], sigmoid[1], 1 - sigmoid[2]])
    assert confidence.correct.tolist() == [True, False, True]


def test_the_reliability_diagram_and_its_table_are_written(tmp_path):
    confidence = Confidence(np.array([0.9, 0.9, 0.55]), np.array([True, False, True]), "the predicted label")

    written = write_reliability(tmp_path, "test", confidence)

    assert (tmp_path / "test_reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = json.loads((tmp_path / "test_calibration.json").read_text())
    assert table["ece"] == pytest.approx(2 / 3 * 0.4 + 1 / 3 * 0.45)
    assert [w.path.name for w in written] == ["test_reliability.png", "test_calibration.json"]
    assert "ECE 0.4167" in written[0].caption


def test_the_tuned_null_threshold_is_shrunk_toward_zero_by_the_validation_size():
    prior = question_answering.NULL_THRESHOLD_PRIOR
    assert shrunk_null_threshold(-4.0, prior) == -2.0
    assert shrunk_null_threshold(-4.0, 0) == 0.0
    assert abs(shrunk_null_threshold(-4.0, 100)) < abs(shrunk_null_threshold(-4.0, 10000)) < 4.0

    metrics = {"best_f1_thresh": -3.0, "total": 3 * prior}
    tuned = SimpleNamespace(tune_null_threshold=True, null_score_diff_threshold=0.0)
    fixed = SimpleNamespace(tune_null_threshold=False, null_score_diff_threshold=1.5)
    assert question_answering.calibrate(tuned, metrics) == {"null_score_diff_threshold": -2.25}
    assert question_answering.calibrate(fixed, metrics) == {"null_score_diff_threshold": 1.5}


def imdb_run(model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--model", str(model), "--output_dir", str(out),
        "--max_seq_length", "64", "--per_device_train_batch_size", "4", "--learning_rate", "1e-3",
        "--num_train_epochs", "1", "--report_to", "none", *extra,
    ]  # fmt: skip


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_the_saved_temperature_changes_predicts_scores_and_not_its_labels(tiny_model_dir, tmp_path):
    plain, calibrated = tmp_path / "plain", tmp_path / "calibrated"
    assert train.main(imdb_run(tiny_model_dir, plain)) == 0
    assert train.main(imdb_run(tiny_model_dir, calibrated, "--calibrate", "temperature")) == 0

    temperature = AutoConfig.from_pretrained(calibrated).calibration_temperature
    assert (
        json.loads((calibrated / "training_args.json").read_text())["calibration_temperature"] == temperature
    )
    assert TEMPERATURE_RANGE[0] <= temperature <= TEMPERATURE_RANGE[1] and temperature != 1.0
    results = json.loads((calibrated / "test_results.json").read_text())
    plain_results = json.loads((plain / "test_results.json").read_text())
    # Same training, so the unscaled logits are the plain run's: their ECE is the plain run's.
    assert results["ece_before_temperature"] == pytest.approx(plain_results["ece"])
    assert "ece_before_temperature" not in plain_results
    assert AutoConfig.from_pretrained(plain).calibration_temperature == 1.0  # what its logits were divided by
    assert "ece_before_temperature" not in json.loads((calibrated / "eval_results.json").read_text())

    reviews = SAMPLES / "imdb" / "test" / "pos"
    before = {row["file"]: row for row in predict(str(plain), reviews, {})}
    after = {row["file"]: row for row in predict(str(calibrated), reviews, {})}
    assert before.keys() == after.keys() and len(after) > 1
    assert {f: r["label"] for f, r in after.items()} == {f: r["label"] for f, r in before.items()}
    assert any(after[f]["score"] != before[f]["score"] for f in after)
    for file, row in after.items():  # two classes: the top score is sigmoid(|logit difference| / T)
        expected = 1 / (1 + math.exp(-logit(before[file]["score"]) / temperature))
        assert row["score"] == pytest.approx(expected, abs=1e-4)  # float32 logits, 6-digit scores

    card = (calibrated / "README.md").read_text()
    assert "ece_before_temperature" in card and f"T = {temperature:g}" in card
    assert "(test_reliability.png)" in card and (calibrated / "eval_reliability.png").is_file()


@pytest.mark.parametrize(
    "task, extra, message",
    [
        ("squad_v2", [], "--calibrate 'temperature': expected none for --task squad_v2"),
        ("multi-label-classification", [], "--calibrate 'temperature': expected none for --task multi-label"),
    ],
)  # fmt: skip
def test_calibrate_is_refused_in_one_line_where_it_does_not_fit(
    task, extra, message, tmp_path, capsys, monkeypatch
):
    argv = ["--task", task, "--output_dir", str(tmp_path), "--calibrate", "temperature", *extra]
    assert message in refused_before_loading(monkeypatch, capsys, argv)


def test_a_config_file_value_outside_the_choices_is_refused(tmp_path):
    config = TrainingConfig(task="imdb", output_dir=str(tmp_path), calibrate="platt")
    with pytest.raises(ValueError, match=r"^--calibrate 'platt': expected none or temperature$"):
        check_task_flags(config)


def test_a_token_classification_run_fits_saves_and_reports_a_temperature(
    tiny_model_dir, tiny_tokenizer, tmp_path
):
    argv = [
        "--task", "wnut17", "--data_dir", str(SAMPLES / "wnut17"), "--model", str(tiny_model_dir),
        "--output_dir", str(tmp_path), "--max_seq_length", "64", "--per_device_train_batch_size", "4",
        "--learning_rate", "1e-3", "--num_train_epochs", "1", "--report_to", "none", "--calibrate", "temperature",
    ]  # fmt: skip
    assert train.main(argv) == 0

    temperature = AutoConfig.from_pretrained(tmp_path).calibration_temperature
    assert TEMPERATURE_RANGE[0] <= temperature <= TEMPERATURE_RANGE[1]
    results = json.loads((tmp_path / "test_results.json").read_text())
    assert 0 <= results["ece"] <= 1 and 0 <= results["ece_before_temperature"] <= 1
    table = json.loads((tmp_path / "test_calibration.json").read_text())
    assert table["ece"] == pytest.approx(results["ece"])
    # One decision per word the model saw: a word cut off by the 64 sub-tokens has no confidence.
    documents = [json.loads(line)["tokens"] for line in (tmp_path / "test_predictions.jsonl").open()]
    encoding = tiny_tokenizer(documents, is_split_into_words=True, truncation=True, max_length=64)
    seen = sum(len({w for w in encoding.word_ids(i) if w is not None}) for i in range(len(documents)))
    assert seen < sum(map(len, documents))  # the sample has such a word
    assert sum(b["count"] for b in table["bins"]) == seen
