"""NER span annotations from annotation tools through `loaders.load_dataset("label_studio" | "doccano", ...)`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import pytest

from loaders import DataFormatError, load_dataset, load_with_repairs
from loaders.spans import split_words

REPO_ROOT = Path(__file__).resolve().parent.parent

# A Label Studio JSON export as the tool writes it (fields the loader does not need included).
LABEL_STUDIO_TRAIN = textwrap.dedent(
    """\
    [
      {
        "id": 11,
        "data": {"text": "Sarah moved to New York."},
        "annotations": [
          {
            "id": 101,
            "completed_by": 1,
            "result": [
              {"value": {"start": 0, "end": 5, "text": "Sarah", "labels": ["PER"]},
               "id": "a1", "from_name": "label", "to_name": "text", "type": "labels", "origin": "manual"},
              {"value": {"start": 15, "end": 23, "text": "New York", "labels": ["LOC"]},
               "id": "a2", "from_name": "label", "to_name": "text", "type": "labels", "origin": "manual"}
            ],
            "was_cancelled": false,
            "ground_truth": false,
            "created_at": "2024-05-01T10:00:00.000000Z",
            "updated_at": "2024-05-01T10:00:00.000000Z",
            "lead_time": 4.2
          }
        ],
        "predictions": [],
        "project": 3
      },
      {
        "id": 12,
        "data": {"text": "no entity here"},
        "annotations": [{"id": 102, "result": [], "was_cancelled": false}]
      }
    ]
    """
)
LABEL_STUDIO_DEV = json.dumps(
    [
        {
            "id": 21,
            "data": {"text": "Paris"},
            "annotations": [
                {
                    "result": [
                        {
                            "value": {"start": 0, "end": 5, "text": "Paris", "labels": ["LOC"]},
                            "from_name": "label",
                            "to_name": "text",
                            "type": "labels",
                        }
                    ]
                }
            ],
        }
    ]
)
# doccano's sequence labelling export, and the shape of projects with relations.
DOCCANO_TRAIN = textwrap.dedent(
    """\
    {"id": 1, "text": "Sarah moved to New York.", "label": [[0, 5, "PER"], [15, 23, "LOC"]], "Comments": []}
    {"id": 2, "text": "no entity here", "label": []}
    """
)
DOCCANO_ENTITIES = textwrap.dedent(
    """\
    {"id": 1, "text": "Sarah moved to New York.", "entities": [{"id": 7, "label": "PER", "start_offset": 0, \
"end_offset": 5}, {"id": 8, "label": "LOC", "start_offset": 15, "end_offset": 23}], "relations": [{"id": 1, \
"from_id": 7, "to_id": 8, "type": "lives_in"}]}
    {"id": 2, "text": "no entity here", "entities": [], "relations": []}
    """
)
EXPECTED_TRAIN = [
    [("Sarah", "B-PER"), ("moved", "O"), ("to", "O"), ("New", "B-LOC"), ("York", "I-LOC"), (".", "O")],
    [("no", "O"), ("entity", "O"), ("here", "O")],
]


def write(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def task(task_id: int, text: str, spans: list[tuple], **annotation) -> dict:
    """A Label Studio task with one annotation holding `(start, end, labels)` spans (`labels` a list or a str)."""
    result = [
        {
            "value": {"start": s, "end": e, "labels": [labels] if isinstance(labels, str) else labels},
            "from_name": "label",
            "to_name": "text",
            "type": "labels",
        }
        for s, e, labels in spans
    ]
    return {"id": task_id, "data": {"text": text}, "annotations": [{"result": result, **annotation}]}


def doccano(record_id: int, text: str, spans: list[tuple]) -> str:
    return json.dumps({"id": record_id, "text": text, "label": [list(span) for span in spans]})


def export_dir(root: Path, tool: str, train, dev=None) -> Path:
    """`train`/`dev`: the file's text, or Label Studio tasks, or doccano lines."""
    extension = ".json" if tool == "label_studio" else ".jsonl"
    for name, content in (("train", train), ("dev", dev)):
        if content is None:
            continue
        if not isinstance(content, str):
            content = json.dumps(content) if tool == "label_studio" else "\n".join(content) + "\n"
        write(root / f"{name}{extension}", content)
    return root


