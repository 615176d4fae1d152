"""Evaluation reduces each batch of outputs as it comes in (`Task.reduce_outputs`, `batching.EvaluationOutputs`):
on the samples, with a tiny random model, longest-first batches of 3, the figures, predictions and temperature
inputs are exactly those of gathering every output first and scoring them at once."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import loaders
from conftest import SAMPLES
from processing.batching import (
    EvaluationOutputs,
    concatenate_padded,
    feature_lengths,
    longest_first,
    restore_order,
)
from processing.registry import TASKS
from processing.tasks import Task, model_inputs, score_outputs

CONFIG = SimpleNamespace(
    max_seq_length=24,  # the long W-NUT document is cut; long reviews and SQuAD contexts are read in windows
    doc_stride=8,
    long_documents="windows",
    window_aggregation="max",
    label_all_tokens=False,
    calibration_temperature=1.5,  # also scores `ece_before_temperature`
    n_best_size=5,
    max_answer_length=10,
    null_score_diff_threshold=0.0,
    preprocessing_num_workers=None,
)
WINDOWS = SimpleNamespace(**{**vars(CONFIG), "max_seq_length": 128, "doc_stride": 32})
CASES = {  # each a split with a long item (samples/README.md)
    "imdb": (SAMPLES / "imdb", "test", WINDOWS),
    "wnut17": (SAMPLES / "wnut17", "train", CONFIG),
    "squad_v2": (
        SAMPLES / "squad",
        "validation",
        SimpleNamespace(**{**vars(WINDOWS), "max_seq_length": 256}),
    ),
}


def batch_outputs(task: Task, model, tokenizer, features, order: np.ndarray) -> list[dict[str, np.ndarray]]:
    """The model's outputs batch by batch in evaluation order, as a loop gathers them."""
    loader = DataLoader(
        features.with_format("torch", columns=model_inputs(model, features, with_labels=False)),
        sampler=order.tolist(),
        batch_size=3,
        collate_fn=task.collator(tokenizer, None),
    )
    with torch.no_grad():
        return [
            {name: model(**batch)[name].float().numpy() for name in task.output_names} for batch in loader
        ]


@pytest.mark.parametrize("name", sorted(CASES))
def test_reducing_each_batch_scores_exactly_as_gathering_everything(name, tiny_model_dir, tiny_tokenizer):
    task = TASKS[name].task
    data_dir, split, config = CASES[name]
    raw = loaders.load_dataset(name, data_dir=str(data_dir))[split]
    label_names = task.label_names(raw.features)
    torch.manual_seed(0)
    model = task.load_model(str(tiny_model_dir), label_names).eval()
    features = task.prepare(raw, tiny_tokenizer, config, False)
    order = longest_first(feature_lengths(features))
    batches = batch_outputs(task, model, tiny_tokenizer, features, order)

    everything = {
        name: restore_order(concatenate_padded([b[name] for b in batches]), order)
        for name in task.output_names
    }
    gathered = score_outputs(task, raw, features, everything, label_names, config)
    reduce = task.reduce_outputs
    kept = EvaluationOutputs(
        features, order, None if reduce is None else lambda outputs, batch: reduce(outputs, batch, config)
    )
    for outputs in batches:
        kept.add(outputs)
    held = {key: restore_order(values, order) for key, values in kept.result().items()}
    reduced = task.score(raw, features, held, label_names, config)

    assert reduced.metrics == gathered.metrics
    assert list(reduced.predictions) == list(gathered.predictions)
    if gathered.logits_and_labels is not None:
        for before, after in zip(gathered.logits_and_labels(), reduced.logits_and_labels(), strict=True):
            np.testing.assert_array_equal(after, before)
    if reduce is not None:  # what is held has one entry per window, no token axis
        assert all(values.shape == (len(features),) for values in held.values())


def test_more_outputs_than_features_are_refused(tiny_tokenizer):
    features = TASKS["imdb"].task.prepare(
        loaders.load_dataset("imdb", data_dir=str(SAMPLES / "imdb"))["test"], tiny_tokenizer, CONFIG, False
    )
    kept = EvaluationOutputs(features, None, None)
    kept.add({"logits": np.zeros((len(features), 2))})
    with pytest.raises(
        ValueError, match=f"outputs for {len(features) + 1} features, expected {len(features)}"
    ):
        kept.add({"logits": np.zeros((1, 2))})
