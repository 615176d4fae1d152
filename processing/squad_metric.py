"""SQuAD 2.0 scoring that reproduces the official `evaluate-v2.0.py` figures exactly.

Published SQuAD numbers come from that script, so every rule here (normalisation, the empty-answer F1 rule,
the no-answer threshold, the best-threshold search) follows it step for step, including its quirks.
The only departures are in what happens on bad input: where the official script dies with a traceback
(a question without a prediction, a file that is not SQuAD-shaped), this module raises `SquadInputError`
with a message that says which input is wrong and why, and the CLI turns that into one line and exit code 2.
The precision-recall plots (`--out-image-dir`) are not reproduced.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import string
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .outputs import write_text

__all__ = [
    "SquadInputError",
    "compute_exact",
    "compute_f1",
    "evaluate",
    "evaluate_examples",
    "main",
    "normalize_answer",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)
_MISSING_SHOWN = 5


class SquadInputError(ValueError):
    """Input the official script could not score, named by its role so the CLI can name the file instead.

    `source` is "dataset", "predictions" or "na_probs"; `problem` says what was expected.
    """

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class _Gold(NamedTuple):
    """One question as the official script sees it: its gold answer texts and whether it has an answer."""

    texts: list[str]
    has_ans: bool


def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation, drop the articles a/an/the and collapse whitespace, as SQuAD does."""
    text = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def get_tokens(s: str) -> list[str]:
    """Tokens of the normalised answer; the empty answer has none."""
    if not s:
        return []
    return normalize_answer(s).split()