def load(tmp_path: Path, tool: str, data_dir: Path, **config) -> datasets.DatasetDict:
    return load_dataset(tool, data_dir=data_dir, cache_dir=str(tmp_path / "cache"), **config)


def load_counts(tmp_path: Path, tool: str, data_dir: Path, **config) -> tuple[datasets.DatasetDict, dict]:
    return load_with_repairs(tool, data_dir=data_dir, cache_dir=str(tmp_path / "cache"), **config)


def tagged(split: datasets.Dataset) -> list[list[tuple[str, str]]]:
    names = split.features["ner_tags"].feature.names
    return [
        [(token, names[tag]) for token, tag in zip(tokens, tags, strict=True)]
        for tokens, tags in zip(split["tokens"], split["ner_tags"], strict=True)
    ]


def one_text(tool: str, text: str, spans: list[tuple]) -> list:
    """A train file holding one document, in `tool`'s shape."""
    return [task(1, text, spans)] if tool == "label_studio" else [doccano(1, text, spans)]


def load_error(tmp_path: Path, tool: str, train, dev=None, **config) -> str:
    with pytest.raises(DataFormatError) as err:
        load(tmp_path, tool, export_dir(tmp_path / "export", tool, train, dev), **config)
    message = str(err.value)
    assert "\n" not in message
    return message


TOOLS = ["label_studio", "doccano"]


# The two exports


def test_label_studio_export(tmp_path):
    ds = load(
        tmp_path,
        "label_studio",
        export_dir(tmp_path / "ls", "label_studio", LABEL_STUDIO_TRAIN, LABEL_STUDIO_DEV),
    )

    assert set(ds) == {"train", "validation"}
    names = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert ds["train"].features == datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.List(datasets.Value("string")),
            "ner_tags": datasets.List(datasets.ClassLabel(names=names)),
        }
    )
    assert ds["train"]["id"] == ["11", "12"]
    assert tagged(ds["train"]) == EXPECTED_TRAIN
    assert tagged(ds["validation"]) == [[("Paris", "B-LOC")]]
    assert ds["validation"].features["ner_tags"].feature.names == names


@pytest.mark.parametrize("content", [DOCCANO_TRAIN, DOCCANO_ENTITIES], ids=["label", "entities"])
def test_doccano_export_both_shapes(tmp_path, content):
    ds, counts = load_counts(tmp_path, "doccano", export_dir(tmp_path / "dc", "doccano", content))

    assert ds["train"]["id"] == ["1", "2"]
    assert tagged(ds["train"]) == EXPECTED_TRAIN
    assert counts["train"]["other_results"] == (1 if "relations" in content else 0)


def test_same_spans_in_both_tools_load_to_identical_rows(tmp_path):
    ls = load(tmp_path, "label_studio", export_dir(tmp_path / "ls", "label_studio", LABEL_STUDIO_TRAIN))
    dc = load(tmp_path, "doccano", export_dir(tmp_path / "dc", "doccano", DOCCANO_TRAIN))
    assert ls["train"].features == dc["train"].features
    assert ls["train"]["tokens"] == dc["train"]["tokens"]
    assert ls["train"]["ner_tags"] == dc["train"]["ner_tags"]


# Words and span edges


@pytest.mark.parametrize("tool", TOOLS)
def test_span_across_two_words_is_b_then_i(tmp_path, tool):
    text = "flights to San Francisco International today"
    ds = load(tmp_path, tool, export_dir(tmp_path / "e", tool, one_text(tool, text, [(11, 38, "FAC")])))
    assert tagged(ds["train"])[0] == [
        ("flights", "O"),
        ("to", "O"),
        ("San", "B-FAC"),
        ("Francisco", "I-FAC"),
        ("International", "I-FAC"),
        ("today", "O"),
    ]


