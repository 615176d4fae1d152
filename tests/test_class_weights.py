"""`--class_weights balanced`: the loop trains on the task's weighted loss, the weights reach the run's settings and
card, and the flag is refused where it does not fit; with tiny random BERTs and folders written in tmp_path. The
Keras path's weighted loss is tested in test_tf_train.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from transformers import BertForSequenceClassification

import train
from conftest import refused_before_loading
from processing import classification
from runner.checks import check_task_flags
from runner.config import TrainingConfig
from runner.torch_loop import batch_loss

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture
def batch(tiny_tokenizer) -> dict[str, torch.Tensor]:
    encoding = tiny_tokenizer(
        ["the movie was good", "bad", "a great film"], padding=True, return_tensors="pt"
    )
    return {**encoding, "labels": torch.tensor([1, 0, 0])}


@pytest.fixture
def model(tiny_model_dir) -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2).eval()


def test_without_weights_the_loss_is_the_models_own(model, batch):
    run = SimpleNamespace(model=model, task=classification.TASK, class_weights=None)
    with torch.no_grad():
        assert batch_loss(run, batch).item() == model(**batch).loss.item()


def test_with_weights_the_loss_is_torchs_cross_entropy_with_those_weights(model, batch):
    weights = torch.tensor([0.75, 1.5])
    run = SimpleNamespace(model=model, task=classification.TASK, class_weights=weights)
    with torch.no_grad():
        loss = batch_loss(run, batch)
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    expected = torch.nn.functional.cross_entropy(logits, batch["labels"], weight=weights)
    assert loss.item() == pytest.approx(expected.item())
    assert loss.item() != pytest.approx(torch.nn.functional.cross_entropy(logits, batch["labels"]).item())


def write_reviews(root, counts: dict[str, dict[str, int]]) -> None:
    """aclImdb-style folders: `root/<split>/<label>/<n>.txt`."""
    words = ["the movie was good", "an awful film", "it was great", "bad"]
    for split, labels in counts.items():
        for label, count in labels.items():
            folder = root / split / label
            folder.mkdir(parents=True)
            for n in range(count):
                (folder / f"{n}.txt").write_text(words[n % len(words)])


def test_balanced_weights_are_written_to_the_runs_settings_and_card(tiny_model_dir, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    write_reviews(data, {"train": {"neg": 1, "pos": 3}, "validation": {"neg": 1, "pos": 1}})
    argv = [
        "--task", "imdb", "--data_dir", str(data), "--model", str(tiny_model_dir), "--output_dir", str(out),
        "--max_seq_length", "16", "--per_device_train_batch_size", "2", "--num_train_epochs", "1",
        "--report_to", "none", "--class_weights", "balanced",
    ]  # fmt: skip
    assert train.main(argv) == 0

    settings = json.loads((out / "training_args.json").read_text())
    # 4 examples, 2 classes: neg 4 / (2 * 1), pos 4 / (2 * 3).
    assert settings["class_weights"] == "balanced"
    assert settings["class_weights_per_label"] == {"neg": 2.0, "pos": pytest.approx(0.666667)}
    assert "| class_weights_per_label | neg: 2, pos: 0.6667 |" in (out / "README.md").read_text()


@pytest.mark.parametrize(
    "task, extra, message",
    [
        (
            "wnut17",
            [],
            "--class_weights 'balanced': expected none for --task wnut17 (one label per example only)",
        ),
    ],
)
def test_the_flag_is_refused_in_one_line_where_it_does_not_fit(
    task, extra, message, tmp_path, capsys, monkeypatch
):
    argv = ["--task", task, "--output_dir", str(tmp_path), "--class_weights", "balanced", *extra]
    assert message in refused_before_loading(monkeypatch, capsys, argv)


def test_a_config_file_value_outside_the_choices_is_refused(tmp_path):
    """A YAML or JSON config file is not checked against the flag's choices by the parser."""
    config = TrainingConfig(task="imdb", output_dir=str(tmp_path), class_weights="inverse")
    with pytest.raises(ValueError, match=r"^--class_weights 'inverse': expected none or balanced$"):
        check_task_flags(config)
