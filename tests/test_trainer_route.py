"""The processed features work unchanged with `transformers.Trainer` and the stock collators.

`remove_unused_columns=False` makes sure Trainer does not quietly drop a column the model would reject: the
training features must already hold only what the model's `forward` takes.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import (
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from loaders import load_dataset
from processing import classification, token_classification

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

ROUTES = {
    "imdb": (classification.TASK, DataCollatorWithPadding),
    "wnut17": (token_classification.TASK, DataCollatorForTokenClassification),
}


@pytest.mark.parametrize("name", list(ROUTES))
def test_trainer_trains_on_processed_features(name, tmp_path, tiny_model_dir, tiny_tokenizer):
    task, collator_class = ROUTES[name]
    raw = load_dataset(name, data_dir=SAMPLES / name, cache_dir=str(tmp_path / "cache"))
    label_names = task.label_names(raw["train"].features)
    config = SimpleNamespace(max_seq_length=64, label_all_tokens=False)
    train_features = task.prepare(raw["train"], tiny_tokenizer, config, True)

    torch.manual_seed(0)
    model = task.load_model(str(tiny_model_dir), label_names)
    assert model.config.id2label == dict(enumerate(label_names))
    accepted = set(inspect.signature(model.forward).parameters)
    assert set(train_features.column_names) <= accepted
    assert "labels" in train_features.column_names

    before = {key: value.detach().clone() for key, value in model.state_dict().items()}
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=3,
        per_device_train_batch_size=4,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        remove_unused_columns=False,
    )
    trainer = Trainer(model, args, train_dataset=train_features, data_collator=collator_class(tiny_tokenizer))
    result = trainer.train()

    assert result.global_step == 3
    assert math.isfinite(result.training_loss)
    assert result.training_loss > 0
    after = model.state_dict()
    classifier_keys = [key for key in before if key.startswith("classifier.")]
    assert classifier_keys
    for key in classifier_keys:
        assert not torch.equal(before[key], after[key]), key
    assert not torch.equal(
        before["bert.embeddings.word_embeddings.weight"], after["bert.embeddings.word_embeddings.weight"]
    )