@pytest.mark.parametrize("tool", TOOLS)
def test_span_inside_a_word_is_widened_and_counted(tmp_path, tool):
    # "Paris" inside "Parisian", and "ork" inside "NewYork": both widened to the whole word.
    text = "Parisian food in NewYork"
    spans = [(0, 5, "LOC"), (20, 24, "LOC")]
    ds, counts = load_counts(tmp_path, tool, export_dir(tmp_path / "e", tool, one_text(tool, text, spans)))

    assert tagged(ds["train"])[0] == [("Parisian", "B-LOC"), ("food", "O"), ("in", "O"), ("NewYork", "B-LOC")]
    assert counts["train"]["widened_spans"] == 2
    assert counts["train"]["punctuation_cuts"] == 0


@pytest.mark.parametrize("tool", TOOLS)
def test_strict_makes_a_span_inside_a_word_an_error(tmp_path, tool):
    message = load_error(tmp_path, tool, one_text(tool, "Parisian food", [(0, 5, "LOC")]), strict=True)
    assert "train.json" in message if tool == "label_studio" else "train.jsonl" in message
    assert ("task 1" if tool == "label_studio" else "record 1, line 1") in message
    assert 'span "Paris" (0-5 LOC) does not fall on word boundaries: it cuts the word "Parisian"' in message


@pytest.mark.parametrize("tool", TOOLS)
def test_strict_accepts_spans_on_word_boundaries_and_punctuation(tmp_path, tool):
    ds = load(
        tmp_path,
        tool,
        export_dir(tmp_path / "e", tool, one_text(tool, "I love Paris.", [(7, 12, "LOC")])),
        strict=True,
    )
    assert tagged(ds["train"])[0] == [("I", "O"), ("love", "O"), ("Paris", "B-LOC"), (".", "O")]


@pytest.mark.parametrize("tool", TOOLS)
def test_punctuation_next_to_a_span_becomes_its_own_word(tmp_path, tool):
    # Cut only where a span edge is: "(Rome)," and "@anna:" are cut, "Oslo." without a span stays one word.
    text = "Visit (Rome), ask @anna: Oslo."
    spans = [(7, 11, "LOC"), (19, 23, "PER")]
    ds, counts = load_counts(tmp_path, tool, export_dir(tmp_path / "e", tool, one_text(tool, text, spans)))

    assert tagged(ds["train"])[0] == [
        ("Visit", "O"),
        ("(", "O"),
        ("Rome", "B-LOC"),
        ("),", "O"),
        ("ask", "O"),
        ("@", "O"),
        ("anna", "B-PER"),
        (":", "O"),
        ("Oslo.", "O"),
    ]
    assert counts["train"]["punctuation_cuts"] == 4
    assert counts["train"]["widened_spans"] == 0


def test_span_edges_on_whitespace_are_trimmed(tmp_path):
    # A selection that took the space after the word, or a span given twice, changes no word.
    spans = [(0, 6, "PER"), (0, 5, "PER"), (12, 18, "LOC")]
    ds, counts = load_counts(
        tmp_path,
        "doccano",
        export_dir(tmp_path / "e", "doccano", [doccano(1, "Sarah left  Oslo  now", spans)]),
    )
    assert tagged(ds["train"])[0] == [("Sarah", "B-PER"), ("left", "O"), ("Oslo", "B-LOC"), ("now", "O")]
    assert counts["train"]["duplicate_spans"] == 1


def test_tokens_joined_by_single_spaces_split_back_exactly():
    tokens = ["@paul", "U.S.", "Paris.", "#nyc", "e\u0301t\u00e9", "l'été", "😀", "--", "1,000"]
    text = " ".join(tokens)
    edges = []
    offset = 0
    for token in tokens:
        edges += [offset, offset + len(token)]
        offset += len(token) + 1
    assert [text[s:e] for s, e in split_words(text, edges)] == tokens
    assert [text[s:e] for s, e in split_words(text, [])] == tokens


