"""What all three formats share: downloads (from a local HTTP server), Parquet round trips, the Arrow cache,
`with_validation_split`, and the project's samples/ folder."""

from __future__ import annotations

import functools
import http.server
import json
import pickle
import tarfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import datasets
import pytest

import loaders
from loaders import DataFormatError, load_dataset, with_validation_split
from loaders.text_folders import TextFolders

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def write_files(root: Path, files: dict[str, str]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


IMDB_FILES = {
    "aclImdb/train/pos/0_9.txt": "A great film.",
    "aclImdb/train/pos/1_7.txt": "Quite good.",
    "aclImdb/train/neg/0_2.txt": "Awful.",
    "aclImdb/test/pos/0_10.txt": "Wonderful.",
    "aclImdb/test/neg/0_1.txt": "Dull.",
    "aclImdb/test/neg/1_3.txt": "Terrible.",
}
WNUT_FILES = {
    "wnut17train.conll": "New\tB-location\nYork\tI-location\n\t\nApple\tB-corporation\nrocks\tO\n",
    "emerging.dev.conll": "Google\tB-corporation\n",
    "emerging.test.annotated": "John\tB-person\n\nhi\tO\n",
}


def squad_json(ids: list[str]) -> str:
    qas = [
        {"id": i, "question": "Capital?", "answers": [] if n % 2 else [{"text": "Paris", "answer_start": 0}]}
        for n, i in enumerate(ids)
    ]
    return json.dumps(
        {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": "Paris.", "qas": qas}]}]}
    )


def imdb_dir(root: Path) -> Path:
    return write_files(root, IMDB_FILES) / "aclImdb"


def wnut_dir(root: Path) -> Path:
    return write_files(root, WNUT_FILES)


def squad_dir(root: Path) -> Path:
    return write_files(
        root, {"train-v2.0.json": squad_json(["a", "b", "c"]), "dev-v2.0.json": squad_json(["d", "e"])}
    )


PREPARED = {"imdb": imdb_dir, "wnut17": wnut_dir, "squad_v2": squad_dir}


# Downloads, offline: a local HTTP server stands in for Stanford, GitHub and the SQuAD site.


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def http_folder(tmp_path) -> Iterator[tuple[Path, str]]:
    """A folder served on 127.0.0.1 at a free port, and its base URL."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_imdb_download(tmp_path, http_folder):
    folder, base = http_folder
    write_files(tmp_path / "src", IMDB_FILES)
    with tarfile.open(folder / "aclImdb_v1.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "aclImdb", arcname="aclImdb")

    ds = load_dataset("imdb", download_url=f"{base}/aclImdb_v1.tar.gz", cache_dir=str(tmp_path / "cache"))

    assert set(ds) == {"train", "test"}
    assert ds["train"].features["label"].names == ["neg", "pos"]
    rows = {(r["text"], r["label"]) for r in ds["train"]}
    assert rows == {("A great film.", 1), ("Quite good.", 1), ("Awful.", 0)}
    assert Counter(ds["test"]["label"]) == {0: 2, 1: 1}


@pytest.mark.parametrize("slash", ["/", ""])
def test_wnut17_download(tmp_path, http_folder, slash):
    folder, base = http_folder
    write_files(folder / "wnut", WNUT_FILES)

    ds = load_dataset("wnut17", download_url=f"{base}/wnut{slash}", cache_dir=str(tmp_path / "cache"))

    assert set(ds) == {"train", "validation", "test"}
    assert ds["train"]["tokens"] == [["New", "York"], ["Apple", "rocks"]]
    assert ds["train"]["ner_tags"] == [[7, 8], [1, 0]]
    assert ds["validation"].num_rows == 1
    assert ds["test"].num_rows == 2


def test_squad_v2_download(tmp_path, http_folder):
    folder, base = http_folder
    squad_dir(folder)

    ds = load_dataset(
        "squad_v2",
        download_urls={"train": f"{base}/train-v2.0.json", "validation": f"{base}/dev-v2.0.json"},
        cache_dir=str(tmp_path / "cache"),
    )

    assert ds["train"]["id"] == ["a", "b", "c"]
    assert ds["validation"]["id"] == ["d", "e"]
    assert ds["train"]["answers"][1] == {"text": [], "answer_start": []}


# Parquet round trip: what we prepare is what `datasets`' own parquet builder gives back.


@pytest.mark.parametrize("name", sorted(PREPARED))
def test_parquet_round_trip(tmp_path, name):
    ds = load_dataset(name, data_dir=PREPARED[name](tmp_path / "data"), cache_dir=str(tmp_path / "cache"))

    data_files = {}
    for split, table in ds.items():
        data_files[split] = str(tmp_path / "parquet" / f"{split}.parquet")
        table.to_parquet(data_files[split])
    again = datasets.load_dataset("parquet", data_files=data_files, cache_dir=str(tmp_path / "parquet_cache"))

    assert set(again) == set(ds)
    for split in ds:
        assert again[split].features == ds[split].features
        assert again[split].to_list() == ds[split].to_list()


# The Arrow cache: reused for the same files, invalidated by an edit.


@pytest.fixture
def count_generations(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = TextFolders._generate_examples

    def counting(self, files, split):
        calls.append(len(files))
        yield from original(self, files, split)

    monkeypatch.setattr(TextFolders, "_generate_examples", counting)
    return calls


def test_second_load_reuses_the_cache_and_an_edit_invalidates_it(tmp_path, count_generations):
    root = imdb_dir(tmp_path / "data")
    cache_dir = str(tmp_path / "cache")

    first = load_dataset("imdb", data_dir=root, cache_dir=cache_dir)
    generated = len(count_generations)
    assert generated == 2  # train and test
    second = load_dataset("imdb", data_dir=root, cache_dir=cache_dir)

    assert len(count_generations) == generated
    assert second["train"].cache_files == first["train"].cache_files
    assert second["train"].to_list() == first["train"].to_list()

    (root / "train/neg/0_2.txt").write_text("Awful, and far too long.", encoding="utf-8")
    third = load_dataset("imdb", data_dir=root, cache_dir=cache_dir)

    assert len(count_generations) > generated
    assert third["train"].cache_files != first["train"].cache_files
    assert "Awful, and far too long." in third["train"]["text"]
    assert "Awful." not in third["train"]["text"]


def test_repairs_are_counted_while_reading_and_come_back_with_the_cache(tmp_path, count_generations):
    root = imdb_dir(tmp_path / "data")
    (root / "train/pos/1_9.txt").write_bytes(b"\xef\xbb\xbfGreat.\r\nReally.")
    (root / "train/pos/notes.md").write_text("not a review", encoding="utf-8")
    (root / "test/neg/old").mkdir()
    (root / "test/neg/old/0_1.txt").write_text("Older.", encoding="utf-8")
    cache_dir = str(tmp_path / "cache")

    first, repairs = loaders.load_with_repairs("imdb", data_dir=root, cache_dir=cache_dir)
    generated = len(count_generations)
    again, repairs_again = loaders.load_with_repairs("imdb", data_dir=root, cache_dir=cache_dir)
    assert again["train"].cache_files == first["train"].cache_files

    assert len(count_generations) == generated  # the second load read no file
    assert "Great.\nReally." in first["train"]["text"]
    assert repairs == {
        "train": {"bom_files": 1, "crlf_files": 1, "skipped_files": 1, "nested_files": 0},
        "test": {"bom_files": 0, "crlf_files": 0, "skipped_files": 0, "nested_files": 1},
    }
    assert repairs_again == repairs


def test_a_new_file_invalidates_the_cache(tmp_path):
    root = write_files(tmp_path / "data", {"wnut17train.conll": WNUT_FILES["wnut17train.conll"]})
    cache_dir = str(tmp_path / "cache")
    first = load_dataset("conll", data_dir=root, cache_dir=cache_dir)
    assert "B-person" not in first["train"].features["ner_tags"].feature.names

    (root / "wnut17train.conll").write_text(
        WNUT_FILES["wnut17train.conll"] + "\nJohn\tB-person\n", encoding="utf-8"
    )
    second = load_dataset("conll", data_dir=root, cache_dir=cache_dir)

    assert second["train"].num_rows == first["train"].num_rows + 1
    assert "B-person" in second["train"].features["ner_tags"].feature.names


def test_different_config_values_do_not_share_a_cache(tmp_path):
    root = imdb_dir(tmp_path / "data")
    cache_dir = str(tmp_path / "cache")
    default = load_dataset("imdb", data_dir=root, cache_dir=cache_dir)
    reordered = load_dataset("imdb", data_dir=root, cache_dir=cache_dir, label_names=["pos", "neg"])

    assert default["train"].features["label"].names == ["neg", "pos"]
    assert reordered["train"].features["label"].names == ["pos", "neg"]
    assert reordered["train"].cache_files != default["train"].cache_files


# with_validation_split


def classified(counts: dict[str, int]) -> datasets.DatasetDict:
    names = sorted(counts)
    labels = [names.index(n) for n in names for _ in range(counts[n])]
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)}
    )
    train = datasets.Dataset.from_dict(
        {"text": [f"t{i}" for i in range(len(labels))], "label": labels}, features=features
    )
    test = datasets.Dataset.from_dict({"text": ["x", "y"], "label": [0, 1]}, features=features)
    return datasets.DatasetDict({"train": train, "test": test})


def test_validation_split_is_seeded(tmp_path):
    ds = classified({"a": 30, "b": 20, "c": 10})
    one = with_validation_split(ds, 0.2, seed=1)
    again = with_validation_split(ds, 0.2, seed=1)
    other = with_validation_split(ds, 0.2, seed=2)

    assert one["validation"]["text"] == again["validation"]["text"]
    assert one["train"]["text"] == again["train"]["text"]
    assert set(one["validation"]["text"]) != set(other["validation"]["text"])


def test_validation_split_holds_out_of_train_and_leaves_test_alone():
    ds = classified({"a": 30, "b": 20, "c": 10})
    split = with_validation_split(ds, 0.2, seed=3)

    assert list(split) == ["train", "validation", "test"]
    assert split["validation"].num_rows == 12
    assert split["train"].num_rows == 48
    assert set(split["train"]["text"]).isdisjoint(split["validation"]["text"])
    assert set(split["train"]["text"]) | set(split["validation"]["text"]) == set(ds["train"]["text"])
    assert split["test"] is ds["test"]
    assert split["validation"].features == ds["train"].features


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_validation_split_is_stratified_by_a_class_label(seed):
    counts = {"a": 37, "b": 21, "c": 9}
    ds = classified(counts)
    total = sum(counts.values())
    for size in (0.1, 0.25, 12):
        split = with_validation_split(ds, size, seed=seed, stratify_by_column="label")
        validation = Counter(split["validation"]["label"])
        n = split["validation"].num_rows
        for label, name in enumerate(sorted(counts)):
            assert abs(validation[label] - counts[name] * n / total) <= 1, (size, name, validation)


def test_validation_split_ignores_stratify_on_a_non_class_label_column():
    ds = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"tokens": [["a"]] * 10, "ner_tags": [[0]] * 10})}
    )
    split = with_validation_split(ds, 0.2, stratify_by_column="ner_tags")
    assert (split["train"].num_rows, split["validation"].num_rows) == (8, 2)


def test_existing_validation_split_is_returned_unchanged(tmp_path):
    ds = load_dataset("wnut17", data_dir=wnut_dir(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    assert with_validation_split(ds) is ds


def test_unsupervised_split_is_kept(tmp_path):
    root = imdb_dir(tmp_path / "data")
    write_files(root, {"train/unsup/0_0.txt": "?"})
    ds = load_dataset("imdb", data_dir=root, cache_dir=str(tmp_path / "cache"))
    split = with_validation_split(ds, 1)
    assert set(split) == {"train", "validation", "test", "unsupervised"}
    assert split["unsupervised"]["label"] == [-1]


# Errors common to all formats.


def test_data_format_error_survives_pickling():
    err = DataFormatError("/data/x.conll", "expected a token and a tag", "line 3")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is DataFormatError
    assert (again.path, again.problem, again.where, str(again)) == (
        err.path,
        err.problem,
        err.where,
        str(err),
    )


def test_unknown_format_name(tmp_path):
    with pytest.raises(ValueError, match="unknown data set format 'xlsx'"):
        load_dataset("xlsx", data_dir=tmp_path, cache_dir=str(tmp_path / "cache"))


@pytest.mark.parametrize("name", sorted(loaders.LOADERS))
def test_missing_data_dir(tmp_path, name):
    with pytest.raises(DataFormatError, match="nowhere: does not exist"):
        load_dataset(name, data_dir=tmp_path / "nowhere", cache_dir=str(tmp_path / "cache"))


def test_unknown_config_field(tmp_path):
    with pytest.raises(ValueError, match="label_nmes"):
        load_dataset(
            "imdb", data_dir=imdb_dir(tmp_path / "data"), cache_dir=str(tmp_path / "cache"), label_nmes=["a"]
        )


# The project's own samples (written by the samples' author; exact counts are checked elsewhere).


@pytest.mark.parametrize(("name", "folder"), [("imdb", "imdb"), ("wnut17", "wnut17"), ("squad_v2", "squad")])
def test_samples_load(tmp_path, name, folder):
    if not (SAMPLES / folder).is_dir():
        pytest.skip(f"{SAMPLES / folder} is absent")
    ds = load_dataset(name, data_dir=SAMPLES / folder, cache_dir=str(tmp_path / "cache"))

    assert "train" in ds
    for split_name, split in ds.items():
        assert split.num_rows > 0, split_name


def test_validation_split_by_group_keeps_every_group_on_one_side():
    titles = [f"article-{i % 7}" for i in range(70)]
    train = datasets.Dataset.from_dict({"title": titles, "question": [str(i) for i in range(70)]})
    parts = with_validation_split(
        datasets.DatasetDict({"train": train}), 0.25, seed=3, group_by_column="title"
    )

    assert not set(parts["train"]["title"]) & set(parts["validation"]["title"])
    assert len(parts["train"]) + len(parts["validation"]) == 70
    assert len(parts["validation"]) >= 0.25 * 70 and len(parts["validation"]) % 10 == 0  # whole groups of 10
    again = with_validation_split(
        datasets.DatasetDict({"train": train}), 0.25, seed=3, group_by_column="title"
    )
    assert again["validation"]["question"] == parts["validation"]["question"]


def test_validation_split_by_group_needs_two_groups():
    train = datasets.Dataset.from_dict({"title": ["only"] * 5})
    with pytest.raises(ValueError, match="only 1"):
        with_validation_split(datasets.DatasetDict({"train": train}), 0.2, group_by_column="title")
