"""Extractive QA features and post-processing, checked on hand-built SQuAD 2.0-style data with the tiny tokenizer.

Words outside the tiny vocabulary ("zebra", "quokka", ...) split into one token per letter, so short contexts
already span several windows at a small `max_seq_length`.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from datasets import Dataset

from conftest import build_tiny_tokenizer
from processing.question_answering import (
    NO_SPAN_NULL_ODDS,
    postprocess_predictions,
    prepare_eval_features,
    prepare_train_features,
)

MAX_LEN = 40
STRIDE = 10
FILLER = ["zebra", "quokka", "walrus", "lemur", "okapi", "tapir", "gecko", "heron", "bison", "moose"]


def _example(
    example_id: str, question: str, context: str, answer: str | None = None, occurrence: int = 0
) -> dict:
    """A squad_v2 row; the answer is located in the context so hand-written tests cannot get answer_start wrong."""
    if answer is None:
        return {
            "id": example_id,
            "title": "t",
            "question": question,
            "context": context,
            "answers": _no_answer(),
        }
    start = -1
    for _ in range(occurrence + 1):
        start = context.index(answer, start + 1)
    answers = {"text": [answer], "answer_start": [start]}
    return {"id": example_id, "title": "t", "question": question, "context": context, "answers": answers}


def _no_answer() -> dict:
    return {"text": [], "answer_start": []}


def _batch(rows: list[dict]) -> dict[str, list]:
    """Columnar form, as `Dataset.map(batched=True)` passes it."""
    return {column: [row[column] for row in rows] for column in rows[0]}


def _long_context(words: int) -> str:
    return " ".join(FILLER[i % len(FILLER)] for i in range(words))


def _windows_holding(eval_features: dict[str, list], start_char: int, end_char: int) -> list[bool]:
    """For every window, whether its context part covers the whole character span."""
    holding = []
    for offsets in eval_features["offset_mapping"]:
        context_offsets = [offset for offset in offsets if offset is not None]
        holding.append(context_offsets[0][0] <= start_char and context_offsets[-1][1] >= end_char)
    return holding


def _windows_touching(eval_features: dict[str, list], start_char: int, end_char: int) -> list[bool]:
    """For every window, whether any of its context tokens overlaps the character span."""
    return [
        any(offset is not None and offset[0] < end_char and offset[1] > start_char for offset in offsets)
        for offsets in eval_features["offset_mapping"]
    ]


def _labelled_text(tokenizer, features: dict[str, list], window: int) -> str:
    start, end = features["start_positions"][window], features["end_positions"][window]
    return tokenizer.decode(features["input_ids"][window][start : end + 1])


def _cls_index(tokenizer, features: dict[str, list], window: int) -> int:
    return features["input_ids"][window].index(tokenizer.cls_token_id)


def _assert_labelled_exactly_where_held(tokenizer, row: dict, max_len: int = MAX_LEN, stride: int = STRIDE):
    """Windows holding the whole answer are labelled with it (decoded back to the text); all others point at CLS."""
    batch = _batch([row])
    train = prepare_train_features(batch, tokenizer, max_len, stride)
    evaluation = prepare_eval_features(batch, tokenizer, max_len, stride)
    start_char = row["answers"]["answer_start"][0]
    holding = _windows_holding(evaluation, start_char, start_char + len(row["answers"]["text"][0]))
    for window, holds in enumerate(holding):
        if holds:
            assert _labelled_text(tokenizer, train, window) == row["answers"]["text"][0].lower()
        else:
            cls_index = _cls_index(tokenizer, train, window)
            assert train["start_positions"][window] == train["end_positions"][window] == cls_index
    return train, evaluation, holding


# ---------------------------------------------------------------- training features


def test_answer_at_the_very_start_of_the_context(tiny_tokenizer):
    row = _example("q", "what is first", "Zebra quokka walrus lemur", "Zebra")
    train, _, holding = _assert_labelled_exactly_where_held(tiny_tokenizer, row)
    assert holding == [True]
    assert train["start_positions"][0] == train["input_ids"][0].index(tiny_tokenizer.sep_token_id) + 1


def test_answer_at_the_very_end_of_the_context(tiny_tokenizer):
    row = _example("q", "what is last", "zebra quokka walrus lemur", "lemur")
    train, _, holding = _assert_labelled_exactly_where_held(tiny_tokenizer, row)
    assert holding == [True]
    assert train["end_positions"][0] == len(train["input_ids"][0]) - 2


def test_answer_at_the_end_of_a_context_spanning_several_windows(tiny_tokenizer):
    context = _long_context(12) + " paris"
    row = _example("q", "where", context, "paris")
    _, _, holding = _assert_labelled_exactly_where_held(tiny_tokenizer, row)
    assert len(holding) > 1
    assert holding[-1]
    assert not holding[0]


def test_answer_crossing_a_window_border_is_labelled_only_where_whole(tiny_tokenizer):
    context = _long_context(14)
    first_window = prepare_eval_features(
        _batch([_example("q", "what", context)]), tiny_tokenizer, MAX_LEN, STRIDE
    )
    border = [offset for offset in first_window["offset_mapping"][0] if offset is not None][-1][1]
    start = context.rindex(" ", 0, border - 1) + 1
    end = context.index(" ", border + 1)
    answer = context[start:end]
    assert start < border < end
    row = _example("q", "what", context, answer)
    train, evaluation, holding = _assert_labelled_exactly_where_held(tiny_tokenizer, row)
    touching = _windows_touching(evaluation, start, end)
    assert touching[0]
    assert not holding[0]
    assert train["start_positions"][0] == 0
    assert any(holding)


def test_context_longer_than_three_windows(tiny_tokenizer):
    context = _long_context(30) + " london " + _long_context(30)
    row = _example("q", "which city", context, "london")
    train, evaluation, holding = _assert_labelled_exactly_where_held(tiny_tokenizer, row)
    assert len(train["input_ids"]) >= 4
    assert 0 < sum(holding) < len(holding)
    labelled = [start != 0 for start in train["start_positions"]]
    assert labelled == holding
    assert all(len(ids) <= MAX_LEN for ids in train["input_ids"])
    assert len(evaluation["input_ids"]) == len(train["input_ids"])


def test_unanswerable_question_points_every_window_at_cls(tiny_tokenizer):
    row = _example("q", "who played", _long_context(40))
    train = prepare_train_features(_batch([row]), tiny_tokenizer, MAX_LEN, STRIDE)
    assert len(train["input_ids"]) >= 4
    for window in range(len(train["input_ids"])):
        cls_index = _cls_index(tiny_tokenizer, train, window)
        assert train["start_positions"][window] == train["end_positions"][window] == cls_index == 0


def test_batch_mixes_answerable_and_unanswerable_examples(tiny_tokenizer):
    rows = [
        _example("a", "who", _long_context(20) + " john smith", "john smith"),
        _example("b", "who", _long_context(20)),
        _example("c", "where", "apple went to new york", "new york"),
    ]
    train = prepare_train_features(_batch(rows), tiny_tokenizer, MAX_LEN, STRIDE)
    evaluation = prepare_eval_features(_batch(rows), tiny_tokenizer, MAX_LEN, STRIDE)
    by_example = defaultdict(list)
    for window, example_id in enumerate(evaluation["example_id"]):
        by_example[example_id].append(window)
    assert set(by_example) == {"a", "b", "c"}
    assert [train["start_positions"][window] for window in by_example["b"]] == [0] * len(by_example["b"])
    assert _labelled_text(tiny_tokenizer, train, by_example["a"][-1]) == "john smith"
    assert _labelled_text(tiny_tokenizer, train, by_example["c"][0]) == "new york"


def test_question_leading_whitespace_is_stripped(tiny_tokenizer):
    context = _long_context(12) + " the capital"
    padded = prepare_train_features(
        _batch([_example("q", "        what is it", context, "capital")]), tiny_tokenizer, MAX_LEN, STRIDE
    )
    plain = prepare_train_features(
        _batch([_example("q", "what is it", context, "capital")]), tiny_tokenizer, MAX_LEN, STRIDE
    )
    assert padded == plain
    assert _labelled_text(tiny_tokenizer, padded, len(padded["input_ids"]) - 1) == "capital"


def test_first_of_several_answers_is_used(tiny_tokenizer):
    context = "john went to paris and london"
    row = _example("q", "where", context)
    row["answers"] = {
        "text": ["london", "paris"],
        "answer_start": [context.index("london"), context.index("paris")],
    }
    train = prepare_train_features(_batch([row]), tiny_tokenizer, MAX_LEN, STRIDE)
    assert _labelled_text(tiny_tokenizer, train, 0) == "london"


def test_answer_with_surrounding_whitespace_is_labelled_on_its_words(tiny_tokenizer):
    context = _long_context(6) + " new york " + _long_context(6)
    row = _example("q", "where", context, " new york ")
    train = prepare_train_features(_batch([row]), tiny_tokenizer, MAX_LEN, STRIDE)
    labelled = [window for window, start in enumerate(train["start_positions"]) if start != 0]
    assert labelled
    assert all(_labelled_text(tiny_tokenizer, train, window) == "new york" for window in labelled)


def test_repeated_answer_text_uses_answer_start(tiny_tokenizer):
    context = "paris " + _long_context(20) + " paris"
    row = _example("q", "where", context, "paris", occurrence=1)
    train, _, holding = _assert_labelled_exactly_where_held(tiny_tokenizer, row)
    assert not holding[0]
    assert train["start_positions"][0] == 0


def test_left_padding_tokenizer_puts_the_context_first(tmp_path):
    tokenizer = build_tiny_tokenizer(tmp_path / "left")
    tokenizer.padding_side = "left"
    context = _long_context(20) + " john smith " + _long_context(20)
    row = _example("q", "who is it", context, "john smith")
    train, evaluation, holding = _assert_labelled_exactly_where_held(tokenizer, row)
    assert any(holding)
    assert tokenizer.decode(train["input_ids"][0]).startswith("[CLS] zebra")
    assert tokenizer.decode(train["input_ids"][0]).endswith("who is it [SEP]")
    question_start = train["input_ids"][0].index(tokenizer.sep_token_id)
    assert all(offset is None for offset in evaluation["offset_mapping"][0][question_start:])


def test_train_features_hold_only_model_inputs(tiny_tokenizer):
    rows = [
        _example("a", "who", _long_context(20) + " john smith", "john smith"),
        _example("b", "who", "apple"),
    ]
    dataset = Dataset.from_list(rows)
    features = dataset.map(
        prepare_train_features,
        batched=True,
        remove_columns=dataset.column_names,
        fn_kwargs={"tokenizer": tiny_tokenizer, "max_seq_length": MAX_LEN, "doc_stride": STRIDE},
    )
    expected = {"input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions"}
    assert set(features.column_names) == expected
    assert len(features) > len(dataset)
    features.set_format("torch")
    assert set(features[0]) == expected


# ---------------------------------------------------------------- evaluation features


def test_eval_features_keep_windows_ids_and_context_only_offsets(tiny_tokenizer):
    rows = [
        _example("first", "where", _long_context(20) + " paris", "paris"),
        _example("second", "who", "john smith"),
    ]
    train = prepare_train_features(_batch(rows), tiny_tokenizer, MAX_LEN, STRIDE)
    evaluation = prepare_eval_features(_batch(rows), tiny_tokenizer, MAX_LEN, STRIDE)
    assert set(evaluation) == {
        "input_ids",
        "token_type_ids",
        "attention_mask",
        "example_id",
        "offset_mapping",
    }
    assert evaluation["input_ids"] == train["input_ids"]
    assert evaluation["example_id"][0] == "first"
    assert evaluation["example_id"][-1] == "second"
    for window, offsets in enumerate(evaluation["offset_mapping"]):
        assert len(offsets) == len(evaluation["input_ids"][window])
        context = rows[0 if evaluation["example_id"][window] == "first" else 1]["context"]
        token_types = evaluation["token_type_ids"][window]
        for token, token_type, offset in zip(
            evaluation["input_ids"][window], token_types, offsets, strict=True
        ):
            assert (offset is None) == (token_type == 0 or token in tiny_tokenizer.all_special_ids)
            if offset is not None:
                piece = tiny_tokenizer.convert_ids_to_tokens(token).removeprefix("##")
                assert context[offset[0] : offset[1]].lower() == piece
        sep = evaluation["input_ids"][window].index(tiny_tokenizer.sep_token_id)
        assert all(offset is None for offset in offsets[: sep + 1])
        assert offsets[-1] is None


# ---------------------------------------------------------------- post-processing on hand-made logits

CONTEXT = "alpha beta gamma delta epsilon"
# [CLS] q1 q2 [SEP] alpha beta gamma delta epsilon [SEP]
OFFSETS = [None, None, None, None, [0, 5], [6, 10], [11, 16], [17, 22], [23, 30], None]
ALPHA, BETA, GAMMA, DELTA, EPSILON = 4, 5, 6, 7, 8


def _one_window(context: str = CONTEXT, offsets: list | None = None) -> tuple[Dataset, Dataset]:
    examples = Dataset.from_list([_example("q", "what", context)])
    features = Dataset.from_dict(
        {"example_id": ["q"], "offset_mapping": [OFFSETS if offsets is None else offsets]}
    )
    return examples, features


def _logits(
    starts: dict[int, float], ends: dict[int, float], width: int = len(OFFSETS), baseline: float = 0.0
) -> tuple:
    start_logits = np.full((1, width), baseline)
    end_logits = np.full((1, width), baseline)
    for position, value in starts.items():
        start_logits[0, position] = value
    for position, value in ends.items():
        end_logits[0, position] = value
    return start_logits, end_logits


def test_best_span_text_is_cut_from_the_context():
    examples, features = _one_window()
    start_logits, end_logits = _logits({BETA: 5.0}, {GAMMA: 4.0})
    predictions, null_odds = postprocess_predictions(examples, features, start_logits, end_logits)
    assert predictions == {"q": "beta gamma"}
    assert null_odds == {"q": pytest.approx(0.0 - 9.0)}


def test_null_answer_wins_when_cls_scores_higher():
    examples, features = _one_window()
    start_logits, end_logits = _logits({0: 6.0, BETA: 5.0}, {0: 6.0, GAMMA: 4.0})
    predictions, null_odds = postprocess_predictions(examples, features, start_logits, end_logits)
    assert predictions == {"q": ""}
    assert null_odds == {"q": pytest.approx(12.0 - 9.0)}


def test_threshold_flips_the_decision():
    examples, features = _one_window()
    start_logits, end_logits = _logits({0: 6.0, BETA: 5.0}, {0: 6.0, GAMMA: 4.0})
    assert postprocess_predictions(
        examples, features, start_logits, end_logits, null_score_diff_threshold=2.9
    )[0] == {"q": ""}
    assert postprocess_predictions(
        examples, features, start_logits, end_logits, null_score_diff_threshold=3.0
    )[0] == {"q": "beta gamma"}


def test_span_longer_than_max_answer_length_is_refused():
    examples, features = _one_window()
    start_logits, end_logits = _logits({ALPHA: 9.0, GAMMA: 1.0}, {EPSILON: 9.0, DELTA: 1.0}, baseline=-10.0)
    assert postprocess_predictions(examples, features, start_logits, end_logits)[0] == {"q": CONTEXT}
    predictions, null_odds = postprocess_predictions(
        examples, features, start_logits, end_logits, max_answer_length=2
    )
    assert predictions == {"q": "gamma delta"}
    assert null_odds == {"q": pytest.approx(-20.0 - 2.0)}


def test_end_before_start_is_refused():
    examples, features = _one_window()
    start_logits, end_logits = _logits({DELTA: 9.0, BETA: 2.0}, {ALPHA: 9.0, GAMMA: 1.0}, baseline=-10.0)
    predictions, _ = postprocess_predictions(examples, features, start_logits, end_logits)
    assert predictions == {"q": "beta gamma"}


def test_question_and_special_tokens_are_never_chosen():
    examples, features = _one_window()
    start_logits, end_logits = _logits(
        {1: 50.0, 2: 50.0, 3: 50.0, 9: 50.0, DELTA: 1.0}, {2: 50.0, 9: 50.0, DELTA: 1.0}
    )
    predictions, _ = postprocess_predictions(examples, features, start_logits, end_logits, n_best_size=1)
    assert predictions == {"q": "delta"}


def test_padding_beyond_the_feature_length_is_ignored():
    examples, features = _one_window()
    start_logits, end_logits = _logits({BETA: 1.0}, {BETA: 1.0}, width=len(OFFSETS) + 5)
    start_logits[0, len(OFFSETS) :] = 1e9
    end_logits[0, len(OFFSETS) :] = np.inf
    predictions, null_odds = postprocess_predictions(
        examples, features, start_logits, end_logits, n_best_size=2
    )
    assert predictions == {"q": "beta"}
    assert null_odds == {"q": pytest.approx(-2.0)}


def test_best_window_wins_across_windows_and_null_is_the_minimum():
    context = "alpha beta gamma delta"
    examples = Dataset.from_list([_example("q", "what", context)])
    windows = [
        [None, None, [0, 5], [6, 10], [11, 16], None],
        [None, None, [6, 10], [11, 16], [17, 22], None],
    ]
    features = Dataset.from_dict({"example_id": ["q", "q"], "offset_mapping": windows})
    start_logits = np.array([[3.0, 0, 4.0, 0, 0, 0], [1.0, 0, 0, 0, 6.0, 0]])
    end_logits = np.array([[3.0, 0, 0, 4.0, 0, 0], [1.0, 0, 0, 0, 6.0, 0]])
    predictions, null_odds = postprocess_predictions(examples, features, start_logits, end_logits)
    assert predictions == {"q": "delta"}
    assert null_odds == {"q": pytest.approx(2.0 - 12.0)}


def test_equal_scores_go_to_the_earliest_window_then_span():
    context = "alpha beta gamma"
    examples = Dataset.from_list([_example("q", "what", context)])
    windows = [[None, [0, 5], [6, 10], None], [None, [6, 10], [11, 16], None]]
    features = Dataset.from_dict({"example_id": ["q", "q"], "offset_mapping": windows})
    start_logits = np.array([[0.0, 0, 1, 0], [0.0, 1, 1, 0]])
    end_logits = np.array([[0.0, 0, 1, 0], [0.0, 1, 1, 0]])
    predictions, _ = postprocess_predictions(examples, features, start_logits, end_logits)
    assert predictions == {"q": "beta"}


def test_no_valid_span_predicts_null_with_finite_odds():
    examples, features = _one_window(offsets=[None, None, None])
    start_logits, end_logits = _logits({}, {}, width=3)
    predictions, null_odds = postprocess_predictions(
        examples, features, start_logits, end_logits, null_score_diff_threshold=1e300
    )
    assert predictions == {"q": ""}
    assert null_odds == {"q": NO_SPAN_NULL_ODDS}
    assert np.isfinite(null_odds["q"])


def test_features_in_any_order_map_back_to_their_examples():
    examples = Dataset.from_list([_example("a", "what", "john smith"), _example("b", "what", "new york")])
    features = Dataset.from_dict(
        {
            "example_id": ["b", "a"],
            "offset_mapping": [[None, [0, 3], [4, 8], None], [None, [0, 4], [5, 10], None]],
        }
    )
    start_logits = np.array([[0.0, 0, 5, 0], [0.0, 5, 0, 0]])
    end_logits = np.array([[0.0, 0, 5, 0], [0.0, 5, 0, 0]])
    predictions, _ = postprocess_predictions(examples, features, start_logits, end_logits)
    assert predictions == {"a": "john", "b": "york"}


def test_inconsistent_inputs_are_rejected():
    examples, features = _one_window()
    start_logits, end_logits = _logits({}, {})
    with pytest.raises(ValueError):
        postprocess_predictions(examples, features, start_logits[:, :5], end_logits)
    with pytest.raises(ValueError):
        postprocess_predictions(
            examples, features, np.vstack([start_logits] * 2), np.vstack([end_logits] * 2)
        )
    orphan = Dataset.from_dict({"example_id": ["elsewhere"], "offset_mapping": [OFFSETS]})
    with pytest.raises(ValueError):
        postprocess_predictions(examples, orphan, start_logits, end_logits)
    two_examples = Dataset.from_list([_example("q", "what", CONTEXT), _example("r", "what", CONTEXT)])
    with pytest.raises(ValueError):
        postprocess_predictions(two_examples, features, start_logits, end_logits)


def test_gold_logits_round_trip_through_the_tokenizer(tiny_tokenizer):
    rows = [
        _example("a", "who", _long_context(25) + " john smith " + _long_context(5), "john smith"),
        _example("b", "where", "Apple went to New York", "New York"),
        _example("c", "what", _long_context(25)),
    ]
    train = prepare_train_features(_batch(rows), tiny_tokenizer, MAX_LEN, STRIDE)
    features = Dataset.from_dict(prepare_eval_features(_batch(rows), tiny_tokenizer, MAX_LEN, STRIDE))
    start_logits = np.full((len(features), MAX_LEN), -np.inf)
    end_logits = np.full((len(features), MAX_LEN), -np.inf)
    for window, ids in enumerate(train["input_ids"]):
        start_logits[window, : len(ids)] = 0.0
        end_logits[window, : len(ids)] = 0.0
        start_logits[window, train["start_positions"][window]] = 10.0
        end_logits[window, train["end_positions"][window]] = 10.0
    predictions, null_odds = postprocess_predictions(
        Dataset.from_list(rows), features, start_logits, end_logits
    )
    assert predictions == {"a": "john smith", "b": "New York", "c": ""}
    assert null_odds["a"] < 0 < null_odds["c"]


# ---------------------------------------------------------------- equivalence with a straightforward loop


def _reference_postprocess(
    examples: Dataset,
    features: Dataset,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int,
    max_answer_length: int,
    null_score_diff_threshold: float,
) -> tuple[dict[str, str], dict[str, float]]:
    """The specification as a plain loop: every example, every window, every top-k start/end pair.

    Top-k among context tokens by (logit desc, position asc); pairs visited window by window, start then end in
    ascending position, keeping the first best, which fixes how ties are broken.
    """
    start_logits = np.asarray(start_logits, dtype=np.float64)
    end_logits = np.asarray(end_logits, dtype=np.float64)
    all_offsets = list(features["offset_mapping"])
    windows_of = defaultdict(list)
    for window, example_id in enumerate(features["example_id"]):
        windows_of[example_id].append(window)
    predictions, null_odds = {}, {}
    for example in examples:
        null_score = None
        best_score, best_text = -np.inf, ""
        for window in windows_of[example["id"]]:
            offsets = all_offsets[window][: start_logits.shape[1]]
            window_null = start_logits[window, 0] + end_logits[window, 0]
            null_score = window_null if null_score is None else min(null_score, window_null)
            context_positions = [position for position, offset in enumerate(offsets) if offset is not None]
            starts = sorted(
                sorted(context_positions, key=lambda p, w=window: (-start_logits[w, p], p))[:n_best_size]
            )
            ends = sorted(
                sorted(context_positions, key=lambda p, w=window: (-end_logits[w, p], p))[:n_best_size]
            )
            for start in starts:
                for end in ends:
                    if end < start or end - start + 1 > max_answer_length:
                        continue
                    score = start_logits[window, start] + end_logits[window, end]
                    if score > best_score:
                        best_score = score
                        best_text = example["context"][offsets[start][0] : offsets[end][1]]
        if best_score == -np.inf:
            predictions[example["id"]] = ""
            null_odds[example["id"]] = NO_SPAN_NULL_ODDS
            continue
        difference = float(null_score - best_score)
        null_odds[example["id"]] = difference
        predictions[example["id"]] = "" if difference > null_score_diff_threshold else best_text
    return predictions, null_odds


def _random_data(rng: np.random.Generator, num_examples: int, integer_logits: bool) -> tuple:
    """Examples with 1-4 windows each, windows of varied length with a question part, context tokens at random
    character positions, and logits padded with junk past each window's length."""
    examples, example_ids, offset_mappings = [], [], []
    for index in range(num_examples):
        context = "".join(rng.choice(list("abcdefgh "), size=120))
        examples.append(_example(f"ex{index}", "what", context))
        for _ in range(rng.integers(1, 5)):
            question_length = int(rng.integers(1, 6))
            context_length = int(rng.integers(0, 30))
            bounds = np.sort(rng.choice(121, size=2 * context_length, replace=False)).reshape(-1, 2).tolist()
            offset_mappings.append([None] * (question_length + 2) + bounds + [None])
            example_ids.append(f"ex{index}")
    order = rng.permutation(len(example_ids))
    features = Dataset.from_dict(
        {
            "example_id": [example_ids[i] for i in order],
            "offset_mapping": [offset_mappings[i] for i in order],
        }
    )
    width = max(len(offsets) for offsets in offset_mappings) + 3
    shape = (len(features), width)
    if integer_logits:
        start_logits = rng.integers(-3, 4, size=shape).astype(np.float32)
        end_logits = rng.integers(-3, 4, size=shape).astype(np.float32)
    else:
        start_logits = rng.normal(size=shape).astype(np.float32)
        end_logits = rng.normal(size=shape).astype(np.float32)
    for window, offsets in enumerate(features["offset_mapping"]):
        start_logits[window, len(offsets) :] = rng.choice([-np.inf, 100.0, np.nan])
        end_logits[window, len(offsets) :] = rng.choice([-np.inf, 100.0, np.inf])
    return Dataset.from_list(examples), features, start_logits, end_logits


@pytest.mark.parametrize("integer_logits", [False, True], ids=["continuous", "many-ties"])
@pytest.mark.parametrize(
    ("n_best_size", "max_answer_length", "threshold"),
    [(20, 30, 0.0), (3, 4, 0.5), (1, 1, -1.0), (50, 6, 0.0)],
)
def test_vectorised_postprocessing_matches_the_reference_loop(
    integer_logits: bool, n_best_size: int, max_answer_length: int, threshold: float
):
    rng = np.random.default_rng(1234 + n_best_size)
    examples, features, start_logits, end_logits = _random_data(rng, 160, integer_logits)
    assert len(features) >= 300
    expected = _reference_postprocess(
        examples, features, start_logits, end_logits, n_best_size, max_answer_length, threshold
    )
    actual = postprocess_predictions(
        examples,
        features,
        start_logits,
        end_logits,
        n_best_size=n_best_size,
        max_answer_length=max_answer_length,
        null_score_diff_threshold=threshold,
    )
    assert actual == expected
    assert 0 < sum(text != "" for text in actual[0].values()) < len(examples)
