"""`train.py` end to end on the samples with a tiny random BERT: outputs, pipelines, resume, two processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer, pipeline

import processing  # noqa: F401  (registers the extractive QA pipeline)
import train
from commands.predict import predict, read_settings
from conftest import REPO_ROOT, SAMPLES, reset_accelerate
from processing.question_answering import shrunk_null_threshold
from runner import checkpoints, finish

DATA = {"imdb": SAMPLES / "imdb", "wnut17": SAMPLES / "wnut17", "squad_v2": SAMPLES / "squad"}
TIMING_KEYS = {"runtime_s"}


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def flags(task: str, model: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--task", task,
        "--data_dir", str(DATA[task]),
        "--model", str(model),
        "--output_dir", str(output_dir),
        "--max_seq_length", "64",
        "--doc_stride", "16",
        "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "3",
        "--learning_rate", "1e-3",
        "--num_train_epochs", "1",
        "--report_to", "none",
        *extra,
    ]  # fmt: skip


def without_timing(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_text_classification_run_writes_a_model_pipeline_can_use(tiny_model_dir, tmp_path):
    assert train.main(flags("imdb", tiny_model_dir, tmp_path)) == 0

    results = read_json(tmp_path / "eval_results.json")
    assert set(results) == {"accuracy", "f1", "ece", "num_examples", "runtime_s"}
    assert results["num_examples"] == 3  # 10% of the 24 train reviews, stratified
    assert read_json(tmp_path / "test_results.json")["num_examples"] == 16
    config = read_json(tmp_path / "config.json")
    assert config["id2label"] == {"0": "neg", "1": "pos"}
    assert (tmp_path / "model.safetensors").is_file()
    lines = (tmp_path / "test_predictions.jsonl").read_text().splitlines()
    assert len(lines) == 16 and json.loads(lines[0])["label"] in ("neg", "pos")
    assert read_json(tmp_path / "training_args.json")["task"] == "imdb"

    card = (tmp_path / "README.md").read_text()
    assert "pipeline_tag: text-classification" in card and "accuracy" in card
    assert (tmp_path / "test_confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(test_confusion_matrix.png)" in card  # the card embeds the error analysis

    classifier = pipeline("text-classification", model=str(tmp_path))
    assert classifier("a great film")[0]["label"] in ("neg", "pos")


def test_token_classification_run_scores_every_word_and_serves_a_pipeline(tiny_model_dir, tmp_path):
    assert train.main(flags("wnut17", tiny_model_dir, tmp_path, "--num_train_epochs", "2")) == 0

    results = read_json(tmp_path / "eval_results.json")
    assert {"precision", "recall", "f1", "per_type", "num_examples", "runtime_s"} <= set(results)
    assert results["num_examples"] == 6
    predictions = [
        json.loads(line) for line in (tmp_path / "eval_predictions.jsonl").read_text().splitlines()
    ]
    assert all(len(p["predicted"]) == len(p["tokens"]) for p in predictions)
    assert read_json(tmp_path / "config.json")["id2label"]["9"] == "B-person"

    tagger = pipeline("token-classification", model=str(tmp_path), aggregation_strategy="simple")
    assert isinstance(tagger("john smith went to london"), list)


def test_question_answering_run_writes_official_prediction_files(tiny_model_dir, tmp_path):
    # Letter-by-letter tokens make questions long: windows of 128 leave the context room for a stride of 32.
    argv = flags("squad_v2", tiny_model_dir, tmp_path, "--max_seq_length", "128", "--doc_stride", "32")
    assert train.main(argv) == 0

    results = read_json(tmp_path / "eval_results.json")
    for key in ("exact", "f1", "total", "HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh"):
        assert key in results
    assert results["total"] == results["num_examples"] == 14
    predictions = read_json(tmp_path / "predictions.json")
    null_odds = read_json(tmp_path / "null_odds.json")
    assert len(predictions) == len(null_odds) == 14
    assert all(isinstance(text, str) for text in predictions.values())

    answerer = pipeline("extractive-question-answering", model=str(tmp_path))
    answer = answerer(question="where?", context="the city of london", handle_impossible_answer=True)
    assert answer["answer"] in ("", "the city of london"[answer["start"] : answer["end"]])


def test_tuned_null_threshold_scores_the_test_split_and_is_saved_in_the_models_config(
    tiny_model_dir, tmp_path
):
    data_dir, output_dir = tmp_path / "data", tmp_path / "out"
    data_dir.mkdir()
    for source, name in [("train", "train"), ("dev", "dev"), ("dev", "test")]:
        shutil.copy(DATA["squad_v2"] / f"{source}-v2.0.json", data_dir / f"{name}-v2.0.json")
    argv = flags("squad_v2", tiny_model_dir, output_dir, "--max_seq_length", "128", "--doc_stride", "32")
    argv[argv.index("--data_dir") + 1] = str(data_dir)
    assert train.main(argv) == 0

    validation = read_json(output_dir / "eval_results.json")
    tuned = shrunk_null_threshold(validation["best_f1_thresh"], validation["total"])
    assert validation["null_score_diff_threshold"] == 0.0
    assert 0 <= validation["abstain_ece"] <= 1 and (output_dir / "test_reliability.png").is_file()
    assert read_json(output_dir / "test_results.json")["null_score_diff_threshold"] == tuned
    assert (
        read_json(output_dir / "training_args.json")["null_score_diff_threshold"] == 0.0
    )  # the flag as given
    assert AutoConfig.from_pretrained(output_dir).null_score_diff_threshold == tuned
    assert read_settings(
        str(output_dir), AutoTokenizer.from_pretrained(output_dir), {}
    ).null_score_diff_threshold == (tuned)

    # predict answers the test questions as the test split was scored, at the tuned threshold.
    rows = predict(str(output_dir), data_dir / "test-v2.0.json", {})
    assert {row["id"]: row["answer"] for row in rows} == read_json(output_dir / "test_predictions.json")
    assert (
        f"null_score_diff_threshold={tuned:.4f}".rstrip("0").rstrip(".")
        in (output_dir / "README.md").read_text()
    )


def test_resume_from_checkpoint_finishes_exactly_like_an_uninterrupted_run(tiny_model_dir, tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    common = ("--num_train_epochs", "2", "--checkpointing_steps", "3")
    assert train.main(flags("imdb", tiny_model_dir, whole, *common)) == 0
    checkpoints = {p.name for p in (whole / "checkpoints").iterdir()}
    assert checkpoints == {"step_3", "step_6", "step_9", "step_12"}  # 2 epochs of 6 batches (21 reviews / 4)

    # A run that died after step 3: only its checkpoint survives.
    (resumed / "checkpoints").mkdir(parents=True)
    os.rename(whole / "checkpoints" / "step_3", resumed / "checkpoints" / "step_3")
    reset_accelerate()
    assert (
        train.main(flags("imdb", tiny_model_dir, resumed, *common, "--resume_from_checkpoint", "latest")) == 0
    )

    for name in ("eval_results.json", "test_results.json"):
        assert without_timing(read_json(resumed / name)) == without_timing(read_json(whole / name))
    weights_whole = load_file(whole / "model.safetensors")
    weights_resumed = load_file(resumed / "model.safetensors")
    differences = {k: (weights_whole[k] - weights_resumed[k]).abs().max().item() for k in weights_whole}
    assert max(differences.values()) == 0.0, differences


def test_a_checkpoint_left_half_written_is_never_resumed_from(tiny_model_dir, tmp_path):
    (tmp_path / "checkpoints" / "step_99.partial").mkdir(parents=True)
    assert checkpoints.latest_checkpoint(tmp_path) is None


def run_two_processes(argv: list[str]) -> None:
    """Two real CPU processes with gloo (`accelerate launch --cpu --num_processes 2` would start only one)."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
        "train.py", *argv,
    ]  # fmt: skip
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]


