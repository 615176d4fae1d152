"""`python -m commands.predict` on tiny untrained models: the same answers as the pipelines and as evaluation's
own functions, on the samples and on inputs long enough to need windows."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset
from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    pipeline,
)

import processing  # noqa: F401  (registers the extractive QA pipeline)
from commands.predict import main, predict, read_settings, text_files
from conftest import REPO_ROOT, SAMPLES, free_port
from loaders.conll import WNUT17_LABELS
from loaders.files import read_text
from processing import question_answering
from processing.qa_pipeline import TASK_NAME
from processing.tasks import score_outputs
from processing.token_classification import assign_windows, entity_spans, word_windows


def save_model(model, directory: Path, tokenizer) -> Path:
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def classifier_dir(tiny_model_dir, tiny_tokenizer, tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=2, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1}
    )
    split_the_samples(model, tiny_tokenizer, [read_text(f) for f in text_files(SAMPLES / "imdb")])
    return save_model(model, tmp_path_factory.mktemp("classifier"), tiny_tokenizer)


def split_the_samples(model, tokenizer, texts: list[str], scale: float | None = None) -> None:
    """An untrained head gives every text almost the same logits, hence one label: move the decision into the
    widest gap between the samples' logit differences, then scale (by default to unit margins), so both labels
    occur with a clear margin."""
    with torch.no_grad():
        encoding = tokenizer(texts, truncation=True, padding=True, return_tensors="pt")
        logits = model(**encoding).logits
        diffs = (logits[:, 1] - logits[:, 0]).sort().values
        widest = int((diffs[1:] - diffs[:-1]).argmax())
        model.classifier.bias[1] -= (diffs[widest] + diffs[widest + 1]) / 2
        scale = scale or 1.0 / float(diffs[widest + 1] - diffs[widest])
        model.classifier.weight.mul_(scale)
        model.classifier.bias.mul_(scale)


@pytest.fixture(scope="module")
def tagger_dir(tiny_model_dir, tiny_tokenizer, tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(
        tiny_model_dir,
        num_labels=len(WNUT17_LABELS),
        id2label=dict(enumerate(WNUT17_LABELS)),
        label2id={name: i for i, name in enumerate(WNUT17_LABELS)},
    )
    return save_model(model, tmp_path_factory.mktemp("tagger"), tiny_tokenizer)


@pytest.fixture(scope="module")
def qa_dir(tiny_model_dir, tiny_tokenizer, tmp_path_factory) -> Path:
    torch.manual_seed(1)
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_model_dir)
    return save_model(model, tmp_path_factory.mktemp("qa"), tiny_tokenizer)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_classification_matches_the_pipeline_on_an_aclimdb_folder(classifier_dir, tmp_path):
    out = tmp_path / "predictions.jsonl"

    assert main(["--model", str(classifier_dir), "--input", str(SAMPLES / "imdb"), "--out", str(out)]) == 0

    rows = read_jsonl(out)
    files = text_files(SAMPLES / "imdb")
    assert len(rows) == len(files) == 43  # train pos/neg/unsup 12 + 12 + 3, test 8 + 8
    assert [r["file"] for r in rows] == [f.relative_to(SAMPLES / "imdb").as_posix() for f in files]
    expected = pipeline("text-classification", model=str(classifier_dir))(
        [read_text(f) for f in files], truncation=True
    )
    assert [r["label"] for r in rows] == [e["label"] for e in expected]
    assert [r["score"] for r in rows] == pytest.approx([e["score"] for e in expected], abs=1e-3)
    assert {r["label"] for r in rows} == {"neg", "pos"}


def test_text_files_are_those_of_leaf_folders(tmp_path):
    for name in ("train/pos/0_9.txt", "train/neg/1_2.txt", "train/urls_pos.txt", "imdbEr.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("text", encoding="utf-8")
    (tmp_path / "train" / "pos" / "._0_9.txt").write_bytes(b"\x00")
    (tmp_path / "__MACOSX" / "train").mkdir(parents=True)
    (tmp_path / "__MACOSX" / "train" / "x.txt").write_text("x")
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("b.txt", "a.txt", "notes.md"):
        (flat / name).write_text("text")

    assert [p.relative_to(tmp_path).as_posix() for p in text_files(tmp_path)] == [
        "flat/a.txt",
        "flat/b.txt",
        "train/neg/1_2.txt",
        "train/pos/0_9.txt",
    ]
    assert text_files(flat) == [flat / "a.txt", flat / "b.txt"]


def test_word_windows_overlap_by_half_and_each_word_takes_its_most_central_window():
    windows = word_windows([1] * 10, budget=4)

    assert windows == [range(0, 4), range(2, 6), range(4, 8), range(6, 10)]
    assert assign_windows(windows, 10) == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    # Sub-token counts decide the fit; a word longer than the budget gets a window of its own.
    assert word_windows([2, 3, 9, 1], budget=5) == [range(0, 2), range(2, 3), range(3, 4)]
    assert word_windows([1, 1], budget=5) == [range(0, 2)]


def test_entity_spans():
    words = ["john", "smith", "in", "new", "york", "and", "paris", "london"]
    tags = ["B-person", "I-person", "O", "I-location", "I-location", "O", "B-location", "B-location"]

    assert entity_spans(words, tags) == [
        {"type": "person", "start": 0, "end": 2, "text": "john smith"},
        {"type": "location", "start": 3, "end": 5, "text": "new york"},
        {"type": "location", "start": 6, "end": 7, "text": "paris"},
        {"type": "location", "start": 7, "end": 8, "text": "london"},
    ]
    assert entity_spans(["a", "b", "c"], ["B-x", "I-y", "O"]) == [
        {"type": "x", "start": 0, "end": 1, "text": "a"},
        {"type": "y", "start": 1, "end": 2, "text": "b"},
    ]


@pytest.fixture(scope="module")
def direct_tags(tagger_dir, tiny_tokenizer):
    """Each word's tag from its first sub-token, the words in one untruncated pass."""
    model = AutoModelForTokenClassification.from_pretrained(tagger_dir).eval()

    def tags(words: list[str]) -> list[str]:
        encoding = tiny_tokenizer(words, is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            labels = model(**encoding).logits.argmax(-1)[0].tolist()
        first: dict[int, int] = {}
        for position, word in enumerate(encoding.word_ids()):
            if word is not None:
                first.setdefault(word, labels[position])
        return [WNUT17_LABELS[first[w]] for w in range(len(words))]

    return tags


def test_ner_tags_tagged_and_untagged_conll_alike(tagger_dir, direct_tags, tmp_path):
    tagged = SAMPLES / "wnut17" / "emerging.test.annotated"
    untagged = tmp_path / "untagged.conll"
    untagged.write_text(
        "\n".join(line.split("\t")[0] for line in read_text(tagged).split("\n")) + "\n", encoding="utf-8"
    )

    rows = list(predict(str(tagger_dir), tagged, {}))
    again = list(predict(str(tagger_dir), untagged, {}))

    assert len(rows) == 6 and [r["document"] for r in rows] == list(range(6))
    assert [r["tags"] for r in rows] == [r["tags"] for r in again]
    for row in rows:
        assert row["tags"] == direct_tags(row["tokens"])
        assert row["entities"] == entity_spans(row["tokens"], row["tags"])


def test_ner_long_document_takes_each_tag_from_its_most_central_window(tagger_dir, direct_tags, tmp_path):
    words = ["john", "went", "to", "london", "and", "paris", "in", "the", "city"] * 4  # one sub-token each
    (tmp_path / "long.conll").write_text("\n".join(words) + "\n", encoding="utf-8")

    [row] = predict(str(tagger_dir), tmp_path / "long.conll", {"max_seq_length": 10})

    windows = word_windows([1] * len(words), budget=8)
    assert len(windows) > 3
    chosen = assign_windows(windows, len(words))
    for word, window in enumerate(chosen):
        window_words = [words[w] for w in windows[window]]
        assert row["tags"][word] == direct_tags(window_words)[word - windows[window].start]


def test_qa_answers_as_the_pipeline_does_over_several_windows(qa_dir, tmp_path):
    # At this threshold the untrained model answers some questions and abstains on others.
    settings = {"max_seq_length": 96, "doc_stride": 32, "null_score_diff_threshold": -0.45, "batch_size": 4}
    rows = list(predict(str(qa_dir), SAMPLES / "squad" / "dev-v2.0.json", settings))

    data = json.loads((SAMPLES / "squad" / "dev-v2.0.json").read_text(encoding="utf-8"))
    qas = [(qa, p["context"]) for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]]
    assert [r["id"] for r in rows] == [qa["id"] for qa, _ in qas]
    qa_pipe = pipeline(TASK_NAME, model=str(qa_dir))
    for row, (qa, context) in zip(rows, qas, strict=True):
        expected = qa_pipe(
            question=qa["question"],
            context=context,
            max_seq_len=96,
            doc_stride=32,
            handle_impossible_answer=True,
            null_score_diff_threshold=-0.45,
        )
        assert row["answer"] == expected["answer"]
        if row["answer"]:
            assert (row["start"], row["end"]) == (expected["start"], expected["end"])
            assert context[row["start"] : row["end"]] == row["answer"]
        else:
            assert row["start"] is None and row["end"] is None
        # The pipeline's score is sigmoid(-null odds) for an answer and sigmoid(null odds) when it abstains.
        logit = math.log(expected["score"] / (1 - expected["score"]))
        assert row["null_odds"] == pytest.approx(logit if not row["answer"] else -logit, abs=1e-4)
    assert {bool(r["answer"]) for r in rows} == {True, False}


