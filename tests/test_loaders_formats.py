"""`loaders.detect_format`: the data format of a file or folder when `--data_format` is not given."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import loaders
from loaders import DataFormatError, detect_format
from loaders.formats import FORMAT_NAMES


def write(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


SQUAD = {"version": "v2.0", "data": [{"title": "t", "paragraphs": []}]}
LABEL_STUDIO = [{"id": 7, "data": {"text": "Paris"}, "annotations": [{"result": []}]}]


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("reviews.csv", "text,label\na,b\n", "csv"),
        ("reviews.tsv", "text\tlabel\na\tb\n", "tsv"),
        ("reviews.tab", "text\tlabel\na\tb\n", "tsv"),
        ("reviews.jsonl", '{"text": "a", "label": "pos"}\n', "jsonl"),
        ("reviews.ndjson", '{"text": "a", "label": ["x", "y"]}\n', "jsonl"),
        ("ner.jsonl", '{"tokens": ["a"], "ner_tags": ["O"], "text": "a", "label": [[0, 1, "X"]]}\n', "jsonl"),
        ("ner.conll", "Paris\tB-loc\n", "conll"),
        ("ner.iob", "Paris B-loc\n", "conll"),
        ("ner.bio", "Paris\tB-loc\n", "conll"),
        ("ner.txt", "\nParis\tB-loc\n", "conll"),
        ("train-v2.0.json", json.dumps(SQUAD), "squad_v2"),
        ("export.json", json.dumps(LABEL_STUDIO), "label_studio"),
        ("doccano.jsonl", '{"id": 1, "text": "Paris", "label": [[0, 5, "LOC"]]}\n', "doccano"),
        (
            "doccano.jsonl",
            '{"text": "Paris", "entities": [{"start_offset": 0, "end_offset": 5}]}\n',
            "doccano",
        ),
    ],
)
def test_a_file_by_its_extension_or_first_record(tmp_path, name, content, expected):
    assert detect_format(write(tmp_path / name, content)) == expected


def test_parquet_and_archives(tmp_path):
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": ["a"], "label": ["b"]}), path)
    assert detect_format(path) == "parquet"
    write(tmp_path / "aclImdb" / "train" / "pos" / "1.txt", "Good.")
    with tarfile.open(tmp_path / "reviews.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "aclImdb", arcname="aclImdb")
    assert detect_format(tmp_path / "reviews.tar.gz") == "folders"


def test_a_folder_by_the_split_files_in_it(tmp_path):
    write(tmp_path / "csv" / "train.csv", "text,label\na,b\n")
    write(tmp_path / "csv" / "test.csv", "text,label\na,b\n")
    write(tmp_path / "csv" / "README.md", "notes")
    assert detect_format(tmp_path / "csv") == "csv"
    write(tmp_path / "wnut" / "wnut17train.conll", "a\tO\n")
    write(tmp_path / "wnut" / "emerging.test.annotated", "a\tO\n")
    assert detect_format(tmp_path / "wnut") == "conll"


def test_a_folder_of_label_folders(tmp_path):
    write(tmp_path / "aclImdb" / "train" / "pos" / "1.txt", "Good.")
    write(tmp_path / "aclImdb" / "train" / "neg" / "2.txt", "Bad.")
    write(tmp_path / "aclImdb" / "imdbEr.txt", "0.1\n-0.2\n")
    assert detect_format(tmp_path / "aclImdb") == "folders"
    assert detect_format(tmp_path) == "folders"


@pytest.mark.parametrize(
    "name, content, why",
    [
        ("sheet.xlsx", "PK", "cannot tell the data format from its extension or content"),
        (
            "records.json",
            json.dumps([{"text": "a"}]),
            "cannot tell the data format from its extension or content",
        ),
        ("notes.txt", "Some prose here.\n", "cannot tell the data format from its extension or content"),
    ],
)
def test_an_undecidable_file_is_one_error_listing_the_formats(tmp_path, name, content, why):
    path = write(tmp_path / name, content)
    with pytest.raises(DataFormatError) as info:
        detect_format(path)
    assert str(info.value) == f"{path}: {why}; pass --data_format, one of: {', '.join(FORMAT_NAMES)}"


def test_a_folder_of_several_formats_or_nothing_is_an_error(tmp_path):
    write(tmp_path / "mixed" / "train.csv", "text,label\na,b\n")
    write(tmp_path / "mixed" / "test.jsonl", '{"text": "a", "label": "b"}\n')
    with pytest.raises(DataFormatError, match=r"mixed: cannot tell .* several formats \(csv, jsonl\)"):
        detect_format(tmp_path / "mixed")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="empty: cannot tell the data format from its files"):
        detect_format(tmp_path / "empty")
    with pytest.raises(DataFormatError, match=r"missing\.csv: does not exist"):
        detect_format(tmp_path / "missing.csv")


def test_every_loader_is_a_format_name():
    assert set(loaders.LOADERS) <= set(FORMAT_NAMES)


def test_the_folders_alias_needs_data(tmp_path):
    with pytest.raises(ValueError, match="a folders data set needs data_dir or data_files"):
        loaders.load_dataset("folders", cache_dir=str(tmp_path / "cache"))


def test_the_folders_alias_reads_any_labels(tmp_path):
    write(tmp_path / "data" / "train" / "spam" / "1.txt", "Buy now.")
    write(tmp_path / "data" / "train" / "ham" / "2.txt", "See you.")
    ds = loaders.load_dataset("folders", data_dir=tmp_path / "data", cache_dir=str(tmp_path / "cache"))
    assert ds["train"].features["label"].names == ["ham", "spam"]
    assert sorted(ds["train"]["text"]) == ["Buy now.", "See you."]
