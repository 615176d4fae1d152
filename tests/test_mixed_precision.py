"""`--mixed_precision`: a bf16 run trains under autocast and saves float32 weights that load; `auto` follows what
the CPU can do; what cannot work is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import train
from conftest import SAMPLES, refused_before_loading, reset_accelerate
from runner import precision

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def imdb_run(model, out, *extra: str) -> list[str]:
    return [
        "--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--model", str(model), "--output_dir", str(out),
        "--max_seq_length", "64", "--per_device_train_batch_size", "4", "--learning_rate", "1e-3",
        "--num_train_epochs", "1", "--report_to", "none", *extra,
    ]  # fmt: skip


def test_a_bf16_run_trains_under_autocast_and_saves_float32_weights_that_load(tiny_model_dir, tmp_path):
    full, bf16 = tmp_path / "fp32", tmp_path / "bf16"
    assert train.main(imdb_run(tiny_model_dir, full, "--mixed_precision", "no")) == 0
    reset_accelerate()  # a new process would start without the first run's precision
    # The loop stops on the first loss that is not finite, so a finished run trained on finite losses only.
    assert train.main(imdb_run(tiny_model_dir, bf16, "--mixed_precision", "bf16")) == 0

    assert json.loads((bf16 / "training_args.json").read_text())["mixed_precision"] == "bf16"
    assert json.loads((full / "training_args.json").read_text())["mixed_precision"] == "no"
    assert "| mixed_precision | bf16 |" in (bf16 / "README.md").read_text()

    full_weights, bf16_weights = load_file(full / "model.safetensors"), load_file(bf16 / "model.safetensors")
    assert all(tensor.dtype == torch.float32 for tensor in bf16_weights.values())
    assert all(torch.isfinite(tensor).all() for tensor in bf16_weights.values())
    # Same seed and data: only the precision of the forward and backward passes differs, and it shows.
    assert any(not torch.equal(full_weights[name], bf16_weights[name]) for name in full_weights)

    model = AutoModelForSequenceClassification.from_pretrained(bf16)
    tokenizer = AutoTokenizer.from_pretrained(bf16)
    logits = model(**tokenizer(["a fine film", "a dull one"], return_tensors="pt", padding=True)).logits
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


@pytest.mark.parametrize(
    "native, use_cpu, expected",
    [(True, True, "bf16"), (False, True, "no"), (True, False, "no")],
)
def test_auto_is_bf16_only_on_a_cpu_that_computes_in_bf16(monkeypatch, native, use_cpu, expected):
    monkeypatch.setattr(precision, "native_cpu_bf16", lambda: native)
    assert precision.resolve_mixed_precision("auto", use_cpu) == expected


def test_without_the_flag_accelerate_decides_and_a_given_precision_is_kept():
    assert precision.resolve_mixed_precision(None, True) is None
    assert precision.resolve_mixed_precision("bf16", False) == "bf16"
    assert precision.resolve_mixed_precision("no", True) == "no"


def test_native_bf16_is_what_the_kernel_reports_of_the_cpu():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo to compare with")
    flags = set(cpuinfo.read_text().split())
    assert precision.native_cpu_bf16() == bool({"avx512_bf16", "amx_tile"} & flags)


def test_fp16_on_a_cpu_is_refused_in_one_line(tiny_model_dir, tmp_path, capsys):
    assert train.main(imdb_run(tiny_model_dir, tmp_path / "out", "--mixed_precision", "fp16")) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert "--mixed_precision fp16: needs a GPU" in error


def test_the_keras_loop_refuses_mixed_precision(tmp_path, capsys, monkeypatch):
    argv = [
        "--task",
        "imdb",
        "--framework",
        "tensorflow",
        "--output_dir",
        str(tmp_path),
        "--mixed_precision",
        "bf16",
    ]
    error = refused_before_loading(monkeypatch, capsys, argv)
    assert "--mixed_precision bf16: not supported with --framework tensorflow" in error


def test_a_run_asked_onto_the_cpu_is_a_cpu_run_whatever_the_machine_has(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    assert precision.cpu_run()
    monkeypatch.setenv("ACCELERATE_USE_CPU", "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert not precision.cpu_run()
