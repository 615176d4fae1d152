"""CSV, TSV, JSON Lines and Parquet through `loaders.load_dataset("csv" | "tsv" | "jsonl" | "parquet", ...)`."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loaders import DataFormatError, load_dataset, load_with_repairs
from loaders.__main__ import summarize
from loaders.conll import WNUT17_LABELS

FORMATS = ("csv", "tsv", "jsonl", "parquet")
SUFFIX = {"csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl", "parquet": ".parquet"}


def write(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(content), encoding="utf-8")
    return path


def write_rows(path: Path, file_format: str, rows: list[dict]) -> Path:
    """The same rows in any of the four formats; CSV/TSV cells hold lists and objects as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif file_format == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        cells = [{k: v if isinstance(v, str) else json.dumps(v) for k, v in row.items()} for row in rows]
        with open(path, "w", encoding="utf-8", newline="") as f:
            if file_format == "tsv":
                f.write("\t".join(rows[0]) + "\n")
                f.writelines("\t".join(row.values()) + "\n" for row in cells)
            else:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(cells)
    return path


def load(tmp_path: Path, file_format: str, files: dict[str, Path], **config):
    data_files = {split: str(path) for split, path in files.items()}
    return load_dataset(file_format, data_files=data_files, cache_dir=str(tmp_path / "cache"), **config)


def load_rows(tmp_path: Path, file_format: str, splits: dict[str, list[dict]], **config):
    files = {
        s: write_rows(tmp_path / file_format / f"{s}{SUFFIX[file_format]}", file_format, rows)
        for s, rows in splits.items()
    }
    return load(tmp_path, file_format, files, **config)


CLASSIFICATION = {
    "train": [
        {"id": "r1", "text": "A great film.", "label": "pos"},
        {"id": "r2", "text": "Awful, truly.", "label": "neg"},
        {"id": "r3", "text": 'He said "meh".', "label": "neutral"},
    ],
    "test": [{"id": "t1", "text": "Wonderful.", "label": "pos"}],
}
PAIRS = {
    "train": [
        {"premise": "A man sleeps.", "hypothesis": "A person rests.", "label": "entailment"},
        {"premise": "A man sleeps.", "hypothesis": "A man runs.", "label": "contradiction"},
    ]
}
MULTI_LABEL = {
    "train": [
        {"text": "Goal in the election.", "labels": ["sport", "politics"]},
        {"text": "Nothing much.", "labels": []},
        {"text": "Rates rise.", "labels": ["economy"]},
    ]
}
TOKENS = {
    "train": [
        {"tokens": ["New", "York", "rocks"], "ner_tags": ["B-location", "I-location", "O"]},
        {"tokens": ["Apple", "sells"], "ner_tags": ["B-corporation", "O"]},
    ],
    "validation": [{"tokens": ["Paris"], "ner_tags": ["B-location"]}],
}
QA = {
    "train": [
        {
            "id": "q1",
            "title": "France",
            "context": "Paris is the capital of France.",
            "question": "Capital?",
            "answers": {"text": ["Paris"], "answer_start": [0]},
        },
        {
            "id": "q2",
            "title": "France",
            "context": "Paris is the capital of France.",
            "question": "Population?",
            "answers": {"text": [], "answer_start": []},
        },
    ]
}
SAME_DATA = {
    "text-classification": (CLASSIFICATION, {}),
    "pairs": (PAIRS, {"columns": {"text": "premise", "text_pair": "hypothesis"}}),
    "multi-label-classification": (MULTI_LABEL, {"schema": "multi-label-classification"}),
    "token-classification": (TOKENS, {"schema": "token-classification"}),
    "question-answering": (QA, {"schema": "question-answering"}),
}


@pytest.mark.parametrize("case", sorted(SAME_DATA))
def test_the_same_data_in_every_format_loads_to_identical_rows(tmp_path, case):
    splits, config = SAME_DATA[case]
    loaded = {fmt: load_rows(tmp_path, fmt, splits, **config) for fmt in FORMATS}
    reference = loaded["jsonl"]
    for fmt in ("csv", "tsv", "parquet"):
        assert list(loaded[fmt]) == list(reference), fmt
        for split in reference:
            assert loaded[fmt][split].features == reference[split].features, (fmt, split)
            assert loaded[fmt][split].to_list() == reference[split].to_list(), (fmt, split)