LONG_CONTEXT = " ".join(["the film was played in london and paris"] * 12) + " john smith went to new york."
LONG_QUESTIONS = [
    "who went to new york?",
    "where was the film played?",
    "what?",
    "who is john?",
    "was it paris?",
]


def evaluation_answers(qa_dir, tokenizer, tmp_path: Path, threshold: float) -> tuple[dict, dict]:
    """Predictions and null odds as a run's evaluation writes them, for the long-context questions."""
    raw = Dataset.from_dict(
        {
            "id": [f"q{i}" for i in range(len(LONG_QUESTIONS))],
            "question": LONG_QUESTIONS,
            "context": [LONG_CONTEXT] * len(LONG_QUESTIONS),
            "answers": [{"text": [], "answer_start": []}] * len(LONG_QUESTIONS),
        }
    )
    windows = question_answering.prepare_eval_features(raw[:], tokenizer, 48, 16)
    assert len(windows["input_ids"]) >= 4 * len(LONG_QUESTIONS)  # every context is cut into several windows
    names = [name for name in tokenizer.model_input_names if name in windows]
    with torch.no_grad():
        outputs = AutoModelForQuestionAnswering.from_pretrained(qa_dir).eval()(
            **tokenizer.pad({n: windows[n] for n in names}, return_tensors="pt")
        )
    config = SimpleNamespace(null_score_diff_threshold=threshold, n_best_size=20, max_answer_length=30)
    scored = score_outputs(
        question_answering.TASK,
        raw,
        Dataset.from_dict({"example_id": windows["example_id"], "offset_mapping": windows["offset_mapping"]}),
        {"start_logits": outputs.start_logits.numpy(), "end_logits": outputs.end_logits.numpy()},
        None,
        config,
    )
    predictions_file, null_odds_file = scored.write_predictions(tmp_path, "eval")
    return json.loads(predictions_file.read_text()), json.loads(null_odds_file.read_text())


