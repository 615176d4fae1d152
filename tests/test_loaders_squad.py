"""SQuAD-format JSON (v1.1 and v2.0) through `loaders.load_dataset("squad_v2", ...)`."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import datasets
import pytest

from loaders import DataFormatError, load_dataset

SQUAD_V2_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "context": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answers": {
            "text": datasets.List(datasets.Value("string")),
            "answer_start": datasets.List(datasets.Value("int32")),
        },
    }
)

CONTEXT = "Paris is the capital of France. London is the capital of England."


def squad_v2(articles: list[dict] | None = None) -> dict:
    return {
        "version": "v2.0",
        "data": articles
        if articles is not None
        else [
            {
                "title": "Capitals",
                "paragraphs": [
                    {
                        "context": CONTEXT,
                        "qas": [
                            {
                                "id": "q1",
                                "question": "What is the capital of France?",
                                "answers": [{"text": "Paris", "answer_start": 0}],
                                "is_impossible": False,
                            },
                            {
                                "id": "q2",
                                "question": "What is the capital of Spain?",
                                "answers": [],
                                "plausible_answers": [{"text": "London", "answer_start": 32}],
                                "is_impossible": True,
                            },
                            {
                                "id": "q3",
                                "question": "Which city is the capital of England?",
                                "answers": [
                                    {"text": "London", "answer_start": 32},
                                    {"text": "London is the capital", "answer_start": 32},
                                ],
                                "is_impossible": False,
                            },
                        ],
                    },
                    {
                        "context": "Google was founded in 1998.",
                        "qas": [
                            {
                                "id": "q4",
                                "question": "Who was founded in 1998?",
                                "answers": [],
                                "is_impossible": True,
                            }
                        ],
                    },
                ],
            },
            {
                "title": "Companies",
                "paragraphs": [
                    {
                        "context": "Apple makes phones.",
                        "qas": [
                            {
                                "id": "q5",
                                "question": "Who makes phones?",
                                "answers": [{"text": "Apple", "answer_start": 0}],
                                "is_impossible": False,
                            }
                        ],
                    }
                ],
            },
        ],
    }


def write_json(path: Path, data, encoding: str = "utf-8", bom: bool = False, newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2).replace("\n", newline)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return path


def load(tmp_path: Path, **kwargs):
    return load_dataset("squad_v2", cache_dir=str(tmp_path / "cache"), **kwargs)


def load_file(tmp_path: Path, path: Path, split: str = "validation", **kwargs) -> datasets.Dataset:
    return load(tmp_path, data_files={split: str(path)}, **kwargs)[split]


def test_squad_v2_schema_and_every_question_kept(tmp_path):
    root = tmp_path / "squad"
    write_json(root / "train-v2.0.json", squad_v2())
    write_json(root / "dev-v2.0.json", squad_v2(squad_v2()["data"][1:]))
    ds = load(tmp_path, data_dir=root)

    assert set(ds) == {"train", "validation"}
    for split in ds.values():
        assert split.features == SQUAD_V2_FEATURES
    train = ds["train"]
    assert train["id"] == ["q1", "q2", "q3", "q4", "q5"]
    assert train["title"] == ["Capitals"] * 4 + ["Companies"]
    assert train["context"][3] == "Google was founded in 1998."
    assert train["question"][0] == "What is the capital of France?"
    assert train["answers"] == [
        {"text": ["Paris"], "answer_start": [0]},
        {"text": [], "answer_start": []},
        {"text": ["London", "London is the capital"], "answer_start": [32, 32]},
        {"text": [], "answer_start": []},
        {"text": ["Apple"], "answer_start": [0]},
    ]
    assert ds["validation"]["id"] == ["q5"]


def test_squad_v1_file_loads_with_the_same_schema(tmp_path):
    v1 = textwrap.dedent(
        """\
        {"version": "1.1", "data": [{"title": "Capitals", "paragraphs": [
          {"context": "Paris is the capital of France.",
           "qas": [{"id": "a", "question": "Capital of France?", "answers": [
                      {"text": "Paris", "answer_start": 0}, {"text": "Paris", "answer_start": 0}]},
                   {"id": "b", "question": "Which country?", "answers": [{"text": "France", "answer_start": 24}]}]}
        ]}]}
        """
    )
    path = tmp_path / "dev-v1.1.json"
    path.write_text(v1, encoding="utf-8")
    ds = load_file(tmp_path, path)

    assert ds.features == SQUAD_V2_FEATURES
    assert ds["id"] == ["a", "b"]
    assert ds["answers"] == [
        {"text": ["Paris", "Paris"], "answer_start": [0, 0]},
        {"text": ["France"], "answer_start": [24]},
    ]


def test_question_counts_equal_questions_in_the_file(tmp_path):
    articles = [
        {
            "title": f"T{a}",
            "paragraphs": [
                {
                    "context": f"Context {a}-{p} mentions Paris.",
                    "qas": [
                        {
                            "id": f"{a}-{p}-{q}",
                            "question": "Where?",
                            "answers": []
                            if q % 2
                            else [{"text": "Paris", "answer_start": len(f"Context {a}-{p} mentions ")}],
                            "is_impossible": bool(q % 2),
                        }
                        for q in range(5)
                    ],
                }
                for p in range(3)
            ],
        }
        for a in range(4)
    ]
    ds = load_file(tmp_path, write_json(tmp_path / "dev.json", squad_v2(articles)))

    assert ds.num_rows == 4 * 3 * 5
    assert sum(not answers["text"] for answers in ds["answers"]) == 4 * 3 * 2
    assert len(set(ds["id"])) == ds.num_rows


def test_is_impossible_with_listed_answers_is_an_error(tmp_path):
    # Which of the two is wrong cannot be told from the file, so neither silently wins.
    data = squad_v2()
    data["data"][0]["paragraphs"][0]["qas"][1]["answers"] = [{"text": "London", "answer_start": 32}]
    path = write_json(tmp_path / "dev.json", data)
    with pytest.raises(DataFormatError) as err:
        load_file(tmp_path, path)
    assert str(err.value) == (
        f'{path}, question q2: "is_impossible" is true but it lists 1 answers '
        '(an unanswerable question has "answers": [])'
    )


def test_windows_line_endings_and_bom(tmp_path):
    data = squad_v2()
    data["data"][0]["paragraphs"][0]["context"] = CONTEXT  # the context itself holds no newline
    path = write_json(tmp_path / "dev.json", data, bom=True, newline="\r\n")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf{\r\n")
    ds = load_file(tmp_path, path)

    assert ds.num_rows == 5
    assert ds["id"][0] == "q1"
    assert not any("\r" in c or "\ufeff" in c for c in ds["context"])


def test_escaped_newlines_inside_a_context_are_kept(tmp_path):
    # Only the file's own line breaks are normalised; a "\r\n" written as JSON escapes is the context's text.
    context = "Line one.\r\nParis is here."
    data = squad_v2(
        [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {"id": "x", "question": "?", "answers": [{"text": "Paris", "answer_start": 11}]}
                        ],
                    }
                ],
            }
        ]
    )
    ds = load_file(tmp_path, write_json(tmp_path / "dev.json", data))
    assert ds["context"] == [context]
    assert ds["answers"] == [{"text": ["Paris"], "answer_start": [11]}]


@pytest.mark.parametrize("logger_name", ["loaders", None])
def test_off_by_one_and_two_offsets_are_repaired_and_counted(tmp_path, caplog, logger_name):
    data = squad_v2()
    qas = data["data"][0]["paragraphs"][0]["qas"]
    qas[0]["answers"][0]["answer_start"] = 1  # Paris really is at 0: off by one
    qas[2]["answers"][0]["answer_start"] = 30  # London really is at 32: off by two
    qas[2]["answers"][1]["answer_start"] = 33  # off by one the other way
    path = write_json(tmp_path / "dev.json", data)

    with caplog.at_level(logging.WARNING, logger=logger_name):
        ds = load_file(tmp_path, path)

    assert ds["answers"][0] == {"text": ["Paris"], "answer_start": [0]}
    assert ds["answers"][2] == {"text": ["London", "London is the capital"], "answer_start": [32, 32]}
    warnings = [r for r in caplog.records if r.name == "loaders.squad" and "repaired" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "dev.json: repaired 3 answer_start offsets" in warnings[0].getMessage()


def test_no_repair_warning_for_a_clean_file(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="loaders"):
        load_file(tmp_path, write_json(tmp_path / "dev.json", squad_v2()))
    assert not [r for r in caplog.records if "repaired" in r.getMessage()]


def test_repair_can_be_turned_off(tmp_path):
    data = squad_v2()
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 1
    with pytest.raises(
        DataFormatError, match="question q1: answer 'Paris' is not in the context at answer_start 1"
    ):
        load_file(tmp_path, write_json(tmp_path / "dev.json", data), max_offset_repair=0)


# Bad input: DataFormatError naming the file and the line or question id, and what was expected.


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([{"title": "t", "paragraphs": []}], 'is not SQuAD-shaped: expected an object with a "data" list'),
        ({"version": "v2.0"}, 'is not SQuAD-shaped: expected an object with a "data" list'),
        ({"data": {"title": "t"}}, 'is not SQuAD-shaped: expected an object with a "data" list'),
        (
            {"data": [{"title": "t", "qas": []}]},
            'article 0: is not SQuAD-shaped: expected a "paragraphs" list',
        ),
        ({"data": ["just a string"]}, 'article 0: is not SQuAD-shaped: expected a "paragraphs" list'),
        (
            {"data": [{"title": "t", "paragraphs": [{"qas": []}]}]},
            'article \'t\': is not SQuAD-shaped: expected paragraphs with "context" and "qas"',
        ),
        (
            {"data": [{"title": "t", "paragraphs": [{"context": "c", "questions": []}]}]},
            'article \'t\': is not SQuAD-shaped: expected paragraphs with "context" and "qas"',
        ),
        (
            {"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"question": "?"}]}]}]},
            'article \'t\': expected questions with string "id" and "question"',
        ),
        (
            {"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [{"id": 7, "question": "?"}]}]}]},
            'article \'t\': expected questions with string "id" and "question"',
        ),
        (
            {
                "data": [
                    {
                        "title": "t",
                        "paragraphs": [
                            {"context": "c", "qas": [{"id": "x", "question": "?", "answers": {"text": "c"}}]}
                        ],
                    }
                ]
            },
            'question x: "answers" must be a list',
        ),
        (
            {
                "data": [
                    {
                        "title": "t",
                        "paragraphs": [
                            {
                                "context": "c",
                                "qas": [{"id": "x", "question": "?", "answers": [{"text": "c"}]}],
                            }
                        ],
                    }
                ]
            },
            'question x: expected answers with string "text" and integer "answer_start"',
        ),
        (
            {
                "data": [
                    {
                        "title": "t",
                        "paragraphs": [
                            {
                                "context": "c",
                                "qas": [
                                    {
                                        "id": "x",
                                        "question": "?",
                                        "answers": [{"text": "c", "answer_start": "0"}],
                                    }
                                ],
                            }
                        ],
                    }
                ]
            },
            'question x: expected answers with string "text" and integer "answer_start"',
        ),
    ],
)
def test_json_that_is_not_squad_shaped(tmp_path, data, expected):
    path = write_json(tmp_path / "dev.json", data)
    with pytest.raises(DataFormatError) as err:
        load_file(tmp_path, path)
    assert err.value.path == str(path)
    assert str(err.value).startswith(str(path))
    assert expected in str(err.value)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text('{\n  "version": "v2.0",\n  "data": [\n    {"title": "t",}\n  ]\n}\n', encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_file(tmp_path, path)
    assert err.value.where == "line 4"
    assert f"{path}, line 4: is not valid JSON" in str(err.value)


def test_non_utf8_json(tmp_path):
    path = write_json(tmp_path / "dev.json", squad_v2([{"title": "Caf\u00e9", "paragraphs": []}]))
    path.write_bytes(path.read_bytes().replace(b"\\u00e9", b"\xe9"))
    with pytest.raises(DataFormatError, match=r"dev\.json: is not UTF-8 text"):
        load_file(tmp_path, path)


@pytest.mark.parametrize("start", [len(CONTEXT), len(CONTEXT) + 40, -1])
def test_answer_start_outside_its_context(tmp_path, start):
    data = squad_v2()
    data["data"][0]["paragraphs"][0]["qas"][2]["answers"][1]["answer_start"] = start
    path = write_json(tmp_path / "dev.json", data)
    with pytest.raises(DataFormatError) as err:
        load_file(tmp_path, path)
    assert err.value.where == "question q3"
    assert (
        f"{path}, question q3: answer_start {start} is outside its context of {len(CONTEXT)} characters"
        == str(err.value)
    )


def test_answer_not_found_near_its_offset(tmp_path):
    data = squad_v2()
    data["data"][0]["paragraphs"][0]["qas"][2]["answers"][0]["answer_start"] = 35  # off by three
    path = write_json(tmp_path / "dev.json", data)
    with pytest.raises(DataFormatError) as err:
        load_file(tmp_path, path)
    assert err.value.where == "question q3"
    assert "question q3: answer 'London' is not in the context at answer_start 35" in str(err.value)
    assert "nor within 2 characters" in str(err.value)


def test_answer_text_not_in_context(tmp_path):
    data = squad_v2()
    data["data"][1]["paragraphs"][0]["qas"][0]["answers"][0]["text"] = "Samsung"
    with pytest.raises(DataFormatError, match="question q5: answer 'Samsung' is not in the context"):
        load_file(tmp_path, write_json(tmp_path / "dev.json", data))


def test_duplicate_question_id(tmp_path):
    data = squad_v2()
    data["data"][1]["paragraphs"][0]["qas"][0]["id"] = "q2"
    path = write_json(tmp_path / "dev.json", data)
    with pytest.raises(DataFormatError) as err:
        load_file(tmp_path, path)
    assert str(err.value) == f"{path}, question q2: appears twice (question ids must be unique)"


def test_duplicate_question_id_across_files_of_one_split(tmp_path):
    first = write_json(tmp_path / "train-a.json", squad_v2())
    second = write_json(tmp_path / "train-b.json", squad_v2(squad_v2()["data"][1:]))
    with pytest.raises(DataFormatError) as err:
        load(tmp_path, data_files={"train": [str(first), str(second)]})
    assert (
        str(err.value)
        == f"{second}, question q5: appears twice (question ids must be unique; first in {first})"
    )


def test_same_question_id_in_two_splits_is_fine(tmp_path):
    root = tmp_path / "squad"
    write_json(root / "train-v2.0.json", squad_v2())
    write_json(root / "dev-v2.0.json", squad_v2())
    ds = load(tmp_path, data_dir=root)
    assert ds["train"]["id"] == ds["validation"]["id"]


def test_folder_without_squad_files(tmp_path):
    root = tmp_path / "squad"
    write_json(root / "notes.json", squad_v2())
    with pytest.raises(DataFormatError, match="has no SQuAD JSON file with train, dev or test in its name"):
        load(tmp_path, data_dir=root)


# Real data: skipped when ../shared/data is absent.


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("real_squad_cache"))


def test_real_squad2_dev_articles(shared_data, real_cache):
    path = shared_data / "squad/squad2-dev-16-articles.json"
    ds = load_dataset("squad_v2", data_files={"validation": str(path)}, cache_dir=real_cache)["validation"]

    assert ds.features == SQUAD_V2_FEATURES
    assert ds.num_rows == 6078
    assert sum(not a["text"] for a in ds["answers"]) == 3168
    assert len(set(ds["id"])) == 6078


def test_real_xquad_in_squad_v1_format(shared_data, real_cache):
    path = shared_data / "squad/xquad-en-squad1.1-format.json"
    ds = load_dataset("squad_v2", data_files={"validation": str(path)}, cache_dir=real_cache)["validation"]

    assert ds.features == SQUAD_V2_FEATURES
    assert ds.num_rows == 1190
    assert all(a["text"] for a in ds["answers"])
    for context, answers in zip(ds["context"][:200], ds["answers"][:200], strict=True):
        for text, start in zip(answers["text"], answers["answer_start"], strict=True):
            assert context[start : start + len(text)] == text
