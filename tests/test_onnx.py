"""`python -m processing.export --onnx` and `commands.predict --backend onnx` on a tiny random classifier: the
export computes what the PyTorch model computes, and predict gives the same rows through it. Skipped without the
`onnx` extra (onnxruntime and onnxscript).

One export, of the classification head only: each export traces the model with `torch.export` (several seconds
even for a 2-layer model). The token-classification and QA heads differ only in their outputs' names and shapes,
which the stand-in takes from the graph (`processing.onnx_runtime`); benchmarks/onnx_inference.py runs the NER path
on a real model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from test_predict import read_jsonl, save_model, split_the_samples
from transformers import AutoModelForSequenceClassification

from commands.predict import main as predict_main
from commands.predict import predict, text_files
from conftest import SAMPLES
from loaders.files import read_text
from processing.export import MODEL_FILE, ONNX_FOLDER, QUANTIZED_FILE
from processing.export import main as export_main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from processing.onnx_runtime import OnnxModel

TEXTS = [read_text(f) for f in text_files(SAMPLES / "imdb")]


@pytest.fixture(scope="module")
def classifier_dir(tiny_model_dir, tiny_tokenizer, tmp_path_factory) -> Path:
    """A classifier exported as the command line exports it, quantized too."""
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=2, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1}
    )
    # Scaled by 100 only, not to unit margins: a random model's logit differences lie about 1e-5 apart, so unit
    # margins mean logits near 1e5, where float32 rounding alone is above 1e-4.
    split_the_samples(model, tiny_tokenizer, TEXTS, scale=100.0)
    directory = save_model(model, tmp_path_factory.mktemp("classifier"), tiny_tokenizer)
    assert export_main(["--model", str(directory), "--onnx", "--quantize", "int8"]) == 0
    return directory


def both_outputs(directory: Path, auto_class: type, encoding) -> tuple[dict, dict]:
    network = auto_class.from_pretrained(directory).eval()
    with torch.no_grad():
        expected = network(**encoding)
    got = OnnxModel.from_folder(directory)(**encoding)
    return dict(expected.items()), dict(got.items())


@pytest.mark.parametrize("count", [1, 5, 16])
def test_exported_classifier_gives_the_pytorch_logits(classifier_dir, tiny_tokenizer, count):
    encoding = tiny_tokenizer(
        TEXTS[:count], truncation=True, max_length=128, padding=True, return_tensors="pt"
    )

    expected, got = both_outputs(classifier_dir, AutoModelForSequenceClassification, encoding)

    assert list(got) == ["logits"]
    assert got["logits"].shape == (count, 2)
    torch.testing.assert_close(got["logits"], expected["logits"], atol=1e-4, rtol=0)


def test_predict_on_onnx_gives_the_pytorch_rows(classifier_dir):
    torch_rows = list(predict(str(classifier_dir), SAMPLES / "imdb", {}))
    onnx_rows = list(predict(str(classifier_dir), SAMPLES / "imdb", {"backend": "onnx"}))

    assert [r["label"] for r in onnx_rows] == [r["label"] for r in torch_rows]
    assert {r["label"] for r in onnx_rows} == {"neg", "pos"}
    assert [r["score"] for r in onnx_rows] == pytest.approx([r["score"] for r in torch_rows], abs=1e-4)


def test_predict_on_onnx_reads_long_texts_in_the_same_windows(classifier_dir):
    settings = {"long_documents": "windows", "max_seq_length": 128, "doc_stride": 32, "batch_size": 8}

    torch_rows = list(predict(str(classifier_dir), SAMPLES / "imdb" / "test", settings))
    onnx_rows = list(predict(str(classifier_dir), SAMPLES / "imdb" / "test", {**settings, "backend": "onnx"}))

    assert [(r["file"], r["label"]) for r in onnx_rows] == [(r["file"], r["label"]) for r in torch_rows]
    assert [r["score"] for r in onnx_rows] == pytest.approx([r["score"] for r in torch_rows], abs=1e-4)


def test_quantized_export_multiplies_in_int8_and_predicts(classifier_dir, tmp_path):
    import onnx

    graph = onnx.load(classifier_dir / ONNX_FOLDER / QUANTIZED_FILE).graph
    out = tmp_path / "predictions.jsonl"

    argv = ["--model", str(classifier_dir), "--input", str(SAMPLES / "imdb" / "test"), "--out", str(out)]

    code = predict_main([*argv, "--backend", "onnx", "--quantize", "int8"])

    assert code == 0
    # 2 layers x 3 products (attention output, feed-forward in and out); query, key and value are projected
    # inside ONNX Runtime's fused Attention kernel, in fp32
    assert sum(node.op_type == "MatMulInteger" for node in graph.node) >= 6
    assert len(read_jsonl(out)) == 16


def test_predict_without_an_export_names_the_file_and_the_command(classifier_dir, tmp_path, capsys):
    bare = shutil.copytree(classifier_dir, tmp_path / "bare", ignore=shutil.ignore_patterns(ONNX_FOLDER))
    out = tmp_path / "predictions.jsonl"

    argv = ["--model", str(bare), "--input", str(SAMPLES / "imdb"), "--out", str(out), "--backend", "onnx"]

    code = predict_main(argv)

    error = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert error == (
        f"error: --backend onnx: {bare / ONNX_FOLDER / MODEL_FILE} does not exist; "
        f"export it with python -m processing.export --model {bare} --onnx"
    )


def test_quantize_without_the_onnx_backend_is_refused(classifier_dir, tmp_path, capsys):
    out = tmp_path / "predictions.jsonl"

    code = predict_main(
        [
            "--model",
            str(classifier_dir),
            "--input",
            str(SAMPLES / "imdb"),
            "--out",
            str(out),
            "--quantize",
            "int8",
        ]
    )

    assert code == 2
    assert capsys.readouterr().err.strip() == "error: --quantize int8: expected --backend onnx with it"


def test_export_of_a_folder_without_a_model_is_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no model here\n")

    assert export_main(["--model", str(tmp_path), "--onnx"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --model {tmp_path}: no config.json (expected a train.py output directory)"
    )


def test_the_onnx_backend_refuses_another_device(classifier_dir, tmp_path, capsys):
    out = tmp_path / "predictions.jsonl"
    argv = ["--model", str(classifier_dir), "--input", str(SAMPLES / "imdb" / "test"), "--out", str(out)]

    code = predict_main([*argv, "--backend", "onnx", "--device", "cuda"])

    assert code == 2 and not out.exists()
    assert (
        capsys.readouterr().err.strip()
        == "error: --device cuda: the ONNX backend runs on the CPU (expected cpu)"
    )