def test_classification_rows_labels_and_ids(tmp_path):
    ds = load_rows(tmp_path, "csv", CLASSIFICATION)
    assert ds["train"].features == datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["neg", "neutral", "pos"]),
            "id": datasets.Value("string"),
        }
    )
    assert ds["train"].to_list() == [
        {"text": "A great film.", "label": 2, "id": "r1"},
        {"text": "Awful, truly.", "label": 0, "id": "r2"},
        {"text": 'He said "meh".', "label": 1, "id": "r3"},
    ]
    assert ds["test"].to_list() == [{"text": "Wonderful.", "label": 2, "id": "t1"}]


def test_quoted_csv_values_may_span_lines_and_keep_their_text(tmp_path):
    train = write(tmp_path / "train.csv", 'text,label\n"Line one,\nline two",a\n007,b\n')
    ds = load(tmp_path, "csv", {"train": train})
    assert ds["train"]["text"] == ["Line one,\nline two", "007"]
    assert "id" not in ds["train"].features


def test_tsv_has_no_quoting(tmp_path):
    train = write(tmp_path / "train.tsv", 'text\tlabel\n"Quoted start\tx\nplain\ty\n')
    assert load(tmp_path, "tsv", {"train": train})["train"]["text"] == ['"Quoted start', "plain"]


def test_integer_labels_are_sorted_numerically_and_named_by_their_value(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\na,10\nb,2\nc,1\n")
    ds = load(tmp_path, "csv", {"train": train})
    assert ds["train"].features["label"].names == ["1", "2", "10"]
    assert ds["train"]["label"] == [2, 1, 0]


def test_label_names_fix_the_order(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\na,pos\nb,neg\n")
    ds = load(tmp_path, "csv", {"train": train}, label_names=["pos", "neg"])
    assert ds["train"].features["label"].names == ["pos", "neg"]
    assert ds["train"]["label"] == [0, 1]


def test_integer_labels_with_label_names_are_ids_unless_the_names_are_integers(tmp_path):
    ids = write_rows(
        tmp_path / "ids" / "train.jsonl", "jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": 0}]
    )
    ds = load(tmp_path, "jsonl", {"train": ids}, label_names=["neg", "pos"])
    assert ds["train"]["label"] == [1, 0]
    ratings = write_rows(
        tmp_path / "r" / "train.jsonl", "jsonl", [{"text": "a", "label": 5}, {"text": "b", "label": 1}]
    )
    ds = load(tmp_path, "jsonl", {"train": ratings}, label_names=["1", "2", "3", "4", "5"])
    assert ds["train"]["label"] == [4, 0]


def test_sentence_pairs_through_a_column_mapping(tmp_path):
    ds = load_rows(tmp_path, "csv", PAIRS, columns={"text": "premise", "text_pair": "hypothesis"})
    assert list(ds["train"].features) == ["text", "text_pair", "label"]
    assert ds["train"].to_list() == [
        {"text": "A man sleeps.", "text_pair": "A person rests.", "label": 1},
        {"text": "A man sleeps.", "text_pair": "A man runs.", "label": 0},
    ]


def test_multi_label_as_a_list_column(tmp_path):
    ds = load_rows(tmp_path, "jsonl", MULTI_LABEL, schema="multi-label-classification")
    feature = ds["train"].features["labels"]
    assert feature == datasets.List(datasets.ClassLabel(names=["economy", "politics", "sport"]))
    assert ds["train"]["labels"] == [[2, 1], [], [0]]


def test_multi_label_summary_counts_rows_per_label(tmp_path):
    ds = load_rows(tmp_path, "jsonl", MULTI_LABEL, schema="multi-label-classification")
    assert summarize(ds) == ["       train:      3 rows  economy=1, politics=1, sport=1, no label=1"]


def test_multi_label_as_0_1_columns(tmp_path):
    train = write(tmp_path / "train.csv", "text,sport,politics\nGoal,1,0\nVote,0,1\nBoth,1,1\nNone,0,0\n")
    ds = load(
        tmp_path,
        "csv",
        {"train": train},
        schema="multi-label-classification",
        label_columns=["sport", "politics"],
    )
    assert ds["train"].features["labels"].feature.names == ["sport", "politics"]
    assert ds["train"]["labels"] == [[0], [1], [0, 1], []]