def test_split_words_keeps_offsets_and_cuts_only_inside_words():
    text = "  New\tYork,\nNY  "
    assert split_words(text, [10]) == [(2, 5), (6, 10), (10, 11), (12, 14)]
    assert split_words(text, [2, 5, 16]) == [(2, 5), (6, 11), (12, 14)]


# Bad spans: one line naming the file, the record and what was expected


@pytest.mark.parametrize("tool", TOOLS)
def test_overlapping_spans_are_an_error_naming_both(tmp_path, tool):
    spans = [(0, 8, "LOC"), (4, 13, "LOC")]
    message = load_error(tmp_path, tool, one_text(tool, "New York City rocks", spans))
    assert 'spans "New York" (0-8 LOC) and "York City" (4-13 LOC) overlap' in message


def test_same_span_with_two_labels_overlaps(tmp_path):
    message = load_error(tmp_path, "doccano", [doccano(5, "Jordan", [(0, 6, "PER"), (0, 6, "LOC")])])
    assert message.endswith('record 5, line 1: spans "Jordan" (0-6 LOC) and "Jordan" (0-6 PER) overlap')


def test_spans_overlapping_once_widened_are_an_error(tmp_path):
    message = load_error(tmp_path, "doccano", [doccano(1, "NewYork", [(0, 3, "LOC"), (3, 7, "LOC")])])
    assert 'spans "New" (0-3 LOC) and "York" (3-7 LOC) overlap once widened to whole words' in message


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([(3, 40, "LOC")], "span 3-40 is outside the text of 12 characters"),
        ([(-1, 4, "LOC")], "span -1-4 is outside the text of 12 characters"),
        ([(6, 4, "LOC")], "span 6-4 is outside the text of 12 characters"),
        ([(4, 4, "LOC")], "span 4-4 is empty"),
        ([(4, 5, "LOC")], "span 4-5 holds only whitespace"),
        ([(0, 4, [])], 'span 0-4 "Rome" has no label'),
        ([(0, 4, ["LOC", "GPE"])], """span 0-4 "Rome" has 2 labels ['LOC', 'GPE'] (expected one)"""),
        ([("0", 4, "LOC")], 'span offsets must be integers, got start "0" and end 4'),
        ([(0, 4.0, "LOC")], "span offsets must be integers, got start 0 and end 4.0"),
    ],
)
def test_bad_label_studio_span_is_one_line_error(tmp_path, spans, expected):
    message = load_error(tmp_path, "label_studio", [task(7, "Rome is old.", spans)])
    assert message.endswith(f"train.json, task 7: {expected}")


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ([[0, 40, "LOC"]], "span 0-40 is outside the text of 12 characters"),
        ([[0, 0, "LOC"]], "span 0-0 is empty"),
        ([[0, 4, None]], 'span 0-4 "Rome" has no label'),
        ([[0, 4, ""]], 'span 0-4 "Rome" has no label'),
        ([[0, 4]], '"label" must hold [start, end, label] triples'),
        (["positive"], '"label" must hold [start, end, label] triples'),
    ],
)
def test_bad_doccano_span_is_one_line_error(tmp_path, label, expected):
    line = json.dumps({"id": 9, "text": "Rome is old.", "label": label})
    message = load_error(tmp_path, "doccano", ["{}".format(doccano(1, "fine", [])), line])
    assert f"train.jsonl, record 9, line 2: {expected}" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"id": 3, "text": "a"', "line 1: is not valid JSON Lines"),
        ("[1, 2]", "line 1: expected one JSON object per line (doccano JSONL export)"),
        (
            '{"id": 3, "content": "a", "label": []}',
            "record 3, line 1: the record has no text field 'text' (it has ['content', 'id', 'label']); pass text_key",
        ),
        (
            '{"id": 3, "text": "a"}',
            'record 3, line 1: expected one list of spans, "label" or "entities" (has neither)',
        ),
        (
            '{"text": "a", "label": [], "entities": []}',
            'line 1: expected one list of spans, "label" or "entities" (has',
        ),
        (
            '{"id": 3, "text": "a", "entities": [[0, 1, "X"]]}',
            '"entities" must hold objects with "start_offset"',
        ),
    ],
)
def test_bad_doccano_record_is_one_line_error(tmp_path, line, expected):
    assert expected in load_error(tmp_path, "doccano", [line])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"data": {"text": "a"}}', "is not a Label Studio JSON export (expected a list of tasks)"),
        ("[]", "holds no tasks"),
        ("[{", "is not valid JSON"),
        ('[{"id": 4, "text": "a", "label": []}]', 'task 4: expected a task with a "data" object'),
        ('[{"id": 4, "data": {"text": "a"}, "annotations": {}}]', 'task 4: expected "annotations": a list'),
        (
            '[{"id": 4, "data": {"text": 5}, "annotations": []}]',
            "task 4: \"data\" field 'text' must be the text, got 5",
        ),
        (
            '[{"id": 4, "data": {"text": "a"}, "annotations": []}]',
            "holds no annotated task (none of its 1 tasks",
        ),
    ],
)
def test_bad_label_studio_file_is_one_line_error(tmp_path, content, expected):
    assert expected in load_error(tmp_path, "label_studio", content)


