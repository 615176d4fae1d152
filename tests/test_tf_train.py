"""`train.py --framework tensorflow` end to end on the samples with a tiny random BERT: the PyTorch path's metrics
and files, a `.keras` model that reloads, and a PyTorch path that never loads TensorFlow."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertModel

pytest.importorskip("keras_hub", reason="the TensorFlow path needs the tf extra: pip install '.[tf]'")

from test_class_weights import write_reviews

import train
from conftest import REPO_ROOT, SAMPLES, build_tiny_tokenizer, tiny_bert_config
from processing import classification, keras_models
from processing.registry import TASKS
from runner import config as run_config
from runner import keras_loop, torch_loop

DATA = {"imdb": SAMPLES / "imdb", "wnut17": SAMPLES / "wnut17", "squad_v2": SAMPLES / "squad"}


def flags(task: str, model: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--framework", "tensorflow",
        "--task", task,
        "--data_dir", str(DATA[task]),
        "--model", str(model),
        "--output_dir", str(output_dir),
        "--max_seq_length", "64",
        "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "3",
        "--learning_rate", "1e-3",
        "--num_train_epochs", "1",
        "--report_to", "none",
        *extra,
    ]  # fmt: skip


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def without_timing(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "runtime_s"}


def test_an_epoch_of_training_moves_the_weights_exactly_as_the_pytorch_path(tmp_path, fresh_accelerate_state):
    """Same weights, batches, loss, learning rates and AdamW: the two loops end with the same model.

    Dropout is off (its random masks differ) and Adam's epsilon negligible: Keras adds it to the square root of the
    uncorrected second moment, PyTorch to the bias-corrected one, a gap that only tiny gradients feel.
    """
    model_dir = tmp_path / "no_dropout"
    tokenizer = build_tiny_tokenizer(model_dir)
    torch.manual_seed(0)
    config = tiny_bert_config(len(tokenizer), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(model_dir)
    argv = [*flags("wnut17", model_dir, tmp_path / "out"), "--warmup_ratio", "0.2", "--weight_decay", "0.1"]
    torch_run = torch_loop.setup(run_config.parse_args([*argv, "--framework", "pytorch"]))
    keras_run = keras_loop.setup(run_config.parse_args(argv))
    head = torch_run.model.classifier
    keras_head = keras_run.model.get_layer("classifier")
    keras_head.set_weights([head.weight.detach().numpy().T, head.bias.detach().numpy()])
    for group in torch_run.optimizer.param_groups:
        group["eps"] = 1e-15
    keras_run.model.optimizer.epsilon = 1e-15

    bert = torch_run.model.bert

    def weights() -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(PyTorch, Keras) values of a few weights, in Keras's layout."""
        layer = keras_run.model.get_layer("transformer_layer_1")
        return {
            "classifier": (head.weight.detach().numpy().T, keras_head.kernel.numpy()),
            "word embeddings": (
                bert.embeddings.word_embeddings.weight.detach().numpy(),
                keras_run.model.get_layer("token_embedding").embeddings.numpy(),
            ),
            "position embeddings": (
                bert.embeddings.position_embeddings.weight.detach().numpy(),
                keras_run.model.get_layer("position_embedding").position_embeddings.numpy(),
            ),
            "feed-forward": (
                bert.encoder.layer[1].intermediate.dense.weight.detach().numpy().T,
                layer._feedforward_intermediate_dense.kernel.numpy(),
            ),
        }

    before = {name: pytorch.copy() for name, (pytorch, _) in weights().items()}
    assert torch_loop.train_loop(torch_run)
    keras_loop.train_loop(keras_run)

    for name, (pytorch, keras) in weights().items():
        assert np.abs(pytorch - before[name]).max() > 1e-4, f"{name} did not train"
        np.testing.assert_allclose(keras, pytorch, rtol=0, atol=1e-6, err_msg=name)


def test_text_classification_writes_the_pytorch_paths_files_and_a_keras_model(tiny_model_dir, tmp_path):
    assert train.main(flags("imdb", tiny_model_dir, tmp_path)) == 0

    results = read_json(tmp_path / "eval_results.json")
    assert set(results) == {"accuracy", "f1", "ece", "num_examples", "runtime_s"}
    assert results["num_examples"] == 3
    assert read_json(tmp_path / "test_results.json")["num_examples"] == 16
    lines = (tmp_path / "test_predictions.jsonl").read_text().splitlines()
    assert len(lines) == 16 and json.loads(lines[0])["label"] in ("neg", "pos")
    arguments = read_json(tmp_path / "training_args.json")
    assert arguments["framework"] == "tensorflow" and arguments["train_runtime_s"] > 0
    assert read_json(tmp_path / "label_names.json") == {
        "task": "text-classification",
        "label_names": ["neg", "pos"],
        "settings": {"calibration_temperature": 1.0},  # as a PyTorch model's config.json keeps it
    }
    assert (tmp_path / "model.keras").is_file() and (tmp_path / "tokenizer.json").is_file()
    assert not (tmp_path / "model.safetensors").exists()


