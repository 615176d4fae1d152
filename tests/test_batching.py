"""What training speed depends on: length-grouped batches, each padded only to its longest member."""

from __future__ import annotations

import numpy as np
from datasets import Dataset
from transformers import DataCollatorWithPadding

from processing.batching import EpochLengthGroupedSampler, feature_lengths, longest_first, restore_order

RNG = np.random.default_rng(0)
LENGTHS = RNG.integers(5, 500, size=1000)


def batches_of(order: list[int], size: int) -> list[list[int]]:
    return [order[i : i + size] for i in range(0, len(order), size)]


def test_every_index_once_per_epoch_and_a_new_order_each_epoch():
    sampler = EpochLengthGroupedSampler(16, LENGTHS, seed=7)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(first) == sorted(second) == list(range(len(LENGTHS)))
    assert first != second


def test_order_depends_only_on_seed_and_epoch_so_a_resumed_run_sees_the_same_batches():
    one, other = (
        EpochLengthGroupedSampler(16, LENGTHS, seed=7),
        EpochLengthGroupedSampler(16, LENGTHS, seed=7),
    )
    list(one)  # iterating epoch 0 first must not change what epoch 3 gives
    one.set_epoch(3)
    other.set_epoch(3)
    assert list(one) == list(other)
    assert list(EpochLengthGroupedSampler(16, LENGTHS, seed=8)) != list(other)


def test_grouped_batches_carry_far_less_padding_than_random_ones():
    size = 16
    grouped = batches_of(list(EpochLengthGroupedSampler(size, LENGTHS, seed=0)), size)
    shuffled = batches_of(RNG.permutation(len(LENGTHS)).tolist(), size)

    def padding(batches: list[list[int]]) -> int:
        return sum(len(b) * LENGTHS[b].max() - LENGTHS[b].sum() for b in batches)

    assert padding(grouped) < 0.2 * padding(shuffled)
    assert (
        LENGTHS[grouped[0]].max() == LENGTHS.max()
    )  # the longest batch comes first: out-of-memory shows early


def test_evaluation_order_is_longest_first_and_restorable():
    order = longest_first(LENGTHS)
    assert (np.diff(LENGTHS[order]) <= 0).all()
    values = np.arange(len(LENGTHS)) * 10
    assert (restore_order(values[order], order) == values).all()


def test_lengths_come_from_arrow_and_a_batch_is_padded_to_its_longest_member(tiny_tokenizer):
    features = Dataset.from_dict(tiny_tokenizer(["the film", "a good movie and the city of london", "it"]))
    assert feature_lengths(features).tolist() == [len(ids) for ids in features["input_ids"]]
    batch = DataCollatorWithPadding(tiny_tokenizer, return_tensors="np")([features[0], features[2]])
    assert batch["input_ids"].shape[1] == max(len(features[0]["input_ids"]), len(features[2]["input_ids"]))