def compute_exact(a_gold: str, a_pred: str) -> int:
    """1 when gold and prediction are equal after normalisation, else 0."""
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    """Token-overlap F1; when either side has no tokens it is 1 only if both have none (no-answer agreement)."""
    gold_toks = get_tokens(a_gold)
    pred_toks = get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return float(gold_toks == pred_toks)
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def get_raw_scores(
    questions: Mapping[str, _Gold], preds: Mapping[str, str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Exact and F1 per question, best over the gold answers; golds that normalise to nothing count as ''."""
    exact_scores: dict[str, float] = {}
    f1_scores: dict[str, float] = {}
    for qid, gold in questions.items():
        gold_answers = [a for a in gold.texts if normalize_answer(a)] or [""]
        a_pred = preds[qid]
        exact_scores[qid] = max(compute_exact(a, a_pred) for a in gold_answers)
        f1_scores[qid] = max(compute_f1(a, a_pred) for a in gold_answers)
    return exact_scores, f1_scores


def apply_no_ans_threshold(
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    qid_to_has_ans: Mapping[str, bool],
    na_prob_thresh: float,
) -> dict[str, float]:
    """Treat a prediction as "" when its no-answer probability exceeds the threshold: right only if unanswerable."""
    new_scores: dict[str, float] = {}
    for qid, s in scores.items():
        if na_probs[qid] > na_prob_thresh:
            new_scores[qid] = float(not qid_to_has_ans[qid])
        else:
            new_scores[qid] = s
    return new_scores


def make_eval_dict(
    exact_scores: Mapping[str, float], f1_scores: Mapping[str, float], qid_list: list[str] | None = None
) -> dict[str, float]:
    """Exact and F1 in percent, and the count, over `qid_list` (all scored questions when it is empty)."""
    keys = qid_list or list(exact_scores)
    total = len(keys)
    return {
        "exact": 100.0 * sum(exact_scores[k] for k in keys) / total,
        "f1": 100.0 * sum(f1_scores[k] for k in keys) / total,
        "total": total,
    }


def merge_eval(main_eval: dict[str, float], new_eval: Mapping[str, float], prefix: str) -> None:
    """Copy a subset's figures into the main figures under `<prefix>_<key>`."""
    for k in new_eval:
        main_eval[f"{prefix}_{k}"] = new_eval[k]


def find_best_thresh(
    preds: Mapping[str, str],
    scores: Mapping[str, float],
    na_probs: Mapping[str, float],
    qid_to_has_ans: Mapping[str, bool],
) -> tuple[float, float]:
    """Best score (percent) over no-answer thresholds, and the threshold that reaches it.

    Starts from answering nothing (every unanswerable question right), then answers questions in order of
    rising no-answer probability: an answerable one adds its score, an unanswerable one with a non-empty
    raw prediction costs 1.
    """
    cur_score: float = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
    best_score = cur_score
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if qid_to_has_ans[qid]:
            cur_score += scores[qid]
        elif preds[qid]:
            cur_score -= 1
        if cur_score > best_score:
            best_score = cur_score
            best_thresh = na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh


def find_all_best_thresh(
    main_eval: dict[str, float],
    preds: Mapping[str, str],
    exact_raw: Mapping[str, float],
    f1_raw: Mapping[str, float],
    na_probs: Mapping[str, float],
    qid_to_has_ans: Mapping[str, bool],
) -> None:
    """Add best_exact, best_exact_thresh, best_f1 and best_f1_thresh, searched on the unthresholded scores."""
    best_exact, exact_thresh = find_best_thresh(preds, exact_raw, na_probs, qid_to_has_ans)
    best_f1, f1_thresh = find_best_thresh(preds, f1_raw, na_probs, qid_to_has_ans)
    main_eval["best_exact"] = best_exact
    main_eval["best_exact_thresh"] = exact_thresh
    main_eval["best_f1"] = best_f1
    main_eval["best_f1_thresh"] = f1_thresh


def _check_predictions(questions: Mapping[str, _Gold], preds: Any) -> None:
    """The official script needs a string prediction for every question; it crashes without one."""
    if not isinstance(preds, Mapping):
        raise SquadInputError("predictions", "expected a JSON object mapping question ids to answer strings")
    missing = [qid for qid in questions if qid not in preds]
    if missing:
        shown = ", ".join(missing[:_MISSING_SHOWN])
        more = f" and {len(missing) - _MISSING_SHOWN} more" if len(missing) > _MISSING_SHOWN else ""
        raise SquadInputError(
            "predictions",
            f"Missing prediction for {shown}{more} ({len(missing)} of {len(questions)} questions);"
            " the official script cannot score an incomplete prediction file",
        )
    for qid in questions:
        if not isinstance(preds[qid], str):
            raise SquadInputError("predictions", f"the prediction for {qid!r} is not a string")


def _check_na_probs(questions: Mapping[str, _Gold], na_probs: Any) -> None:
    """Every question needs a numeric no-answer probability, and all of them are sorted, so all must be numbers."""
    if not isinstance(na_probs, Mapping):
        raise SquadInputError("na_probs", "expected a JSON object mapping question ids to probabilities")
    for qid, p in na_probs.items():
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise SquadInputError("na_probs", f"the no-answer probability for {qid!r} is not a number")
    missing = [qid for qid in questions if qid not in na_probs]
    if missing:
        raise SquadInputError(
            "na_probs", f"no no-answer probability for {missing[0]!r} ({len(missing)} questions lack one)"
        )


def _score(
    questions: Mapping[str, _Gold],
    preds: Mapping[str, str],
    na_probs: Mapping[str, float] | None,
    na_prob_thresh: float,
) -> dict[str, float]:
    """The official script's main(), minus file handling and plots: the one path both entry points share."""
    if not questions:
        raise SquadInputError("dataset", "contains no questions")
    _check_predictions(questions, preds)
    if na_probs is None:
        probs: Mapping[str, float] = dict.fromkeys(preds, 0.0)
    else:
        _check_na_probs(questions, na_probs)
        probs = na_probs
    qid_to_has_ans = {qid: gold.has_ans for qid, gold in questions.items()}
    has_ans_qids = [k for k, v in qid_to_has_ans.items() if v]
    no_ans_qids = [k for k, v in qid_to_has_ans.items() if not v]
    exact_raw, f1_raw = get_raw_scores(questions, preds)
    exact_thresh = apply_no_ans_threshold(exact_raw, probs, qid_to_has_ans, na_prob_thresh)
    f1_thresh = apply_no_ans_threshold(f1_raw, probs, qid_to_has_ans, na_prob_thresh)
    out_eval = make_eval_dict(exact_thresh, f1_thresh)
    if has_ans_qids:
        merge_eval(out_eval, make_eval_dict(exact_thresh, f1_thresh, qid_list=has_ans_qids), "HasAns")
    if no_ans_qids:
        merge_eval(out_eval, make_eval_dict(exact_thresh, f1_thresh, qid_list=no_ans_qids), "NoAns")
    if na_probs is not None:
        find_all_best_thresh(out_eval, preds, exact_raw, f1_raw, probs, qid_to_has_ans)
    return out_eval


def _expect_list(value: Any, key: str, where: str) -> list:
    """`value[key]` when `value` is an object holding a list there; otherwise a located SquadInputError."""
    if not isinstance(value, Mapping) or not isinstance(value.get(key), list):
        raise SquadInputError("dataset", f"{where}: expected an object with a {key!r} list")
    return value[key]


def _questions_from_articles(dataset: Any) -> dict[str, _Gold]:
    """Flatten articles → paragraphs → qas; a repeated id keeps its first position and last answers, as in the script."""
    if not isinstance(dataset, list):
        raise SquadInputError("dataset", "expected the 'data' list of articles")
    questions: dict[str, _Gold] = {}
    for i, article in enumerate(dataset):
        for j, paragraph in enumerate(_expect_list(article, "paragraphs", f"data[{i}]")):
            for k, qa in enumerate(_expect_list(paragraph, "qas", f"data[{i}].paragraphs[{j}]")):
                where = f"data[{i}].paragraphs[{j}].qas[{k}]"
                answers = _expect_list(qa, "answers", where)
                if not isinstance(qa.get("id"), str):
                    raise SquadInputError("dataset", f"{where}: expected a string 'id'")
                if not all(isinstance(a, Mapping) and isinstance(a.get("text"), str) for a in answers):
                    raise SquadInputError(
                        "dataset", f"{where}: expected every answer to have a string 'text'"
                    )
                questions[qa["id"]] = _Gold([a["text"] for a in answers], bool(answers))
    return questions


def _questions_from_examples(examples: Iterable[Mapping[str, Any]]) -> dict[str, _Gold]:
    """Index flat examples whose `answers` is columnar ({"text": [...], "answer_start": [...]})."""
    questions: dict[str, _Gold] = {}
    for n, example in enumerate(examples):
        if not isinstance(example, Mapping):
            raise SquadInputError("dataset", f"example {n}: expected a mapping with 'id' and 'answers'")
        answers = example.get("answers")
        texts = answers.get("text") if isinstance(answers, Mapping) else None
        if not isinstance(example.get("id"), str) or not isinstance(texts, list):
            raise SquadInputError(
                "dataset", f"example {n}: expected a string 'id' and 'answers' with a 'text' list"
            )
        if not all(isinstance(t, str) for t in texts):
            raise SquadInputError("dataset", f"example {n}: expected every answer text to be a string")
        questions[example["id"]] = _Gold(list(texts), bool(texts))
    return questions


def evaluate(
    dataset: list[dict],
    preds: dict[str, str],
    na_probs: dict[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, float]:
    """Score predictions against the official file's `data` list, exactly as `evaluate-v2.0.py` does.

    Returns exact, f1 and total (percent over all questions), HasAns_* / NoAns_* for each group present, and
    best_exact(_thresh) / best_f1(_thresh) only when `na_probs` is given (the script adds them only with
    --na-prob-file). Without `na_probs` every no-answer probability is 0.0.
    """
    return _score(_questions_from_articles(dataset), preds, na_probs, na_prob_thresh)


def evaluate_examples(
    examples: Iterable[Mapping[str, Any]],
    preds: dict[str, str],
    na_probs: dict[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, float]:
    """The same figures as `evaluate`, from flat examples (`id`, columnar `answers`) as the Arrow loader yields."""
    return _score(_questions_from_examples(examples), preds, na_probs, na_prob_thresh)


def _read_json(path: str, source: str) -> Any:
    """Parse a JSON file (a UTF-8 BOM is allowed); unreadable, invalid or too deeply nested files become a
    SquadInputError, so a hostile file gets one line rather than a RecursionError traceback."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise SquadInputError(source, f"cannot read the file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise SquadInputError(source, "is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise SquadInputError(source, f"is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except RecursionError:
        raise SquadInputError(source, "is nested too deeply to read as JSON") from None


def _build_parser() -> argparse.ArgumentParser:
    """The official script's arguments, minus --out-image-dir (plots are not reproduced)."""
    parser = argparse.ArgumentParser(
        prog="squad-eval", description="Official evaluation script for SQuAD version 2.0 (re-implementation)."
    )
    parser.add_argument("data_file", metavar="data.json", help="Input data JSON file (SQuAD v1.1 or v2.0).")
    parser.add_argument("pred_file", metavar="pred.json", help="Model predictions.")
    parser.add_argument(
        "--out-file", "-o", metavar="eval.json", help="Write accuracy metrics to file (default is stdout)."
    )
    parser.add_argument(
        "--na-prob-file", "-n", metavar="na_prob.json", help="Model estimates of probability of no answer."
    )
    parser.add_argument(
        "--na-prob-thresh",
        "-t",
        type=float,
        default=1.0,
        help='Predict "" if no-answer probability exceeds this (default = 1.0).',
    )
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="Accepted for compatibility; the official script ignores it.",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI `squad-eval`: print (or write with --out-file) the official figures; bad input exits 2 with one line.

    The out file is written whole or not at all (a killed run leaves no truncated figures for a later step).
    """
    args = sys.argv[1:] if argv is None else argv
    parser = _build_parser()
    if not args:
        parser.print_help()
        return 1
    opts = parser.parse_args(args)
    if opts.out_file and Path(opts.out_file).is_dir():
        return _fail(opts.out_file, "is a directory (expected a file to write the figures to)")
    files = {"dataset": opts.data_file, "predictions": opts.pred_file, "na_probs": opts.na_prob_file}
    try:
        data_json = _read_json(opts.data_file, "dataset")
        if not isinstance(data_json, dict) or not isinstance(data_json.get("data"), list):
            raise SquadInputError(
                "dataset", "expected a JSON object with a top-level 'data' list (SQuAD format)"
            )
        preds = _read_json(opts.pred_file, "predictions")
        na_probs = _read_json(opts.na_prob_file, "na_probs") if opts.na_prob_file else None
        out_eval = evaluate(data_json["data"], preds, na_probs, opts.na_prob_thresh)
    except SquadInputError as exc:
        return _fail(files[exc.source], exc.problem)
    if not opts.out_file:
        print(json.dumps(out_eval, indent=2))
        return 0
    try:
        write_text(opts.out_file, json.dumps(out_eval))
    except OSError as exc:
        return _fail(opts.out_file, f"cannot be written ({exc.strerror or exc})")
    return 0


def _fail(path: str, problem: str) -> int:
    """The CLI's one line for bad input, naming the file; exit status 2 as argparse uses for usage errors."""
    print(f"squad-eval: error: {path}: {problem}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
