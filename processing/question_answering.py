"""Extractive question answering on SQuAD 2.0-style data.

Long contexts are cut into overlapping windows so no answer is lost to truncation, unanswerable questions are kept
(labelled on the CLS token) so the model learns to abstain, and logits are turned back into answer texts and null
odds in exactly the formats the official SQuAD 2.0 evaluation script reads.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from datasets import Dataset, DatasetDict
from matplotlib.figure import Figure
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    BatchEncoding,
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .analysis import Written, save_figure, split_words
from .calibration import Confidence, ece_figure
from .models import load_pretrained
from .outputs import write_json
from .predicting import Settings, batches, load_network
from .squad_metric import compute_exact, compute_f1, evaluate_examples, normalize_answer
from .tasks import Metric, Scored, Task, Tuning, map_batches

# Bookkeeping columns of the tokenizer output that a model's forward does not accept.
_BOOKKEEPING_COLUMNS = ("offset_mapping", "overflow_to_sample_mapping")
MAX_SEQ_LENGTH = 384
DOC_STRIDE = 128
N_BEST_SIZE = 20
MAX_ANSWER_LENGTH = 30
"""The Hugging Face SQuAD recipe's settings: the defaults of training, evaluation, predict and the pipeline."""

CONTEXT_WORD_BUCKETS = (100, 200, 400)
"""Upper bounds (exclusive) of the analysis's context-length buckets in words; the last bucket is open. At the
default 384 tokens, contexts past about 300 words need more than one window."""

NO_SPAN_NULL_ODDS = float(np.finfo(np.float64).max)
"""Null odds reported when no window has a valid span: finite so it stays JSON-serialisable and sortable, and larger
than any real difference so the evaluation ranks such a question as the most certainly unanswerable."""


