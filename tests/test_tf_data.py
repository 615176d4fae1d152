"""The TensorFlow path feeds Keras exactly the token ids, labels and padded batches the PyTorch path feeds PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras_hub", reason="the TensorFlow path needs the tf extra: pip install '.[tf]'")

from datasets import ClassLabel, Dataset, Features, Value
from transformers import DataCollatorWithPadding

from conftest import SAMPLES
from processing import classification
from processing.tf_data import KERAS_INPUT_NAMES, to_tf_dataset
from runner import config as run_config
from runner import keras_loop, torch_loop

DATA = {"imdb": SAMPLES / "imdb", "wnut17": SAMPLES / "wnut17", "squad_v2": SAMPLES / "squad"}
TASK_NAMES = list(DATA)
KERAS_NAMES = {
    **KERAS_INPUT_NAMES,
    "labels": "logits",
    "start_positions": "start_logits",
    "end_positions": "end_logits",
}


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def config_for(task: str, model, output_dir, framework: str, *extra: str) -> run_config.TrainingConfig:
    return run_config.parse_args([
        "--task", task, "--data_dir", str(DATA[task]), "--model", str(model), "--output_dir", str(output_dir),
        "--max_seq_length", "128", "--doc_stride", "32",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "3",
        "--report_to", "none", "--framework", framework, *extra,
    ])  # fmt: skip


def torch_batches(batches) -> list[dict[str, np.ndarray]]:
    return [{name: tensor.numpy() for name, tensor in batch.items()} for batch in batches]


def keras_batches(batches) -> list[dict[str, np.ndarray]]:
    """The TF batches under the PyTorch names, with labels merged into the inputs dict."""
    back = {keras: hf for hf, keras in KERAS_NAMES.items()}
    merged = []
    for batch in batches:
        parts = batch if isinstance(batch, tuple) else (batch,)
        merged.append({back[name]: tensor.numpy() for part in parts for name, tensor in part.items()})
    return merged


def assert_same_batches(expected: list[dict[str, np.ndarray]], actual: list[dict[str, np.ndarray]]) -> None:
    assert len(expected) == len(actual)
    for one, other in zip(expected, actual, strict=True):
        assert set(one) == set(other)
        for name in one:
            assert one[name].shape == other[name].shape, name
            np.testing.assert_array_equal(one[name], other[name], err_msg=name)


def unpadded_rows(batches: list[dict[str, np.ndarray]]) -> list[tuple]:
    """Every feature of an epoch without its padding, sorted: what was trained on, whatever the batch order."""
    rows = []
    for batch in batches:
        lengths = batch["attention_mask"].sum(axis=1)
        for row, length in enumerate(lengths):
            rows.append(
                tuple(
                    tuple(values[row][:length].tolist()) if values.ndim == 2 else int(values[row])
                    for name, values in sorted(batch.items())
                )
            )
    return sorted(rows)


def set_up_both(task: str, model, output_dir, *extra: str) -> tuple[torch_loop.Run, keras_loop.KerasRun]:
    torch_run = torch_loop.setup(config_for(task, model, output_dir / "pt", "pytorch", *extra))
    keras_run = keras_loop.setup(config_for(task, model, output_dir / "tf", "tensorflow", *extra))
    return torch_run, keras_run


@pytest.mark.parametrize("task", TASK_NAMES)
def test_both_frameworks_evaluate_and_train_on_identical_batches(task, tiny_model_dir, tmp_path):
    """Same features, same length-grouped order, same collator padding (-100 for token labels) in every epoch."""
    torch_run, keras_run = set_up_both(task, tiny_model_dir, tmp_path)

    assert list(keras_run.eval_batches) == list(torch_run.eval_dataloaders)
    for split, dataloader in torch_run.eval_dataloaders.items():
        assert_same_batches(torch_batches(dataloader), keras_batches(keras_run.eval_batches[split]))

    epochs = []
    for epoch in (0, 1):
        torch_run.train_dataloader.set_epoch(epoch)
        expected = torch_batches(torch_run.train_dataloader)
        assert_same_batches(expected, keras_batches(keras_loop.epoch_batches(keras_run, epoch)))
        epochs.append(expected)
    assert unpadded_rows(epochs[0]) == unpadded_rows(epochs[1])
    assert [b["input_ids"].tolist() for b in epochs[0]] != [b["input_ids"].tolist() for b in epochs[1]]
    if task == "wnut17":
        assert any((batch["labels"] == -100).any() for batch in epochs[0])
    assert keras_run.max_steps == torch_run.max_steps


def test_without_length_grouping_both_frameworks_train_on_every_feature_once_per_epoch(
    tiny_model_dir, tmp_path
):
    """Each framework then shuffles with its own generator: the same features, in another order."""
    torch_run, keras_run = set_up_both("wnut17", tiny_model_dir, tmp_path, "--group_by_length", "false")

    for split, dataloader in torch_run.eval_dataloaders.items():
        assert_same_batches(torch_batches(dataloader), keras_batches(keras_run.eval_batches[split]))
    torch_epoch = torch_batches(torch_run.train_dataloader)
    keras_epoch = keras_batches(keras_loop.epoch_batches(keras_run, 0))
    assert unpadded_rows(keras_epoch) == unpadded_rows(torch_epoch)
    assert [len(batch["input_ids"]) for batch in keras_epoch] == [len(b["input_ids"]) for b in torch_epoch]


def test_batches_of_any_length_follow_however_many_full_length_ones(tiny_tokenizer):
    """No fixed dimension is guessed from early batches (`Dataset.to_tf_dataset` guesses from 20 examples)."""
    lengths = [12] * 40 + [3]
    features = Dataset.from_dict({
        "input_ids": [[2] + [7] * (n - 2) + [3] for n in lengths],
        "token_type_ids": [[0] * n for n in lengths],
        "attention_mask": [[1] * n for n in lengths],
        "labels": [n % 2 for n in lengths],
    })  # fmt: skip
    batches = list(to_tf_dataset(features, DataCollatorWithPadding(tiny_tokenizer), 4, {"labels": "logits"}))
    assert len(batches) == 11
    assert [inputs["token_ids"].shape[1] for inputs, _ in batches] == [12] * 10 + [3]
    assert batches[-1][1]["logits"].numpy().tolist() == [1]


def test_a_sentence_pair_reaches_keras_with_its_segment_ids(tiny_tokenizer):
    raw = Dataset.from_dict(
        {"text": ["the movie"], "text_pair": ["a film"], "label": [1]},
        features=Features(
            {"text": Value("string"), "text_pair": Value("string"), "label": ClassLabel(names=["a", "b"])}
        ),
    )
    features = classification.prepare(
        raw, tiny_tokenizer, run_config.TrainingConfig(task="imdb", max_seq_length=16), True
    )
    [(inputs, labels)] = list(
        to_tf_dataset(features, DataCollatorWithPadding(tiny_tokenizer), 4, {"labels": "logits"})
    )
    # [CLS] the movie [SEP] | a film [SEP]: KerasHub's BERT tells the two texts apart by these segment ids.
    assert inputs["segment_ids"].numpy().tolist() == [[0, 0, 0, 0, 1, 1, 1]]
    assert labels["logits"].numpy().tolist() == [1]