def test_tokens_and_tags_as_whitespace_separated_cells(tmp_path):
    train = write(
        tmp_path / "train.csv",
        """\
        tokens,ner_tags
        New York rocks,B-location I-location O
        "[""Apple"", ""Inc.""]","[""B-corporation"", ""I-corporation""]"
        """,
    )
    ds = load(tmp_path, "csv", {"train": train}, schema="token-classification")
    names = ds["train"].features["ner_tags"].feature.names
    assert names == ["O", "B-corporation", "I-corporation", "B-location", "I-location"]
    assert ds["train"].to_list() == [
        {"id": "0", "tokens": ["New", "York", "rocks"], "ner_tags": [3, 4, 0]},
        {"id": "1", "tokens": ["Apple", "Inc."], "ner_tags": [1, 2]},
    ]


def test_integer_tags_with_label_names(tmp_path):
    rows = [{"id": "d1", "tokens": ["Paris", "!"], "ner_tags": [1, 0]}]
    ds = load_rows(
        tmp_path, "parquet", {"train": rows}, schema="token-classification", label_names=["O", "B-loc"]
    )
    assert ds["train"].to_list() == [{"id": "d1", "tokens": ["Paris", "!"], "ner_tags": [1, 0]}]


def test_parquet_written_by_datasets_keeps_its_class_names(tmp_path):
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["pos", "neg"])}
    )
    path = tmp_path / "train.parquet"
    datasets.Dataset.from_dict({"text": ["a", "b"], "label": [1, 0]}, features=features).to_parquet(str(path))
    ds = load(tmp_path, "parquet", {"train": path})
    assert ds["train"].features["label"].names == ["pos", "neg"]
    assert ds["train"]["label"] == [1, 0]


def test_question_answering_one_answer_per_row_without_titles(tmp_path):
    train = write(
        tmp_path / "train.csv",
        """\
        qid,context,question,answer,start
        a,Paris is the capital of France.,Capital?,France,24
        b,Paris is the capital of France.,Population?,,
        """,
    )
    ds = load(
        tmp_path,
        "csv",
        {"train": train},
        schema="question-answering",
        columns={"id": "qid", "answer_text": "answer", "answer_start": "start"},
    )
    assert ds["train"].to_list() == [
        {
            "id": "a",
            "title": "",
            "context": "Paris is the capital of France.",
            "question": "Capital?",
            "answers": {"text": ["France"], "answer_start": [24]},
        },
        {
            "id": "b",
            "title": "",
            "context": "Paris is the capital of France.",
            "question": "Population?",
            "answers": {"text": [], "answer_start": []},
        },
    ]


def test_split_files_found_in_a_folder_and_generated_ids_counted(tmp_path):
    write(tmp_path / "data" / "reviews-train.csv", "text,label\na,pos\nb,neg\n")
    write(tmp_path / "data" / "reviews-test.csv", "id,text,label\nx7,c,pos\n")
    write(tmp_path / "data" / "notes.txt", "not data")
    ds, repaired = load_with_repairs("csv", data_dir=tmp_path / "data", cache_dir=str(tmp_path / "cache"))
    assert ds["train"]["id"] == ["0", "1"]
    assert ds["test"]["id"] == ["x7"]
    assert repaired["train"]["row_number_ids"] == 2
    assert repaired["test"]["row_number_ids"] == 0


def test_a_changed_column_mapping_or_label_order_is_not_served_from_the_cache(tmp_path):
    train = write(tmp_path / "train.csv", "a,b,label\nfirst,second,x\nthird,fourth,y\n")
    assert load(tmp_path, "csv", {"train": train}, columns={"text": "a"})["train"]["text"] == [
        "first",
        "third",
    ]
    assert load(tmp_path, "csv", {"train": train}, columns={"text": "b"})["train"]["text"] == [
        "second",
        "fourth",
    ]
    flipped = load(tmp_path, "csv", {"train": train}, columns={"text": "a"}, label_names=["y", "x"])
    assert flipped["train"]["label"] == [1, 0]
    assert load(tmp_path, "csv", {"train": train}, columns={"text": "a"})["train"]["label"] == [0, 1]


# Bad input: one line naming the file and row.


