"""Publishing to the Hub, up to the network: model cards, the files a push sends, and datasets in the Hub's layout.

The Hub is never contacted. `RecordingHfApi` is a stand-in for `HfApi` that records calls instead of sending
them, and keeps a copy of what an upload would have sent (chosen with huggingface_hub's own pattern filter) so
the tests can load it as a Hub user would.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import shutil
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import datasets
import pytest
import torch
from datasets.info import DatasetInfosDict
from huggingface_hub import CommitInfo, DatasetCard, HfApi, ModelCard, RepoUrl, metadata_load
from huggingface_hub.errors import LocalTokenNotFoundError
from huggingface_hub.repocard_data import model_index_to_eval_results
from huggingface_hub.utils import filter_repo_objects, validate_repo_id
from transformers import (
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from transformers.modelcard import TASK_TAG_TO_NAME_MAPPING

import loaders
from conftest import SAMPLES, tiny_bert_config
from loaders.__main__ import main as loaders_main
from loaders.hub import DATA_DIR, FORMATS, push_dataset
from runner.hub import (
    files_to_upload,
    model_card,
    push_checkpoint,
    push_output_dir,
    write_model_card,
)

SECRET = "hf_secret_for_test"


class RecordingHfApi(HfApi):
    """A stand-in for HfApi that records calls instead of sending them.

    Only `create_repo` and `upload_folder` are replaced; any other method would really try the network and fail,
    so a test also notices a call it did not expect. Uploaded files are copied under `remote/<repo_id>/`.
    """

    def __init__(self, remote: Path) -> None:
        super().__init__()
        self.remote = remote
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_repo(self, repo_id: str, **kwargs: Any) -> RepoUrl:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        prefix = "datasets/" if kwargs.get("repo_type") == "dataset" else ""
        return RepoUrl(f"https://huggingface.co/{prefix}{repo_id}")

    def upload_folder(self, **kwargs: Any) -> CommitInfo | Future[CommitInfo]:
        self.calls.append(("upload_folder", kwargs))
        folder = Path(kwargs["folder_path"])
        relative = [p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*")) if p.is_file()]
        sent = filter_repo_objects(
            relative,
            allow_patterns=kwargs.get("allow_patterns"),
            ignore_patterns=kwargs.get("ignore_patterns"),
        )
        target = self.remote / kwargs["repo_id"] / (kwargs.get("path_in_repo") or "")
        for name in sent:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / name, target / name)
        commit = CommitInfo(
            commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/0123abc",
            commit_message=kwargs.get("commit_message", ""),
            commit_description="",
            oid="0123abc",
        )
        if kwargs.get("run_as_future"):
            future: Future[CommitInfo] = Future()
            future.set_result(commit)
            return future
        return commit

    def sent(self, repo_id: str) -> list[str]:
        root = self.remote / repo_id
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
def api(tmp_path) -> RecordingHfApi:
    return RecordingHfApi(tmp_path / "remote")


@pytest.fixture
def secret_token(monkeypatch) -> str:
    """A token where HfApi looks first, to check that nothing prints or logs it."""
    monkeypatch.setenv("HF_TOKEN", SECRET)
    return SECRET


# --- model cards --------------------------------------------------------------------------------------------

LABELS = {
    "text-classification": ["neg", "pos"],
    "token-classification": ["O", "B-person", "I-person", "B-location", "I-location"],
    "question-answering": None,
}
MODEL_CLASSES = {
    "text-classification": BertForSequenceClassification,
    "token-classification": BertForTokenClassification,
    "question-answering": BertForQuestionAnswering,
}
RUNS = {
    "text-classification": (
        "imdb",
        {"max_seq_length": 256},
        {
            "validation": {"accuracy": 0.875, "f1": 0.8666666, "num_examples": 8, "runtime_s": 0.1},
            "test": {"accuracy": 0.8125, "f1": 0.80952, "num_examples": 16, "runtime_s": 0.2},
        },
    ),
    "token-classification": (
        "wnut17",
        {"max_seq_length": 128, "label_all_tokens": False},
        {
            "validation": {
                "precision": 0.5,
                "recall": 0.25,
                "f1": 0.33333,
                "per_type": {
                    "location": {"precision": 1.0, "recall": 0.5, "f1": 0.66667, "number": 2},
                    "person": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "number": 2},
                },
                "num_examples": 6,
                "runtime_s": 0.1,
            },
            "test": {
                "precision": 0.25,
                "recall": 0.2,
                "f1": 0.22222,
                "per_type": {"person": {"precision": 0.25, "recall": 0.2, "f1": 0.22222, "number": 5}},
                "num_examples": 6,
                "runtime_s": 0.1,
            },
        },
    ),
    "question-answering": (
        "squad_v2",
        {
            "max_seq_length": 384,
            "doc_stride": 128,
            "null_score_diff_threshold": -1.5,
            "tune_null_threshold": True,
        },
        {
            "validation": {
                "exact": 64.28571,
                "f1": 70.1234,
                "total": 14,
                "HasAns_exact": 55.5556,
                "HasAns_f1": 64.7,
                "HasAns_total": 9,
                "NoAns_exact": 80.0,
                "NoAns_f1": 80.0,
                "NoAns_total": 5,
                "best_exact": 71.4286,
                "best_exact_thresh": -1.5,
                "best_f1": 75.0,
                "best_f1_thresh": -1.5,
                "null_score_diff_threshold": 0.0,
                "num_examples": 14,
                "runtime_s": 0.3,
            }
        },
    ),
}


def run_config(task_name: str, extra: dict[str, Any], data_dir: str = "/home/someone/data/aclImdb") -> dict:
    """training_args.json as train.py writes it (the fields the card reads, and the local paths it must not show)."""
    return {
        "task": task_name,
        "data_dir": data_dir,
        "train_file": None,
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "output_dir": f"/home/someone/outputs/{task_name}",
        "learning_rate": 1e-4,
        "num_train_epochs": 3.0,
        "per_device_train_batch_size": 16,
        "gradient_accumulation_steps": 1,
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        "seed": 42,
        "eval_split": "validation",
        "train_runtime_s": 12.3,
        **extra,
    }


@pytest.fixture
def saved_run(tmp_path, tiny_tokenizer, request) -> tuple[Path, str, dict, dict]:
    """An output folder with a tiny random model of the task type (so the card's usage code can run), its
    training_args.json and results files."""
    pipeline_tag = request.param
    task_name, extra, results = RUNS[pipeline_tag]
    labels = LABELS[pipeline_tag]
    kwargs = (
        {"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}
        if labels
        else {}
    )
    torch.manual_seed(0)
    output_dir = tmp_path / f"{task_name}-run"
    MODEL_CLASSES[pipeline_tag](tiny_bert_config(len(tiny_tokenizer), **kwargs)).save_pretrained(output_dir)
    tiny_tokenizer.save_pretrained(output_dir)
    config = run_config(task_name, extra)
    (output_dir / "training_args.json").write_text(json.dumps(config))
    for split, metrics in results.items():
        name = "eval" if split == "validation" else split
        (output_dir / f"{name}_results.json").write_text(json.dumps(metrics))
    return output_dir, pipeline_tag, config, results


def card_for(saved: tuple[Path, str, dict, dict], **kwargs: Any) -> ModelCard:
    output_dir, pipeline_tag, config, results = saved
    return model_card(
        output_dir,
        config,
        results,
        config["task"],
        pipeline_tag,
        config["model"],
        kwargs.pop("dataset_name", None),
        **kwargs,
    )


@pytest.mark.parametrize("saved_run", list(RUNS), indirect=True)
def test_card_metadata_round_trips_through_the_hubs_parsers(saved_run):
    """`ModelCard.validate()` needs the network; offline, the card must parse back with huggingface_hub's own
    readers to the same eval results, with fields the Hub knows."""
    _, pipeline_tag, config, results = saved_run
    card = card_for(saved_run, model_id="someone/tiny-model")
    path = write_model_card(
        saved_run[0],
        config,
        results,
        config["task"],
        pipeline_tag,
        config["model"],
        None,
        model_id="someone/tiny-model",
    )
    assert path.read_text(encoding="utf-8") == str(card)

    metadata = metadata_load(path)
    name, eval_results = model_index_to_eval_results(metadata["model-index"])
    assert name == "someone/tiny-model"
    assert eval_results == ModelCard.load(path).data.eval_results == card.data.eval_results
    assert {r.dataset_split for r in eval_results} == set(results)
    for result in eval_results:
        assert result.task_type == pipeline_tag and result.task_name == TASK_TAG_TO_NAME_MAPPING[pipeline_tag]
        assert result.dataset_type == "aclImdb"  # the local folder's name, not a public benchmark's id
        assert isinstance(result.metric_value, float)
    assert sorted(metadata["metrics"]) == sorted({r.metric_type for r in eval_results})

    assert metadata["license"] == "apache-2.0"  # from the embedded base model's own card
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == pipeline_tag
    assert metadata["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    validate_repo_id(metadata["base_model"])
    assert "datasets" not in metadata  # local files: no Hub dataset to link
    assert metadata["tags"] == ["rawtune", pipeline_tag]


@pytest.mark.parametrize("saved_run", ["text-classification"], indirect=True)
def test_classification_card_body(saved_run):
    card = card_for(saved_run, model_id="someone/imdb-minilm")
    text = card.text
    metrics = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert metrics == {
        ("validation", "accuracy"): 0.875,
        ("validation", "f1"): 0.8667,
        ("test", "accuracy"): 0.8125,
        ("test", "f1"): 0.8095,
    }
    assert "Labels (2): `neg`, `pos`" in text
    assert "| learning_rate | 0.0001 |" in text and "| max_seq_length | 256 |" in text
    assert "| metric | validation | test |" in text
    assert "| accuracy | 0.875 | 0.8125 |" in text
    assert "| num_examples | 8 | 16 |" in text
    assert "| runtime_s |" not in text
    assert "/home/someone" not in str(card)  # local paths stay out of a public card
    assert 'pipeline("text-classification", model="someone/imdb-minilm")' in text
    assert "The `test` split was scored once, with the final model, and used for no choice." in text


@pytest.mark.parametrize("saved_run", ["token-classification"], indirect=True)
def test_ner_card_has_entity_figures_per_type(saved_run):
    card = card_for(saved_run)
    text = card.text
    assert [r.metric_type for r in card.data.eval_results if r.dataset_split == "test"] == [
        "precision",
        "recall",
        "f1",
    ]
    assert "| type | validation precision | validation recall | validation f1 | validation number |" in text
    assert "| location | 1 | 0.5 | 0.6667 | 2 | - | - | - | - |" in text
    assert "| person | 0 | 0 | 0 | 2 | 0.25 | 0.2 | 0.2222 | 5 |" in text
    assert "| label_all_tokens | False |" in text
    assert 'aggregation_strategy="simple"' in text


@pytest.mark.parametrize("saved_run", ["question-answering"], indirect=True)
def test_qa_card_uses_the_registered_pipeline_and_the_tuned_threshold(saved_run):
    card = card_for(saved_run)
    text = card.text
    assert {(r.metric_type, r.metric_value) for r in card.data.eval_results} == {
        ("exact_match", 64.2857),
        ("f1", 70.1234),
    }
    assert "| HasAns_f1 | 64.7 |" in text and "| best_f1_thresh | -1.5 |" in text
    assert "import processing" in text
    assert 'pipeline("extractive-question-answering"' in text
    assert "null_score_diff_threshold=-1.5" in text
    assert "the no-answer threshold was tuned on it" in text
    assert "The data had no test split" in text
    assert "Labels" not in text  # a QA head's LABEL_0/LABEL_1 are not classes


@pytest.mark.parametrize("saved_run", list(RUNS), indirect=True)
def test_card_usage_code_runs_on_the_saved_model(saved_run, monkeypatch):
    """The card's Python snippet, run as written beside the output folder, gives the task's kind of answer."""
    # Without a Hub id the snippet names the folder, not its absolute path.
    monkeypatch.chdir(saved_run[0].parent)
    code = re.search(r"```python\n(.*?)```", card_for(saved_run).text, re.DOTALL).group(1)
    *statements, last = ast.parse(code).body
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(statements, type_ignores=[]), "<card>", "exec"), namespace)
    answer = eval(compile(ast.Expression(last.value), "<card>", "eval"), namespace)
    pipeline_tag = saved_run[1]
    if pipeline_tag == "text-classification":
        assert answer[0]["label"] in LABELS[pipeline_tag]
    elif pipeline_tag == "token-classification":
        assert all(entity["entity_group"] in {"person", "location"} for entity in answer)
    else:
        assert set(answer) == {"answer", "start", "end", "score"}


@pytest.mark.parametrize("saved_run", ["token-classification"], indirect=True)
def test_card_for_a_local_base_model_and_a_hub_dataset(saved_run, tmp_path):
    base = tmp_path / "my-base-model"
    base.mkdir()
    (base / "README.md").write_text("---\nlicense: mit\n---\n# base\n", encoding="utf-8")
    output_dir, pipeline_tag, config, results = saved_run
    card = model_card(output_dir, config, results, "wnut17", pipeline_tag, str(base), "someone/wnut17-raw")
    metadata = card.data.to_dict()
    assert metadata["license"] == "mit"  # the base model's own license
    assert "base_model" not in metadata  # a path is not a Hub id
    assert metadata["datasets"] == ["someone/wnut17-raw"]
    assert {r.dataset_type for r in card.data.eval_results} == {"someone/wnut17-raw"}
    assert "`my-base-model` fine-tuned on someone/wnut17-raw" in card.text  # its name, not where it lies
    assert str(tmp_path) not in str(card)
    explicit = model_card(
        output_dir, config, results, "wnut17", pipeline_tag, str(base), None, license="cc-by-4.0"
    )
    assert explicit.data.license == "cc-by-4.0"


def test_card_refuses_an_unknown_task_type(tmp_path):
    with pytest.raises(ValueError, match="summarization"):
        model_card(tmp_path, {}, {}, "x", "summarization", "bert-base-uncased", None)


# --- model upload -------------------------------------------------------------------------------------------

RUN_FILES = [
    "README.md",
    "config.json",
    "eval_predictions.jsonl",
    "eval_results.json",
    "model.safetensors",
    "null_odds.json",
    "predictions.json",
    "special_tokens_map.json",
    "test_null_odds.json",
    "test_predictions.json",
    "test_results.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "training_args.json",
    "vocab.txt",
]
OTHER_FILES = [
    "checkpoints/step_10/model.safetensors",
    "checkpoints/step_10/optimizer.bin",
    "checkpoints/step_10/trainer_state.json",
    "checkpoints/step_10/events.out.tfevents.1.host.0",
    "runs/events.out.tfevents.2.host.0",
    "train-imdb/events.out.tfevents.3.host.0",
    "notes.txt",
]


@pytest.fixture
def output_dir(tmp_path) -> Path:
    root = tmp_path / "out"
    for name in RUN_FILES + OTHER_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    return root


def test_files_to_upload_leave_out_checkpoints_and_logs(output_dir):
    assert files_to_upload(output_dir) == RUN_FILES
    with_logs = files_to_upload(output_dir, include_logs=True)
    assert with_logs == sorted(
        [*RUN_FILES, "runs/events.out.tfevents.2.host.0", "train-imdb/events.out.tfevents.3.host.0"]
    )


def test_push_output_dir_creates_the_repo_and_sends_exactly_those_files(
    output_dir, api, secret_token, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    url = push_output_dir(output_dir, "someone/tiny-model", api=api, private=True)
    assert url == "https://huggingface.co/someone/tiny-model/commit/0123abc"
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][1] == {
        "repo_id": "someone/tiny-model",
        "repo_type": "model",
        "private": True,
        "exist_ok": True,
    }
    upload = api.calls[1][1]
    assert upload["repo_id"] == "someone/tiny-model" and upload["repo_type"] == "model"
    assert upload["folder_path"] == output_dir
    assert upload["allow_patterns"] == RUN_FILES
    assert "token" not in upload  # HfApi finds it; it never passes through our code
    assert api.sent("someone/tiny-model") == RUN_FILES
    out, err = capsys.readouterr()
    assert secret_token not in caplog.text + out + err


def test_push_output_dir_without_weights_sends_nothing(tmp_path, api):
    (tmp_path / "eval_results.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no model weights"):
        push_output_dir(tmp_path, "someone/tiny-model", api=api)
    assert api.calls == []


def test_push_checkpoint_uploads_in_the_background_under_checkpoints(output_dir, api):
    future = push_checkpoint(output_dir / "checkpoints" / "step_10", "someone/tiny-model", api=api)
    assert future.result().commit_url.endswith("/commit/0123abc")
    upload = api.calls[1][1]
    assert upload["run_as_future"] is True and upload["path_in_repo"] == "checkpoints/step_10"
    assert api.sent("someone/tiny-model") == [
        "checkpoints/step_10/events.out.tfevents.1.host.0",
        "checkpoints/step_10/model.safetensors",
        "checkpoints/step_10/optimizer.bin",
        "checkpoints/step_10/trainer_state.json",
    ]


# --- data sets ----------------------------------------------------------------------------------------------

DATA_DIRS = {"imdb": SAMPLES / "imdb", "wnut17": SAMPLES / "wnut17", "squad_v2": SAMPLES / "squad"}


@pytest.mark.parametrize("name", list(DATA_DIRS))
def test_pushed_dataset_loads_back_identical_from_the_hub_layout(tmp_path, api, name):
    """What the upload sends is a folder in the Hub's layout; `datasets.load_dataset` on it is what a Hub user's
    `load_dataset(repo_id)` does: same splits, same features (ClassLabel names too), same rows."""
    prepared = loaders.load_dataset(name, data_dir=DATA_DIRS[name], cache_dir=str(tmp_path / "cache"))
    url = push_dataset(prepared, name, "someone/data", api=api, command=f"python -m loaders push {name}")
    assert url.endswith("/commit/0123abc")

    assert [call for call, _ in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][1]["repo_type"] == "dataset" and api.calls[0][1]["private"] is False
    assert api.calls[1][1]["repo_type"] == "dataset"
    assert api.calls[1][1]["delete_patterns"] == [f"{DATA_DIR}/*"]  # shards of vanished splits go
    assert api.sent("someone/data") == sorted(
        ["README.md", *(f"data/{split}-00000-of-00001.parquet" for split in prepared)]
    )

    remote = tmp_path / "remote" / "someone" / "data"
    again = datasets.load_dataset(str(remote), cache_dir=str(tmp_path / "hub_cache"))
    assert list(again) == list(prepared)
    for split in prepared:
        assert again[split].features == prepared[split].features
        assert again[split].to_list() == prepared[split].to_list()

    card = DatasetCard.load(remote / "README.md")
    assert card.data.license == "unknown"
    assert card.data.task_categories == [FORMATS[name].task_category]
    assert card.data.pretty_name == "data"
    assert card.data.configs == [
        {"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in prepared]}
    ]
    # The YAML alone (what the Hub and its viewer read) carries the features with their label names.
    info = DatasetInfosDict.from_dataset_card_data(card.data)["default"]
    assert info.features == prepared["train"].features
    assert {split: info.splits[split].num_examples for split in prepared} == {
        split: len(rows) for split, rows in prepared.items()
    }
    assert f"python -m loaders push {name}" in card.text
    assert 'load_dataset("someone/data")' in card.text


def test_dataset_card_lists_labels_and_unlabelled_rows(tmp_path, api):
    prepared = loaders.load_dataset("imdb", data_dir=DATA_DIRS["imdb"], cache_dir=str(tmp_path / "cache"))
    push_dataset(prepared, "imdb", "someone/reviews", api=api, license="cc-by-4.0", pretty_name="My reviews")
    card = DatasetCard.load(tmp_path / "remote" / "someone" / "reviews" / "README.md")
    assert card.data.license == "cc-by-4.0" and card.data.pretty_name == "My reviews"
    assert "| train | 24 |" in card.text and "| unsupervised | 3 |" in card.text
    assert "| label | class label (2 names) |" in card.text
    assert "- `label`: 0 `neg`, 1 `pos`" in card.text
    assert "(-1 marks unlabelled rows, in unsupervised)" in card.text
    assert "How it was made" not in card.text  # no command given


def test_cli_push(tmp_path, api, monkeypatch, secret_token, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr("loaders.hub.HfApi", lambda: api)
    argv = ["push", "wnut17", "--data_dir", str(DATA_DIRS["wnut17"]), "--repo_id", "someone/wnut"]
    argv += ["--private", "--license", "cc-by-4.0", "--cache_dir", str(tmp_path / "cache")]
    assert loaders_main(argv) == 0
    assert api.calls[0][1] == {
        "repo_id": "someone/wnut",
        "repo_type": "dataset",
        "private": True,
        "exist_ok": True,
    }
    card = DatasetCard.load(tmp_path / "remote" / "someone" / "wnut" / "README.md")
    assert card.data.license == "cc-by-4.0"
    assert "python -m loaders push wnut17 --data_dir " in card.text
    assert "- `ner_tags`: 0 `O`, 1 `B-corporation`" in card.text
    out, err = capsys.readouterr()
    assert "validation:" in out and "pushed: https://huggingface.co/someone/wnut/commit/0123abc" in out
    assert secret_token not in caplog.text + out + err


def test_cli_push_without_a_token_says_so(tmp_path, api, monkeypatch, capsys):
    def no_token(repo_id: str, **kwargs: Any) -> RepoUrl:
        raise LocalTokenNotFoundError("Token is required; log in with `hf auth login` or set HF_TOKEN.")

    monkeypatch.setattr(api, "create_repo", no_token)
    monkeypatch.setattr("loaders.hub.HfApi", lambda: api)
    argv = ["push", "wnut17", "--data_dir", str(DATA_DIRS["wnut17"]), "--repo_id", "someone/wnut"]
    assert loaders_main([*argv, "--cache_dir", str(tmp_path / "cache")]) == 1
    assert "error: could not push to someone/wnut: Token is required" in capsys.readouterr().err
    assert api.calls == []


def test_cli_push_needs_a_repo_id(capsys):
    with pytest.raises(SystemExit) as exit_info:
        loaders_main(["push", "wnut17", "--data_dir", str(DATA_DIRS["wnut17"])])
    assert exit_info.value.code == 2
    assert "--repo_id" in capsys.readouterr().err


def test_cli_push_to_a_local_dir_writes_the_repository_and_uploads_nothing(
    tmp_path, api, monkeypatch, capsys
):
    monkeypatch.setattr("loaders.hub.HfApi", lambda: api)
    folder = tmp_path / "wnut-repo"
    argv = ["push", "wnut17", "--data_dir", str(DATA_DIRS["wnut17"]), "--repo_id", "someone/wnut"]
    argv += ["--cache_dir", str(tmp_path / "cache"), "--local_dir", str(folder)]

    assert loaders_main(argv) == 0

    assert api.calls == []
    prepared = loaders.load_dataset("wnut17", data_dir=DATA_DIRS["wnut17"], cache_dir=str(tmp_path / "cache"))
    again = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hub_cache"))
    assert {split: again[split].to_list() for split in again} == {s: prepared[s].to_list() for s in prepared}
    assert 'load_dataset("someone/wnut")' in (folder / "README.md").read_text()
    assert f"wrote: {folder} (not uploaded)" in capsys.readouterr().out

    assert loaders_main(argv) == 2  # the folder now holds files: never written into again
    assert capsys.readouterr().err.strip() == f"error: --local_dir {folder}: expected a new or empty folder"


def test_cli_summary_is_unchanged(tmp_path, capsys):
    argv = ["summary", "wnut17", "--data_dir", str(DATA_DIRS["wnut17"]), "--cache_dir", str(tmp_path / "c")]
    assert loaders_main(argv) == 0
    out = capsys.readouterr().out
    assert "train:     18 rows" in out and "pushed" not in out


@pytest.mark.parametrize("saved_run", ["token-classification"], indirect=True)
def test_card_shows_the_figures_it_is_given_else_those_the_folder_lists(saved_run):
    """The finishing step hands the analysis it just wrote; a card made later from a folder reads its index."""
    output_dir = saved_run[0]
    (output_dir / "eval_analysis.json").write_text(json.dumps([{"file": "eval_old.png", "caption": "Old."}]))
    given = card_for(
        saved_run, figures=[("eval_per_type.png", "Per type."), ("eval_entity_confusions.md", "T.")]
    )
    listed = card_for(saved_run)

    assert "![Per type.](eval_per_type.png)" in str(given)
    assert "eval_entity_confusions.md" not in str(given)  # only pictures are embedded
    assert "eval_old.png" not in str(given)
    assert "![Old.](eval_old.png)" in str(listed)
