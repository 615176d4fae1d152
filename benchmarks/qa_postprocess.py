"""QA post-processing: our vectorised `postprocess_predictions` versus a per-example Python loop, same answers.

    python benchmarks/qa_postprocess.py --data ../shared/data/squad/squad2-dev-16-articles.json

Every question of the file (or of its first `--max_articles` articles) is cut into windows with
`question_answering.prepare` (`prepare_eval_features` through `Dataset.map`, the embedded tokenizer), and every
window gets seeded random start/end logits, float32 like a model's, as wide as the longest window, with -1e4 past
each window's end (how evaluation pads them). Both post-processors then turn the same logits into predictions and
null odds, which must be identical (the script stops otherwise):

vectorised: `processing.question_answering.postprocess_predictions`.
loop:       the classic `postprocess_qa_predictions` shape, written here: for each example, for each of its windows,
            the top `n_best_size` start and end positions by argsort, a nested loop over the pairs with the validity
            checks, the best span compared with the null score. It follows the vectorised function's documented rules
            so that the answers can be compared exactly: top-k among context tokens only (ties at the k-th score to
            the lowest position), scores in float64, ties to the earliest window, then start, then end; null score
            the minimum over windows of start[0] + end[0]; no valid span gives "" and `NO_SPAN_NULL_ODDS`.

Both are timed from the datasets and the logits arrays to the two dicts (the loop's time includes reading the
windows' example ids and offsets into Python lists once). `--logits normal` draws N(0, 1); `rounded` rounds those to
one decimal, so that many scores tie and the tie rules are exercised. One line per kind of logits: the numbers of
windows and examples, the best of `--repeats` wall times of each, and the speed-up.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from _bench import ensure_repo_on_path, quiet_libraries, result_line

ensure_repo_on_path()

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PAD_LOGIT = -1e4  # what evaluation pads shorter windows' logits with


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--data", required=True, help="SQuAD-format JSON file")
    parser.add_argument(
        "--max_articles", type=int, default=None, help="only the first K articles of the file"
    )
    parser.add_argument("--max_seq_length", type=int, default=384)
    parser.add_argument("--doc_stride", type=int, default=128)
    parser.add_argument("--n_best_size", type=int, default=20)
    parser.add_argument("--max_answer_length", type=int, default=30)
    parser.add_argument("--null_score_diff_threshold", type=float, default=0.0)
    parser.add_argument("--logits", default="normal,rounded", help="comma-separated: normal, rounded")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each; the best is printed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="tokenizer: Hub id or folder")
    return parser.parse_args(argv)


def loop_postprocess(
    examples,
    features,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int,
    max_answer_length: int,
    null_score_diff_threshold: float,
) -> tuple[dict[str, str], dict[str, float]]:
    """Per example, per window, per candidate pair, in Python: the classic post-processing loop."""
    from processing.question_answering import NO_SPAN_NULL_ODDS

    start_logits = np.asarray(start_logits, dtype=np.float64)
    end_logits = np.asarray(end_logits, dtype=np.float64)
    width = start_logits.shape[1]
    k = min(n_best_size, width)
    example_columns = examples.select_columns(["id", "context"])[:]
    feature_columns = features.select_columns(["example_id", "offset_mapping"])[:]
    features_per_example = collections.defaultdict(list)
    for feature_index, example_id in enumerate(feature_columns["example_id"]):
        features_per_example[example_id].append(feature_index)

    predictions: dict[str, str] = {}
    null_odds: dict[str, float] = {}
    for example_id, context in zip(example_columns["id"], example_columns["context"], strict=True):
        best_score, best_chars = None, None
        min_null_score = None
        for feature_index in features_per_example[example_id]:
            start_row = start_logits[feature_index]
            end_row = end_logits[feature_index]
            offsets = feature_columns["offset_mapping"][feature_index]
            null_score = start_row[0] + end_row[0]
            if min_null_score is None or null_score < min_null_score:
                min_null_score = null_score
            in_context = np.zeros(width, dtype=bool)
            for position in range(min(len(offsets), width)):
                in_context[position] = offsets[position] is not None
            # Top k among context tokens; a stable argsort of the negated scores puts ties in position order.
            start_indexes = np.argsort(-np.where(in_context, start_row, -np.inf), kind="stable")[:k]
            end_indexes = np.argsort(-np.where(in_context, end_row, -np.inf), kind="stable")[:k]
            # Pairs in position order, and only a strictly better score replaces the best: ties stay with the
            # earliest window, start, end.
            for start_index in sorted(start_indexes.tolist()):
                if not in_context[start_index]:
                    continue
                for end_index in sorted(end_indexes.tolist()):
                    if not in_context[end_index]:
                        continue
                    if end_index < start_index or end_index - start_index + 1 > max_answer_length:
                        continue
                    score = start_row[start_index] + end_row[end_index]
                    if best_score is None or score > best_score:
                        best_score = score
                        best_chars = (offsets[start_index][0], offsets[end_index][1])
        if min_null_score is None:
            raise ValueError(f"example {example_id} has no windows")
        if best_score is None:
            predictions[example_id] = ""
            null_odds[example_id] = NO_SPAN_NULL_ODDS
            continue
        odds = float(min_null_score - best_score)
        null_odds[example_id] = odds
        predictions[example_id] = (
            "" if odds > null_score_diff_threshold else context[best_chars[0] : best_chars[1]]
        )
    return predictions, null_odds


def first_articles(raw, count: int):
    titles = raw.select_columns(["title"])[:]["title"]
    kept = list(dict.fromkeys(titles))[:count]
    chosen = set(kept)
    return raw.select([i for i, title in enumerate(titles) if title in chosen])


def random_logits(lengths: np.ndarray, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (len(lengths), int(lengths.max()))
    padding = np.arange(shape[1])[None, :] >= lengths[:, None]
    logits = []
    for _ in range(2):
        values = rng.standard_normal(shape).astype(np.float32)
        if kind == "rounded":
            values = np.round(values, 1)
        values[padding] = PAD_LOGIT
        logits.append(values)
    return logits[0], logits[1]


def best_time(function, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def first_difference(ours: dict, theirs: dict) -> str:
    for key in ours:
        if key not in theirs or ours[key] != theirs[key]:
            return f"{key}: vectorised {ours[key]!r}, loop {theirs.get(key)!r}"
    return "none" if ours.keys() == theirs.keys() else "different example ids"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kinds = [kind for kind in args.logits.split(",") if kind]
    if not kinds or any(kind not in ("normal", "rounded") for kind in kinds):
        raise SystemExit("error: --logits takes a comma-separated subset of normal, rounded")
    quiet_libraries()
    from transformers import AutoTokenizer

    import loaders
    from processing import question_answering
    from processing.batching import feature_lengths
    from processing.models import resolve_model

    data = Path(args.data).resolve()
    with tempfile.TemporaryDirectory(prefix="qa-postprocess-") as cache_dir:
        raw = loaders.load_dataset("squad_v2", data_files={"validation": str(data)}, cache_dir=cache_dir)
        examples = raw["validation"]
        if args.max_articles is not None:
            examples = first_articles(examples, args.max_articles)
        tokenizer = AutoTokenizer.from_pretrained(resolve_model(args.model))
        config = SimpleNamespace(max_seq_length=args.max_seq_length, doc_stride=args.doc_stride)
        features = question_answering.prepare(examples, tokenizer, config, False)
        lengths = feature_lengths(features)
        settings = {
            "n_best_size": args.n_best_size,
            "max_answer_length": args.max_answer_length,
            "null_score_diff_threshold": args.null_score_diff_threshold,
        }
        status = 0
        for kind in kinds:
            start_logits, end_logits = random_logits(lengths, kind, args.seed)
            vectorised_s, (predictions, null_odds) = best_time(
                lambda start_logits=start_logits, end_logits=end_logits: (
                    question_answering.postprocess_predictions(
                        examples, features, start_logits, end_logits, **settings
                    )
                ),
                args.repeats,
            )
            loop_s, (loop_predictions, loop_null_odds) = best_time(
                lambda start_logits=start_logits, end_logits=end_logits: loop_postprocess(
                    examples, features, start_logits, end_logits, **settings
                ),
                args.repeats,
            )
            identical = predictions == loop_predictions and null_odds == loop_null_odds
            if not identical:
                print(f"error: the two disagree ({kind} logits)", file=sys.stderr)
                print(f"  predictions: {first_difference(predictions, loop_predictions)}", file=sys.stderr)
                print(f"  null odds: {first_difference(null_odds, loop_null_odds)}", file=sys.stderr)
                status = 1
            fields = {
                "logits": kind,
                "windows": len(features),
                "examples": len(examples),
                "answered": sum(bool(text) for text in predictions.values()),
                "max_seq_length": args.max_seq_length,
                "doc_stride": args.doc_stride,
                "n_best_size": args.n_best_size,
                "loop_s": loop_s,
                "vectorised_s": vectorised_s,
                "speedup": loop_s / vectorised_s,
                "identical": str(identical).lower(),
                "repeats": args.repeats,
            }
            print(result_line("qa_postprocess", fields), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
