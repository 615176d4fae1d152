"""`python -m commands.predict` given careless or hostile inputs: another task's files, a context long enough to
exhaust memory, an `--out` that cannot be written, broken models and flags. Each is one `error:` line naming the
file or flag, or the exact result; a failed run leaves `--out` as it was."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

import pytest
import safetensors.torch
import torch
from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertForQuestionAnswering,
)

from commands.predict import main, predict
from conftest import SAMPLES, WHOLE_WORDS


def saved(model, directory: Path, tokenizer) -> Path:
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def classifier_dir(tiny_model_dir, tiny_tokenizer, tmp_path_factory) -> Path:
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
    return saved(model, tmp_path_factory.mktemp("classifier"), tiny_tokenizer)


@pytest.fixture(scope="module")
def tagger_dir(tiny_model_dir, tiny_tokenizer, tmp_path_factory) -> Path:
    model = AutoModelForTokenClassification.from_pretrained(tiny_model_dir, num_labels=3)
    return saved(model, tmp_path_factory.mktemp("tagger"), tiny_tokenizer)


@pytest.fixture(scope="module")
def qa_dir(tiny_model_dir, tiny_tokenizer, tmp_path_factory) -> Path:
    torch.manual_seed(1)
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_model_dir)
    return saved(model, tmp_path_factory.mktemp("qa"), tiny_tokenizer)


def run(model: Path, input_path: Path, out: Path, *flags: str) -> int:
    return main(["--model", str(model), "--input", str(input_path), "--out", str(out), *flags])


def error_line(capsys) -> str:
    """The one error line: the last of stderr (progress bars may precede it), with no traceback anywhere."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ")
    return last


def squad(questions: list[tuple[str, str]], context: str) -> dict:
    qas = [{"id": qid, "question": question, "answers": []} for qid, question in questions]
    return {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}


# Bullet: the input's format is checked against the model's task.

NER_EXPECTS = "a token-classification model takes CoNLL text"
TEXT_EXPECTS = "a text-classification model takes a .txt file or a folder of them"
QA_EXPECTS = 'a question-answering model takes SQuAD JSON: an object with a "data" list'


@pytest.mark.parametrize(
    ("model", "input_path", "expected"),
    [
        (
            "tagger_dir",
            SAMPLES / "squad" / "dev-v2.0.json",
            f"dev-v2.0.json: is JSON, not CoNLL text; {NER_EXPECTS}",
        ),
        (
            "tagger_dir",
            SAMPLES / "imdb" / "train" / "neg",
            f"neg/0_1.txt, line 1: expected a token and at most a tag, got 26 fields; {NER_EXPECTS}",
        ),
        ("tagger_dir", SAMPLES / "imdb", f"imdb: holds no files; {NER_EXPECTS}"),
        (
            "classifier_dir",
            SAMPLES / "wnut17" / "emerging.dev.conll",
            f"emerging.dev.conll: is not a .txt file; {TEXT_EXPECTS}",
        ),
        ("classifier_dir", SAMPLES / "wnut17", f"wnut17: holds no .txt files; {TEXT_EXPECTS}"),
        ("classifier_dir", SAMPLES / "squad", f"squad: holds no .txt files; {TEXT_EXPECTS}"),
        (
            "qa_dir",
            SAMPLES / "wnut17" / "emerging.dev.conll",
            f"emerging.dev.conll, line 1: is not valid JSON (Expecting value); {QA_EXPECTS}",
        ),
        ("qa_dir", SAMPLES / "imdb" / "train" / "pos", f"pos: holds no .json files; {QA_EXPECTS}"),
        (
            "qa_dir",
            SAMPLES / "imdb" / "train" / "pos" / "0_9.txt",
            f"0_9.txt, line 1: is not valid JSON (Expecting value); {QA_EXPECTS}",
        ),
    ],
)
def test_an_input_of_another_format_is_one_line_naming_it_and_what_the_task_takes(
    model, input_path, expected, request, tmp_path, capsys
):
    out = tmp_path / "predictions.jsonl"

    assert run(request.getfixturevalue(model), input_path, out) == 2

    assert error_line(capsys).startswith(f"error: {input_path.parent}/{expected}")
    assert list(tmp_path.iterdir()) == []


def test_json_under_another_name_and_prose_lines_are_not_conll(tagger_dir, tmp_path, capsys):
    disguised = tmp_path / "dev.conll"
    disguised.write_text(json.dumps(squad([("q1", "who?")], "john smith")), encoding="utf-8")
    prose = tmp_path / "notes.conll"
    prose.write_text(
        textwrap.dedent(
            """\
            john\tB-person

            london is a city
            """
        ),
        encoding="utf-8",
    )

    assert run(tagger_dir, disguised, tmp_path / "p.jsonl") == 2
    assert f"{disguised}: is JSON, not CoNLL text" in error_line(capsys)
    assert run(tagger_dir, prose, tmp_path / "p.jsonl") == 2
    assert f"{prose}, line 3: expected a token and at most a tag, got 4 fields" in error_line(capsys)


