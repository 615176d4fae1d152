"""`processing.analysis` and each task's `analyse`: what they draw from hand-written scored predictions, counted by
hand."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from datasets import Dataset
from PIL import Image

from processing import classification, question_answering, token_classification
from processing.analysis import write_analysis
from processing.squad_metric import evaluate_examples
from processing.tasks import Scored
from processing.token_classification import entity_confusions


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()


def scored(predictions, metrics=None) -> Scored:
    """Scored predictions as the finishing step hands them over; nothing is read back from files."""

    def no_files(output_dir: Path, split: str) -> list[Path]:
        raise AssertionError("the analysis must not write the predictions files")

    return Scored(metrics=metrics or {}, predictions=predictions, write_predictions=no_files)


def test_classification_confusion_matrix(tmp_path):
    pairs = [("neg", "neg")] * 3 + [("neg", "pos")] + [("pos", "pos")] * 2 + [("pos", "neg")] * 2
    rows = [{"index": i, "label": t, "predicted": p, "score": 0.9} for i, (t, p) in enumerate(pairs)]
    written = write_analysis(
        tmp_path, "test", classification.TASK, scored(rows), label_names=["neg", "pos", "unsure"]
    )

    matrix = json.loads((tmp_path / "test_confusion_matrix.json").read_text())
    assert matrix == {"labels": ["neg", "pos", "unsure"], "matrix": [[3, 1, 0], [2, 2, 0], [0, 0, 0]]}
    assert [w.path.name for w in written] == ["test_confusion_matrix.png", "test_confusion_matrix.json"]
    assert "8 examples" in written[0].caption
    assert_png(written[0].path)
    index = json.loads((tmp_path / "test_analysis.json").read_text())
    assert [entry["file"] for entry in index] == ["test_confusion_matrix.png", "test_confusion_matrix.json"]


NER_ROWS = [
    {
        "id": "0",
        "tokens": ["john", "smith", "went", "to", "new", "york"],
        "tags": ["B-person", "I-person", "O", "O", "B-location", "I-location"],
        "predicted": ["B-person", "B-location", "O", "O", "B-person", "O"],
    },
    {
        "id": "1",
        "tokens": ["apple", "in", "paris"],
        "tags": ["B-corporation", "O", "B-location"],
        "predicted": ["O", "B-location", "I-person"],
    },
]


def test_entity_confusions_count_words_by_type():
    confusions = entity_confusions(NER_ROWS)

    # Words: smith person->location; new, paris location->person; york location->O; apple corporation->O;
    # in O->location. Agreements (john, went, to) are not confusions, and B-/I- boundaries do not matter.
    assert confusions[0] == {
        "gold": "location",
        "predicted": "person",
        "words": 2,
        "examples": ["new", "paris"],
    }
    assert sorted((c["gold"], c["predicted"], c["words"]) for c in confusions[1:]) == [
        ("O", "location", 1),
        ("corporation", "O", 1),
        ("location", "O", 1),
        ("person", "location", 1),
    ]


def test_token_classification_chart_and_tables(tmp_path):
    per_type = {
        name: {"precision": p, "recall": r, "f1": f, "number": n}
        for name, p, r, f, n in [("person", 0.5, 1.0, 0.667, 1), ("location", 0.0, 0.0, 0.0, 2)]
    }
    metrics = {"f1": 0.2, "per_type": per_type}

    written = write_analysis(tmp_path, "eval", token_classification.TASK, scored(NER_ROWS, metrics))

    names = [w.path.name for w in written]
    assert names == ["eval_per_type.png", "eval_entity_confusions.md", "eval_entity_confusions.json"]
    assert_png(written[0].path)
    markdown = (tmp_path / "eval_entity_confusions.md").read_text().splitlines()
    assert markdown[:3] == [
        "| gold | predicted | words | examples |",
        "|---|---|---:|---|",
        "| location | person | 2 | new, paris |",
    ]
    assert len(markdown) == 2 + 5
    assert json.loads((tmp_path / "eval_entity_confusions.json").read_text()) == entity_confusions(NER_ROWS)


def squad_examples() -> Dataset:
    short = "John Smith went to London in May."
    long = " ".join(["word"] * 450) + " Paris is the capital."
    rows = [
        ("q1", short, ["John Smith"], [0]),
        ("q2", short, ["London", "London in May"], [19, 19]),
        ("q3", short, [], []),
        ("q4", long, ["Paris"], [long.index("Paris")]),
        ("q5", long, [], []),
    ]
    return Dataset.from_dict(
        {
            "id": [r[0] for r in rows],
            "title": ["t"] * len(rows),
            "context": [r[1] for r in rows],
            "question": ["?"] * len(rows),
            "answers": [{"text": r[2], "answer_start": r[3]} for r in rows],
        }
    )


@pytest.mark.parametrize("split", ["eval", "test"])
def test_question_answering_breakdown(tmp_path, split):
    raw = squad_examples()
    predictions = {"q1": "Smith", "q2": "London", "q3": "", "q4": "", "q5": "Paris"}

    written = write_analysis(tmp_path, split, question_answering.TASK, scored(predictions), raw=raw)

    breakdown = json.loads((tmp_path / f"{split}_qa_breakdown.json").read_text())
    # q1: F1 2/3 (smith of john smith), exact 0; q2: exact; q4: missed. q3 right to abstain, q5 wrong.
    answerable = breakdown["answerability"]["answerable"]
    assert answerable == {"questions": 3, "exact": pytest.approx(100 / 3), "f1": pytest.approx(100 * 5 / 9)}
    assert breakdown["answerability"]["unanswerable"] == {"questions": 2, "exact": 50.0, "f1": 50.0}
    assert breakdown["context_length"] == {
        "0-99 words": {"questions": 3, "exact": pytest.approx(200 / 3), "f1": pytest.approx(100 * 8 / 9)},
        "400+ words": {"questions": 2, "exact": 0.0, "f1": 0.0},
    }
    official = evaluate_examples(raw, predictions)
    assert answerable["f1"] == pytest.approx(official["HasAns_f1"])
    assert breakdown["answerability"]["unanswerable"]["f1"] == pytest.approx(official["NoAns_f1"])
    assert_png(written[0].path)
    assert [w.path.name for w in written] == [f"{split}_qa_breakdown.png", f"{split}_qa_breakdown.json"]


def test_question_answering_needs_the_raw_split(tmp_path):
    with pytest.raises(ValueError, match="raw split"):
        write_analysis(tmp_path, "eval", question_answering.TASK, scored({}))


def test_unknown_task(tmp_path):
    with pytest.raises(ValueError, match="no analysis"):
        write_analysis(
            tmp_path,
            "eval",
            dataclasses.replace(classification.TASK, name="summarization", analyse=None),
            scored([]),
        )
