"""`--framework tensorflow` and the PyTorch path finish a run the same way: the same results, predictions, error
analysis and model card files for every task, only the model's own files differ; the Keras card says how to load
a Keras model, and its snippet runs.

The Keras runs and the snippets go through child processes: TensorFlow's threads in the test process would make
later tests' forked workers (`num_proc`) hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

pytest.importorskip("keras_hub", reason="the TensorFlow path needs the tf extra: pip install '.[tf]'")

import train
from conftest import REPO_ROOT, SAMPLES

DATA = {"imdb": SAMPLES / "imdb", "wnut17": SAMPLES / "wnut17", "squad_v2": SAMPLES / "squad"}
MODEL_FILES = {
    "pytorch": {"model.safetensors", "config.json"},
    "tensorflow": {"model.keras", "label_names.json"},
}


def arguments(task: str, framework: str, model: Path, output_dir: Path) -> list[str]:
    """One epoch on a few examples."""
    return [
        "--framework", framework,
        "--task", task,
        "--data_dir", str(DATA[task]),
        "--model", str(model),
        "--output_dir", str(output_dir),
        "--max_train_samples", "8",
        "--max_eval_samples", "4",
        "--max_seq_length", "128",
        "--doc_stride", "32",
        "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "4",
        "--num_train_epochs", "1",
        "--report_to", "none",
    ]  # fmt: skip


def child(script: str, *args: str, cwd: Path = REPO_ROOT) -> str:
    """`script` in a fresh interpreter that imports the repository's packages; its standard output."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    ran = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=cwd, capture_output=True, text=True, env=env
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    return ran.stdout


KERAS_RUNS = """
import json, sys
import train
sys.exit(max(train.main(argv) for argv in json.loads(sys.argv[1])))
"""
"""Every task's Keras run in one interpreter: TensorFlow starts once."""

SNIPPETS = """
import json, os, sys
ran = {}
for task, folder in json.loads(sys.argv[1]).items():
    os.chdir(folder)  # where the card's reader would run it: the snippet names the output folder relative to it
    scope = {}
    exec(open("snippet.py").read(), scope)
    ran[task] = {"task": scope["task"], "labels": bool(scope["label_names"]), "outputs": sorted(scope["outputs"])}
print(json.dumps(ran))
"""
"""Each Keras card's snippet, run as written by a reader with nothing else imported."""


def files(output_dir: Path) -> set[str]:
    """The output folder's files, as paths relative to it."""
    return {path.relative_to(output_dir).as_posix() for path in output_dir.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory) -> Path:
    """`<root>/<task>/<framework>/` for every task and framework, and what each Keras card's snippet gave."""
    root = tmp_path_factory.mktemp("frameworks")
    for task in DATA:
        assert train.main(arguments(task, "pytorch", tiny_model_dir, root / task / "pytorch")) == 0
    keras_runs = [arguments(task, "tensorflow", tiny_model_dir, root / task / "tensorflow") for task in DATA]
    child(KERAS_RUNS, json.dumps(keras_runs))
    for task in DATA:
        card = ModelCard.load(root / task / "tensorflow" / "README.md")
        (root / task / "snippet.py").write_text(usage_code(card) + "\n")
    ran = json.loads(
        child(SNIPPETS, json.dumps({task: str(root / task) for task in DATA})).strip().splitlines()[-1]
    )
    (root / "snippets.json").write_text(json.dumps(ran))
    return root


def usage_code(card: ModelCard) -> str:
    """The card's "How to use" Python block."""
    usage = card.text.split("## How to use", 1)[1]
    return usage.split("```python\n", 1)[1].split("```", 1)[0]


def labels_line(card: ModelCard) -> list[str]:
    return [line for line in card.text.splitlines() if line.startswith("Labels (")]


@pytest.mark.parametrize("task", list(DATA))
def test_both_frameworks_write_the_same_files_and_a_card_for_their_model(task, runs):
    written = {framework: files(runs / task / framework) for framework in MODEL_FILES}

    for framework, names in written.items():
        assert MODEL_FILES[framework] <= names, framework
        assert "README.md" in names and "training_args.json" in names
        assert any(name.endswith("_analysis.json") for name in names), framework
    assert written["pytorch"] - MODEL_FILES["pytorch"] == written["tensorflow"] - MODEL_FILES["tensorflow"]

    cards = {framework: ModelCard.load(runs / task / framework / "README.md") for framework in MODEL_FILES}
    assert cards["pytorch"].data.library_name == "transformers"
    assert cards["tensorflow"].data.library_name == "keras"
    assert "--framework tensorflow`" in cards["tensorflow"].text
    assert labels_line(cards["tensorflow"]) == labels_line(cards["pytorch"])
    assert "keras_models.load(out)" in usage_code(cards["tensorflow"])

    ran = json.loads((runs / "snippets.json").read_text())[task]
    assert ran["task"] == cards["tensorflow"].data.pipeline_tag
    assert set(ran["outputs"]) == ({"logits"} if ran["labels"] else {"start_logits", "end_logits"})
