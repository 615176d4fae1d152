"""Token classification: word tags aligned to sub-tokens, per-word predictions and entity-level scoring, checked
on hand-built documents with the tiny tokenizer ("empire" -> e ##m ##p ##i ##r ##e; "john", "london", "city",
"in", "went", "to", "the" are single tokens)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, Features, Sequence, Value

from processing.tasks import score_outputs
from processing.token_classification import (
    IGNORE_INDEX,
    TASK,
    continuation_label_ids,
    entity_metrics,
    prepare,
    split_tag,
    tokenize_and_align_labels,
    word_predictions,
)

X = IGNORE_INDEX
NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
OUT, B_PER, I_PER, B_LOC, I_LOC = range(5)  # OUT is the id of "O"
EMPIRE = ["e", "##m", "##p", "##i", "##r", "##e"]
STATE = ["s", "##t", "##a", "##t", "##e"]


def _align(tokenizer, documents, max_seq_length=64, continuation_ids=None):
    examples = {"tokens": [words for words, _ in documents], "ner_tags": [tags for _, tags in documents]}
    return tokenize_and_align_labels(examples, tokenizer, max_seq_length, continuation_ids)


def _raw(documents) -> Dataset:
    features = Features(
        {
            "id": Value("string"),
            "tokens": Sequence(Value("string")),
            "ner_tags": Sequence(ClassLabel(names=NAMES)),
        }
    )
    return Dataset.from_dict(
        {
            "id": [str(i) for i in range(len(documents))],
            "tokens": [words for words, _ in documents],
            "ner_tags": [tags for _, tags in documents],
        },
        features=features,
    )


def _perfect_logits(features, wrong_on_ignored: int = B_PER) -> np.ndarray:
    """Logits, padded to one length, that predict each label where it is set and `wrong_on_ignored` elsewhere."""
    length = max(len(labels) for labels in features["labels"])
    logits = np.zeros((len(features), length, len(NAMES)), dtype=np.float32)
    for row, labels in enumerate(features["labels"]):
        for position, label in enumerate(labels):
            logits[row, position, wrong_on_ignored if label == X else label] = 5.0
    return logits


EMPIRE_STATE = (["empire", "state", "in", "london"], [B_LOC, I_LOC, OUT, B_LOC])


def test_first_sub_token_carries_the_tag(tiny_tokenizer):
    encoding = _align(tiny_tokenizer, [EMPIRE_STATE])
    tokens = tiny_tokenizer.convert_ids_to_tokens(encoding["input_ids"][0])
    assert tokens == ["[CLS]", *EMPIRE, *STATE, "in", "london", "[SEP]"]
    assert encoding["labels"][0] == [X, B_LOC, X, X, X, X, X, I_LOC, X, X, X, X, OUT, B_LOC, X]
    assert encoding["word_ids"][0] == [-1, *[0] * 6, *[1] * 5, 2, 3, -1]


def test_continuation_label_ids_maps_b_to_i():
    assert continuation_label_ids(NAMES) == [OUT, I_PER, I_PER, I_LOC, I_LOC]
    # Order-independent, and a B- tag with no matching I- tag stays itself.
    assert continuation_label_ids(["O", "B-PER", "B-LOC", "I-LOC", "I-PER", "B-MISC"]) == [0, 4, 3, 3, 4, 5]


def test_every_sub_token_labelled_with_continuation_ids(tiny_tokenizer):
    encoding = _align(tiny_tokenizer, [EMPIRE_STATE], continuation_ids=continuation_label_ids(NAMES))
    assert encoding["labels"][0] == [X, B_LOC, *[I_LOC] * 5, *[I_LOC] * 5, OUT, B_LOC, X]
    assert encoding["word_ids"][0] == [-1, *[0] * 6, *[1] * 5, 2, 3, -1]


@pytest.mark.parametrize(
    ("continuation", "expected"),
    [(None, [X, B_PER, B_LOC, X, X, X]), (continuation_label_ids(NAMES), [X, B_PER, B_LOC, I_LOC, I_LOC, X])],
)
def test_truncation_mid_word(tiny_tokenizer, continuation, expected):
    document = (["john", "empire", "london"], [B_PER, B_LOC, B_LOC])
    encoding = _align(tiny_tokenizer, [document], max_seq_length=6, continuation_ids=continuation)
    tokens = tiny_tokenizer.convert_ids_to_tokens(encoding["input_ids"][0])
    assert tokens == ["[CLS]", "john", "e", "##m", "##p", "[SEP]"]
    assert encoding["labels"][0] == expected
    assert encoding["word_ids"][0] == [-1, 0, 1, 1, 1, -1]


def test_document_longer_than_max_seq_length(tiny_tokenizer):
    long_document = (["empire"] * 20, [B_LOC, *[I_LOC] * 19])
    short_document = (["john", "went", "to", "london"], [B_PER, OUT, OUT, B_LOC])
    encoding = _align(tiny_tokenizer, [long_document, short_document], max_seq_length=16)
    assert [len(ids) for ids in encoding["input_ids"]] == [16, 6]
    assert encoding["word_ids"][0] == [-1, *[0] * 6, *[1] * 6, 2, 2, -1]
    assert encoding["labels"][0] == [X, B_LOC, *[X] * 5, I_LOC, *[X] * 5, I_LOC, X, X]
    assert encoding["word_ids"][1] == [-1, 0, 1, 2, 3, -1]
    assert encoding["labels"][1] == [X, B_PER, OUT, OUT, B_LOC, X]


def test_word_predictions_read_first_sub_token_and_fill_lost_words_with_o():
    word_ids = [-1, 0, 0, 1, 2, 2, -1]
    # Padded past the document: the positions after the last word id are never read.
    token_predictions = np.array([4, 3, 4, 0, 1, 2, 4, 4, 4])
    assert word_predictions(word_ids, token_predictions, num_words=5) == [3, 0, 1, 0, 0]


def test_entity_metrics_hand_computed():
    true = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-LOC", "I-LOC", "O", "O"]]
    # PER right; LOC predicted as PER (wrong type); LOC span cut short (partial); ORG invented (extra).
    predicted = [["B-PER", "I-PER", "O", "B-PER", "O"], ["B-LOC", "O", "O", "B-ORG"]]
    metrics = entity_metrics(true, predicted)
    # 3 true entities, 4 predicted, 1 correct.
    assert metrics["precision"] == pytest.approx(1 / 4)
    assert metrics["recall"] == pytest.approx(1 / 3)
    assert metrics["f1"] == pytest.approx(2 / 7)
    assert metrics["per_type"]["PER"] == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "number": 1}
    )
    assert metrics["per_type"]["LOC"] == pytest.approx(
        {"precision": 0.0, "recall": 0.0, "f1": 0.0, "number": 2}
    )
    assert metrics["per_type"]["ORG"]["precision"] == 0.0
    assert metrics["per_type"]["ORG"]["number"] == 0
    assert set(metrics["per_type"]) == {"PER", "LOC", "ORG"}


def test_entity_metrics_perfect():
    tags = [["B-PER", "I-PER", "O"], ["O", "B-LOC"]]
    metrics = entity_metrics(tags, tags)
    assert (metrics["precision"], metrics["recall"], metrics["f1"]) == (1.0, 1.0, 1.0)
    assert metrics["per_type"]["LOC"]["number"] == 1


def test_entity_counts_per_document_give_seqeval_report_figures_exactly():
    from seqeval.metrics import classification_report

    rng = np.random.default_rng(0)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "I-MISC"]  # I- without B- too
    true = [list(rng.choice(tags[:5], size=n)) for n in rng.integers(0, 12, size=200)]
    predicted = [list(rng.choice(tags, size=len(doc))) for doc in true]  # ORG and MISC only predicted

    metrics = entity_metrics(true, predicted)

    report = classification_report(true, predicted, output_dict=True, zero_division=0)
    assert (metrics["precision"], metrics["recall"], metrics["f1"]) == (
        report["micro avg"]["precision"],
        report["micro avg"]["recall"],
        report["micro avg"]["f1-score"],
    )
    assert set(metrics["per_type"]) == {"PER", "LOC", "ORG", "MISC"}
    for kind, figures in metrics["per_type"].items():
        expected = report[kind]
        assert figures == {
            "precision": expected["precision"],
            "recall": expected["recall"],
            "f1": expected["f1-score"],
            "number": expected["support"],
        }


TRUNCATED_DOCUMENTS = [
    # At max_seq_length 6, "london" is cut off: [CLS] john e ##m ##p [SEP].
    (["john", "empire", "london"], [B_PER, OUT, B_LOC]),
    (["london", "city"], [B_LOC, I_LOC]),
]


@pytest.mark.parametrize(("max_seq_length", "recall"), [(64, 1.0), (6, 2 / 3)])
def test_score_counts_truncated_entities_as_missed(tiny_tokenizer, max_seq_length, recall):
    raw = _raw(TRUNCATED_DOCUMENTS)
    config = SimpleNamespace(max_seq_length=max_seq_length, label_all_tokens=False)
    features = prepare(raw, tiny_tokenizer, config, False)
    scored = score_outputs(TASK, raw, features, {"logits": _perfect_logits(features)}, NAMES, config)
    assert scored.metrics["precision"] == 1.0
    assert scored.metrics["recall"] == pytest.approx(recall)
    assert scored.metrics["f1"] == pytest.approx(2 * recall / (1 + recall))
    assert scored.metrics["per_type"]["LOC"]["number"] == 2
    assert scored.metrics["per_type"]["LOC"]["recall"] == pytest.approx(1.0 if recall == 1.0 else 0.5)


def test_score_writes_predictions_jsonl(tmp_path, tiny_tokenizer):
    raw = _raw(TRUNCATED_DOCUMENTS)
    config = SimpleNamespace(max_seq_length=6, label_all_tokens=False)
    features = prepare(raw, tiny_tokenizer, config, False)
    scored = score_outputs(TASK, raw, features, {"logits": _perfect_logits(features)}, NAMES, config)
    paths = scored.write_predictions(tmp_path, "eval")
    assert paths == [tmp_path / "eval_predictions.jsonl"]
    rows = [json.loads(line) for line in paths[0].read_text(encoding="utf-8").splitlines()]
    assert rows == [
        {
            "id": "0",
            "tokens": ["john", "empire", "london"],
            "tags": ["B-PER", "O", "B-LOC"],
            "predicted": ["B-PER", "O", "O"],
        },
        {
            "id": "1",
            "tokens": ["london", "city"],
            "tags": ["B-LOC", "I-LOC"],
            "predicted": ["B-LOC", "I-LOC"],
        },
    ]


def test_prepare_drops_word_ids_only_for_training(tiny_tokenizer):
    raw = _raw([EMPIRE_STATE])
    config = SimpleNamespace(max_seq_length=64, label_all_tokens=False)
    base = ["attention_mask", "input_ids", "labels", "token_type_ids"]
    training = prepare(raw, tiny_tokenizer, config, True)
    evaluation = prepare(raw, tiny_tokenizer, config, False)
    assert sorted(training.column_names) == base
    assert sorted(evaluation.column_names) == sorted([*base, "word_ids"])
    assert evaluation[0]["word_ids"] == [-1, *[0] * 6, *[1] * 5, 2, 3, -1]
    assert training[0]["labels"] == evaluation[0]["labels"]
    assert training[0]["labels"][1:3] == [B_LOC, X]


def test_prepare_label_all_tokens_uses_continuation_ids(tiny_tokenizer):
    config = SimpleNamespace(max_seq_length=64, label_all_tokens=True)
    training = prepare(_raw([EMPIRE_STATE]), tiny_tokenizer, config, True)
    assert training[0]["labels"] == [X, B_LOC, *[I_LOC] * 10, OUT, B_LOC, X]


def test_split_tag_reads_bio_prefixes_and_leaves_other_tags_whole():
    assert [split_tag(t) for t in ["B-PER", "I-creative-work", "O", "LOC", "E-PER", "B-"]] == [
        ("B", "PER"),
        ("I", "creative-work"),
        (None, "O"),
        (None, "LOC"),
        (None, "E-PER"),
        ("B", ""),
    ]
