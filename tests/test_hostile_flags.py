"""Careless and hostile use of `train.py`: bad flags, a reused output directory, resuming another run's checkpoint,
and writes that fail half-way. Each bad flag is one line naming it, before anything is loaded or written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from transformers import BertModel, PreTrainedTokenizerBase

import loaders
import train
from conftest import REPO_ROOT, SAMPLES, reset_accelerate, tiny_bert_config
from processing import analysis, classification
from processing.tasks import Scored
from runner import checkpoints
from runner import config as run_config
from runner import output_dir as run_output_dir

FAST = [
    "--max_seq_length", "32", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--num_train_epochs", "1", "--max_train_samples", "8", "--max_eval_samples", "4", "--report_to", "none",
]  # fmt: skip


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def imdb(model: Path, output_dir: Path, *extra: str, data: Path = SAMPLES / "imdb") -> list[str]:
    return [
        "--task", "imdb", "--data_dir", str(data), "--model", str(model), "--output_dir", str(output_dir),
        *FAST, *extra,
    ]  # fmt: skip


def error_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error: ")]


@pytest.fixture
def no_loading(monkeypatch) -> list:
    """Records any attempt to load data: flag checks must come first."""
    calls = []
    monkeypatch.setattr(loaders, "load_dataset", lambda *args, **kwargs: calls.append(args) or 1 / 0)
    return calls


@pytest.mark.parametrize(
    "extra, flag",
    [
        (["--num_train_epochs", "0"], "--num_train_epochs 0.0"),
        (["--num_train_epochs", "-2"], "--num_train_epochs -2.0"),
        (["--learning_rate", "0"], "--learning_rate 0.0"),
        (["--learning_rate", "nan"], "--learning_rate nan"),
        (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps 0"),
        (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size 0"),
        (["--per_device_eval_batch_size", "-3"], "--per_device_eval_batch_size -3"),
        (["--warmup_ratio", "1.5"], "--warmup_ratio 1.5"),
        (["--validation_size", "0"], "--validation_size 0.0"),
        (["--validation_size", "2.5"], "--validation_size 2.5"),
        (["--max_seq_length", "0"], "--max_seq_length 0"),
        (["--max_seq_length", "1024"], "--max_seq_length 1024: expected at most 512"),
        (["--checkpointing_steps", "abc"], "--checkpointing_steps 'abc'"),
        (["--checkpointing_steps", "0"], "--checkpointing_steps '0'"),
        (["--save_total_limit", "0"], "--save_total_limit 0"),
        (["--max_train_samples", "0"], "--max_train_samples 0"),
        (["--seed", "-1"], "--seed -1"),
        (["--report_to", "tensorbored"], "--report_to 'tensorbored'"),
        (["--resume_from_checkpoint", "no/such/checkpoint"], "--resume_from_checkpoint 'no/such/checkpoint'"),
        (["--resume_from_checkpoint", "latest", "--overwrite_output_dir"], "--overwrite_output_dir"),
        (["--do_train", "false", "--resume_from_checkpoint", "latest"], "--resume_from_checkpoint 'latest'"),
        (["--framework", "tensorflow", "--warmup_ratio", "-0.1"], "--warmup_ratio -0.1"),
    ],
)
def test_a_bad_flag_is_one_line_naming_it_before_any_data_is_loaded(
    extra, flag, tiny_model_dir, tmp_path, no_loading, capsys
):
    output_dir = tmp_path / "out"
    assert train.main(imdb(tiny_model_dir, output_dir, *extra)) == 2
    errors = error_lines(capsys)
    assert len(errors) == 1 and errors[0].startswith(f"error: {flag}"), errors
    assert no_loading == [] and not output_dir.exists()


def test_output_dir_that_is_a_file_or_holds_the_data_or_the_model_is_refused(
    tiny_model_dir, tmp_path, no_loading, capsys
):
    data = tmp_path / "data"
    shutil.copytree(SAMPLES / "imdb", data)
    a_file = tmp_path / "results.txt"
    a_file.write_text("mine\n")
    train_file = tmp_path / "files" / "train.conll"
    train_file.parent.mkdir()
    shutil.copy(SAMPLES / "wnut17" / "wnut17train.conll", train_file)
    cases = [
        (imdb(tiny_model_dir, a_file), f"--output_dir {a_file}: {a_file} is a file"),
        (imdb(tiny_model_dir, a_file / "out"), f"--output_dir {a_file / 'out'}: {a_file} is a file"),
        (imdb(tiny_model_dir, data / "runs" / "1", data=data), f"is inside --data_dir {data}"),
        (imdb(tiny_model_dir, data, data=data), f"is inside --data_dir {data}"),
        (imdb(tiny_model_dir, tiny_model_dir), "is the --model folder"),
        (
            ["--task", "ner", "--train_file", str(train_file), "--model", str(tiny_model_dir), "--output_dir",
             str(train_file.parent), *FAST],
            f"is the folder of --train_file {train_file}",
        ),
    ]  # fmt: skip
    for argv, message in cases:
        assert train.main(argv) == 2
        errors = error_lines(capsys)
        assert len(errors) == 1 and errors[0].startswith("error: --output_dir") and message in errors[0], (
            errors
        )
    assert no_loading == [] and a_file.read_text() == "mine\n"
    assert sorted(p.name for p in data.iterdir()) == ["test", "train"]


@pytest.mark.parametrize(
    "task, data, extra, message",
    [
        (
            "imdb",
            "imdb",
            ["--eval_split", "unsupervised"],
            "--eval_split 'unsupervised' has 3 missing labels",
        ),
        ("imdb", "imdb", ["--eval_split", "dev"], "--eval_split 'dev' is not in the data"),
        (
            "imdb",
            "imdb",
            ["--validation_size", "24"],
            "--validation_size 24: expected fewer examples than the 24",
        ),
        (
            "squad_v2",
            "squad",
            ["--max_seq_length", "20", "--doc_stride", "4"],
            "--max_seq_length 20 leaves no room",
        ),
        (
            "squad_v2",
            "squad",
            ["--max_seq_length", "64", "--doc_stride", "64"],
            "--doc_stride 64: expected less",
        ),
    ],
)
def test_a_flag_that_does_not_fit_the_data_is_refused_before_tokenizing(
    task, data, extra, message, tiny_model_dir, tmp_path, monkeypatch, capsys
):
    mapped = []
    monkeypatch.setattr(datasets.Dataset, "map", lambda *args, **kwargs: mapped.append(args) or 1 / 0)
    argv = [
        "--task", task, "--data_dir", str(SAMPLES / data), "--model", str(tiny_model_dir),
        "--output_dir", str(tmp_path / "out"), "--report_to", "none", *extra,
    ]  # fmt: skip
    assert train.main(argv) == 2
    errors = error_lines(capsys)
    assert len(errors) == 1 and errors[0].startswith(f"error: {message}"), errors
    assert mapped == [] and not (tmp_path / "out").exists()


def test_a_question_too_long_for_the_window_is_named(tiny_model_dir, tmp_path, capsys):
    argv = [
        "--task", "squad_v2", "--data_dir", str(SAMPLES / "squad"), "--model", str(tiny_model_dir),
        "--output_dir", str(tmp_path), "--max_seq_length", "40", "--doc_stride", "8", "--report_to", "none",
    ]  # fmt: skip
    assert train.main(argv) == 2
    (error,) = error_lines(capsys)
    squad = json.loads((SAMPLES / "squad" / "train-v2.0.json").read_text())
    ids = {
        q["id"] for article in squad["data"] for paragraph in article["paragraphs"] for q in paragraph["qas"]
    }
    named = error.split("question ")[1].split(" ")[0].strip("'")
    assert named in ids and "special ones" in error


def test_the_keras_path_refuses_an_unlabelled_eval_split_too(tiny_model_dir, tmp_path):
    """In a child process: TensorFlow's threads in this one would make later tests' forked workers hang."""
    pytest.importorskip("keras_hub")
    argv = imdb(tiny_model_dir, tmp_path / "out", "--framework", "tensorflow", "--eval_split", "unsupervised")
    child = subprocess.run(
        [sys.executable, "train.py", *argv], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert child.returncode == 2
    errors = [line for line in child.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in child.stderr
    assert len(errors) == 1 and "--eval_split 'unsupervised' has 3 missing labels" in errors[0]


@pytest.fixture(scope="module")
def finished_run(tiny_model_dir, tmp_path_factory) -> Path:
    """A finished run with checkpoints, every analysis figure and a test split: what a careless rerun meets."""
    output_dir = tmp_path_factory.mktemp("finished")
    reset_accelerate()
    assert train.main(imdb(tiny_model_dir, output_dir, "--checkpointing_steps", "1")) == 0
    reset_accelerate()
    return output_dir


def copy_of(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(run, copy)
    return copy


def test_an_earlier_runs_output_dir_is_refused_and_left_untouched(
    finished_run, tiny_model_dir, tmp_path, capsys
):
    output_dir = copy_of(finished_run, tmp_path)
    before = {p: p.read_bytes() for p in output_dir.rglob("*") if p.is_file()}
    elsewhere = checkpoints.latest_checkpoint(
        finished_run
    )  # continues the run of another folder, not this one's
    for extra in ([], ["--do_train", "false"], ["--resume_from_checkpoint", str(elsewhere)]):
        assert train.main(imdb(tiny_model_dir, output_dir, *extra)) == 2
        (error,) = error_lines(capsys)
        assert error.startswith(f"error: --output_dir {output_dir} holds an earlier run's outputs")
        assert "--overwrite_output_dir" in error
    assert {p: p.read_bytes() for p in output_dir.rglob("*") if p.is_file()} == before


def test_everything_a_run_writes_counts_as_its_output_and_nothing_else(finished_run, tmp_path):
    output_dir = copy_of(finished_run, tmp_path)
    (output_dir / "notes.txt").write_text("the user's own file\n")
    (output_dir / "checkpoints" / "step_99.partial").mkdir()
    config = run_config.parse_args(["--task", "imdb", "--output_dir", str(output_dir)])
    run_output_dir.clear_earlier_outputs(config)
    assert [p.name for p in output_dir.iterdir()] == ["notes.txt"]


def test_overwrite_output_dir_leaves_no_stale_result_figure_or_checkpoint(
    finished_run, tiny_model_dir, tmp_path
):
    output_dir = copy_of(finished_run, tmp_path)
    assert (output_dir / "test_results.json").is_file() and (output_dir / "checkpoints").is_dir()
    no_test_split = tmp_path / "data"
    shutil.copytree(SAMPLES / "imdb" / "train", no_test_split / "train")
    argv = imdb(tiny_model_dir, output_dir, "--overwrite_output_dir", data=no_test_split)
    assert train.main(argv) == 0

    assert not any(p.name.startswith("test_") for p in output_dir.iterdir())
    assert not (output_dir / "checkpoints").exists()
    assert "test_confusion_matrix.png" not in (output_dir / "README.md").read_text()
    assert (output_dir / "eval_results.json").is_file() and (output_dir / "model.safetensors").is_file()


def test_resume_latest_continues_its_own_run_in_a_non_empty_output_dir(
    finished_run, tiny_model_dir, tmp_path
):
    output_dir = copy_of(finished_run, tmp_path)
    for late in checkpoints.complete_checkpoints(output_dir)[1:]:
        shutil.rmtree(late)
    assert train.main(imdb(tiny_model_dir, output_dir, "--resume_from_checkpoint", "latest")) == 0
    assert json.loads((output_dir / "eval_results.json").read_text())["num_examples"] == 3


def other_model(tmp_path: Path, tiny_model_dir: Path) -> Path:
    folder = tmp_path / "other_model"
    shutil.copytree(tiny_model_dir, folder)
    torch.manual_seed(1)
    BertModel(tiny_bert_config(BertModel.from_pretrained(tiny_model_dir).config.vocab_size)).save_pretrained(
        folder
    )
    return folder


def changed_reviews(tmp_path: Path) -> Path:
    data = tmp_path / "changed"
    shutil.copytree(SAMPLES / "imdb", data)
    for review in (data / "train").glob("*/*.txt"):
        review.write_text(review.read_text() + " and one more sentence.")
    return data


@pytest.mark.parametrize("what", ["data", "model", "task", "long_documents", "streaming"])
def test_resuming_another_runs_checkpoint_is_refused_naming_what_differs(
    what, finished_run, tiny_model_dir, tmp_path, capsys
):
    checkpoint = checkpoints.complete_checkpoints(finished_run)[0]
    argv = imdb(tiny_model_dir, tmp_path / "out", "--resume_from_checkpoint", str(checkpoint))
    if what == "data":
        argv = imdb(tiny_model_dir, tmp_path / "out", "--resume_from_checkpoint", str(checkpoint),
                    data=changed_reviews(tmp_path))  # fmt: skip
        expected = "training data '"
    elif what == "long_documents":
        argv += ["--long_documents", "windows", "--doc_stride", "8"]
        expected = "--long_documents 'truncate' there, 'windows' here"
    elif what == "streaming":
        argv += ["--streaming", "--max_steps", "4"]
        expected = "--streaming False there, True here"
    elif what == "model":
        argv += ["--model", str(other_model(tmp_path, tiny_model_dir))]
        expected = f"model '{tiny_model_dir.resolve()}' there"
    else:
        argv += ["--task", "wnut17", "--data_dir", str(SAMPLES / "wnut17")]
        expected = "task 'text-classification' there, 'token-classification' here"
    assert train.main(argv) == 2
    (error,) = error_lines(capsys)
    assert error.startswith(f"error: {checkpoint} is another run's checkpoint") and expected in error, error
    assert not (tmp_path / "out").exists()


def test_the_data_fingerprint_follows_the_examples_not_their_folder(tmp_path):
    copied = tmp_path / "copied"
    shutil.copytree(SAMPLES / "imdb", copied)
    original = loaders.load_dataset("imdb", data_dir=str(SAMPLES / "imdb"))["train"]
    copy = loaders.load_dataset("imdb", data_dir=str(copied))["train"]
    changed = loaders.load_dataset("imdb", data_dir=str(changed_reviews(tmp_path)))["train"]
    assert checkpoints.data_fingerprint(original) == checkpoints.data_fingerprint(copy)
    assert checkpoints.data_fingerprint(original) != checkpoints.data_fingerprint(changed)
    assert checkpoints.data_fingerprint(original) != checkpoints.data_fingerprint(original.select(range(10)))


def test_a_failed_model_save_leaves_no_model_file_behind(tiny_model_dir, tmp_path, monkeypatch, capsys):
    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", disk_full)
    assert train.main(imdb(tiny_model_dir, tmp_path)) == 2
    assert "No space left on device" in error_lines(capsys)[0]
    names = {p.name for p in tmp_path.iterdir()}
    assert "eval_results.json" in names  # scored before the save
    assert not names & {"model.safetensors", "config.json", "tokenizer.json", "training_args.json"}
    assert not any("partial" in name for name in names)


def test_a_predictions_file_that_fails_half_way_leaves_the_old_one_whole(tmp_path, monkeypatch):
    raw = datasets.Dataset.from_dict(
        {"text": ["a", "b", "c"], "label": [0, 1, 1]},
        features=datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["n", "p"])}
        ),
    )
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    scored = classification.score(raw, raw, {"logits": logits}, ["n", "p"], None)
    old = tmp_path / "eval_predictions.jsonl"
    old.write_text("the previous run's predictions\n")
    rows, real_dumps = [], json.dumps

    def dumps(row):
        rows.append(row)
        if len(rows) == 2:
            raise OSError(28, "No space left on device")
        return real_dumps(row)

    monkeypatch.setattr(classification.json, "dumps", dumps)
    with pytest.raises(OSError):
        scored.write_predictions(tmp_path, "eval")
    assert old.read_text() == "the previous run's predictions\n"
    assert [p.name for p in tmp_path.iterdir()] == ["eval_predictions.jsonl"]


def test_a_figure_that_fails_half_way_is_not_left_behind(tmp_path, monkeypatch):
    def torn(self, path, **kwargs):
        Path(path).write_bytes(b"\x89PNG\r\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", torn)
    rows = [{"index": 0, "label": "n", "predicted": "p", "score": 0.9}]
    scored = Scored(metrics={}, predictions=rows, write_predictions=lambda output_dir, split: [])
    with pytest.raises(OSError):
        analysis.write_analysis(tmp_path, "eval", classification.TASK, scored, label_names=["n", "p"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval_confusion_matrix.json"]


def test_a_keras_model_folder_is_held_to_its_tokenizers_length(tiny_tokenizer, tmp_path, no_loading, capsys):
    """A `.keras` folder has no `config.json`: the tokenizer saved beside the model says how long inputs may be."""
    folder = tmp_path / "keras_model"
    tiny_tokenizer.save_pretrained(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 64}))
    argv = imdb(folder, tmp_path / "out", "--framework", "tensorflow", "--max_seq_length", "65")
    assert train.main(argv) == 2
    (error,) = error_lines(capsys)
    assert (
        error == "error: --max_seq_length 65: expected at most 64, the model's tokenizer's model_max_length"
    )
    assert no_loading == []


def test_resume_latest_in_an_earlier_runs_folder_refuses_other_data(
    finished_run, tiny_model_dir, tmp_path, capsys
):
    """A careless `--resume_from_checkpoint latest` in another run's folder: its checkpoint is not this run's."""
    output_dir = copy_of(finished_run, tmp_path)
    before = {p: p.read_bytes() for p in output_dir.rglob("*") if p.is_file()}
    argv = imdb(tiny_model_dir, output_dir, "--resume_from_checkpoint", "latest", "--max_train_samples", "12")
    assert train.main(argv) == 2
    (error,) = error_lines(capsys)
    latest = checkpoints.latest_checkpoint(output_dir)
    assert error.startswith(f"error: {latest} is another run's checkpoint: training data '"), error
    assert {p: p.read_bytes() for p in output_dir.rglob("*") if p.is_file()} == before