def test_evaluation_predict_and_pipeline_give_the_same_answers_on_a_long_context(
    qa_dir, tiny_tokenizer, tmp_path
):
    _, null_odds = evaluation_answers(qa_dir, tiny_tokenizer, tmp_path, 0.0)
    # Halfway between two questions' null odds: two are answered, three are not, and no rounding of the logits
    # (which each path pads differently) can move a question across the threshold.
    odds = sorted(null_odds.values())
    threshold = (odds[1] + odds[2]) / 2
    assert threshold != 0.0
    evaluated, _ = evaluation_answers(qa_dir, tiny_tokenizer, tmp_path, threshold)

    squad = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": LONG_CONTEXT,
                        "qas": [{"id": f"q{i}", "question": q} for i, q in enumerate(LONG_QUESTIONS)],
                    }
                ],
            }
        ]
    }
    (tmp_path / "long.json").write_text(json.dumps(squad))
    settings = {
        "max_seq_length": 48,
        "doc_stride": 16,
        "null_score_diff_threshold": threshold,
        "batch_size": 3,
    }
    predicted = {row["id"]: row["answer"] for row in predict(str(qa_dir), tmp_path / "long.json", settings)}

    qa_pipe = pipeline(TASK_NAME, model=str(qa_dir))
    piped = {
        f"q{i}": qa_pipe(
            question=question,
            context=LONG_CONTEXT,
            max_seq_len=48,
            doc_stride=16,
            handle_impossible_answer=True,
            null_score_diff_threshold=threshold,
        )["answer"]
        for i, question in enumerate(LONG_QUESTIONS)
    }
    assert evaluated == predicted == piped
    assert {answer != "" for answer in evaluated.values()} == {True, False}