def test_label_studio_span_text_that_does_not_match_the_offsets_is_an_error(tmp_path):
    tasks = [task(3, "Rome is old.", [(0, 4, "LOC")])]
    tasks[0]["annotations"][0]["result"][0]["value"]["text"] = "Milan"
    message = load_error(tmp_path, "label_studio", tasks)
    assert 'task 3: span 0-4 is "Rome" in the text but "Milan" in the export' in message

    tasks[0]["annotations"][0]["result"][0]["value"].update(start=8, end=15, text="old ago")
    message = load_error(tmp_path, "label_studio", tasks)
    assert message.endswith("task 3: span 8-15 is outside the text of 12 characters")


# Label sets


@pytest.mark.parametrize("tool", TOOLS)
def test_entity_type_train_never_had_is_an_error_naming_it_and_the_record(tmp_path, tool):
    dev = (
        [task(1, "fine", []), task(8, "Rome fell", [(0, 4, "EVENT")])]
        if tool == "label_studio"
        else [doccano(1, "fine", []), doccano(8, "Rome fell", [(0, 4, "EVENT")])]
    )
    message = load_error(tmp_path, tool, one_text(tool, "Rome", [(0, 4, "LOC")]), dev)
    where = "dev.json, task 8" if tool == "label_studio" else "dev.jsonl, record 8, line 2"
    assert f"{where}: entity type 'EVENT' (B-EVENT) is not in the label set of the train split" in message


def test_label_names_fix_the_order_as_tags_or_as_entity_types(tmp_path):
    root = export_dir(tmp_path / "e", "doccano", DOCCANO_TRAIN)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    by_tags = load(tmp_path, "doccano", root, label_names=tags)
    by_types = load(tmp_path, "doccano", root, label_names=["PER", "LOC", "ORG"])

    for ds in (by_tags, by_types):
        assert ds["train"].features["ner_tags"].feature.names == tags
        assert tagged(ds["train"]) == EXPECTED_TRAIN


def test_label_names_without_a_type_in_the_data_is_an_error(tmp_path):
    message = load_error(tmp_path, "doccano", DOCCANO_TRAIN, label_names=["O", "B-PER", "I-PER"])
    assert "record 1, line 1: entity type 'LOC' (B-LOC) is not in the label set of label_names" in message


def test_label_names_mixing_tags_and_types_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"expected tags .* or entity types only"):
        load(
            tmp_path,
            "doccano",
            export_dir(tmp_path / "e", "doccano", DOCCANO_TRAIN),
            label_names=["O", "PER"],
        )


def test_train_without_any_span_cannot_give_a_label_set(tmp_path):
    message = load_error(tmp_path, "doccano", [doccano(1, "no entity", [])])
    assert "holds no entity span to collect the entity types from" in message


# Label Studio: which annotation is read, and what is counted