def test_token_classification_scores_every_word_and_the_saved_model_scores_the_same(tiny_model_dir, tmp_path):
    trained = tmp_path / "trained"
    assert train.main(flags("wnut17", tiny_model_dir, trained, "--num_train_epochs", "2")) == 0

    results = read_json(trained / "eval_results.json")
    assert {"precision", "recall", "f1", "per_type", "num_examples", "runtime_s"} <= set(results)
    assert results["num_examples"] == 6
    predictions = [json.loads(line) for line in (trained / "eval_predictions.jsonl").read_text().splitlines()]
    assert all(len(p["predicted"]) == len(p["tokens"]) for p in predictions)
    assert read_json(trained / "label_names.json")["label_names"][9] == "B-person"

    # Evaluating the saved folder reproduces the final model's figures and predictions exactly.
    reloaded = tmp_path / "reloaded"
    assert train.main(flags("wnut17", trained, reloaded, "--do_train", "false")) == 0
    for name in ("eval_results.json", "test_results.json"):
        assert without_timing(read_json(reloaded / name)) == without_timing(read_json(trained / name))
    for name in ("eval_predictions.jsonl", "test_predictions.jsonl"):
        assert (reloaded / name).read_text() == (trained / name).read_text()


def test_question_answering_writes_the_official_prediction_files(tiny_model_dir, tmp_path):
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
    assert all(np.isfinite(odds) for odds in null_odds.values())
    model, task, label_names = keras_models.load(tmp_path)
    assert (task, label_names) == ("question-answering", None)
    assert set(model.output) == {"start_logits", "end_logits"}


def test_the_keras_weighted_loss_is_the_pytorch_paths_weighted_cross_entropy():
    logits = np.array([[0.2, -1.0], [1.5, 0.3], [-0.4, 0.9]], dtype=np.float32)
    labels = np.array([1, 0, 0])
    weights = [0.75, 1.5]
    loss = float(keras_models.WeightedCrossEntropy(weights)(labels, logits))
    expected = classification.weighted_cross_entropy(
        torch.tensor(logits), torch.tensor(labels), torch.tensor(weights)
    )
    assert loss == pytest.approx(expected.item(), rel=1e-6)
    unweighted = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels))
    assert loss != pytest.approx(unweighted.item())
    # Per example, left for Keras to reduce (and scale for several devices): a device's empty share of a batch
    # gives nothing to sum, where a loss reduced here would be 0 / 0.
    assert keras_models.WeightedCrossEntropy(weights).call(labels, logits).shape == (3,)
    empty = keras_models.WeightedCrossEntropy(weights).call(
        np.zeros(0, np.int64), np.zeros((0, 2), np.float32)
    )
    assert np.asarray(empty).shape == (0,)


def test_balanced_class_weights_are_the_keras_models_loss_and_reach_its_settings(tiny_model_dir, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    write_reviews(data, {"train": {"neg": 1, "pos": 3}, "validation": {"neg": 1, "pos": 1}})
    argv = [
        "--framework", "tensorflow", "--task", "imdb", "--data_dir", str(data), "--model", str(tiny_model_dir),
        "--output_dir", str(out), "--max_seq_length", "16", "--per_device_train_batch_size", "2",
        "--num_train_epochs", "1", "--report_to", "none", "--class_weights", "balanced",
    ]  # fmt: skip
    run = keras_loop.setup(run_config.parse_args(argv))
    (loss,) = run.model.loss.values() if isinstance(run.model.loss, dict) else [run.model.loss]
    assert isinstance(loss, keras_models.WeightedCrossEntropy)
    assert loss.weights == [
        2.0,
        pytest.approx(2 / 3),
    ]  # 4 examples, 2 classes: neg 4 / (2 * 1), pos 4 / (2 * 3)
    assert train.main(argv) == 0
    settings = json.loads((out / "training_args.json").read_text())
    assert settings["class_weights_per_label"] == {"neg": 2.0, "pos": pytest.approx(0.666667)}
    assert "| class_weights_per_label | neg: 2, pos: 0.6667 |" in (out / "README.md").read_text()


def test_a_task_without_a_keras_head_is_refused_in_one_line(tiny_model_dir, tmp_path, capsys, monkeypatch):
    choice = TASKS["imdb"]
    monkeypatch.setitem(
        TASKS, "imdb", dataclasses.replace(choice, task=dataclasses.replace(choice.task, keras_head=""))
    )
    assert train.main(flags("imdb", tiny_model_dir, tmp_path)) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert errors == ["error: --framework tensorflow does not train --task imdb: use --framework pytorch"]


def test_the_pytorch_path_never_imports_tensorflow(tiny_model_dir, tmp_path):
    """So it keeps working where the tf extra is not installed."""
    argv = [
        "--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--model", str(tiny_model_dir),
        "--output_dir", str(tmp_path), "--do_train", "false", "--max_eval_samples", "3", "--report_to", "none",
    ]  # fmt: skip
    script = (
        "import sys, train\n"
        f"assert train.main({argv!r}) == 0\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras', 'keras_hub') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
