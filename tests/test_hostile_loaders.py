"""Careless and hostile input to the SQuAD and CoNLL loaders and to `squad-eval`: nothing changed or dropped
silently, split files found by documented names only, no empty split, no RecursionError traceback."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loaders import DataFormatError, load_dataset
from loaders.conll import read_conll
from loaders.files import split_from_name
from loaders.squad import read_squad
from processing import outputs
from processing.squad_metric import main as squad_eval

REPO_ROOT = Path(__file__).resolve().parent.parent
CONLL_EXTENSIONS = {".conll", ".txt"}

# One article: q1 answerable, q2 unanswerable. Tests change one field and expect one located error.
SQUAD = textwrap.dedent(
    """\
    {"version": "v2.0", "data": [{"title": "Capitals", "paragraphs": [{
      "context": "Paris is the capital of France.",
      "qas": [
        {"id": "q1", "question": "Capital of France?", "is_impossible": false,
         "answers": [{"text": "Paris", "answer_start": 0}]},
        {"id": "q2", "question": "Capital of Spain?", "is_impossible": true, "answers": []}
      ]}]}]}
    """
)
DEEP = "[" * 100_000


def squad_file(path: Path, change=None) -> Path:
    """SQUAD with `change(qas, article)` applied, written to `path`."""
    data = json.loads(SQUAD)
    if change is not None:
        article = data["data"][0]
        change(article["paragraphs"][0]["qas"], article)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, name: str, **kwargs):
    return load_dataset(name, cache_dir=str(tmp_path / "cache"), **kwargs)


def load_error(tmp_path: Path, name: str, **kwargs) -> DataFormatError:
    with pytest.raises(DataFormatError) as err:
        load(tmp_path, name, **kwargs)
    return err.value


# SQuAD: a field of the wrong type, or answers that contradict is_impossible, is an error naming the question.


def _set(key: str, value, index: int = 0):
    def change(qas, _article):
        qas[index][key] = value

    return change


def _drop(key: str, index: int = 0):
    def change(qas, _article):
        del qas[index][key]

    return change


def _title(value):
    def change(_qas, article):
        article["title"] = value

    return change


def _answer_text(text: str):
    def change(qas, _article):
        qas[0]["answers"][0]["text"] = text

    return change


def _context(value):
    def change(_qas, article):
        article["paragraphs"][0]["context"] = value

    return change


@pytest.mark.parametrize(
    ("change", "where", "problem"),
    [
        (_set("is_impossible", "false"), "question q1", '"is_impossible" must be true or false, got "false"'),
        (
            _set("is_impossible", "true", 1),
            "question q2",
            '"is_impossible" must be true or false, got "true"',
        ),
        (_set("is_impossible", 0), "question q1", '"is_impossible" must be true or false, got 0'),
        (_set("is_impossible", None), "question q1", '"is_impossible" must be true or false, got null'),
        (
            _set("answers", [{"text": "Paris", "answer_start": 0}], 1),
            "question q2",
            '"is_impossible" is true but it lists 1 answers (an unanswerable question has "answers": [])',
        ),
        (
            _set("answers", []),
            "question q1",
            '"answers" is empty but "is_impossible" is false (an answerable question lists its answers)',
        ),
        (
            _drop("answers"),
            "question q1",
            'has no "answers" list (an unanswerable question says "is_impossible": true)',
        ),
        (_answer_text(""), "question q1", "answer text '' is empty (at answer_start 0)"),
        (_answer_text("  "), "question q1", "answer text '  ' is empty (at answer_start 0)"),
        (_set("question", ["Capital?"]), "question q1", '"question" must be a string, got ["Capital?"]'),
        (_set("question", None), "question q1", '"question" must be a string, got null'),
        (_title(42), "article 0", '"title" must be a string, got 42'),
        (_title(None), "article 0", '"title" must be a string, got null'),
        (
            _context(["Paris"]),
            "article 'Capitals'",
            'is not SQuAD-shaped: expected paragraphs with "context" and "qas", a string and a list '
            '(paragraph 0 has "context": ["Paris"], "qas": [{"id": "q1", "question": "Capital of...)',
        ),
    ],
)
def test_squad_wrong_field_is_one_located_error(tmp_path, change, where, problem):
    path = squad_file(tmp_path / "dev.json", change)
    err = load_error(tmp_path, "squad_v2", data_files={"validation": str(path)})
    assert str(err) == f"{path}, {where}: {problem}"


def test_squad_string_false_no_longer_drops_the_answers(tmp_path):
    # "false" is truthy: before, q1's answer "Paris" vanished and q1 became unanswerable without a word.
    path = squad_file(tmp_path / "dev.json", _set("is_impossible", "false"))
    with pytest.raises(DataFormatError, match='question q1: "is_impossible" must be true or false'):
        list(read_squad(path))


def test_squad_without_answers_key_is_unanswerable_when_it_says_so(tmp_path):
    path = squad_file(tmp_path / "dev.json", _drop("answers", 1))
    ds = load(tmp_path, "squad_v2", data_files={"validation": str(path)})["validation"]
    assert ds["id"] == ["q1", "q2"]
    assert ds["answers"] == [{"text": ["Paris"], "answer_start": [0]}, {"text": [], "answer_start": []}]


def test_squad_v1_1_question_without_answers_is_an_error(tmp_path):
    v11 = textwrap.dedent(
        """\
        {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "Paris is in France.",
          "qas": [{"id": "a", "question": "Where?", "answers": [{"text": "France", "answer_start": 12}]},
                  {"id": "b", "question": "What?", "answers": []}]}]}]}
        """
    )
    path = write(tmp_path / "dev-v1.1.json", v11)
    err = load_error(tmp_path, "squad_v2", data_files={"validation": str(path)})
    assert (
        str(err)
        == f'{path}, question b: "answers" is empty, but a SQuAD 1.1 file has no unanswerable questions'
    )


def test_squad_v2_empty_answers_without_the_flag_are_unanswerable(tmp_path):
    # The official v2.0 scorer and the Hub's squad_v2 read an empty list as "no answer".
    path = squad_file(tmp_path / "dev.json", _drop("is_impossible", 1))
    ds = load(tmp_path, "squad_v2", data_files={"validation": str(path)})["validation"]
    assert ds["answers"] == [{"text": ["Paris"], "answer_start": [0]}, {"text": [], "answer_start": []}]


def test_squad_v2_question_without_answers_key_or_flag(tmp_path):
    def change(qas, _article):
        del qas[1]["answers"], qas[1]["is_impossible"]

    path = squad_file(tmp_path / "dev.json", change)
    err = load_error(tmp_path, "squad_v2", data_files={"validation": str(path)})
    assert str(err) == (
        f'{path}, question q2: has no "answers" list (an unanswerable question says "is_impossible": true)'
    )


# Split files: whole words of the name and the format's extensions, never substrings; the rest is listed.


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("train-v2.0.json", "train"),
        ("dev-v2.0.json", "validation"),
        ("squad2-dev-16-articles.json", "validation"),
        ("VALID.JSON", "validation"),
        ("my_validation_set.json", "validation"),
        ("test.json", "test"),
        ("train1.json", "train"),
        ("train-v2.0.json.bak", None),
        ("train.json.orig", None),
        ("latest.json", None),
        ("notes_latest.json", None),
        ("contest.json", None),
        ("attestation.json", None),
        ("trainer.json", None),
        ("devices.json", None),
        ("train.txt", None),
    ],
)
def test_split_from_name_takes_whole_words_and_data_extensions_only(name, split):
    assert split_from_name(name, {".json"}) == split


def test_split_from_name_conll_names():
    assert split_from_name("wnut17train.conll", CONLL_EXTENSIONS) == "train"
    assert split_from_name("emerging.dev.conll", CONLL_EXTENSIONS) == "validation"
    assert split_from_name("train.conll.orig", CONLL_EXTENSIONS) is None
    assert split_from_name("notes_latest.txt", CONLL_EXTENSIONS) is None


def test_name_of_two_splits_is_an_error_not_a_guess(tmp_path):
    root = tmp_path / "ner"
    write(root / "train.conll", "a\tO\n")
    write(root / "train_test.conll", "b\tO\n")
    err = load_error(tmp_path, "conll", data_dir=root)
    assert str(err) == (
        f"{root.resolve() / 'train_test.conll'}: names more than one split (train and test); "
        "rename it or pass data_files"
    )


def _not_read_warnings(caplog, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and "not read:" in r.getMessage()]


def test_conll_backups_and_notes_are_not_data_and_are_listed(tmp_path, caplog):
    root = tmp_path / "ner"
    write(root / "my-train.conll", "Paris\tB-LOC\n")
    write(root / "train.conll.orig", "Old\tB-OLD\n")
    write(root / "dev.txt", "Rome\tB-LOC\n")
    write(root / "notes_latest.txt", "Bad\tB-NOTE\n")
    write(root / "contest.conll", "Bad\tB-NOTE\n")
    write(root / "README.md", "about the data")
    with caplog.at_level(logging.WARNING, logger="loaders"):
        ds = load(tmp_path, "conll", data_dir=root)

    assert set(ds) == {"train", "validation"}
    assert ds["train"]["tokens"] == [["Paris"]]
    assert ds["validation"]["tokens"] == [["Rome"]]
    assert ds["train"].features["ner_tags"].feature.names == ["B-LOC"]
    warnings = _not_read_warnings(caplog, "loaders.conll")
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"{root.resolve()}: not read: README.md, contest.conll, notes_latest.txt, train.conll.orig ("
    )


def test_wnut17_names_win_and_the_rest_is_listed(tmp_path, caplog):
    root = tmp_path / "wnut17"
    write(root / "wnut17train.conll", "Paris\tB-location\n")
    write(root / "emerging.test.annotated", "Bob\tB-person\n")
    write(root / "wnut17train.conll.orig", "Old\tO\n")
    write(root / "extra-train.conll", "More\tO\n")
    with caplog.at_level(logging.WARNING, logger="loaders"):
        ds = load(tmp_path, "wnut17", data_dir=root)

    assert set(ds) == {"train", "test"}
    assert ds["train"]["tokens"] == [["Paris"]]
    assert ds["test"]["tokens"] == [["Bob"]]
    assert [w.split(" (")[0] for w in _not_read_warnings(caplog, "loaders.conll")] == [
        f"{root.resolve()}: not read: extra-train.conll, wnut17train.conll.orig"
    ]


def test_conll_name_reads_the_wnut17_file_names(tmp_path):
    # `emerging.test.annotated` has no CoNLL extension; W-NUT's exact names are split files for `conll` too.
    root = tmp_path / "wnut17"
    write(root / "wnut17train.conll", "Paris\tB-location\n")
    write(root / "emerging.dev.conll", "Rome\tB-location\n")
    write(root / "emerging.test.annotated", "Bob\tB-location\n")
    ds = load(tmp_path, "conll", data_dir=root)
    assert {split: d["tokens"] for split, d in ds.items()} == {
        "train": [["Paris"]],
        "validation": [["Rome"]],
        "test": [["Bob"]],
    }


def test_only_a_backup_of_the_train_file_is_no_train_file(tmp_path):
    root = tmp_path / "ner"
    write(root / "train.conll.orig", "a\tO\n")
    err = load_error(tmp_path, "conll", data_dir=root)
    assert str(err) == (
        f"{root.resolve()}: has no train file (expected a .bio/.conll/.iob/.iob2/.tsv/.txt file named train)"
    )


def test_squad_backups_and_notes_are_not_data_and_are_listed(tmp_path, caplog):
    root = tmp_path / "squad"
    squad_file(root / "train-v2.0.json")
    squad_file(root / "dev-v2.0.json")
    # Broken files: reading any of them as a split would fail the load.
    squad_file(root / "dev-v2.0.json.bak", _drop("question", 1))
    squad_file(root / "dev-v2.0.json.orig", _drop("question", 1))
    squad_file(root / "notes_latest.json", _title(1))
    with caplog.at_level(logging.WARNING, logger="loaders"):
        ds = load(tmp_path, "squad_v2", data_dir=root)

    assert {split: d["id"] for split, d in ds.items()} == {"train": ["q1", "q2"], "validation": ["q1", "q2"]}
    assert [w.split(" (")[0] for w in _not_read_warnings(caplog, "loaders.squad")] == [
        f"{root.resolve()}: not read: dev-v2.0.json.bak, dev-v2.0.json.orig, notes_latest.json"
    ]


def test_many_files_not_read_stay_one_short_warning(tmp_path, caplog):
    root = tmp_path / "squad"
    squad_file(root / "train-v2.0.json")
    for n in range(25):
        write(root / f"note{n:02d}.txt", "not data")
    with caplog.at_level(logging.WARNING, logger="loaders"):
        load(tmp_path, "squad_v2", data_dir=root)
    shown = ", ".join(f"note{n:02d}.txt" for n in range(20))
    assert [w.split(" (")[0] for w in _not_read_warnings(caplog, "loaders.squad")] == [
        f"{root.resolve()}: not read: {shown} and 5 more"
    ]


def test_squad_folder_of_notes_only(tmp_path):
    root = tmp_path / "squad"
    squad_file(root / "latest.json")
    squad_file(root / "train-v2.0.json.bak")
    err = load_error(tmp_path, "squad_v2", data_dir=root)
    assert str(err).startswith(
        f"{root.resolve()}: has no SQuAD JSON file with train, dev or test in its name"
    )


# A split that ends up with no examples is one error naming the file.


@pytest.mark.parametrize("content", ["", "\n\n\n", "\t\n \n\t\n"])
def test_conll_file_without_documents(tmp_path, content):
    root = tmp_path / "ner"
    write(root / "train.conll", "a\tO\n")
    dev = write(root / "dev.conll", content)
    err = load_error(tmp_path, "conll", data_dir=root)
    assert (
        str(err) == f"{dev.resolve()}: holds no documents (it is empty or holds only blank separator lines)"
    )


def test_empty_train_file_is_reported_when_collecting_labels(tmp_path):
    root = tmp_path / "ner"
    train = write(root / "train.conll", "\n\t\n")
    err = load_error(tmp_path, "conll", data_dir=root)
    assert (
        str(err) == f"{train.resolve()}: holds no documents (it is empty or holds only blank separator lines)"
    )


def test_empty_wnut17_dev_file(tmp_path):
    root = tmp_path / "wnut17"
    write(root / "wnut17train.conll", "Paris\tB-location\n")
    dev = write(root / "emerging.dev.conll", "")
    err = load_error(tmp_path, "wnut17", data_dir=root)
    assert err.path == str(dev.resolve())
    assert "holds no documents" in str(err)


@pytest.mark.parametrize(
    "data",
    [
        '{"version": "v2.0", "data": []}',
        '{"data": [{"title": "t", "paragraphs": []}]}',
        '{"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": []}]}, {"paragraphs": []}]}',
    ],
)
def test_squad_file_without_questions(tmp_path, data):
    path = write(tmp_path / "dev.json", data)
    err = load_error(tmp_path, "squad_v2", data_files={"validation": str(path)})
    assert str(err) == f'{path}: holds no questions (its "data" list is empty or its articles have none)'


def test_squad_empty_file_among_a_splits_files(tmp_path):
    full = squad_file(tmp_path / "train-a.json")
    empty = write(tmp_path / "train-b.json", '{"data": []}')
    err = load_error(tmp_path, "squad_v2", data_files={"train": [str(full), str(empty)]})
    assert err.path == str(empty)


# Deeply nested JSON: one line naming the file, never a RecursionError traceback.

NESTED_TOO_DEEPLY = "is nested too deeply to read as JSON (SQuAD nests articles > paragraphs > qas > answers)"


@pytest.mark.parametrize(
    "content", [DEEP, '{"data": ' + DEEP, '{"data": [{"title": "t", "x": ' + '{"a": ' * 100_000]
)
def test_squad_loader_deep_nesting(tmp_path, content):
    path = write(tmp_path / "dev.json", content)
    with pytest.raises(DataFormatError) as err:
        list(read_squad(path))  # the reader `commands.predict` uses for QA input too
    assert str(err.value) == f"{path}: {NESTED_TOO_DEEPLY}"
    err = load_error(tmp_path, "squad_v2", data_files={"validation": str(path)})
    assert str(err) == f"{path}: {NESTED_TOO_DEEPLY}"


def test_conll_reader_takes_nesting_as_text(tmp_path):
    path = write(tmp_path / "train.conll", DEEP + "\tO\n")
    assert [doc.tags for doc in read_conll(path)] == [["O"]]


@pytest.fixture
def eval_files(tmp_path: Path) -> dict[str, str]:
    data = squad_file(tmp_path / "dev.json")
    preds = write(tmp_path / "pred.json", '{"q1": "Paris", "q2": ""}')
    na = write(tmp_path / "na.json", '{"q1": 0.1, "q2": 0.9}')
    return {"data": str(data), "preds": str(preds), "na": str(na)}


@pytest.mark.parametrize("role", ["data", "preds", "na"])
def test_squad_eval_deep_nesting_is_one_line(tmp_path, capsys, eval_files, role):
    write(Path(eval_files[role]), DEEP)
    argv = [eval_files["data"], eval_files["preds"], "--na-prob-file", eval_files["na"]]
    assert squad_eval(argv) == 2
    err = capsys.readouterr().err
    assert err == f"squad-eval: error: {eval_files[role]}: is nested too deeply to read as JSON\n"


def test_squad_eval_module_deep_nesting_without_traceback(tmp_path, eval_files):
    write(Path(eval_files["data"]), DEEP)
    proc = subprocess.run(
        [sys.executable, "-m", "processing.squad_metric", eval_files["data"], eval_files["preds"]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        f"squad-eval: error: {eval_files['data']}: is nested too deeply to read as JSON"
    )


# squad-eval -o: a directory is refused with one line; the file is replaced whole or not at all.


def test_squad_eval_out_file_is_a_directory(tmp_path, capsys, eval_files):
    out = tmp_path / "results"
    out.mkdir()
    assert squad_eval([eval_files["data"], eval_files["preds"], "-o", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"squad-eval: error: {out}: is a directory (expected a file to write the figures to)\n"
    )
    assert list(out.iterdir()) == []


def test_squad_eval_out_file_is_written_whole(tmp_path, capsys, eval_files):
    out = write(tmp_path / "eval.json", '{"exact": 12.5}')
    assert squad_eval([eval_files["data"], eval_files["preds"], "-o", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["exact"] == 100.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.json", "eval.json", "na.json", "pred.json"]


def test_squad_eval_failed_write_keeps_the_old_out_file(tmp_path, capsys, eval_files, monkeypatch):
    out = write(tmp_path / "eval.json", '{"exact": 12.5}')

    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "replace", no_space)
    assert squad_eval([eval_files["data"], eval_files["preds"], "-o", str(out)]) == 2
    assert (
        capsys.readouterr().err == f"squad-eval: error: {out}: cannot be written (No space left on device)\n"
    )
    assert out.read_text(encoding="utf-8") == '{"exact": 12.5}'
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]