def test_cancelled_missing_and_several_annotations_are_counted(tmp_path):
    cancelled = task(1, "Rome", [(0, 4, "LOC")], was_cancelled=True)
    no_annotation = {"id": 2, "data": {"text": "Oslo"}, "annotations": []}
    only_predictions = {
        "id": 3,
        "data": {"text": "Lima"},
        "predictions": [{"result": task(3, "Lima", [(0, 4, "LOC")])["annotations"][0]["result"]}],
    }
    several = task(4, "Anna Oslo", [(0, 4, "PER")], updated_at="2024-01-02T00:00:00Z")
    several["annotations"] += [
        task(4, "Anna Oslo", [(5, 9, "LOC")], updated_at="2024-03-01T00:00:00Z")["annotations"][0],
        task(4, "Anna Oslo", [(0, 4, "ORG")], updated_at="2024-02-01T00:00:00Z")["annotations"][0],
        task(4, "Anna Oslo", [], was_cancelled=True, updated_at="2024-04-01T00:00:00Z")["annotations"][0],
    ]
    with_ground_truth = task(5, "Anna Oslo", [(0, 4, "PER")], ground_truth=True, updated_at="2024-01-01")
    with_ground_truth["annotations"].append(
        task(5, "Anna Oslo", [(0, 4, "ORG")], updated_at="2024-05-01")["annotations"][0]
    )
    choices = task(6, "Lima", [(0, 4, "LOC")])
    choices["annotations"][0]["result"].append(
        {"value": {"choices": ["city"]}, "from_name": "kind", "to_name": "text", "type": "choices"}
    )
    tasks = [cancelled, no_annotation, only_predictions, several, with_ground_truth, choices]
    ds, counts = load_counts(tmp_path, "label_studio", export_dir(tmp_path / "e", "label_studio", tasks))

    assert ds["train"]["id"] == ["4", "5", "6"]
    assert tagged(ds["train"]) == [
        [("Anna", "O"), ("Oslo", "B-LOC")],  # the latest updated, not cancelled
        [("Anna", "B-PER"), ("Oslo", "O")],  # the ground truth, though older
        [("Lima", "B-LOC")],
    ]
    assert counts["train"] == {
        "bom_files": 0,
        "crlf_files": 0,
        "unannotated_tasks": 3,
        "cancelled_annotations": 2,
        "extra_annotations": 3,
        "other_results": 1,
        "utf16_offsets": 0,
        "duplicate_spans": 0,
        "widened_spans": 0,
        "punctuation_cuts": 0,
        "empty_documents": 0,
    }


def test_older_completions_key_is_read(tmp_path):
    old = {"id": 1, "data": {"text": "Rome"}, "completions": task(1, "Rome", [(0, 4, "LOC")])["annotations"]}
    ds = load(tmp_path, "label_studio", export_dir(tmp_path / "e", "label_studio", [old]))
    assert tagged(ds["train"]) == [[("Rome", "B-LOC")]]


def test_utf16_offsets_of_older_label_studio_are_converted_and_counted(tmp_path):
    # JavaScript counts the emoji as two code units, so "Rome" sits at 10-14 in those offsets, 9-13 in Python's.
    text = "I 😀 love Rome"
    spans = [
        {
            "value": {"start": 10, "end": 14, "text": "Rome", "labels": ["LOC"]},
            "to_name": "text",
            "type": "labels",
        }
    ]
    tasks = [{"id": 1, "data": {"text": text}, "annotations": [{"result": spans}]}]
    ds, counts = load_counts(tmp_path, "label_studio", export_dir(tmp_path / "e", "label_studio", tasks))

    assert tagged(ds["train"]) == [[("I", "O"), ("😀", "O"), ("love", "O"), ("Rome", "B-LOC")]]
    assert counts["train"]["utf16_offsets"] == 1


