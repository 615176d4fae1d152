"""`tf.data` batches from the very features and collators the PyTorch path uses.

The PyTorch path hands `Dataset.with_format("torch", columns=model_inputs(...))` to a `DataLoader` with the task's
collator and sampler. Here the same features, in the order the same sampler draws, go through the same collator
switched to NumPy output (transformers 5 tokenizers no longer return TensorFlow tensors), so both frameworks see
identical token ids, labels and per-batch padding. Only the names change: KerasHub's BERT calls its inputs
`token_ids`, `segment_ids` and `padding_mask`, and Keras matches labels to the model's outputs by name.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # read as TensorFlow loads: no C++ INFO/WARNING logs

import datasets
import numpy as np
import tensorflow as tf

from .batching import EpochLengthGroupedSampler, feature_lengths

KERAS_INPUT_NAMES = {
    "input_ids": "token_ids",
    "token_type_ids": "segment_ids",
    "attention_mask": "padding_mask",
}
"""Feature column -> input name of `keras_hub.models.BertBackbone`."""


def numpy_collator(collator: Callable) -> Callable:
    """The task's collator (a transformers data-collator dataclass) with NumPy instead of PyTorch output."""
    return dataclasses.replace(collator, return_tensors="np")


def keras_input_columns(features: datasets.Dataset) -> list[str]:
    """The feature columns the Keras model takes; the TensorFlow counterpart of `tasks.model_inputs`."""
    missing = [column for column in KERAS_INPUT_NAMES if column not in features.column_names]
    if missing:
        raise ValueError(f"KerasHub's BERT needs the tokenizer to return {missing} as well")
    return list(KERAS_INPUT_NAMES)


def training_order(
    features: datasets.Dataset, batch_size: int, seed: int, epoch: int, group_by_length: bool
) -> np.ndarray:
    """The feature order of one training epoch, drawn as the PyTorch path's sampler draws it.

    Length-grouped, it is the very `EpochLengthGroupedSampler` order of the PyTorch path, so both frameworks train
    on the same batches; otherwise a permutation seeded by (seed, epoch).
    """
    if not group_by_length:
        return np.random.default_rng([seed, epoch]).permutation(len(features))
    sampler = EpochLengthGroupedSampler(batch_size, feature_lengths(features), seed)
    sampler.set_epoch(epoch)
    return np.fromiter(sampler, dtype=np.int64, count=len(features))


def to_tf_dataset(
    features: datasets.Dataset,
    collator: Callable,
    batch_size: int,
    label_outputs: Mapping[str, str] | None = None,
    order: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches of `features` (in `order` if given) padded per batch by `collator`: `inputs`, or `(inputs, labels)`.

    `label_outputs` maps label columns to the model outputs they supervise (`{"labels": "logits"}`); without it
    the batches carry inputs only, for prediction. Every dimension but the rank is left unknown: batches differ in
    length. (`Dataset.to_tf_dataset` guesses fixed dimensions from 20 random examples, and a later batch of another
    length then stops training with a shape error; it happens as soon as the sampled examples all reach the
    truncation length.)
    """
    inputs = keras_input_columns(features)
    labels = dict(label_outputs or {})
    rows = (features if order is None else features.select(order)).select_columns(inputs + list(labels))
    collate = numpy_collator(collator)

    def batches() -> Iterator[Any]:
        for start in range(0, len(rows), batch_size):
            columns = rows[start : start + batch_size]  # a dict of lists; the collator takes a list of dicts
            examples = zip(*columns.values(), strict=True)
            batch = collate([dict(zip(columns, values, strict=True)) for values in examples])
            named = {KERAS_INPUT_NAMES[column]: batch[column] for column in inputs}
            yield (named, {output: batch[column] for column, output in labels.items()}) if labels else named

    def spec(column: str) -> tf.TensorSpec:
        per_token = not isinstance(rows.features[column], datasets.Value)
        return tf.TensorSpec((None, None) if per_token else (None,), tf.int64)

    signature = {KERAS_INPUT_NAMES[column]: spec(column) for column in inputs}
    if labels:
        signature = (signature, {output: spec(column) for column, output in labels.items()})
    return (
        tf.data.Dataset.from_generator(batches, output_signature=signature)
        .apply(tf.data.experimental.assert_cardinality(math.ceil(len(rows) / batch_size)))
        .prefetch(tf.data.AUTOTUNE)
    )


def splittable(batches: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """`batches` that `tf.distribute` can split between devices, each batch in consecutive slices, in order.

    tf.distribute reads the batch size from a batching step in the dataset's graph, and batches collated in a
    generator have none ("Call the `batch` method on the input Dataset"): the rows are unbatched and batched again
    in the same groups of `batch_size` (every batch but the last is full), already padded alike, so nothing is
    padded anew. The count of batches is unknown afterwards: take it before.
    """
    return batches.unbatch().padded_batch(batch_size)