def test_conll_that_only_looks_like_json_is_tagged(tagger_dir, tmp_path):
    """Untagged tokens `[`, `{`: the file starts like JSON but does not parse as it, so it is CoNLL."""
    conll = tmp_path / "brackets.conll"
    conll.write_text("[\n{\njohn\tO\nsmith O\n\nparis\n", encoding="utf-8")

    rows = list(predict(str(tagger_dir), conll, {}))

    assert [(r["document"], r["tokens"]) for r in rows] == [(0, ["[", "{", "john", "smith"]), (1, ["paris"])]
    assert [len(r["tags"]) for r in rows] == [4, 1]


def test_deeply_nested_json_is_one_line_naming_the_file(qa_dir, tagger_dir, tmp_path, capsys):
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")

    assert run(qa_dir, nested, tmp_path / "p.jsonl") == 2
    line = error_line(capsys)
    assert line.startswith(f"error: {nested}: is nested too deeply to read as JSON") and QA_EXPECTS in line
    assert run(tagger_dir, nested, tmp_path / "p.jsonl") == 2
    assert f"error: {nested}: is JSON, not CoNLL text" in error_line(capsys)


# Bullet: QA memory is bounded by windows per forward pass.


def test_qa_batch_size_bounds_windows_per_pass_and_answers_stay_identical(qa_dir, tmp_path, monkeypatch):
    words = random.Random(0).choices(WHOLE_WORDS, k=600)
    data = squad([("long-1", "where did john go"), ("long-2", "who played in paris")], " ".join(words))
    data["data"][0]["paragraphs"].append(
        {
            "context": "john smith went to london",
            "qas": [{"id": "short", "question": "who went?", "answers": []}],
        }
    )
    (tmp_path / "long.json").write_text(json.dumps(data), encoding="utf-8")
    passes: list[int] = []
    forward = BertForQuestionAnswering.forward

    def counting_forward(self, *args, **kwargs):
        passes.append(kwargs["input_ids"].shape[0])
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(BertForQuestionAnswering, "forward", counting_forward)
    # A threshold this high answers every question, so the spans themselves are compared.
    settings = {"max_seq_length": 48, "doc_stride": 16, "null_score_diff_threshold": 100.0}

    small = list(predict(str(qa_dir), tmp_path / "long.json", {**settings, "batch_size": 2}))
    small_passes, passes[:] = list(passes), []
    large = list(predict(str(qa_dir), tmp_path / "long.json", {**settings, "batch_size": 1000}))

    assert small == large
    assert [r["id"] for r in small] == ["long-1", "long-2", "short"]
    assert all(r["answer"] for r in small)
    assert max(small_passes) == 2 and sum(small_passes) == sum(passes) > 40
    assert passes == [sum(small_passes)]  # batch_size 1000: every window of all three questions in one pass


# Bullet: --out and other user errors are one line, and leave no partial file and no changed --out.


def test_out_that_is_a_directory_or_under_a_file_is_one_line_and_writes_nothing(tagger_dir, tmp_path, capsys):
    conll = SAMPLES / "wnut17" / "emerging.dev.conll"
    folder = tmp_path / "results"
    folder.mkdir()
    (tmp_path / "a_file").write_text("keep")

    assert run(tagger_dir, conll, folder) == 2
    assert error_line(capsys) == (
        f"error: --out {folder} is a directory (expected the path of a JSON lines file to write)"
    )
    assert run(tagger_dir, conll, tmp_path / "a_file" / "sub" / "p.jsonl") == 2
    assert error_line(capsys) == (
        f"error: --out {tmp_path / 'a_file' / 'sub' / 'p.jsonl'}: {tmp_path / 'a_file'} is a file, not a folder"
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a_file", "results"]
    assert (tmp_path / "a_file").read_text() == "keep"


def test_an_error_part_way_leaves_the_old_out_and_no_partial_file(classifier_dir, tmp_path, capsys):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("a good film", encoding="utf-8")
    (texts / "b.txt").write_bytes(b"an awful \xff film")
    out = tmp_path / "out" / "predictions.jsonl"
    out.parent.mkdir()
    out.write_text("earlier predictions\n")

    assert run(classifier_dir, texts, out, "--batch_size", "1") == 2

    assert error_line(capsys) == (
        f"error: {texts / 'b.txt'}: is not UTF-8 text (invalid byte 0xff at byte offset 9)"
    )
    assert out.read_text() == "earlier predictions\n"
    assert list(out.parent.iterdir()) == [out]


def test_out_that_is_the_input_is_refused(tagger_dir, tmp_path, capsys):
    conll = tmp_path / "test.conll"
    conll.write_text("john\nsmith\n", encoding="utf-8")

    assert run(tagger_dir, conll, conll) == 2

    assert error_line(capsys) == f"error: --out {conll} is the --input file; predictions would replace it"
    assert conll.read_text() == "john\nsmith\n"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--batch_size", "0"], "error: --batch_size must be at least 1, got 0"),
        (["--max_seq_length", "600"], "error: --max_seq_length 600 exceeds the model's limit of 512"),
        (
            ["--max_seq_length", "20", "--doc_stride", "14"],
            "error: question q1: with its 3 tokens, --max_seq_length 20 leaves 14 tokens of context per window, "
            "which must be more than --doc_stride 14",
        ),
    ],
)
def test_flags_the_model_cannot_run_with_are_one_line_naming_the_flag(
    qa_dir, tmp_path, capsys, flags, expected
):
    (tmp_path / "dev.json").write_text(json.dumps(squad([("q1", "where is paris")], "paris is in france")))

    assert run(qa_dir, tmp_path / "dev.json", tmp_path / "p.jsonl", *flags) == 2

    assert error_line(capsys) == expected
    assert not (tmp_path / "p.jsonl").exists()


