"""`train.py --framework tensorflow --tf_devices 2`: tf.distribute.MirroredStrategy on two devices, checked on a CPU
split into two logical devices, trains and scores as one device does with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import BertModel

pytest.importorskip("keras_hub", reason="the TensorFlow path needs the tf extra: pip install '.[tf]'")

import train
from conftest import REPO_ROOT, SAMPLES, build_tiny_tokenizer, tiny_bert_config

TWO_CPU_DEVICES = textwrap.dedent("""\
    import sys

    import tensorflow as tf

    # Before TensorFlow initialises its devices, which any TensorFlow op does.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import train

    sys.exit(train.main(sys.argv[1:]))
""")


def flags(model: Path, output_dir: Path, *extra: str) -> list[str]:
    """Text classification without length grouping: the training order is then the same permutation whatever the
    batch size, so one device with batches of 4 and two devices with 2 each see the same batches."""
    return [
        "--framework", "tensorflow",
        "--task", "imdb",
        "--data_dir", str(SAMPLES / "imdb"),
        "--model", str(model),
        "--output_dir", str(output_dir),
        "--max_seq_length", "64",
        "--max_train_samples", "20",
        "--group_by_length", "false",
        "--learning_rate", "1e-3",
        "--num_train_epochs", "1",
        "--report_to", "none",
        *extra,
    ]  # fmt: skip


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def no_dropout_model(tmp_path) -> Path:
    """Dropout draws other masks on each device: with it off, both runs compute the same function."""
    model_dir = tmp_path / "no_dropout"
    tokenizer = build_tiny_tokenizer(model_dir)
    torch.manual_seed(0)
    config = tiny_bert_config(len(tokenizer), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(model_dir)
    return model_dir


def test_two_devices_train_and_score_as_one_device_with_the_same_global_batch(no_dropout_model, tmp_path):
    """Same predictions to 1e-5 and the same metrics to 1e-6, every evaluation example scored once.

    Each device takes a per-device batch of 2 and Keras sums their mean losses' gradients, each scaled by 1/2: the
    mean over the global batch of 4 that one device computes (20 examples: every batch splits evenly), summed in
    another order, so the weights differ by float32 rounding only.
    """
    two = tmp_path / "two"
    argv = flags(
        no_dropout_model, two, "--tf_devices", "2",
        "--per_device_train_batch_size", "2", "--per_device_eval_batch_size", "3",
    )  # fmt: skip
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(
        [sys.executable, "-c", TWO_CPU_DEVICES, *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]  # on one device, --tf_devices 2 is an error

    one = tmp_path / "one"
    single = flags(
        no_dropout_model, one, "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "6"
    )
    assert train.main(single) == 0

    for split, examples in (("eval", 3), ("test", 16)):
        results = {run: json.loads((run / f"{split}_results.json").read_text()) for run in (one, two)}
        assert results[one]["num_examples"] == results[two]["num_examples"] == examples
        for key in ("accuracy", "f1", "ece"):
            assert results[two][key] == pytest.approx(results[one][key], abs=1e-6), (split, key)
        rows = {run: read_lines(run / f"{split}_predictions.jsonl") for run in (one, two)}
        assert len(rows[two]) == examples  # once each: not once per device
        assert [r["predicted"] for r in rows[two]] == [r["predicted"] for r in rows[one]]
        assert [r["label"] for r in rows[two]] == [r["label"] for r in rows[one]]
        assert [r["score"] for r in rows[two]] == pytest.approx([r["score"] for r in rows[one]], abs=1e-5)
    scores = [r["score"] for r in read_lines(one / "test_predictions.jsonl")]
    assert len(set(scores)) > 1  # the runs are compared on outputs that differ from text to text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tf_devices", "2"], "--tf_devices 2: TensorFlow sees 1 CPU device(s)"),
        (
            ["--tf_devices", "2", "--gradient_accumulation_steps", "2"],
            "--gradient_accumulation_steps 2: Keras cannot accumulate gradients on 2 devices",
        ),
        (["--tf_devices", "0"], "--tf_devices 0: expected a count of at least 1 with --framework tensorflow"),
        (["--tf_devices", "2", "--framework", "pytorch"], "--tf_devices 2: expected a count of at least 1"),
    ],
)
def test_devices_that_are_not_there_are_one_clear_error(extra, message, tiny_model_dir, tmp_path, capsys):
    assert train.main([*flags(tiny_model_dir, tmp_path), *extra]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], errors