def _tokenize_windows(
    examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_seq_length: int, doc_stride: int
) -> tuple[BatchEncoding, int]:
    """Tokenize question/context pairs into overlapping windows; also returns the sequence id of the context.

    Leading whitespace of questions is stripped because some SQuAD questions start with many spaces that would eat
    into the context's share of the window. Tokenizers that pad on the left expect the context first, so the pair
    order and the truncated side follow `padding_side`. No padding here: a collator pads per batch, which is
    cheaper than padding every window to `max_seq_length`.
    """
    context_first = tokenizer.padding_side == "left"
    questions = [question.lstrip() for question in examples["question"]]
    contexts = list(examples["context"])
    encoding = tokenizer(
        contexts if context_first else questions,
        questions if context_first else contexts,
        truncation="only_first" if context_first else "only_second",
        max_length=min(max_seq_length, tokenizer.model_max_length),
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    return encoding, 0 if context_first else 1


def _model_inputs(encoding: BatchEncoding) -> dict[str, list]:
    return {name: values for name, values in encoding.items() if name not in _BOOKKEEPING_COLUMNS}


def _cls_index(input_ids: list[int], tokenizer: PreTrainedTokenizerBase) -> int:
    """Where the model should point for "no answer"; tokenizers without a CLS token fall back to the first token,
    which is also where `postprocess_predictions` reads the null score."""
    cls_token_id = tokenizer.cls_token_id
    return input_ids.index(cls_token_id) if cls_token_id is not None and cls_token_id in input_ids else 0


def _answer_char_span(context: str, answers: dict[str, list]) -> tuple[int, int] | None:
    """Character span of the first answer without surrounding whitespace, or None for an unanswerable question.

    Whitespace is trimmed because it belongs to no token: a span starting on a space would otherwise be mapped to
    the token before it, or judged cut by a window that begins exactly at the answer's first word.
    """
    if not answers["text"]:
        return None
    start = answers["answer_start"][0]
    end = start + len(answers["text"][0])
    span = context[start:end]
    start += len(span) - len(span.lstrip())
    end -= len(span) - len(span.rstrip())
    return (start, end) if end > start else None


def _window_token_span(
    offsets: list[tuple[int, int]],
    sequence_ids: list[int | None],
    context_index: int,
    start_char: int,
    end_char: int,
) -> tuple[int, int] | None:
    """First and last token of the answer in this window, or None unless the window holds the whole answer.

    A window that holds only part of the answer must not be labelled with that part: the model would learn to
    predict truncated answers.
    """
    context_tokens = [token for token, sequence in enumerate(sequence_ids) if sequence == context_index]
    if not context_tokens:
        return None
    first, last = context_tokens[0], context_tokens[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return None
    start = next(token for token in range(first, last + 1) if offsets[token][1] > start_char)
    end = next(token for token in range(last, first - 1, -1) if offsets[token][0] < end_char)
    return start, end


def prepare_train_features(
    examples: dict[str, list],
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int = MAX_SEQ_LENGTH,
    doc_stride: int = DOC_STRIDE,
) -> dict[str, list]:
    """Training windows labelled with `start_positions`/`end_positions` for `datasets.Dataset.map(batched=True)`.

    Every window is kept, including all windows of unanswerable questions and windows that miss the answer: both
    point at the CLS token, which is how SQuAD 2.0 models learn to abstain. Only the first answer is used since the
    loss takes a single span. Offsets and the sample mapping are dropped so `set_format("torch")` hands the model
    nothing its forward rejects; one example yields several rows, so map with `remove_columns=dataset.column_names`.
    """
    encoding, context_index = _tokenize_windows(examples, tokenizer, max_seq_length, doc_stride)
    start_positions: list[int] = []
    end_positions: list[int] = []
    for window, sample in enumerate(encoding["overflow_to_sample_mapping"]):
        cls_index = _cls_index(encoding["input_ids"][window], tokenizer)
        char_span = _answer_char_span(examples["context"][sample], examples["answers"][sample])
        token_span = (
            None
            if char_span is None
            else _window_token_span(
                encoding["offset_mapping"][window], encoding.sequence_ids(window), context_index, *char_span
            )
        )
        start, end = token_span if token_span is not None else (cls_index, cls_index)
        start_positions.append(start)
        end_positions.append(end)
    features = _model_inputs(encoding)
    features["start_positions"] = start_positions
    features["end_positions"] = end_positions
    return features


def prepare_eval_features(
    examples: dict[str, list],
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int = MAX_SEQ_LENGTH,
    doc_stride: int = DOC_STRIDE,
) -> dict[str, list]:
    """Evaluation windows with what post-processing needs to map logits back to text.

    `example_id` ties each window to its example; `offset_mapping` is None outside the context so that
    post-processing can never pick a question, special or padding token as part of an answer.
    """
    encoding, context_index = _tokenize_windows(examples, tokenizer, max_seq_length, doc_stride)
    example_ids: list[str] = []
    offset_mapping: list[list[tuple[int, int] | None]] = []
    for window, sample in enumerate(encoding["overflow_to_sample_mapping"]):
        example_ids.append(examples["id"][sample])
        offset_mapping.append(
            [
                offset if sequence == context_index else None
                for offset, sequence in zip(
                    encoding["offset_mapping"][window], encoding.sequence_ids(window), strict=True
                )
            ]
        )
    features = _model_inputs(encoding)
    features["example_id"] = example_ids
    features["offset_mapping"] = offset_mapping
    return features


def _arrow_column(dataset: Dataset, name: str) -> pa.Array:
    """A column as one Arrow array in the dataset's current row order (respecting `select`/`shuffle`), read
    without converting every value into a Python object."""
    return dataset.with_format("arrow")[name].combine_chunks()


def _offset_arrays(features: Dataset, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(num_features, width) arrays: whether a position is a context token, and its start and end characters.

    Positions beyond a feature's length, or beyond `width` (the logits' length), are never in context, so padded
    logits are ignored whatever value the caller padded with.
    """
    offsets = _arrow_column(features, "offset_mapping").cast(pa.list_(pa.list_(pa.int64())))
    lengths = pc.list_value_length(offsets).to_numpy(zero_copy_only=False).astype(np.int64)
    pairs = offsets.flatten()
    rows = np.repeat(np.arange(len(lengths)), lengths)
    positions = np.arange(len(pairs)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    keep = positions < width
    rows, positions = rows[keep], positions[keep]
    in_context = np.zeros((len(lengths), width), dtype=bool)
    start_chars = np.zeros((len(lengths), width), dtype=np.int64)
    end_chars = np.zeros((len(lengths), width), dtype=np.int64)
    in_context[rows, positions] = pairs.is_valid().to_numpy(zero_copy_only=False)[keep]
    start_chars[rows, positions] = pc.list_element(pairs, 0).fill_null(0).to_numpy()[keep]
    end_chars[rows, positions] = pc.list_element(pairs, 1).fill_null(0).to_numpy()[keep]
    return in_context, start_chars, end_chars


def _top_k_positions(scores: np.ndarray, k: int) -> np.ndarray:
    """(rows, k) positions of the k largest scores per row, in ascending position order.

    `np.partition` alone leaves ties at the k-th value to chance; taking every score above the k-th value and then
    the lowest positions among those equal to it makes the choice deterministic.
    """
    kth_largest = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth_largest
    tied = scores == kth_largest
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
    return np.nonzero(chosen)[1].reshape(len(scores), k)


def _best_span_per_feature(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    in_context: np.ndarray,
    n_best_size: int,
    max_answer_length: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best span score, start and end token of every feature at once (-inf score when a feature has no valid span).

    All (k x k) start/end candidate pairs of all features are scored in one (num_features, k, k) array. Ties go to
    the smallest start and then the smallest end position, because `argmax` returns the first maximum and both
    candidate axes are in ascending position order.
    """
    num_features, width = start_logits.shape
    k = min(n_best_size, width)
    start_scores = np.where(in_context, start_logits, -np.inf)
    end_scores = np.where(in_context, end_logits, -np.inf)
    start_top = _top_k_positions(start_scores, k)
    end_top = _top_k_positions(end_scores, k)
    rows = np.arange(num_features)[:, None]
    lengths = end_top[:, None, :] - start_top[:, :, None] + 1
    allowed = (
        in_context[rows, start_top][:, :, None]
        & in_context[rows, end_top][:, None, :]
        & (lengths >= 1)
        & (lengths <= max_answer_length)
    )
    pair_scores = start_scores[rows, start_top][:, :, None] + end_scores[rows, end_top][:, None, :]
    pair_scores = np.where(allowed, pair_scores, -np.inf).reshape(num_features, k * k)
    best = pair_scores.argmax(axis=1)
    features = np.arange(num_features)
    return pair_scores[features, best], start_top[features, best // k], end_top[features, best % k]


def _example_index_of_features(examples: Dataset, features: Dataset) -> np.ndarray:
    example_ids = _arrow_column(examples, "id").to_numpy(zero_copy_only=False).astype(str)
    feature_ids = _arrow_column(features, "example_id").to_numpy(zero_copy_only=False).astype(str)
    if example_ids.size == 0:
        raise ValueError("features were given without any examples")
    if np.unique(example_ids).size != example_ids.size:
        raise ValueError("example ids must be unique to map features back to their examples")
    sorter = np.argsort(example_ids, kind="stable")
    found = np.searchsorted(example_ids, feature_ids, sorter=sorter)
    index = sorter[np.minimum(found, example_ids.size - 1)]
    if not np.array_equal(example_ids[index], feature_ids):
        raise ValueError("some features have an example_id that is not among the examples' ids")
    return index


def postprocess_predictions(
    examples: Dataset,
    features: Dataset,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int = N_BEST_SIZE,
    max_answer_length: int = MAX_ANSWER_LENGTH,
    null_score_diff_threshold: float = 0.0,
) -> tuple[dict[str, str], dict[str, float]]:
    """Turn start/end logits of evaluation windows into `(predictions, null_odds)` keyed by example id.

    These are the predictions file and the na-prob file of the official SQuAD 2.0 evaluation script; the answers
    are those of `answer_windows`.
    """
    answers = answer_windows(
        examples,
        features,
        start_logits,
        end_logits,
        n_best_size=n_best_size,
        max_answer_length=max_answer_length,
        null_score_diff_threshold=null_score_diff_threshold,
    )
    return dict(zip(answers.ids, answers.texts(), strict=True)), answers.null_odds_by_id()


class Answers(NamedTuple):
    """Per example, in the examples' order: its best span (text and character offsets), null odds, and whether it
    is answered at the threshold. Offsets mean nothing where `best_texts` is "" because no window had a span."""

    ids: list[str]
    best_texts: list[str]
    start_chars: np.ndarray
    end_chars: np.ndarray
    null_odds: np.ndarray
    answered: np.ndarray

    def texts(self) -> list[str]:
        """The answers at the threshold: the best span, or "" where the model abstains."""
        return [
            text if answered else ""
            for text, answered in zip(self.best_texts, self.answered.tolist(), strict=True)
        ]

    def null_odds_by_id(self) -> dict[str, float]:
        return dict(zip(self.ids, self.null_odds.tolist(), strict=True))


def apply_null_threshold(spans: Spans, null_score_diff_threshold: float) -> np.ndarray:
    """Which examples are answered: those with a valid span unless the null score beats it by more than the
    threshold. The one abstention rule of evaluation, predict and the pipeline, so all three give the same answers."""
    return spans.has_span & ~(spans.null_odds > null_score_diff_threshold)


def answer_windows(
    examples: Dataset,
    features: Dataset,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    *,
    n_best_size: int = N_BEST_SIZE,
    max_answer_length: int = MAX_ANSWER_LENGTH,
    null_score_diff_threshold: float = 0.0,
) -> Answers:
    """Answer the examples (`id`, `context`) from the start/end logits of their windows (`example_id`,
    `offset_mapping`, as `prepare_eval_features` cuts them), abstaining by `apply_null_threshold`.

    An example's best span is searched over all its windows; its null score is the minimum over windows of the
    score at position 0 (the CLS token of BERT-style tokenizers), since one window that sees the answer is enough to
    make the question answerable. It abstains when `null_score - best_span_score > null_score_diff_threshold`. The
    top `n_best_size` starts and ends are taken among context tokens only, so question, special and padding tokens
    cannot crowd real candidates out. Logits must be aligned with each feature's tokens (position i is
    `offset_mapping[i]`); anything past a feature's length is ignored. Scores are computed in float64. Ties go to the
    earliest window, then the earliest start, then the earliest end. An example without any valid span abstains
    with null odds `NO_SPAN_NULL_ODDS`.
    """
    start_logits = np.asarray(start_logits, dtype=np.float64)
    end_logits = np.asarray(end_logits, dtype=np.float64)
    if start_logits.ndim != 2 or start_logits.shape != end_logits.shape or start_logits.shape[1] == 0:
        raise ValueError(
            f"expected two (num_features, seq_len) arrays, got {start_logits.shape} and {end_logits.shape}"
        )
    if len(start_logits) != len(features):
        raise ValueError(f"got logits for {len(start_logits)} features but {len(features)} features")
    if n_best_size < 1 or max_answer_length < 1:
        raise ValueError("n_best_size and max_answer_length must be at least 1")
    windows = window_spans(features, start_logits, end_logits, n_best_size, max_answer_length)
    return answers_from_windows(examples, features, windows, null_score_diff_threshold)


def answers_from_windows(
    examples: Dataset, features: Dataset, windows: WindowSpans, null_score_diff_threshold: float
) -> Answers:
    """`answer_windows` from each window's best span and null score (`window_spans`), however they were
    computed: all at once, or batch by batch in evaluation (`reduce_outputs`)."""
    if len(features) == 0:
        if len(examples) != 0:
            raise ValueError(f"{len(examples)} examples have no features")
        nothing = np.zeros(0)
        return Answers(
            [], [], nothing.astype(np.int64), nothing.astype(np.int64), nothing, nothing.astype(bool)
        )
    spans = example_spans(examples, features, windows)
    contexts = _arrow_column(examples, "context").to_pylist()
    best_texts = [
        context[start:end] if has_span else ""
        for context, has_span, start, end in zip(
            contexts,
            spans.has_span.tolist(),
            spans.start_chars.tolist(),
            spans.end_chars.tolist(),
            strict=True,
        )
    ]
    return Answers(
        ids=_arrow_column(examples, "id").to_pylist(),
        best_texts=best_texts,
        start_chars=spans.start_chars,
        end_chars=spans.end_chars,
        null_odds=spans.null_odds,
        answered=apply_null_threshold(spans, null_score_diff_threshold),
    )


class Spans(NamedTuple):
    """Per example, in the examples' order: its best span's character offsets and null odds."""

    start_chars: np.ndarray
    end_chars: np.ndarray
    null_odds: np.ndarray
    has_span: np.ndarray


class WindowSpans(NamedTuple):
    """Per window: its best span's score and character offsets (score -inf where it has none) and its null score,
    all that the choice of an example's answer reads of a window."""

    span_scores: np.ndarray
    start_chars: np.ndarray
    end_chars: np.ndarray
    null_scores: np.ndarray


def window_spans(
    features: Dataset,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int,
    max_answer_length: int,
) -> WindowSpans:
    """Each window's best span among its `n_best_size` best starts and ends, and its null score (in float64)."""
    start_logits = np.asarray(start_logits, dtype=np.float64)
    end_logits = np.asarray(end_logits, dtype=np.float64)
    in_context, start_chars, end_chars = _offset_arrays(features, start_logits.shape[1])
    span_scores, span_starts, span_ends = _best_span_per_feature(
        start_logits, end_logits, in_context, n_best_size, max_answer_length
    )
    rows = np.arange(len(span_scores))
    return WindowSpans(
        span_scores=span_scores,
        start_chars=start_chars[rows, span_starts],
        end_chars=end_chars[rows, span_ends],
        null_scores=start_logits[:, 0] + end_logits[:, 0],
    )


def choose_spans(
    examples: Dataset,
    features: Dataset,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best_size: int,
    max_answer_length: int,
) -> Spans:
    """The vectorised span search behind `answer_windows`: each example's best span and null odds, before any threshold."""
    windows = window_spans(features, start_logits, end_logits, n_best_size, max_answer_length)
    return example_spans(examples, features, windows)


def example_spans(examples: Dataset, features: Dataset, windows: WindowSpans) -> Spans:
    """Each example's best span over its windows (ties to the earliest window) and its null odds: the minimum null
    score over its windows minus that span's score."""
    span_scores = windows.span_scores
    feature_examples = _example_index_of_features(examples, features)
    order = np.lexsort((np.arange(len(features)), -span_scores, feature_examples))
    grouped_examples = feature_examples[order]
    group_starts = np.flatnonzero(np.r_[True, grouped_examples[1:] != grouped_examples[:-1]])
    if group_starts.size != len(examples):
        raise ValueError(f"{len(examples) - group_starts.size} examples have no features")
    best_features = order[group_starts]
    example_null = np.minimum.reduceat(windows.null_scores[order], group_starts)
    example_best = span_scores[best_features]
    has_span = example_best > -np.inf
    null_odds = np.full(len(examples), NO_SPAN_NULL_ODDS)
    null_odds[has_span] = example_null[has_span] - example_best[has_span]
    return Spans(
        start_chars=windows.start_chars[best_features],
        end_chars=windows.end_chars[best_features],
        null_odds=null_odds,
        has_span=has_span,
    )


def reduce_outputs(outputs: dict[str, np.ndarray], features: Dataset, config: Any) -> dict[str, np.ndarray]:
    """One batch of windows' start and end logits reduced to four numbers a window (`window_spans`: the best of
    its `n_best_size` x `n_best_size` candidates, and its null score), which is all `score` reads of it: a split
    costs a few numbers per window, not two logits per token. Examples are answered from these once every window
    is in (`example_spans`), since a window of an example can come in any batch (longest first)."""
    windows = window_spans(
        features,
        outputs["start_logits"],
        outputs["end_logits"],
        config.n_best_size,
        config.max_answer_length,
    )
    return windows._asdict()


def prepare(dataset: Dataset, tokenizer: PreTrainedTokenizerBase, config: Any, training: bool) -> Dataset:
    return map_batches(
        dataset,
        prepare_train_features if training else prepare_eval_features,
        fn_kwargs={
            "tokenizer": tokenizer,
            "max_seq_length": config.max_seq_length,
            "doc_stride": config.doc_stride,
        },
        remove_columns=dataset.column_names,
        desc="Cutting contexts into windows",
        num_proc=getattr(config, "preprocessing_num_workers", None),
    )


def score(
    raw: Dataset,
    features: Dataset,
    outputs: dict[str, np.ndarray],
    label_names: list[str] | None,
    config: Any,
) -> Scored:
    """The official SQuAD 2.0 figures at `config.null_score_diff_threshold`, plus the best thresholds.

    The metric gets every example's best span and its null odds, so it can search the threshold itself; the
    predictions written out are those at the configured threshold, the same rule the metric applies.
    """
    threshold = config.null_score_diff_threshold
    answers = answers_from_windows(raw, features, WindowSpans(**outputs), threshold)
    null_odds = answers.null_odds_by_id()
    best_spans = dict(zip(answers.ids, answers.best_texts, strict=True))
    metrics = dict(evaluate_examples(raw, best_spans, null_odds, na_prob_thresh=threshold))
    metrics["null_score_diff_threshold"] = threshold
    confidence = abstention_confidence(answers, raw, threshold)
    metrics["abstain_ece"] = ece_figure(confidence)
    predictions = dict(zip(answers.ids, answers.texts(), strict=True))

    def write_predictions(output_dir: Path, split: str) -> list[Path]:
        prefix = "" if split == "eval" else f"{split}_"
        paths = [output_dir / f"{prefix}predictions.json", output_dir / f"{prefix}null_odds.json"]
        return [write_json(paths[0], predictions), write_json(paths[1], null_odds)]

    return Scored(
        metrics=metrics, predictions=predictions, write_predictions=write_predictions, confidence=confidence
    )


def abstention_confidence(answers: Answers, raw: Dataset, threshold: float) -> Confidence:
    """The answer/abstain decision as a two-class prediction: P(answer) = sigmoid(threshold - null odds), so the
    decision's own confidence is above 0.5 exactly when the threshold rule makes it; it is right when the model
    answers a question that has an answer or abstains on one that has none (whatever the span's words)."""
    probability = 1.0 / (1.0 + np.exp(np.clip(answers.null_odds - threshold, -500, 500)))
    answerable = np.array([len(answer["text"]) > 0 for answer in raw["answers"]], dtype=bool)
    return Confidence(
        confidences=np.where(answers.answered, probability, 1.0 - probability),
        correct=answers.answered == answerable,
        about="answering or abstaining",
    )


def check_window_room(raw: DatasetDict, tokenizer: PreTrainedTokenizerBase, config: Any) -> None:
    """Every window holds the whole question, the special tokens and more context than the stride overlaps; a
    question too long for that makes the tokenizer panic mid-`map`, so the longest one is found first."""
    length = min(config.max_seq_length, tokenizer.model_max_length)
    if config.doc_stride >= length:
        raise ValueError(f"--doc_stride {config.doc_stride}: expected less than --max_seq_length {length}")
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    for split, examples in raw.items():
        questions = [question.lstrip() for question in examples["question"]]
        sizes = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
        if not sizes:
            continue
        longest = int(np.argmax(sizes))
        if length - sizes[longest] - specials <= config.doc_stride:
            raise ValueError(
                f"--max_seq_length {length} leaves no room for the context of question "
                f"{examples[longest]['id']!r} ({split}: {sizes[longest]} tokens + {specials} special ones, and "
                f"--doc_stride {config.doc_stride}): expected more than "
                f"{sizes[longest] + specials + config.doc_stride}, or a smaller --doc_stride"
            )


NULL_THRESHOLD_PRIOR = 50_000
"""How many validation questions the default threshold 0 is worth when the tuned one is shrunk toward it."""


def shrunk_null_threshold(best: float, questions: int, prior: int = NULL_THRESHOLD_PRIOR) -> float:
    """The validation split's best-F1 threshold pulled toward 0 as `best * n / (n + prior)` for n questions.

    The best-F1 threshold is the argmax of a flat, noisy curve: on a few hundred questions it lands far from where
    the test split's best lies, and moves the operating point more than it gains. Shrinking it in proportion to
    the evidence keeps small validation splits at the model's own decision (0: answer when the best span beats the
    null score) and lets only a large one move it far. The prior is measured, not guessed: with the embedded model
    trained on 11 of the shared SQuAD 2.0 articles, tuned on 2 of the 5 others and scored on the remaining 3, in
    all 10 ways (`benchmarks/squad_null_threshold.py`), the unshrunk threshold lost 1.05 F1 to 0 on average and up
    to 7.3, a prior of 2,000 still 0.19 on average, and 50,000 nothing in any of the 10.
    """
    return float(best) * questions / (questions + prior) if questions > 0 else 0.0


def calibrate(config: Any, validation_metrics: dict[str, Any]) -> dict[str, Any]:
    """The null threshold later splits are scored at and the saved model answers with: the one that maximised
    validation F1, shrunk toward 0 by the validation size (`shrunk_null_threshold`), unless the user fixed one
    (`--tune_null_threshold false`)."""
    if config.tune_null_threshold:
        best, questions = validation_metrics["best_f1_thresh"], int(validation_metrics["total"])
        return {"null_score_diff_threshold": shrunk_null_threshold(best, questions)}
    return {"null_score_diff_threshold": float(config.null_score_diff_threshold)}


def analyse(
    out: Path, split: str, scored: Scored, raw: Dataset | None, label_names: list[str] | None
) -> list[Written]:
    """Exact match and F1 by answerability and by context length, as a chart and a table."""
    if raw is None:
        raise ValueError("question-answering analysis needs the raw split (gold answers and contexts)")
    breakdown = qa_breakdown(raw, scored.predictions)
    data = write_json(out / f"{split}_qa_breakdown.json", breakdown)
    chart = save_figure(_plot_qa(breakdown, split), out / f"{split}_qa_breakdown.png")
    caption = (
        f"Exact match and F1 on {split_words(split)} by answerability and by context length in words "
        "(n: questions)."
    )
    return [Written(chart, caption), Written(data, caption)]


def _question_scores(golds: list[str], prediction: str) -> tuple[int, float]:
    """Exact and F1 against the best gold answer; golds that normalise to nothing count as "", as in the official
    script, so an unanswerable question scores 1 exactly when the prediction is empty."""
    golds = [g for g in golds if normalize_answer(g)] or [""]
    return max(compute_exact(g, prediction) for g in golds), max(compute_f1(g, prediction) for g in golds)


def context_buckets() -> list[str]:
    """The bucket names, shortest contexts first: "0-99 words", ..., "400+ words"."""
    lowers = (0, *CONTEXT_WORD_BUCKETS)
    closed = [
        f"{lower}-{upper - 1} words" for lower, upper in zip(lowers, CONTEXT_WORD_BUCKETS, strict=False)
    ]
    return [*closed, f"{lowers[-1]}+ words"]


def _context_bucket(context: str) -> str:
    return context_buckets()[bisect.bisect_right(CONTEXT_WORD_BUCKETS, len(context.split()))]


def qa_breakdown(raw: Dataset, predictions: dict[str, str]) -> dict[str, dict[str, dict[str, float]]]:
    """Exact match and F1 (percent, as the official script reports them) and question counts per group."""
    groups: dict[str, dict[str, list[tuple[int, float]]]] = {
        "answerability": defaultdict(list),
        "context_length": defaultdict(list),
    }
    for example in raw.select_columns(["id", "context", "answers"]):
        golds = example["answers"]["text"]
        scores = _question_scores(golds, predictions[example["id"]])
        groups["answerability"]["answerable" if golds else "unanswerable"].append(scores)
        groups["context_length"][_context_bucket(example["context"])].append(scores)
    return {
        "answerability": _summaries(groups["answerability"], ["answerable", "unanswerable"]),
        "context_length": _summaries(groups["context_length"], context_buckets()),
    }


def _summaries(groups: dict[str, list[tuple[int, float]]], order: list[str]) -> dict[str, dict[str, float]]:
    return {
        name: {
            "questions": len(groups[name]),
            "exact": 100.0 * sum(e for e, _ in groups[name]) / len(groups[name]),
            "f1": 100.0 * sum(f for _, f in groups[name]) / len(groups[name]),
        }
        for name in order
        if groups.get(name)
    }


def _plot_qa(breakdown: dict[str, dict[str, dict[str, float]]], split: str) -> Figure:
    figure = Figure(figsize=(10, 4), layout="constrained")
    all_axes = figure.subplots(1, 2, sharey=True)
    for axes, (group, groups) in zip(all_axes, breakdown.items(), strict=True):
        names = list(groups)
        positions = np.arange(len(names))
        for i, metric in enumerate(("exact", "f1")):
            bars = axes.bar(
                positions + (i - 0.5) * 0.4, [groups[n][metric] for n in names], 0.4, label=metric
            )
            axes.bar_label(bars, fmt="%.0f", fontsize=8)
        axes.set_xticks(positions, [f"{n}\n(n={groups[n]['questions']})" for n in names])
        axes.set_title(f"By {group.replace('_', ' ')}")
    all_axes[0].set_ylim(0, 105)
    all_axes[0].set_ylabel("percent")
    all_axes[-1].legend()
    figure.suptitle(f"Question answering, {split_words(split)}")
    return figure


def predict_answers(
    model: str, questions: list[dict[str, Any]], settings: Settings
) -> Iterator[dict[str, Any]]:
    tokenizer = AutoTokenizer.from_pretrained(model)
    _check_context_room(tokenizer, questions, settings)
    network = load_network(AutoModelForQuestionAnswering, model, settings)
    network = network.to(settings.device).eval()
    for batch in batches(questions, settings.batch_size, "question"):
        yield from _answer(network, tokenizer, batch, settings)


def _check_context_room(
    tokenizer: PreTrainedTokenizerBase, questions: list[dict[str, Any]], settings: Settings
) -> None:
    """Every window must hold more context tokens than `doc_stride`: otherwise the tokenizer panics with an
    exception that is not an `Exception`, and a too long question would never get a window at all."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    encoded = tokenizer([q["question"].lstrip() for q in questions], add_special_tokens=False)["input_ids"]
    for question, ids in zip(questions, encoded, strict=True):
        room = settings.max_seq_length - specials - len(ids)
        if room <= settings.doc_stride:
            raise ValueError(
                f"question {question['id']}: with its {len(ids)} tokens, --max_seq_length "
                f"{settings.max_seq_length} leaves {room} tokens of context per window, which must be more "
                f"than --doc_stride {settings.doc_stride}"
            )


def _answer(
    network: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    batch: list[dict[str, Any]],
    settings: Settings,
) -> Iterator[dict[str, Any]]:
    """Answer a batch of questions: their windows through the model, then evaluation's span search."""
    examples = {key: [q[key] for q in batch] for key in ("id", "question", "context")}
    features = prepare_eval_features(examples, tokenizer, settings.max_seq_length, settings.doc_stride)
    start_logits, end_logits = _span_logits(network, tokenizer, features, settings)
    answers = answer_windows(
        Dataset.from_dict(examples),
        Dataset.from_dict(
            {"example_id": features["example_id"], "offset_mapping": features["offset_mapping"]}
        ),
        start_logits,
        end_logits,
        n_best_size=settings.n_best_size,
        max_answer_length=settings.max_answer_length,
        null_score_diff_threshold=settings.null_score_diff_threshold,
    )
    for i, question in enumerate(batch):
        answered = bool(answers.answered[i])
        yield {
            "id": question["id"],
            "answer": answers.best_texts[i] if answered else "",
            "start": int(answers.start_chars[i]) if answered else None,
            "end": int(answers.end_chars[i]) if answered else None,
            "null_odds": float(np.round(answers.null_odds[i], 6)),
        }


def _span_logits(
    network: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    features: dict[str, list],
    settings: Settings,
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits of every window, at most `batch_size` windows per forward pass: one long context
    has hundreds of windows, and a pass over all of them at once held gigabytes of attention scores.

    Every chunk is padded to the longest window of all, so each window's inputs are exactly those of a single
    pass and the joined logits have one width.
    """
    names = [name for name in tokenizer.model_input_names if name in features]
    longest = max(len(ids) for ids in features["input_ids"])
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    for first in range(0, len(features["input_ids"]), settings.batch_size):
        chunk = {name: features[name][first : first + settings.batch_size] for name in names}
        inputs = tokenizer.pad(chunk, padding="max_length", max_length=longest, return_tensors="pt")
        with torch.no_grad():
            outputs = network(**inputs.to(settings.device))
        starts.append(outputs.start_logits.double().cpu().numpy())
        ends.append(outputs.end_logits.double().cpu().numpy())
    return np.concatenate(starts), np.concatenate(ends)


USAGE = """transformers 5 removed its question-answering pipeline; the project that trained this model registers an
extractive one, with the same context windows and answer selection as the evaluation above:

```python
import processing  # rawtune's package: registers "extractive-question-answering"
from transformers import pipeline

qa = pipeline("extractive-question-answering", model="{model}")
qa(
    question="Where is the lake?",
    context="The lake lies north of the old town.",
    handle_impossible_answer=True,
    null_score_diff_threshold={threshold},
)
```"""
"""The model card's usage snippet (formatted with the model id and the tuned threshold)."""

TASK = Task(
    name="question-answering",
    pipeline_tag="question-answering",
    default_max_seq_length=MAX_SEQ_LENGTH,
    group_column=("title", "context"),
    label_column=None,
    label_names=lambda features: None,
    load_model=lambda name_or_path, label_names, use_safetensors=True: load_pretrained(
        AutoModelForQuestionAnswering, name_or_path, use_safetensors=use_safetensors
    ),
    prepare=prepare,
    collator=lambda tokenizer, multiple: DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple),
    output_names=("start_logits", "end_logits"),
    reduce_outputs=reduce_outputs,
    score=score,
    calibrate=calibrate,
    tuning=Tuning("null_score_diff_threshold", "tune_null_threshold", "the no-answer threshold"),
    check=check_window_room,
    analyse=analyse,
    best_model_metrics=tuple(
        Metric(name)
        for name in (
            "f1",
            "exact",
            "best_f1",
            "best_exact",
            "HasAns_f1",
            "HasAns_exact",
            "NoAns_f1",
            "NoAns_exact",
        )
    ),
    card_metrics=(
        ("exact", "exact_match", "Exact match (SQuAD 2.0, %)"),
        ("f1", "f1", "F1 (SQuAD 2.0, %)"),
    ),
    card_settings=(
        "doc_stride",
        "n_best_size",
        "max_answer_length",
        "null_score_diff_threshold",
        "tune_null_threshold",
    ),
    usage=USAGE,
    card_note=(
        "SQuAD 2.0 figures are percents (official evaluation script). A tuned no-answer threshold is the "
        f"validation split's best_f1_thresh shrunk toward 0 by its size (n / (n + {NULL_THRESHOLD_PRIOR}) of it for "
        "n questions), "
        "so a small validation split cannot move the operating point far; abstain_ece is the expected calibration "
        "error of the answer/abstain decision."
    ),
    architecture_suffix="ForQuestionAnswering",
    predict_input='SQuAD JSON: an object with a "data" list of articles, in a .json file or a folder of them',
    predict_format="squad",
    predict=predict_answers,
    keras_head="span",
    report_nouns=("question", "questions", "context"),
    cuts_windows=True,
)