def test_missing_model_input_and_broken_files_are_one_line(qa_dir, tiny_tokenizer, tmp_path, capsys):
    good = tmp_path / "dev.json"
    good.write_text(json.dumps(squad([("q1", "where is paris")], "paris is in france")))
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [\n  {"paragraphs": [}\n]}')
    run_dir = saved(AutoModelForQuestionAnswering.from_pretrained(qa_dir), tmp_path / "run", tiny_tokenizer)
    (run_dir / "training_args.json").write_text('{"max_seq_length": 64,')

    assert run(tmp_path / "no_model", good, tmp_path / "p.jsonl") == 2
    assert (
        error_line(capsys)
        == f"error: --model {tmp_path / 'no_model'}: no such folder (expected a train.py output directory)"
    )
    assert run(qa_dir, tmp_path / "no_input.json", tmp_path / "p.jsonl") == 2
    assert error_line(capsys) == f"error: --input {tmp_path / 'no_input.json'} does not exist"
    assert run(qa_dir, broken, tmp_path / "p.jsonl") == 2
    assert error_line(capsys).startswith(f"error: {broken}, line 2: is not valid JSON (Expecting value); ")
    assert run(run_dir, good, tmp_path / "p.jsonl") == 2
    assert error_line(capsys).startswith(
        f"error: {run_dir / 'training_args.json'}, line 1: is not valid JSON"
    )
    assert not (tmp_path / "p.jsonl").exists()


def test_questions_to_answer_need_no_answers_and_any_given_are_not_read(qa_dir, tmp_path):
    """Training data must say which questions are unanswerable; questions sent to predict have no answers yet."""
    context = "Ada went to Paris in May."
    data = squad([("q1", "who went?")], context)
    del data["data"][0]["paragraphs"][0]["qas"][0]["answers"]
    data["data"][0]["paragraphs"][0]["qas"].append(
        {"id": "q2", "question": "when?", "answers": [{"text": "not in the context", "answer_start": 999}]}
    )
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps(data))
    out = tmp_path / "answers.jsonl"
    assert run(qa_dir, questions, out) == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["q1", "q2"]


@pytest.mark.parametrize("model", ["classifier_dir", "tagger_dir", "qa_dir"])
def test_a_pickle_only_model_is_refused_unless_trusted(model, request, tmp_path, capsys):
    source = request.getfixturevalue(model)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for kept in source.iterdir():
        if kept.suffix != ".safetensors":
            (pickled / kept.name).write_bytes(kept.read_bytes())
    weights = safetensors.torch.load_file(source / "model.safetensors")
    torch.save(weights, pickled / "pytorch_model.bin")
    assert not list(pickled.glob("*.safetensors"))
    inputs = {
        "classifier_dir": SAMPLES / "imdb" / "test" / "pos",
        "tagger_dir": SAMPLES / "wnut17" / "emerging.dev.conll",
        "qa_dir": SAMPLES / "squad" / "dev-v2.0.json",
    }
    out = tmp_path / "out.jsonl"
    assert run(pickled, inputs[model], out) == 2
    line = error_line(capsys)
    assert "pytorch_model.bin" in line and "--use_safetensors false" in line
    assert not out.exists()
    assert run(pickled, inputs[model], out, "--use_safetensors", "false") == 0
    assert out.read_text().strip()