def test_settings_come_from_training_args_unless_a_flag_says_otherwise(qa_dir, tmp_path, tiny_tokenizer):
    model = save_model(
        AutoModelForQuestionAnswering.from_pretrained(qa_dir), tmp_path / "run", tiny_tokenizer
    )
    (model / "training_args.json").write_text(
        json.dumps({"max_seq_length": 200, "doc_stride": 50, "null_score_diff_threshold": -2.5, "model": "x"})
    )

    settings = read_settings(str(model), tiny_tokenizer, {"doc_stride": 20, "batch_size": None})

    assert (settings.max_seq_length, settings.doc_stride, settings.null_score_diff_threshold) == (
        200,
        20,
        -2.5,
    )
    assert (settings.n_best_size, settings.max_answer_length, settings.batch_size) == (20, 30, 32)
    assert read_settings(str(qa_dir), tiny_tokenizer, {}).max_seq_length == 512


def test_cli_rejects_a_model_it_cannot_predict_with(tiny_model_dir, tmp_path, capsys):
    argv = ["--model", str(tiny_model_dir), "--input", str(tmp_path), "--out", str(tmp_path / "p.jsonl")]

    assert main(argv) == 2
    assert "names no architecture" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # neither the predictions nor a temporary file


PREDICT_EACH = """
import json, sys
from commands.predict import main
codes = [main(argv) for argv in json.loads(sys.argv[1])]
sys.exit(0 if codes == json.loads(sys.argv[2]) else 1)
"""
"""Runs `commands.predict.main` once per argv in one launch, so that the launcher and imports are paid once."""


def test_two_processes_write_one_file_in_input_order_as_one_process_does(
    classifier_dir, tagger_dir, qa_dir, tmp_path
):
    """Two real CPU processes (gloo) under `accelerate launch`: each task's file is the one-process file, byte for
    byte, from inputs that 2 does not divide (43 texts, 5 documents, 45 questions in two files). Rows are gathered
    a batch at a time: `--batch_size 1` makes that many rounds (22 for the texts, the last with one row), and keeps
    every input in a batch of its own, padded alike in both runs."""
    conll = tmp_path / "five.conll"
    conll.write_text(
        textwrap.dedent("""\
            john
            smith
            went
            to
            london

            the
            film

            apple
            and
            google

            paris
            is
            the
            capital

            who
            played
        """)
    )
    broken = tmp_path / "broken"
    broken.mkdir()
    for name, content in (("a.txt", b"good"), ("b.txt", b"\xff\xfe bad"), ("c.txt", b"fine")):
        (broken / name).write_bytes(content)  # b.txt, the second input, is the second process's
    inputs = {
        "texts": (classifier_dir, SAMPLES / "imdb"),
        "documents": (tagger_dir, conll),
        "questions": (qa_dir, SAMPLES / "squad"),
    }
    argv = {
        name: ["--model", str(model), "--input", str(path), "--batch_size", "1"]
        for name, (model, path) in inputs.items()
    }
    for name in inputs:
        assert main([*argv[name], "--out", str(tmp_path / "one" / f"{name}.jsonl")]) == 0
    runs = [[*argv[name], "--out", str(tmp_path / "two" / f"{name}.jsonl")] for name in inputs]
    runs.append(["--model", str(classifier_dir), "--input", str(broken), "--out", str(tmp_path / "no.jsonl")])
    unwritable = (
        Path("/proc") / f"rawtune-{tmp_path.name}.jsonl"
    )  # no file can be made in /proc, even by root
    runs.append(["--model", str(classifier_dir), "--input", str(SAMPLES / "imdb"), "--out", str(unwritable)])
    driver = tmp_path / "predict_each.py"
    driver.write_text(PREDICT_EACH)

    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--main_process_port", str(free_port()), "--mixed_precision", "no", "--dynamo_backend", "no",
        str(driver), json.dumps(runs), json.dumps([0, 0, 0, 2, 2]),
    ]  # fmt: skip
    environment = {
        **os.environ,
        "ACCELERATE_USE_CPU": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0, completed.stderr[-3000:]

    for name, lines in (("texts", 43), ("documents", 5), ("questions", 45)):
        one = (tmp_path / "one" / f"{name}.jsonl").read_text(encoding="utf-8")
        assert (tmp_path / "two" / f"{name}.jsonl").read_text(encoding="utf-8") == one
        assert len(one.splitlines()) == lines
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and "b.txt" in errors[0]  # raised on the second process, said once by the first
    assert errors[1].startswith(
        f"error: --out {unwritable}: "
    )  # the second process did not wait for the first
    assert not (tmp_path / "no.jsonl").exists()