def test_text_field_is_the_one_the_spans_name_or_text_key(tmp_path):
    tasks = [task(1, "Rome", [(0, 4, "LOC")])]
    tasks[0]["data"] = {"title": "T", "body": "Rome"}
    tasks[0]["annotations"][0]["result"][0]["to_name"] = "body"
    ds = load(tmp_path, "label_studio", export_dir(tmp_path / "a", "label_studio", tasks))
    assert tagged(ds["train"]) == [[("Rome", "B-LOC")]]

    tasks[0]["annotations"][0]["result"][0]["to_name"] = "txt"  # a Text tag named apart from its data field
    message = load_error(tmp_path, "label_studio", tasks)
    assert (
        """cannot tell which field of "data" holds the text (string fields of every task: ['body', 'title'])"""
        in message
    )
    ds = load(tmp_path, "label_studio", export_dir(tmp_path / "b", "label_studio", tasks), text_key="body")
    assert tagged(ds["train"]) == [[("Rome", "B-LOC")]]


def test_spans_on_two_text_fields_are_an_error(tmp_path):
    tasks = [task(1, "Rome", [(0, 4, "LOC")]), task(2, "Oslo", [(0, 4, "LOC")])]
    tasks[1]["annotations"][0]["result"][0]["to_name"] = "title"
    message = load_error(tmp_path, "label_studio", tasks)
    assert "train.json: has spans on several text fields (to_name ['text', 'title'])" in message


def test_doccano_older_labels_key_is_read(tmp_path):
    line = json.dumps({"id": 1, "text": "Rome", "labels": [[0, 4, "LOC"]]})
    ds = load(tmp_path, "doccano", export_dir(tmp_path / "e", "doccano", [line]))
    assert tagged(ds["train"]) == [[("Rome", "B-LOC")]]


def test_empty_text_is_skipped_and_counted(tmp_path):
    lines = [doccano(1, "Rome", [(0, 4, "LOC")]), doccano(2, "  ", [])]
    ds, counts = load_counts(tmp_path, "doccano", export_dir(tmp_path / "e", "doccano", lines))
    assert ds["train"]["id"] == ["1"]
    assert counts["train"]["empty_documents"] == 1


# Files


def test_bom_and_windows_newlines_are_read_and_counted(tmp_path):
    root = tmp_path / "e"
    root.mkdir()
    (root / "train.jsonl").write_bytes(("\ufeff" + DOCCANO_TRAIN.replace("\n", "\r\n")).encode())
    ds, counts = load_counts(tmp_path, "doccano", root)
    assert tagged(ds["train"]) == EXPECTED_TRAIN
    assert counts["train"]["bom_files"] == 1
    assert counts["train"]["crlf_files"] == 1


def test_data_files_name_the_splits(tmp_path):
    train = write(tmp_path / "project-1-at-2024.json", LABEL_STUDIO_TRAIN)
    ds = load_dataset("label_studio", data_files={"train": str(train)}, cache_dir=str(tmp_path / "cache"))
    assert tagged(ds["train"]) == EXPECTED_TRAIN


def test_folder_without_split_files_is_an_error(tmp_path):
    write(tmp_path / "e" / "export.json", LABEL_STUDIO_TRAIN)
    with pytest.raises(DataFormatError, match=r"has no \.json file with train, dev or test in its name"):
        load(tmp_path, "label_studio", tmp_path / "e")


def test_no_train_file_without_label_names_is_an_error(tmp_path):
    write(tmp_path / "e" / "test.jsonl", DOCCANO_TRAIN)
    with pytest.raises(DataFormatError, match="has no train file to collect the entity types from"):
        load(tmp_path, "doccano", tmp_path / "e")


# Real data: W-NUT 17 written as exports and as JSON Lines loads back to the CoNLL loader's words and tags.


def test_real_wnut17_round_trip_through_both_exports_and_json_lines(shared_data, tmp_path):
    completed = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "benchmarks" / "wnut_spans_roundtrip.py"),
            "--data_dir",
            str(shared_data / "wnut17"),
            "--out_dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr[-2000:]
    lines = completed.stdout.splitlines()
    assert len(lines) == 8  # three exports and JSON Lines, two splits
    for line in lines:
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        assert fields["mismatches"] == "0"
        assert fields["label_order_same"] == "True"
        assert fields["documents"] == {"train": "3394", "validation": "1009"}[fields["split"]]
