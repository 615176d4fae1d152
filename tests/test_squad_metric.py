"""Hand-computed checks of the SQuAD 2.0 re-implementation and of the `squad-eval` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from processing.squad_metric import (
    SquadInputError,
    compute_exact,
    compute_f1,
    evaluate,
    evaluate_examples,
    main,
    normalize_answer,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


def squad(*qas: dict) -> list[dict]:
    """The official file's `data` list holding one article with one paragraph of the given questions."""
    return [{"title": "t", "paragraphs": [{"context": "c", "qas": list(qas)}]}]


def qa(qid: str, *golds: str) -> dict:
    """A question with the given gold texts; none means unanswerable (SQuAD 2.0 style)."""
    return {
        "id": qid,
        "question": "?",
        "answers": [{"text": g, "answer_start": 0} for g in golds],
        "is_impossible": not golds,
    }


# q1: answerable, pred exact; q2: unanswerable, pred non-empty; q3: answerable, partial overlap (F1 2/3).
THRESH_DATA = squad(qa("q1", "dog"), qa("q2"), qa("q3", "red dog"))
THRESH_PREDS = {"q1": "dog", "q2": "cat", "q3": "dog"}
THRESH_NA = {"q1": 0.9, "q2": 0.8, "q3": 0.2}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  The Quick,  brown FOX!  ", "quick brown fox"),
        ("An apple a day", "apple day"),
        ("theatre, another anthem", "theatre another anthem"),  # articles only as whole words
        ("the-end", "theend"),  # punctuation removed before the article regex, so no word boundary is left
        ("", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_ignores_case_punctuation_articles_and_whitespace() -> None:
    assert compute_exact("The Eiffel Tower", "  eiffel   tower. ") == 1
    assert compute_exact("Eiffel Tower", "Eiffel Towers") == 0


def test_f1_partial_overlap_by_hand() -> None:
    # pred tokens [big, red, dog], gold [red, dog, barked]: 2 shared, P = R = 2/3, F1 = 2/3.
    assert compute_f1("red dog barked", "the big red dog") == pytest.approx(2 / 3)
    # pred [big, red, dog], gold [red, dog]: P = 2/3, R = 1, F1 = 2 * (2/3) / (5/3) = 0.8.
    assert compute_f1("red dog", "the big red dog") == pytest.approx(0.8)
    # Shared tokens are counted with multiplicity: gold [dog, dog], pred [dog]: P = 1, R = 1/2.
    assert compute_f1("dog dog", "dog") == pytest.approx(2 / 3)
    assert compute_f1("red dog", "cat") == 0.0


def test_f1_when_a_side_has_no_tokens() -> None:
    assert compute_f1("", "") == 1.0
    assert compute_f1("", "dog") == 0.0
    assert compute_f1("dog", "") == 0.0
    assert compute_f1("The", "a") == 1.0  # both normalise to nothing


def test_empty_prediction_is_right_only_for_unanswerable() -> None:
    assert evaluate(squad(qa("q")), {"q": ""}) == {
        "exact": 100.0,
        "f1": 100.0,
        "total": 1,
        "NoAns_exact": 100.0,
        "NoAns_f1": 100.0,
        "NoAns_total": 1,
    }
    answerable = evaluate(squad(qa("q", "dog")), {"q": ""})
    assert (answerable["exact"], answerable["f1"]) == (0.0, 0.0)


def test_non_empty_prediction_on_unanswerable_scores_zero() -> None:
    result = evaluate(squad(qa("q")), {"q": "dog"})
    assert (result["NoAns_exact"], result["NoAns_f1"]) == (0.0, 0.0)


def test_gold_that_normalises_to_nothing_counts_as_empty_but_stays_answerable() -> None:
    result = evaluate(squad(qa("q", "the")), {"q": ""})
    assert (result["HasAns_exact"], result["HasAns_f1"], result["HasAns_total"]) == (100.0, 100.0, 1)


def test_best_gold_answer_is_taken() -> None:
    data = squad(qa("q1", "Denver Broncos", "Broncos", "the Broncos"), qa("q2", "Denver Broncos", "Broncos"))
    # q1 "broncos team": F1 1/2 against "Denver Broncos", 2/3 against "Broncos" -> 2/3, exact 0.
    # q2 "broncos": exact against the second gold -> 1, F1 1.
    result = evaluate(data, {"q1": "Broncos team", "q2": "broncos"})
    assert result["exact"] == pytest.approx(50.0)
    assert result["f1"] == pytest.approx(100 * (2 / 3 + 1) / 2)


def test_totals_and_key_order() -> None:
    data = [
        {"title": "a", "paragraphs": [{"context": "c", "qas": [qa("a1", "x"), qa("a2")]}]},
        {
            "title": "b",
            "paragraphs": [
                {"context": "c", "qas": [qa("b1", "y")]},
                {"context": "c", "qas": [qa("b2", "z"), qa("b3")]},
            ],
        },
    ]
    result = evaluate(data, {"a1": "x", "a2": "", "b1": "y", "b2": "", "b3": "w"})
    assert list(result) == [
        "exact",
        "f1",
        "total",
        "HasAns_exact",
        "HasAns_f1",
        "HasAns_total",
        "NoAns_exact",
        "NoAns_f1",
        "NoAns_total",
    ]
    assert (result["total"], result["HasAns_total"], result["NoAns_total"]) == (5, 3, 2)
    assert result["exact"] == pytest.approx(60.0)  # a1, a2, b1 right
    assert result["HasAns_exact"] == pytest.approx(200 / 3)
    assert result["NoAns_exact"] == pytest.approx(50.0)


def test_no_answer_threshold_replaces_prediction_with_empty() -> None:
    result = evaluate(THRESH_DATA, THRESH_PREDS, THRESH_NA, na_prob_thresh=0.5)
    # q1 (0.9 > 0.5) -> "" on an answerable question: 0. q2 (0.8 > 0.5) -> "" on an unanswerable one: 1.
    # q3 (0.2) keeps "dog" against "red dog": exact 0, F1 2/3.
    assert result["exact"] == pytest.approx(100 / 3)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert result["HasAns_f1"] == pytest.approx(100 * (2 / 3) / 2)
    assert (result["NoAns_exact"], result["NoAns_f1"]) == (100.0, 100.0)


def test_threshold_is_strict() -> None:
    at_threshold = evaluate(squad(qa("q", "dog")), {"q": "dog"}, {"q": 0.5}, na_prob_thresh=0.5)
    assert at_threshold["exact"] == 100.0


def test_best_thresholds_by_hand() -> None:
    result = evaluate(THRESH_DATA, THRESH_PREDS, THRESH_NA)
    # Start by answering nothing: 1 (q2). Answer in rising na_prob order q3 (0.2), q2 (0.8), q1 (0.9):
    #   exact: 1 -> 1 -> 0 -> 1, never above the start, so the threshold stays 0.0 and best is 1/3.
    #   f1:    1 -> 5/3 -> 2/3 -> 5/3, best 5/3 first reached at q3's 0.2 (a later tie does not move it).
    assert result["best_exact"] == pytest.approx(100 / 3)
    assert result["best_exact_thresh"] == 0.0
    assert result["best_f1"] == pytest.approx(100 * (5 / 3) / 3)
    assert result["best_f1_thresh"] == 0.2
    # The default threshold of 1.0 leaves every prediction in place.
    assert result["exact"] == pytest.approx(100 / 3)


def test_best_keys_only_with_na_probs() -> None:
    assert not any(k.startswith("best_") for k in evaluate(THRESH_DATA, THRESH_PREDS))


def test_examples_match_articles() -> None:
    datasets = pytest.importorskip("datasets")
    examples = datasets.Dataset.from_list(
        [
            {"id": "q1", "answers": {"text": ["dog"], "answer_start": [0]}},
            {"id": "q2", "answers": {"text": [], "answer_start": []}},
            {"id": "q3", "answers": {"text": ["red dog", "a red dog"], "answer_start": [0, 0]}},
        ]
    )
    data = squad(qa("q1", "dog"), qa("q2"), qa("q3", "red dog", "a red dog"))
    assert evaluate_examples(examples, THRESH_PREDS, THRESH_NA, 0.5) == evaluate(
        data, THRESH_PREDS, THRESH_NA, 0.5
    )


def test_missing_prediction_is_an_error_like_the_official_script() -> None:
    with pytest.raises(SquadInputError, match="Missing prediction for q2"):
        evaluate(squad(qa("q1", "dog"), qa("q2")), {"q1": "dog"})


def test_missing_na_prob_is_an_error() -> None:
    with pytest.raises(SquadInputError, match="q3"):
        evaluate(THRESH_DATA, THRESH_PREDS, {"q1": 0.1, "q2": 0.1})


def write(path: Path, obj: object, encoding: str = "utf-8") -> str:
    path.write_text(json.dumps(obj), encoding=encoding)
    return str(path)


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write(tmp_path / "dev.json", {"version": "v2.0", "data": THRESH_DATA}, encoding="utf-8-sig")
    preds = write(tmp_path / "pred.json", THRESH_PREDS)
    na = write(tmp_path / "na.json", THRESH_NA)
    assert main([data, preds, "--na-prob-file", na, "--na-prob-thresh", "0.5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out)[:3] == ["exact", "f1", "total"]
    assert {"HasAns_total", "NoAns_total", "best_f1", "best_f1_thresh"} <= set(out)
    assert out["exact"] == pytest.approx(100 / 3)


def test_cli_out_file_replaces_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write(tmp_path / "dev.json", {"data": THRESH_DATA})
    preds = write(tmp_path / "pred.json", THRESH_PREDS)
    out_file = tmp_path / "eval.json"
    assert main([data, preds, "-o", str(out_file)]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(out_file.read_text())["total"] == 3


def test_cli_reads_squad_v1_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v11 = textwrap.dedent(
        """\
        {"version": "1.1", "data": [{"title": "Super_Bowl_50", "paragraphs": [{
          "context": "The Denver Broncos defeated the Carolina Panthers.",
          "qas": [
            {"id": "a", "question": "Who won?", "answers": [
              {"answer_start": 4, "text": "Denver Broncos"}, {"answer_start": 11, "text": "Broncos"}]},
            {"id": "b", "question": "Who lost?", "answers": [{"answer_start": 33, "text": "Carolina Panthers"}]}
          ]}]}]}
        """
    )
    (tmp_path / "dev-v1.1.json").write_text(v11, encoding="utf-8")
    preds = write(tmp_path / "pred.json", {"a": "the Broncos", "b": "Panthers"})
    assert main([str(tmp_path / "dev-v1.1.json"), preds]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["total"], out["HasAns_total"]) == (2, 2)
    assert not any(k.startswith("NoAns_") for k in out)
    assert out["exact"] == pytest.approx(50.0)
    assert out["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)  # "panthers" vs "carolina panthers": P 1, R 1/2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (json.dumps([{"id": "q1"}]), "top-level 'data' list"),
        (json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "c"}]}]}), "'qas' list"),
        (json.dumps({"data": [{"title": "t"}]}), "'paragraphs' list"),
        ('{"data": [', "not valid JSON"),
    ],
)
def test_cli_rejects_malformed_data_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    data = tmp_path / "broken.json"
    data.write_text(content, encoding="utf-8")
    preds = write(tmp_path / "pred.json", {"q1": "x"})
    assert main([str(data), preds]) == 2
    err = capsys.readouterr().err
    assert str(data) in err
    assert expected in err
    assert err.count("\n") == 1


def test_cli_missing_prediction_names_pred_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write(tmp_path / "dev.json", {"data": THRESH_DATA})
    preds = write(tmp_path / "pred.json", {"q1": "dog"})
    assert main([data, preds]) == 2
    err = capsys.readouterr().err
    assert preds in err
    assert "Missing prediction for q2, q3" in err


def test_module_exits_2_without_traceback(tmp_path: Path) -> None:
    data = write(tmp_path / "dev.json", {"no": "data"})
    preds = write(tmp_path / "pred.json", {})
    proc = subprocess.run(
        [sys.executable, "-m", "processing.squad_metric", data, preds],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert data in proc.stderr
