"""`train.py`, the data report and predict on data in any format: task and format apart, column and label flags,
format detection, and a flag the format has no use for refused in one line."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

import train
from commands.predict import main as predict_main
from commands.report import compute_report
from conftest import REPO_ROOT, SAMPLES

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

POSITIVE = ("great", "lovely", "superb", "fun")
NEGATIVE = ("awful", "boring", "bad", "dull")


def write_reviews(path: Path, count: int) -> Path:
    """A CSV of `review,stars,rid` rows whose label follows its words, with the file's own column names."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "stars", "rid"])
        for i in range(count):
            words, label = (POSITIVE, "pos") if i % 2 else (NEGATIVE, "neg")
            writer.writerow([" ".join(words[(i + k) % 4] for k in range(5)), label, f"r{i}"])
    return path


def common(model: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--model", str(model),
        "--output_dir", str(output_dir),
        "--max_seq_length", "32",
        "--per_device_train_batch_size", "4",
        "--num_train_epochs", "1",
        "--report_to", "none",
        *extra,
    ]  # fmt: skip


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_csv_with_its_own_column_names_trains_and_predicts_keeping_its_ids(tiny_model_dir, tmp_path):
    train_file = write_reviews(tmp_path / "train.csv", 24)
    dev_file = write_reviews(tmp_path / "dev.csv", 6)
    out = tmp_path / "out"
    columns = ["--text_column", "review", "--label_column", "stars", "--id_column", "rid"]
    argv = [
        "--task",
        "text-classification",
        "--train_file",
        str(train_file),
        "--validation_file",
        str(dev_file),
    ]
    assert train.main([*argv, *columns, *common(tiny_model_dir, out)]) == 0
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "neg", "1": "pos"}
    assert len(read_lines(out / "eval_predictions.jsonl")) == 6

    predictions = tmp_path / "predictions.jsonl"
    flags = ["--text_column", "review", "--id_column", "rid"]
    assert (
        predict_main(["--model", str(out), "--input", str(dev_file), "--out", str(predictions), *flags]) == 0
    )
    lines = read_lines(predictions)
    assert [line["id"] for line in lines] == [f"r{i}" for i in range(6)]
    assert {line["label"] for line in lines} <= {"neg", "pos"}


def test_predict_on_a_table_without_the_text_column_names_the_columns_it_has(
    tiny_model_dir, tmp_path, capsys
):
    out = tmp_path / "out"
    assert (
        train.main(["--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), *common(tiny_model_dir, out)]) == 0
    )
    table = write_reviews(tmp_path / "new.csv", 2)
    assert predict_main(["--model", str(out), "--input", str(table), "--out", str(tmp_path / "p.jsonl")]) == 2
    assert "new.csv: has no column 'text' (its columns: review, stars, rid)" in capsys.readouterr().err


def test_question_answering_from_json_lines_without_titles_holds_out_whole_contexts(tiny_model_dir, tmp_path):
    contexts = [f"Paris is the capital of country number {i} in the list." for i in range(6)]
    rows = [
        {"id": f"q{i}-{j}", "question": "What is the capital?", "context": context,
         "answers": {"text": ["Paris"], "answer_start": [0]} if j else {"text": [], "answer_start": []}}
        for i, context in enumerate(contexts)
        for j in range(2)
    ]  # fmt: skip
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    extra = ("--validation_size", "0.34", "--doc_stride", "8")
    argv = ["--task", "question-answering", "--train_file", str(data)]
    assert train.main([*argv, *common(tiny_model_dir, out, *extra)]) == 0
    held_out = {qid.split("-")[0] for qid in json.loads((out / "predictions.json").read_text())}
    trained = {row["id"].split("-")[0] for row in rows} - held_out
    assert held_out and trained
    assert len(json.loads((out / "predictions.json").read_text())) == 2 * len(held_out)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--task", "ner", "--data_dir", str(SAMPLES / "wnut17"), "--text_column", "review"],
         "--text_column 'review': expected no value with --data_format conll, which has no columns"),
        (["--task", "question-answering", "--data_format", "conll", "--data_dir", str(SAMPLES / "wnut17")],
         "--data_format conll holds token-classification data, not data for --task question-answering"),
        (["--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--strict"],
         "--strict True: expected no value with --data_format imdb, which has no strict"),
        (["--task", "text-classification"], "--task text-classification reads your files: give --data_dir or --train_file"),
    ],
)  # fmt: skip
def test_a_flag_the_data_format_has_no_use_for_is_one_line(argv, expected, tiny_model_dir, tmp_path, capsys):
    assert train.main([*argv, *common(tiny_model_dir, tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {expected}"


def test_the_format_is_detected_from_the_files(tmp_path):
    """The generic task names read the sample folders by what they hold, as the historical names do."""
    report = compute_report("token-classification", SAMPLES / "wnut17", cache_dir=str(tmp_path / "cache"))
    assert {split.split for split in report.splits} == {"train", "validation", "test"}
    texts = compute_report("text-classification", SAMPLES / "imdb", cache_dir=str(tmp_path / "cache"))
    imdb = compute_report("imdb", SAMPLES / "imdb", cache_dir=str(tmp_path / "cache"))
    assert [s.counts for s in texts.splits] == [s.counts for s in imdb.splits]
    assert texts.splits[0].examples == imdb.splits[0].examples > 0


def test_the_report_reads_a_table_through_the_column_flags(tmp_path):
    data = write_reviews(tmp_path / "train.csv", 10)
    report = compute_report(
        "text-classification",
        cache_dir=str(tmp_path / "cache"),
        train_file=str(data),
        text_column="review",
        label_column="stars",
    )
    assert report.splits[0].counts == {"neg": 5, "pos": 5}


def test_help_groups_the_flags():
    shown = subprocess.run(
        [sys.executable, "train.py", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    groups = [
        "task and data:",
        "columns and labels",
        "model:",
        "training:",
        "task settings:",
        "checkpoints, outputs",
    ]
    positions = [shown.index(group) for group in groups]
    assert positions == sorted(positions)
    group = shown[shown.index("columns and labels") : shown.index("model:")]
    assert "  --text_column" in group and "  --train_file" not in group
