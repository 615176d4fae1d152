"""Folder-per-label text (the aclImdb layout) through `loaders.load_dataset("imdb", ...)`."""

from __future__ import annotations

import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import datasets
import pytest

from loaders import DataFormatError, load_dataset

IMDB_FEATURES = datasets.Features(
    {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
)


def write_files(root: Path, files: dict[str, str | bytes]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def imdb_layout(root: Path, with_unsup: bool = True) -> Path:
    files = {
        "train/pos/0_9.txt": "A great film.",
        "train/pos/1_8.txt": "I loved it.\nTwo lines.",
        "train/neg/0_2.txt": "Awful.",
        "train/neg/1_1.txt": "Bad <br /><br />acting.",
        "train/neg/2_3.txt": "Boring.",
        "train/urls_pos.txt": "http://example.com/not-an-example",  # aclImdb keeps files beside the label folders
        "train/labeledBow.feat": "0 0:1",
        "test/pos/0_10.txt": "Wonderful.",
        "test/neg/0_4.txt": "Dull.",
        "test/neg/1_2.txt": "Terrible.",
        "README": "not an example",
    }
    if with_unsup:
        files |= {"train/unsup/0_0.txt": "No label here.", "train/unsup/1_0.txt": "Nor here."}
    return write_files(root, files)


def load(tmp_path: Path, data_dir: Path, **kwargs):
    return load_dataset("imdb", data_dir=data_dir, cache_dir=str(tmp_path / "cache"), **kwargs)


def texts_by_label(split: datasets.Dataset) -> dict[str, list[str]]:
    names = split.features["label"].names
    grouped: dict[str, list[str]] = {}
    for row in split:
        grouped.setdefault(names[row["label"]] if row["label"] >= 0 else "-1", []).append(row["text"])
    return {k: sorted(v) for k, v in grouped.items()}


def test_imdb_schema_and_splits_match_the_hub(tmp_path):
    ds = load(tmp_path, imdb_layout(tmp_path / "aclImdb"))

    assert set(ds) == {"train", "test", "unsupervised"}
    for split in ds.values():
        assert split.features == IMDB_FEATURES
    assert ds["train"].num_rows == 5
    assert ds["test"].num_rows == 3
    assert ds["unsupervised"].num_rows == 2
    assert ds["unsupervised"]["label"] == [-1, -1]
    assert texts_by_label(ds["train"]) == {
        "neg": ["Awful.", "Bad <br /><br />acting.", "Boring."],
        "pos": ["A great film.", "I loved it.\nTwo lines."],
    }
    assert texts_by_label(ds["test"]) == {"neg": ["Dull.", "Terrible."], "pos": ["Wonderful."]}
    assert sorted(ds["unsupervised"]["text"]) == ["No label here.", "Nor here."]


def test_no_unsupervised_split_without_unsup_folder(tmp_path):
    ds = load(tmp_path, imdb_layout(tmp_path / "aclImdb", with_unsup=False))
    assert set(ds) == {"train", "test"}


def test_folder_holding_the_acl_imdb_folder_is_accepted(tmp_path):
    imdb_layout(tmp_path / "download" / "aclImdb")
    ds = load(tmp_path, tmp_path / "download")
    assert ds["train"].num_rows == 5


def test_users_own_three_class_layout_sorted_label_names(tmp_path):
    root = write_files(
        tmp_path / "news",
        {
            "train/sports/a.txt": "goal",
            "train/sports/b.txt": "match",
            "train/politics/a.txt": "vote",
            "train/arts/a.txt": "paint",
            "train/arts/b.txt": "sculpt",
            "train/arts/c.txt": "draw",
            "dev/sports/a.txt": "race",
            "dev/arts/a.txt": "sing",
            "test/politics/a.txt": "law",
        },
    )
    ds = load(tmp_path, root)

    assert set(ds) == {"train", "validation", "test"}
    assert ds["train"].features["label"] == datasets.ClassLabel(names=["arts", "politics", "sports"])
    assert texts_by_label(ds["train"]) == {
        "arts": ["draw", "paint", "sculpt"],
        "politics": ["vote"],
        "sports": ["goal", "match"],
    }
    assert texts_by_label(ds["validation"]) == {"arts": ["sing"], "sports": ["race"]}
    assert texts_by_label(ds["test"]) == {"politics": ["law"]}


def test_label_names_in_config_override_the_order(tmp_path):
    root = write_files(
        tmp_path / "news",
        {"train/sports/a.txt": "goal", "train/politics/a.txt": "vote", "train/arts/a.txt": "paint"},
    )
    ds = load(tmp_path, root, label_names=["sports", "arts", "politics"])

    assert ds["train"].features["label"].names == ["sports", "arts", "politics"]
    by_text = dict(zip(ds["train"]["text"], ds["train"]["label"], strict=True))
    assert by_text == {"goal": 0, "paint": 1, "vote": 2}


def test_windows_line_endings_and_bom_are_read_cleanly(tmp_path):
    root = write_files(
        tmp_path / "aclImdb",
        {
            "train/pos/0_9.txt": b"\xef\xbb\xbfFirst line.\r\nSecond line.\r\n",
            "train/neg/0_1.txt": "Caf\u00e9 was bad.\r\n".encode(),
        },
    )
    ds = load(tmp_path, root)

    texts = sorted(ds["train"]["text"])
    assert texts == ["Café was bad.\n", "First line.\nSecond line.\n"]
    assert not any("\r" in t or "\ufeff" in t for t in texts)


def test_only_files_with_the_extension_are_examples(tmp_path):
    root = write_files(
        tmp_path / "aclImdb",
        {"train/pos/a.txt": "yes", "train/pos/notes.md": "no", "train/neg/b.txt": "nope"},
    )
    ds = load(tmp_path, root)
    assert sorted(ds["train"]["text"]) == ["nope", "yes"]


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_local_archive_as_data_dir(tmp_path, kind):
    imdb_layout(tmp_path / "src" / "aclImdb")
    archive = tmp_path / f"aclImdb_v1.{kind}"
    if kind == "tar.gz":
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(tmp_path / "src" / "aclImdb", arcname="aclImdb")
    else:
        with zipfile.ZipFile(archive, "w") as zf:
            for path in sorted((tmp_path / "src").rglob("*")):
                zf.write(path, path.relative_to(tmp_path / "src").as_posix())

    ds = load(tmp_path, archive)

    assert set(ds) == {"train", "test", "unsupervised"}
    assert ds["train"].features == IMDB_FEATURES
    assert Counter(ds["train"]["label"]) == {0: 3, 1: 2}
    assert Counter(ds["test"]["label"]) == {0: 2, 1: 1}
    assert ds["unsupervised"].num_rows == 2


def test_folders_and_files_left_by_tools_are_not_examples(tmp_path):
    root = imdb_layout(tmp_path / "aclImdb", with_unsup=False)
    write_files(
        root,
        {
            "train/.ipynb_checkpoints/0_9-checkpoint.txt": "A great film.",
            "train/pos/._0_9.txt": b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X",
            "test/.ipynb_checkpoints/x.txt": "?",
        },
    )
    ds = load(tmp_path, root)

    assert ds["train"].features == IMDB_FEATURES
    assert (ds["train"].num_rows, ds["test"].num_rows) == (5, 3)


def test_zip_made_on_macos(tmp_path):
    imdb_layout(tmp_path / "src" / "aclImdb", with_unsup=False)
    archive = tmp_path / "aclImdb.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((tmp_path / "src").rglob("*")):
            name = path.relative_to(tmp_path / "src").as_posix()
            zf.write(path, name)
            if path.is_file():
                zf.writestr(f"__MACOSX/{Path(name).parent}/._{path.name}", b"\x00\x05\x16\x07 resource fork")

    ds = load(tmp_path, archive)

    assert ds["train"].features == IMDB_FEATURES
    assert (ds["train"].num_rows, ds["test"].num_rows) == (5, 3)


# Bad input: every case is a DataFormatError naming the file or folder and what was expected.


def test_non_utf8_review_names_the_file(tmp_path):
    root = imdb_layout(tmp_path / "aclImdb")
    (root / "train/pos/1_8.txt").write_bytes(b"Caf\xe9 latin-1")

    with pytest.raises(DataFormatError) as err:
        load(tmp_path, root)
    assert err.value.path == str(root.resolve() / "train/pos/1_8.txt")
    assert "1_8.txt" in str(err.value)
    assert "not UTF-8" in str(err.value)
    assert "0xe9" in str(err.value) and "byte offset 3" in str(err.value)


def test_non_utf8_review_is_a_data_format_error_with_two_processes(tmp_path):
    root = imdb_layout(tmp_path / "aclImdb")
    (root / "train/neg/2_3.txt").write_bytes(b"\xff\xfeB\x00")

    with pytest.raises(DataFormatError, match=r"2_3\.txt: is not UTF-8"):
        load(tmp_path, root, num_proc=2)


def test_empty_label_folder(tmp_path):
    root = imdb_layout(tmp_path / "aclImdb")
    (root / "test/pos/0_10.txt").unlink()

    with pytest.raises(DataFormatError) as err:
        load(tmp_path, root)
    assert err.value.path == str(root.resolve() / "test/pos")
    assert "empty label folder" in str(err.value)
    assert "*.txt" in str(err.value)


def test_missing_train_folder(tmp_path):
    root = write_files(tmp_path / "aclImdb", {"test/pos/a.txt": "x", "test/neg/b.txt": "y"})

    with pytest.raises(DataFormatError) as err:
        load(tmp_path, root)
    assert err.value.path == str(root.resolve())
    assert "no train/ folder" in str(err.value)
    assert "train/<label>/*.txt" in str(err.value)


def test_train_folder_without_label_folders(tmp_path):
    root = write_files(tmp_path / "aclImdb", {"train/unsup/a.txt": "x", "train/readme.txt": "y"})

    with pytest.raises(
        DataFormatError, match=r"no label folders under train/ \(expected train/<label>/\*\.txt\)"
    ):
        load(tmp_path, root)


def test_unknown_label_folder_in_test(tmp_path):
    root = imdb_layout(tmp_path / "aclImdb")
    write_files(root, {"test/neutral/0_5.txt": "Meh."})

    with pytest.raises(DataFormatError) as err:
        load(tmp_path, root)
    assert err.value.path == str(root.resolve() / "test/neutral")
    assert "not a known label folder" in str(err.value)
    assert "['neg', 'pos']" in str(err.value)


def test_label_folder_not_in_configured_label_names(tmp_path):
    root = imdb_layout(tmp_path / "aclImdb")
    with pytest.raises(
        DataFormatError, match=r"train/pos: is not a known label folder \(labels: \['neg', 'bad'\]\)"
    ):
        load(tmp_path, root, label_names=["neg", "bad"])


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataFormatError, match="does not exist"):
        load(tmp_path, tmp_path / "nowhere")


def test_archive_that_is_not_an_archive(tmp_path):
    bogus = tmp_path / "aclImdb.tar.gz"
    bogus.write_bytes(b"not a tarball")
    with pytest.raises(DataFormatError) as err:
        load(tmp_path, bogus)
    assert err.value.path == str(bogus.resolve())
    assert "neither a folder nor a tar/zip archive" in str(err.value)


# Real data: skipped when ../shared/data is absent.


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("real_imdb_cache"))


def test_real_imdb_train_tarball(shared_data, real_cache):
    ds = load_dataset("imdb", data_dir=shared_data / "imdb/aclImdb-train.tar.gz", cache_dir=real_cache)

    assert set(ds) == {"train"}
    assert ds["train"].features == IMDB_FEATURES
    assert Counter(ds["train"]["label"]) == {0: 12500, 1: 12500}
    assert all(text.strip() for text in ds["train"]["text"][:100])
