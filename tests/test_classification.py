"""Sequence classification: tokenization without padding, hand-computed metrics, predictions files and the
columns handed to the model, checked with the tiny tokenizer and a tiny random BERT."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from transformers import BertForSequenceClassification, DataCollatorWithPadding

from processing.classification import (
    TASK,
    balanced_class_weights,
    classification_metrics,
    confusion_matrix,
    prepare,
    score,
    tokenize_texts,
    weighted_cross_entropy,
)
from processing.tasks import model_inputs

LABEL_NAMES = ["neg", "pos"]
# "the", "movie", "was", "good" are whole tokens; "empire" splits into six letters.
TEXTS = ["the movie was good", "empire empire empire", "bad"]
LABELS = [1, 0, 0]


def _raw() -> Dataset:
    features = Features({"text": Value("string"), "label": ClassLabel(names=LABEL_NAMES)})
    return Dataset.from_dict({"text": TEXTS, "label": LABELS}, features=features)


def test_tokenize_texts_truncates_without_padding(tiny_tokenizer):
    encoding = tokenize_texts({"text": TEXTS, "label": LABELS}, tiny_tokenizer, max_seq_length=8)
    lengths = [len(ids) for ids in encoding["input_ids"]]
    # [CLS] the movie was good [SEP]; 18 letters cut to 8 with [SEP] kept; [CLS] bad [SEP].
    assert lengths == [6, 8, 3]
    assert all(len(mask) == n for mask, n in zip(encoding["attention_mask"], lengths, strict=True))
    assert all(set(mask) == {1} for mask in encoding["attention_mask"])
    assert tiny_tokenizer.pad_token_id not in {i for ids in encoding["input_ids"] for i in ids}
    assert encoding["input_ids"][1][-1] == tiny_tokenizer.sep_token_id
    assert tiny_tokenizer.convert_ids_to_tokens(encoding["input_ids"][1][1:7]) == list("e") + [
        "##" + c for c in "mpire"
    ]
    assert encoding["labels"] == LABELS
    assert "label" not in encoding


def test_confusion_matrix_rows_true_columns_predicted():
    labels = np.array([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 0])
    expected = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    np.testing.assert_array_equal(confusion_matrix(labels, predictions, 3), expected)


def test_classification_metrics_class_never_predicted_scores_zero():
    labels = np.array([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 0])
    metrics = classification_metrics(labels, predictions, 3)
    # F1 per class = 2 TP / (predicted + actual): class 0: 2/4, class 1: 4/5, class 2 (never predicted): 0.
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_classification_metrics_perfect_and_inverted_binary():
    labels = np.array([0, 1, 1, 0])
    assert classification_metrics(labels, labels, 2) == pytest.approx({"accuracy": 1.0, "f1": 1.0})
    assert classification_metrics(labels, 1 - labels, 2) == pytest.approx({"accuracy": 0.0, "f1": 0.0})


def test_classification_metrics_absent_class_is_averaged_as_zero():
    # Class 2 is neither present nor predicted: documented to score F1 0 and still count in the macro mean.
    labels = np.array([0, 1])
    metrics = classification_metrics(labels, labels, 3)
    assert metrics["accuracy"] == 1.0
    assert metrics["f1"] == pytest.approx(2 / 3)


def test_prepare_keeps_no_raw_columns(tiny_tokenizer):
    features = prepare(_raw(), tiny_tokenizer, SimpleNamespace(max_seq_length=16), False)
    assert sorted(features.column_names) == ["attention_mask", "input_ids", "labels", "token_type_ids"]
    assert features["labels"] == LABELS
    assert len(features[1]["input_ids"]) == 16
    assert len(features[2]["input_ids"]) == 3


def test_score_metrics_and_predictions_file(tmp_path, tiny_tokenizer):
    raw = _raw()
    features = prepare(raw, tiny_tokenizer, SimpleNamespace(max_seq_length=16), False)
    # Predictions: pos (right), pos (wrong), neg (tie -> first class; right).
    logits = np.array([[0.0, 2.0], [-1.0, 1.0], [0.5, 0.5]], dtype=np.float32)
    scored = score(raw, features, {"logits": logits}, LABEL_NAMES, SimpleNamespace())
    # Confusion [[1, 1], [0, 1]]: F1 neg = 2/3, F1 pos = 2/3.
    # ECE: two at confidence sigmoid(2) (one right) in bin 13, one at 0.5 (right) in bin 7.
    top = 1 / (1 + np.exp(-2.0))
    ece = 2 / 3 * abs(0.5 - top) + 1 / 3 * abs(1.0 - 0.5)
    assert scored.metrics == pytest.approx({"accuracy": 2 / 3, "f1": 2 / 3, "ece": round(ece, 6)})

    paths = scored.write_predictions(tmp_path, "test")
    assert paths == [tmp_path / "test_predictions.jsonl"]
    rows = [json.loads(line) for line in paths[0].read_text(encoding="utf-8").splitlines()]
    sigmoid2 = 1 / (1 + math.exp(-2))
    assert rows == [
        {"index": 0, "label": "pos", "predicted": "pos", "score": round(sigmoid2, 6)},
        {"index": 1, "label": "neg", "predicted": "pos", "score": round(sigmoid2, 6)},
        {"index": 2, "label": "neg", "predicted": "neg", "score": 0.5},
    ]


@pytest.fixture
def tiny_classifier(tiny_model_dir) -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2).eval()


def test_model_inputs_are_exactly_the_forward_arguments(tiny_tokenizer, tiny_classifier):
    features = prepare(_raw(), tiny_tokenizer, SimpleNamespace(max_seq_length=16), False)
    features = features.add_column("example_id", ["a", "b", "c"])
    base = ["input_ids", "token_type_ids", "attention_mask"]
    assert sorted(model_inputs(tiny_classifier, features, with_labels=True)) == sorted([*base, "labels"])
    assert sorted(model_inputs(tiny_classifier, features, with_labels=False)) == sorted(base)


@pytest.mark.parametrize("with_labels", [True, False])
def test_formatted_features_feed_the_model(tiny_tokenizer, tiny_classifier, with_labels):
    features = prepare(_raw(), tiny_tokenizer, SimpleNamespace(max_seq_length=16), False)
    features = features.add_column("example_id", ["a", "b", "c"])
    columns = model_inputs(tiny_classifier, features, with_labels=with_labels)
    formatted = features.with_format("torch", columns=columns)
    collator = TASK.collator(tiny_tokenizer, None)
    assert isinstance(collator, DataCollatorWithPadding)
    batch = collator([formatted[i] for i in range(len(formatted))])
    assert batch["input_ids"].shape == (3, 16)
    # Padding came from the collator: the short texts are masked past their own length.
    assert batch["attention_mask"].sum(dim=1).tolist() == [6, 16, 3]
    with torch.no_grad():
        output = tiny_classifier(**batch)
    assert output.logits.shape == (3, 2)
    if with_labels:
        assert batch["labels"].tolist() == LABELS
        assert torch.isfinite(output.loss)
    else:
        assert "labels" not in batch
        assert output.loss is None


def _pairs() -> Dataset:
    """The loaders' schema for sentence pairs: `text`, `text_pair`, `label`, and the file's `id` column."""
    features = Features(
        {
            "id": Value("string"),
            "text": Value("string"),
            "text_pair": Value("string"),
            "label": ClassLabel(names=["entailment", "contradiction"]),
        }
    )
    rows = {
        "id": ["p1", "p2"],
        "text": ["the movie was good", "a film"],
        "text_pair": ["it was great", "empire empire empire"],
        "label": [0, 1],
    }
    return Dataset.from_dict(rows, features=features)


def test_a_sentence_pair_is_one_input_with_its_segments(tiny_tokenizer):
    features = prepare(_pairs(), tiny_tokenizer, SimpleNamespace(max_seq_length=10), False)
    assert sorted(features.column_names) == ["attention_mask", "input_ids", "labels", "token_type_ids"]
    assert (
        tiny_tokenizer.decode(features[0]["input_ids"]) == "[CLS] the movie was good [SEP] it was great [SEP]"
    )
    assert features[0]["token_type_ids"] == [0] * 6 + [1] * 4
    # 2 + 18 letters + 3 special tokens, cut to 10: the longer text loses its tail, both keep their [SEP].
    tokens = tiny_tokenizer.convert_ids_to_tokens(features[1]["input_ids"])
    assert tokens == ["[CLS]", "a", "film", "[SEP]", "e", "##m", "##p", "##i", "##r", "[SEP]"]
    assert features["labels"] == [0, 1]


def test_predictions_keep_the_id_column(tiny_tokenizer, tmp_path):
    raw = _pairs()
    logits = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    scored = score(raw, None, {"logits": logits}, ["entailment", "contradiction"], SimpleNamespace())
    assert [(row["id"], row["label"], row["predicted"]) for row in scored.predictions] == [
        ("p1", "entailment", "entailment"),
        ("p2", "contradiction", "entailment"),
    ]


def test_balanced_class_weights_are_inverse_frequency():
    raw = Dataset.from_dict(
        {"text": ["a"] * 6, "label": [0, 0, 0, 0, 1, 2]},
        features=Features({"text": Value("string"), "label": ClassLabel(names=["x", "y", "z"])}),
    )
    # n_samples / (n_classes * count): 6 / (3 * 4), 6 / (3 * 1), 6 / (3 * 1).
    assert balanced_class_weights(raw, ["x", "y", "z"]) == pytest.approx([0.5, 2.0, 2.0])


def test_balanced_class_weights_refuse_a_class_train_never_has():
    raw = Dataset.from_dict(
        {"text": ["a", "b"], "label": [0, 0]},
        features=Features({"text": Value("string"), "label": ClassLabel(names=["x", "y"])}),
    )
    with pytest.raises(
        ValueError, match=r"^--class_weights balanced: class 'y' has no example in the train split$"
    ):
        balanced_class_weights(raw, ["x", "y"])


def test_weighted_cross_entropy_is_the_weighted_mean_of_the_losses():
    logits = torch.tensor([[2.0, 0.0], [0.5, 1.5], [0.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    weights = torch.tensor([0.75, 1.5])
    loss = weighted_cross_entropy(logits, labels, weights)
    assert loss.item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels, weight=weights).item()
    )
    losses = -torch.log_softmax(logits, dim=1)[torch.arange(3), labels]
    by_hand = (0.75 * losses[0] + 1.5 * losses[1] + 1.5 * losses[2]) / (0.75 + 1.5 + 1.5)
    assert loss.item() == pytest.approx(by_hand.item())
    assert loss.item() != pytest.approx(losses.mean().item())


def test_weighted_cross_entropy_of_half_precision_logits_is_taken_in_float32():
    logits = torch.tensor([[2.0, 0.0], [0.5, 1.5]])
    labels, weights = torch.tensor([0, 1]), torch.tensor([0.75, 1.5])
    loss = weighted_cross_entropy(logits.half(), labels, weights)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(weighted_cross_entropy(logits, labels, weights).item(), rel=1e-3)
