"""Careless folder-per-label layouts: texts in subfolders of a label folder, and empty texts."""

from __future__ import annotations

import logging
import tarfile
from pathlib import Path

import pytest

from commands.report import compute_report, loader_fixes, summary_lines
from loaders import DataFormatError, load_dataset


def write_files(root: Path, files: dict[str, str]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


LAYOUT = {
    "train/pos/0_9.txt": "A great film.",
    "train/neg/0_2.txt": "Awful.",
    "test/pos/0_10.txt": "Wonderful.",
    "test/neg/0_1.txt": "Dull.",
}
NESTED = {
    "train/pos/old/0_8.txt": "Kept by mistake.",
    "train/pos/old/deeper/0_7.txt": "Deeper still.",
    "train/neg/backup/0_2.txt": "Awful.",
    "train/unsup/more/0_0.txt": "No label.",
    "test/neg/copy/0_1.txt": "Dull.",
}
WITH_NESTED = LAYOUT | NESTED | {"train/unsup/0_0.txt": "Unlabelled."}


def load(tmp_path: Path, data_dir: Path):
    return load_dataset("imdb", data_dir=data_dir, cache_dir=str(tmp_path / "cache"))


def test_files_in_subfolders_of_label_folders_are_not_read_but_logged(tmp_path, caplog):
    root = write_files(tmp_path / "aclImdb", WITH_NESTED)

    with caplog.at_level(logging.WARNING, logger="loaders.text_folders"):
        ds = load(tmp_path, root)

    assert sorted(ds["train"]["text"]) == ["A great film.", "Awful."]
    assert sorted(ds["test"]["text"]) == ["Dull.", "Wonderful."]
    assert ds["unsupervised"]["text"] == ["Unlabelled."]
    warnings = {r.getMessage().split(":")[0]: r.getMessage() for r in caplog.records}
    resolved = root.resolve()
    assert set(warnings) == {str(resolved / f) for f in ("train/pos", "train/neg", "train/unsup", "test/neg")}
    assert "2 files in subfolders are not read" in warnings[str(resolved / "train/pos")]
    assert str(resolved / "train/pos/old/0_8.txt") in warnings[str(resolved / "train/pos")]


def test_the_data_report_counts_files_in_subfolders(tmp_path):
    root = write_files(tmp_path / "aclImdb", WITH_NESTED)

    fixes = loader_fixes("imdb", root, str(tmp_path / "cache"))

    assert {split: counts["nested_files"] for split, counts in fixes.items()} == {
        "train": 3,
        "unsupervised": 1,
        "test": 1,
    }


def test_the_printed_report_shows_files_in_subfolders(tmp_path):
    root = write_files(tmp_path / "aclImdb", WITH_NESTED)

    lines = summary_lines(compute_report("imdb", root, cache_dir=str(tmp_path / "cache")))

    train_fixes = lines[lines.index(next(line for line in lines if line.strip().startswith("train:"))) + 2]
    assert "files in subfolders of label folders, not read: 3" in train_fixes


def test_the_data_report_counts_subfolders_in_an_archive(tmp_path):
    write_files(tmp_path / "src" / "aclImdb", WITH_NESTED)
    archive = tmp_path / "aclImdb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "aclImdb", arcname="aclImdb")

    fixes = loader_fixes("imdb", archive, str(tmp_path / "cache"))

    assert fixes["train"]["nested_files"] == 3
    assert fixes["test"]["nested_files"] == 1


def test_an_unlabelled_folder_with_texts_only_in_subfolders_is_an_error(tmp_path):
    root = write_files(tmp_path / "aclImdb", LAYOUT | {"train/unsup/more/0_0.txt": "No label."})

    with pytest.raises(DataFormatError) as err:
        load(tmp_path, root)

    assert err.value.path == str(root.resolve() / "train/unsup")
    assert "is an empty folder of unlabelled texts (expected *.txt files)" in str(err.value)


@pytest.mark.parametrize("content", ["", " \n\t\r\n"], ids=["empty", "blank"])
def test_an_empty_text_file_is_an_error_naming_it(tmp_path, content):
    root = write_files(tmp_path / "aclImdb", LAYOUT | {"train/neg/1_3.txt": content})

    with pytest.raises(DataFormatError) as err:
        load(tmp_path, root)

    assert err.value.path == str(root.resolve() / "train/neg/1_3.txt")
    assert "holds no text (empty or only whitespace)" in str(err.value)


def test_an_empty_text_file_in_an_archive_is_an_error_naming_it(tmp_path):
    write_files(tmp_path / "src" / "aclImdb", LAYOUT | {"test/pos/1_7.txt": ""})
    archive = tmp_path / "aclImdb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "aclImdb", arcname="aclImdb")

    with pytest.raises(DataFormatError, match=r"aclImdb/test/pos/1_7\.txt: holds no text"):
        load(tmp_path, archive)
