"""CoNLL `token<TAB>tag` files through `loaders.load_dataset("wnut17" | "conll", ...)`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import datasets
import pytest

from loaders import DataFormatError, load_dataset
from loaders.__main__ import summarize
from loaders.conll import collect_labels

WNUT17_NAMES = [
    "O",
    "B-corporation",
    "I-corporation",
    "B-creative-work",
    "I-creative-work",
    "B-group",
    "I-group",
    "B-location",
    "I-location",
    "B-person",
    "I-person",
    "B-product",
    "I-product",
]
WNUT17_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "tokens": datasets.List(datasets.Value("string")),
        "ner_tags": datasets.List(datasets.ClassLabel(names=WNUT17_NAMES)),
    }
)

# Three documents; the second separator is a line holding a single TAB, as in most of W-NUT's train file.
WNUT_TRAIN = textwrap.dedent(
    """\
    @paul\tO
    went\tO
    to\tO
    New\tB-location
    York\tI-location

    Apple\tB-corporation
    rocks\tO
    \t
    Star\tB-creative-work
    Wars\tI-creative-work
    """
)
WNUT_DEV = "Google\tB-corporation\nsearch\tO\n"
WNUT_TEST = "John\tB-person\nSmith\tI-person\nplays\tO\n\nFIFA\tB-product\n"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def wnut_dir(root: Path, train: str | bytes = WNUT_TRAIN) -> Path:
    write(root / "wnut17train.conll", train)
    write(root / "emerging.dev.conll", WNUT_DEV)
    write(root / "emerging.test.annotated", WNUT_TEST)
    return root


def load(tmp_path: Path, name: str = "wnut17", **kwargs):
    return load_dataset(name, cache_dir=str(tmp_path / "cache"), **kwargs)


def tags_as_names(split: datasets.Dataset) -> list[list[str]]:
    names = split.features["ner_tags"].feature.names
    return [[names[t] for t in doc] for doc in split["ner_tags"]]


def test_wnut17_schema_and_splits_match_the_hub(tmp_path):
    ds = load(tmp_path, data_dir=wnut_dir(tmp_path / "wnut17"))

    assert set(ds) == {"train", "validation", "test"}
    for split in ds.values():
        assert split.features == WNUT17_FEATURES
    assert ds["train"]["id"] == ["0", "1", "2"]
    assert ds["train"]["tokens"] == [
        ["@paul", "went", "to", "New", "York"],
        ["Apple", "rocks"],
        ["Star", "Wars"],
    ]
    assert ds["train"]["ner_tags"] == [[0, 0, 0, 7, 8], [1, 0], [3, 4]]
    assert ds["validation"]["tokens"] == [["Google", "search"]]
    assert tags_as_names(ds["test"]) == [["B-person", "I-person", "O"], ["B-product"]]


def test_documents_are_counted_exactly(tmp_path):
    # Several blank lines in a row, whitespace-only separators and a missing final newline lose nothing and
    # invent no empty documents.
    train = "a\tO\n\n\n\nb\tO\n \t \nc\tO\nd\tO\n\t\n\ne\tO"
    ds = load(tmp_path, data_dir=wnut_dir(tmp_path / "wnut17", train=train))
    assert ds["train"]["tokens"] == [["a"], ["b"], ["c", "d"], ["e"]]
    assert ds["train"]["id"] == ["0", "1", "2", "3"]


def test_separator_line_holding_a_single_tab_splits_documents(tmp_path):
    train = "one\tO\n\t\ntwo\tO\n\t\nthree\tO\n"
    ds = load(tmp_path, data_dir=wnut_dir(tmp_path / "wnut17", train=train))
    assert ds["train"]["tokens"] == [["one"], ["two"], ["three"]]


def test_windows_line_endings_and_bom(tmp_path):
    train = ("\ufeff" + WNUT_TRAIN.replace("\n", "\r\n")).encode()
    ds = load(tmp_path, data_dir=wnut_dir(tmp_path / "wnut17", train=train))

    tokens = [t for doc in ds["train"]["tokens"] for t in doc]
    assert ds["train"]["tokens"][0][0] == "@paul"
    assert ds["train"].num_rows == 3
    assert not any("\r" in t or "\ufeff" in t for t in tokens)
    assert ds["train"]["ner_tags"] == [[0, 0, 0, 7, 8], [1, 0], [3, 4]]


def test_data_files_instead_of_data_dir(tmp_path):
    root = wnut_dir(tmp_path / "wnut17")
    ds = load(
        tmp_path,
        data_files={"train": str(root / "wnut17train.conll"), "validation": str(root / "emerging.dev.conll")},
    )
    assert set(ds) == {"train", "validation"}
    assert ds["train"].features == WNUT17_FEATURES
    assert ds["train"].num_rows == 3


def test_ids_stay_unique_across_the_files_of_a_split(tmp_path):
    root = wnut_dir(tmp_path / "wnut17")
    ds = load(
        tmp_path,
        data_files={"train": [str(root / "wnut17train.conll"), str(root / "emerging.test.annotated")]},
    )
    assert ds["train"]["id"] == ["0", "1", "2", "3", "4"]
    assert ds["train"]["tokens"][3:] == [["John", "Smith", "plays"], ["FIFA"]]


# A tag set of the user's own, via name "conll".

OWN_TRAIN = textwrap.dedent(
    """\
    Marie\tB-PER
    Curie\tI-PER
    lived\tO
    in\tO
    Paris\tB-LOC

    the\tO
    Nobel\tB-AWARD
    Prize\tI-AWARD
    committee\tB-ORG
    """
)


def test_collect_labels_order(tmp_path):
    """O first, then per entity type (sorted) B- then I-, then unprefixed tags sorted."""
    path = write(tmp_path / "train.txt", OWN_TRAIN + "\nx\tMISC\ny\tI-LOC\nz\tDATE\n")
    assert collect_labels([str(path)]) == [
        "O",
        "B-AWARD",
        "I-AWARD",
        "B-LOC",
        "I-LOC",
        "B-ORG",
        "B-PER",
        "I-PER",
        "DATE",
        "MISC",
    ]


def test_collect_labels_gives_the_wnut17_order(tmp_path):
    lines = [f"w{i}\t{tag}" for i, tag in enumerate(reversed(WNUT17_NAMES))]
    path = write(tmp_path / "train.conll", "\n".join(lines) + "\n")
    assert collect_labels([str(path)]) == WNUT17_NAMES


def test_own_tag_set_is_collected_from_train(tmp_path):
    root = tmp_path / "ner"
    write(root / "my-train.conll", OWN_TRAIN)
    write(root / "my-dev.conll", "Berlin\tB-LOC\nis\tO\n")
    write(root / "my-test.conll", "Bob\tB-PER\n")
    write(root / "README.md", "not data")
    ds = load(tmp_path, "conll", data_dir=root)

    assert set(ds) == {"train", "validation", "test"}
    names = ["O", "B-AWARD", "I-AWARD", "B-LOC", "B-ORG", "B-PER", "I-PER"]
    assert ds["train"].features == datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.List(datasets.Value("string")),
            "ner_tags": datasets.List(datasets.ClassLabel(names=names)),
        }
    )
    assert tags_as_names(ds["train"]) == [
        ["B-PER", "I-PER", "O", "O", "B-LOC"],
        ["O", "B-AWARD", "I-AWARD", "B-ORG"],
    ]
    assert tags_as_names(ds["validation"]) == [["B-LOC", "O"]]
    assert ds["test"]["tokens"] == [["Bob"]]


def test_own_tag_set_with_label_names_given(tmp_path):
    root = tmp_path / "ner"
    write(root / "train.conll", "a\tX\nb\tY\n\nc\tZ\n")
    ds = load(tmp_path, "conll", data_dir=root, label_names=["Z", "Y", "X", "unused"])

    assert ds["train"].features["ner_tags"].feature.names == ["Z", "Y", "X", "unused"]
    assert ds["train"]["ner_tags"] == [[2, 1], [0]]


def test_whitespace_delimiter(tmp_path):
    root = tmp_path / "ner"
    write(root / "train.txt", "Paris   B-LOC\nis O\n")
    ds = load(tmp_path, "conll", data_dir=root, delimiter="whitespace")
    assert ds["train"]["tokens"] == [["Paris", "is"]]
    assert tags_as_names(ds["train"]) == [["B-LOC", "O"]]


# Bad input: DataFormatError naming the file, the line and what was expected.


def test_line_without_a_tab(tmp_path):
    root = wnut_dir(tmp_path / "wnut17", train="a\tO\n\nb O\n")
    with pytest.raises(DataFormatError) as err:
        load(tmp_path, data_dir=root)
    assert err.value.path == str(root.resolve() / "wnut17train.conll")
    assert err.value.where == "line 3"
    assert "wnut17train.conll, line 3" in str(err.value)
    assert "expected a token and a tag separated by a TAB, got 'b O'" in str(err.value)


def test_line_with_more_than_two_columns(tmp_path):
    root = wnut_dir(tmp_path / "wnut17", train="a\tO\nb\tNNP\tO\n")
    with pytest.raises(DataFormatError) as err:
        load(tmp_path, data_dir=root)
    assert err.value.where == "line 2"
    assert "wnut17train.conll, line 2: expected a token and a tag separated by a TAB" in str(err.value)
    assert repr("b\tNNP\tO") in str(err.value)


@pytest.mark.parametrize("line", ["\tO", "token\t", "token\t  "])
def test_line_missing_token_or_tag(tmp_path, line):
    root = wnut_dir(tmp_path / "wnut17", train=f"a\tO\n{line}\n")
    with pytest.raises(DataFormatError, match=r"wnut17train\.conll, line 2: expected a token and a tag"):
        load(tmp_path, data_dir=root)


def test_tag_not_in_the_wnut17_label_set(tmp_path):
    # Line 10: the third document starts on line 9, after a TAB separator on line 8.
    train = "a\tO\nb\tO\n\nc\tB-person\nd\tI-person\ne\tO\nf\tO\n\t\ng\tO\nh\tB-PER\n"
    root = wnut_dir(tmp_path / "wnut17", train=train)
    with pytest.raises(DataFormatError) as err:
        load(tmp_path, data_dir=root)
    assert err.value.path == str(root.resolve() / "wnut17train.conll")
    assert err.value.where == "line 10"
    assert "tag 'B-PER' is not in the label set" in str(err.value)
    assert "'B-person'" in str(err.value)


def test_tag_not_in_the_label_set_in_the_dev_file(tmp_path):
    root = wnut_dir(tmp_path / "wnut17")
    write(root / "emerging.dev.conll", "x\tO\n\ny\tB-location\nz\tB-city\n")
    with pytest.raises(
        DataFormatError, match=r"emerging\.dev\.conll, line 4: tag 'B-city' is not in the label set"
    ):
        load(tmp_path, data_dir=root)


def test_non_utf8_conll_file(tmp_path):
    root = wnut_dir(tmp_path / "wnut17", train="caf\xe9\tO\n".encode("latin-1"))
    with pytest.raises(DataFormatError) as err:
        load(tmp_path, data_dir=root)
    assert err.value.path == str(root.resolve() / "wnut17train.conll")
    assert "is not UTF-8 text" in str(err.value)


def test_bad_line_in_own_tag_set_is_reported_when_collecting_labels(tmp_path):
    root = tmp_path / "ner"
    write(root / "train.conll", "a\tO\nb O\n")
    with pytest.raises(DataFormatError, match=r"train\.conll, line 2: expected a token and a tag"):
        load(tmp_path, "conll", data_dir=root)


def test_folder_without_a_train_file(tmp_path):
    root = tmp_path / "ner"
    write(root / "dev.conll", "a\tO\n")
    with pytest.raises(DataFormatError) as err:
        load(tmp_path, "conll", data_dir=root)
    assert err.value.path == str(root.resolve())
    assert "has no train file" in str(err.value)


# Real data: skipped when ../shared/data is absent.


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("real_wnut17_cache"))


def test_real_wnut17(shared_data, real_cache):
    ds = load_dataset("wnut17", data_dir=shared_data / "wnut17", cache_dir=real_cache)

    assert set(ds) == {"train", "validation"}
    assert ds["train"].num_rows == 3394
    assert ds["validation"].num_rows == 1009
    for split in ds.values():
        assert split.features == WNUT17_FEATURES
    tokens = [t for doc in ds["train"]["tokens"] for t in doc]
    assert not any("\t" in t or "\r" in t for t in tokens)


def test_real_wnut17_collected_labels_are_the_wnut_order(shared_data, real_cache):
    ds = load_dataset("conll", data_dir=shared_data / "wnut17", cache_dir=real_cache)
    assert ds["train"].features["ner_tags"].feature.names == WNUT17_NAMES
    assert ds["train"].num_rows == 3394


def test_tag_only_in_dev_is_reported_when_labels_are_collected_from_train(tmp_path):
    root = tmp_path / "ner"
    write(root / "train.conll", OWN_TRAIN)
    write(root / "dev.conll", "Rome\tB-LOC\nfell\tB-EVENT\n")
    with pytest.raises(DataFormatError, match=r"dev\.conll, line 2: tag 'B-EVENT' is not in the label set"):
        load(tmp_path, "conll", data_dir=root)


def test_none_config_value_is_not_silently_ignored(tmp_path):
    # `datasets` drops config values of None, which would quietly keep the TAB delimiter or the W-NUT labels.
    root = wnut_dir(tmp_path / "wnut17")
    with pytest.raises(ValueError, match="delimiter"):
        load(tmp_path, "conll", data_dir=root, delimiter=None)
    with pytest.raises(ValueError, match="label_names"):
        load(tmp_path, data_dir=root, label_names=None)


def test_summary_counts_entities_by_their_b_tags(tmp_path):
    ds = load(tmp_path, data_dir=wnut_dir(tmp_path / "wnut17"))
    lines = summarize(ds)
    assert lines[0].endswith("entities: corporation=1, creative-work=1, location=1")
    assert lines[2].endswith("4 tokens, entities: person=1, product=1")
