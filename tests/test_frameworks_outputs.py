"""`--framework tensorflow` and the PyTorch path finish a run the same way: the same results, predictions, error
analysis and model card files for every task, only the model's own files differ; the Keras card says how to load
a Keras model, and its snippet runs.

Every run and the snippet go through a child process: TensorFlow's threads in the test process would make later
tests' forked workers (`num_proc`) hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

pytest.importorskip("keras_hub", reason="the TensorFlow path needs the tf extra: pip install '.[tf]'")

from conftest import REPO_ROOT, SAMPLES

DATA = {"imdb": SAMPLES / "imdb", "wnut17": SAMPLES / "wnut17", "squad_v2": SAMPLES / "squad"}
MODEL_FILES = {
    "pytorch": {"model.safetensors", "config.json"},
    "tensorflow": {"model.keras", "label_names.json"},
}


def run(task: str, framework: str, model: Path, output_dir: Path) -> set[str]:
    """One epoch on a few examples; the output folder's files, as paths relative to it."""
    argv = [
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
    child = subprocess.run([sys.executable, "train.py", *argv], cwd=REPO_ROOT, capture_output=True, text=True)
    assert child.returncode == 0, child.stderr[-2000:]
    return {path.relative_to(output_dir).as_posix() for path in output_dir.rglob("*") if path.is_file()}


def usage_code(card: ModelCard) -> str:
    """The card's "How to use" Python block."""
    usage = card.text.split("## How to use", 1)[1]
    return usage.split("```python\n", 1)[1].split("```", 1)[0]


def labels_line(card: ModelCard) -> list[str]:
    return [line for line in card.text.splitlines() if line.startswith("Labels (")]


@pytest.mark.parametrize("task", list(DATA))
def test_both_frameworks_write_the_same_files_and_a_card_for_their_model(task, tiny_model_dir, tmp_path):
    files = {
        framework: run(task, framework, tiny_model_dir, tmp_path / framework) for framework in MODEL_FILES
    }

    for framework, names in files.items():
        assert MODEL_FILES[framework] <= names, framework
        assert "README.md" in names and "training_args.json" in names
        assert any(name.endswith("_analysis.json") for name in names), framework
    assert files["pytorch"] - MODEL_FILES["pytorch"] == files["tensorflow"] - MODEL_FILES["tensorflow"]

    cards = {framework: ModelCard.load(tmp_path / framework / "README.md") for framework in MODEL_FILES}
    assert cards["pytorch"].data.library_name == "transformers"
    assert cards["tensorflow"].data.library_name == "keras"
    assert "--framework tensorflow`" in cards["tensorflow"].text
    assert labels_line(cards["tensorflow"]) == labels_line(cards["pytorch"])
    assert "keras_models.load(out)" in usage_code(cards["tensorflow"])

    snippet = tmp_path / "snippet.py"
    report = "import json; print(json.dumps({'task': task, 'labels': bool(label_names), 'outputs': sorted(outputs)}))"
    snippet.write_text(usage_code(cards["tensorflow"]) + "\n" + report + "\n")
    # Run where the card's reader would: the snippet names the output folder relative to it.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.run(
        [sys.executable, str(snippet)], cwd=tmp_path, capture_output=True, text=True, env=env, check=False
    )
    assert child.returncode == 0, child.stderr[-2000:]
    ran = json.loads(child.stdout.strip().splitlines()[-1])
    assert ran["task"] == cards["tensorflow"].data.pipeline_tag
    assert set(ran["outputs"]) == ({"logits"} if ran["labels"] else {"start_logits", "end_logits"})