def test_training_under_two_processes_saves_a_sane_model(tiny_model_dir, tmp_path):
    run_two_processes(flags("wnut17", tiny_model_dir, tmp_path, "--num_train_epochs", "2"))
    results = read_json(tmp_path / "eval_results.json")
    assert results["num_examples"] == 6 and 0.0 <= results["f1"] <= 1.0
    predictions = (tmp_path / "test_predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 6  # every test document once, not once per process
    assert pipeline("token-classification", model=str(tmp_path))("john went to london") is not None


def test_evaluation_under_two_processes_gives_exactly_the_metrics_of_one(tiny_model_dir, tmp_path):
    """gather_for_metrics must count each of the 16 test reviews once, though 16 is not a multiple of 2 x 3."""
    evaluate_only = ("--do_train", "false", "--eval_split", "test")
    single = tmp_path / "single"
    assert train.main(flags("imdb", tiny_model_dir, single, *evaluate_only)) == 0

    double = tmp_path / "double"
    run_two_processes(flags("imdb", tiny_model_dir, double, *evaluate_only))
    one = read_json(single / "eval_results.json")
    two = read_json(double / "eval_results.json")
    assert one["num_examples"] == two["num_examples"] == 16
    assert without_timing(one) == without_timing(two)
    assert (single / "eval_predictions.jsonl").read_text() == (double / "eval_predictions.jsonl").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "imdb", "--data_dir", "no/such/folder"], "does not exist"),
        (["--task", "wnut17", "--data_dir", str(SAMPLES / "imdb")], "has no train file"),
        (["--task", "sentiment", "--data_dir", str(SAMPLES / "imdb")], "unknown --task 'sentiment'"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(argv, message, tmp_path, capsys):
    assert train.main([*argv, "--output_dir", str(tmp_path), "--report_to", "none"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    err = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_the_embedded_model_fine_tunes_for_real(tmp_path):
    """The default --model resolves to the installed package: no download, real weights, a real step."""
    argv = [
        "--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--output_dir", str(tmp_path),
        "--max_seq_length", "32", "--max_train_samples", "8", "--max_eval_samples", "3",
        "--per_device_train_batch_size", "4", "--num_train_epochs", "1", "--report_to", "none",
    ]  # fmt: skip
    assert train.main(argv) == 0
    config = read_json(tmp_path / "config.json")
    assert config["hidden_size"] == 384 and config["num_hidden_layers"] == 6
    assert read_json(tmp_path / "eval_results.json")["num_examples"] == 3


def test_push_to_hub_uploads_the_finished_output_dir(tiny_model_dir, tmp_path, monkeypatch):
    pushed = []
    monkeypatch.setattr(
        finish, "push_output_dir", lambda folder, repo_id: pushed.append((folder, repo_id)) or "url"
    )
    argv = flags("imdb", tiny_model_dir, tmp_path, "--push_to_hub", "--hub_model_id", "someone/imdb-tiny")
    assert train.main(argv) == 0
    assert pushed == [(tmp_path, "someone/imdb-tiny")]
    assert "someone/imdb-tiny" in (tmp_path / "README.md").read_text()