def bad(tmp_path: Path, name: str, content: str, **config) -> str:
    path = write(tmp_path / name, content)
    file_format = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}[path.suffix]
    with pytest.raises(DataFormatError) as info:
        load(tmp_path, file_format, {"train": path}, **config)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_columns_are_one_error_listing_the_file_columns(tmp_path):
    message = bad(tmp_path, "train.csv", "review,sentiment\ngood,pos\n")
    assert message == (
        f"{tmp_path / 'train.csv'}, row 1: has no column 'text', 'label'; the file has columns ['review', 'sentiment']"
    )


def test_a_mapped_column_that_is_absent_is_named(tmp_path):
    message = bad(tmp_path, "train.csv", "text,label\ngood,pos\n", columns={"text_pair": "hypothesis"})
    assert message.endswith("row 1: has no column 'hypothesis'; the file has columns ['text', 'label']")


@pytest.mark.parametrize(
    "name, content, expected",
    [
        (
            "train.jsonl",
            '{"text": "a", "label": 1}\n\n{"text": "b", "label": 1.5}\n',
            "line 3: label 1.5 is a float",
        ),
        ("train.csv", "text,label\na,1\nb,2.0\n", "row 2: label '2.0' is a float"),
        ("train.jsonl", '{"text": "a", "label": true}\n', "line 1: label True is a boolean"),
        ("train.jsonl", '{"text": "a", "label": null}\n', "line 1: label is empty"),
        ("train.csv", "text,label\na,pos\nb,\n", "row 2: label is empty"),
    ],
)
def test_labels_of_the_wrong_type(tmp_path, name, content, expected):
    message = bad(tmp_path, name, content)
    assert message.startswith(f"{tmp_path / name}, {expected}; expected a class name or an integer id")


def test_tags_that_are_not_a_list(tmp_path):
    message = bad(
        tmp_path, "train.jsonl", '{"tokens": ["a"], "ner_tags": "O"}\n', schema="token-classification"
    )
    assert message.endswith("line 1: column 'ner_tags' holds 'O', not a list; expected a list")


def test_tags_and_tokens_of_different_lengths(tmp_path):
    message = bad(tmp_path, "train.csv", "tokens,ner_tags\na b c,O O\n", schema="token-classification")
    assert message.endswith("train.csv, row 1: has 3 tokens but 2 tags")


def test_integer_tags_without_names(tmp_path):
    message = bad(
        tmp_path, "train.jsonl", '{"tokens": ["a"], "ner_tags": [0]}\n', schema="token-classification"
    )
    assert message.endswith(
        "line 1: tags in column 'ner_tags' are integers and there are no tag names; "
        "pass label_names (the tag names in id order)"
    )


QA_HEADER = "id,context,question,answers\n"


@pytest.mark.parametrize(
    "answers, expected",
    [
        (
            '"{""text"": [""Paris""], ""answer_start"": [30]}"',
            "answer 'Paris' at offset 30 is not inside the context",
        ),
        (
            '"{""text"": [""Paris""], ""answer_start"": [1]}"',
            "answer 'Paris' is not at offset 1: the context has 'aris '",
        ),
        ('"[""Paris""]"', "answers ['Paris'] is not an answers object"),
    ],
)
def test_answers_not_inside_or_not_at_their_offset(tmp_path, answers, expected):
    message = bad(
        tmp_path,
        "train.csv",
        QA_HEADER + f"q1,Paris is nice.,Where?,{answers}\n",
        schema="question-answering",
    )
    assert f"train.csv, row 1: {expected}" in message


def test_a_label_train_never_had_is_named_with_its_row(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\na,pos\nb,neg\n")
    test = write(tmp_path / "test.csv", "text,label\nc,pos\nd,meh\n")
    with pytest.raises(DataFormatError) as info:
        load(tmp_path, "csv", {"train": train, "test": test})
    assert str(info.value) == (
        f"{test}, row 2: label 'meh' is not in the train split (train has ['neg', 'pos']); pass label_names"
    )


def test_a_label_not_in_label_names(tmp_path):
    message = bad(tmp_path, "train.csv", "text,label\na,pos\nb,meh\n", label_names=["neg", "pos"])
    assert message.endswith("row 2: label 'meh' is not in label_names ['neg', 'pos']")


def test_a_tag_not_in_label_names_and_an_id_out_of_range(tmp_path):
    message = bad(
        tmp_path,
        "train.csv",
        "tokens,ner_tags\nParis,B-LOC\n",
        schema="token-classification",
        label_names=["O"],
    )
    assert message.endswith("row 1: tag 'B-LOC' is not in label_names ['O']")
    message = bad(tmp_path, "train.jsonl", '{"text": "a", "label": 2}\n', label_names=["neg", "pos"])
    assert message.endswith("line 1: label id 2 is not an id into label_names (0 to 1)")


@pytest.mark.parametrize("value", ["2", "yes", "1.0"])
def test_0_1_columns_hold_only_0_or_1(tmp_path, value):
    message = bad(
        tmp_path,
        "train.csv",
        f"text,sport,politics\na,1,0\nb,0,{value}\n",
        schema="multi-label-classification",
        label_columns=["sport", "politics"],
    )
    assert message.endswith(f"row 2: column 'politics' holds {value!r}; expected 0 or 1")


def test_broken_files_name_where(tmp_path):
    assert bad(tmp_path, "train.jsonl", '{"text": "a", "label": "x"}\n{"text": \n').endswith(
        "line 2: is not valid JSON (Expecting value)"
    )
    assert bad(tmp_path, "train.csv", "text,label\na,x\nb,y,extra\n").endswith(
        "train.csv: is not valid CSV (Expected 2 columns, got 3: b,y,extra)"
    )
    assert bad(tmp_path, "train.csv", "text,text,label\na,b,c\n").endswith(
        "train.csv: has the column 'text' more than once; columns must be unique"
    )
    assert bad(tmp_path, "train.jsonl", '{"text": "a", "label": "x", "label": "y"}\n').endswith(
        "train.jsonl, line 1: has the column 'label' more than once; columns must be unique"
    )
    for name in ("latin1.csv", "latin1.jsonl"):
        path = tmp_path / name
        path.write_bytes(
            b'{"text": "caf\xe9", "label": "x"}\n' if name.endswith("jsonl") else b"text,label\ncaf\xe9,x\n"
        )
        with pytest.raises(DataFormatError, match=r"not .*UTF.?8"):
            load(tmp_path, path.suffix[1:], {"train": path})
    assert bad(tmp_path, "train.csv", "text,label\n").endswith(
        "holds no rows (expected a header and at least one data row)"
    )


def test_config_mistakes_are_caught_before_reading(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\na,x\n")
    with pytest.raises(
        ValueError, match=r"columns \['tokens'\] mean nothing for the text-classification schema"
    ):
        load(tmp_path, "csv", {"train": train}, columns={"tokens": "words"})
    with pytest.raises(ValueError, match="map both answer_text and answer_start"):
        load(tmp_path, "csv", {"train": train}, schema="question-answering", columns={"answer_text": "a"})


def test_wnut17_as_json_lines_loads_to_the_conll_loaders_rows(tmp_path, shared_data):
    conll = load_dataset("wnut17", data_dir=shared_data / "wnut17", cache_dir=str(tmp_path / "cache"))
    files = {}
    for split, rows in conll.items():
        names = rows.features["ner_tags"].feature.names
        records = [{"tokens": r["tokens"], "ner_tags": [names[t] for t in r["ner_tags"]]} for r in rows]
        files[split] = write_rows(tmp_path / f"{split}.jsonl", "jsonl", records)
    ds = load(tmp_path, "jsonl", files, schema="token-classification")
    assert ds["train"].features["ner_tags"].feature.names == WNUT17_LABELS
    for split in conll:
        assert ds[split].features == conll[split].features
        assert ds[split].to_list() == conll[split].to_list()


def test_imdb_as_csv_loads_to_the_folder_loaders_rows(tmp_path, shared_data):
    folders = load_dataset(
        "imdb", data_dir=shared_data / "imdb" / "aclImdb-train.tar.gz", cache_dir=str(tmp_path / "cache")
    )["train"]
    names = folders.features["label"].names
    rows = [{"review": r["text"], "sentiment": names[r["label"]]} for r in folders]
    path = write_rows(tmp_path / "reviews.csv", "csv", rows)
    ds = load(tmp_path, "csv", {"train": path}, columns={"text": "review", "label": "sentiment"})
    assert ds["train"].features == folders.features
    assert ds["train"].to_list() == folders.to_list()
