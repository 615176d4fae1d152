"""The Keras models: a BERT backbone that computes what PyTorch's does, heads that save and load, and an optimizer
configured as the PyTorch path's."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras_hub", reason="the TensorFlow path needs the tf extra: pip install '.[tf]'")

import keras
import keras_hub
import tensorflow as tf
import torch
from transformers import AutoTokenizer, BertForSequenceClassification, BertModel, get_scheduler

from conftest import build_tiny_tokenizer, tiny_bert_config
from processing import classification, keras_models, question_answering
from processing.models import resolve_model


def keras_inputs(encoding) -> dict[str, np.ndarray]:
    return {
        "token_ids": encoding["input_ids"],
        "segment_ids": encoding["token_type_ids"],
        "padding_mask": encoding["attention_mask"],
    }


def test_the_backbone_computes_what_pytorch_bert_computes_thanks_to_exact_gelu(tmp_path):
    """Weights large enough that KerasHub's default tanh GELU is visibly off, as it is for real checkpoints."""
    tokenizer = build_tiny_tokenizer(tmp_path)
    torch.manual_seed(0)
    model = BertModel(tiny_bert_config(len(tokenizer), initializer_range=0.3)).eval()
    model.save_pretrained(tmp_path)
    encoding = tokenizer(["john smith went to london", "a good film"], padding=True, return_tensors="np")
    with torch.no_grad():
        expected = model(**{k: torch.tensor(v) for k, v in encoding.items()}).last_hidden_state.numpy()
    real_tokens = encoding["attention_mask"][..., None].astype(bool)

    backbone, config = keras_models.load_backbone(str(tmp_path))
    exact = backbone(keras_inputs(encoding))["sequence_output"].numpy()
    tanh = keras_hub.models.BertBackbone.from_preset(str(tmp_path))(keras_inputs(encoding))["sequence_output"]

    assert config["hidden_act"] == "gelu"
    assert np.abs(np.where(real_tokens, exact - expected, 0)).max() < 1e-5
    assert np.abs(np.where(real_tokens, tanh.numpy() - expected, 0)).max() > 1e-4


def test_the_embedded_default_model_serves_both_frameworks():
    """KerasHub reads the installed Hugging Face folder, and computes what PyTorch computes from it."""
    model_dir = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoding = tokenizer(["John Smith went to London.", "A good film"], padding=True, return_tensors="np")
    with torch.no_grad():
        model = BertModel.from_pretrained(model_dir).eval()
        expected = model(**{k: torch.tensor(v) for k, v in encoding.items()}).last_hidden_state.numpy()

    backbone, config = keras_models.load_backbone(model_dir)
    actual = backbone(keras_inputs(encoding))["sequence_output"].numpy()

    assert (config["hidden_size"], config["num_hidden_layers"]) == (384, 6)
    real_tokens = encoding["attention_mask"][..., None].astype(bool)
    assert np.abs(np.where(real_tokens, actual - expected, 0)).max() < 1e-5


def test_a_checkpoint_keras_hub_would_load_wrongly_is_refused(tiny_model_dir, tmp_path):
    config = (tiny_model_dir / "config.json").read_text()
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((tiny_model_dir / name).read_bytes())
    (tmp_path / "config.json").write_text(config.replace('"hidden_act": "gelu"', '"hidden_act": "relu"'))
    with pytest.raises(ValueError, match="hidden_act 'relu'"):
        keras_models.load_backbone(str(tmp_path))


def test_a_saved_model_loads_with_its_labels_exact_activation_and_outputs(
    tiny_model_dir, tiny_tokenizer, tmp_path
):
    model = keras_models.build_model(question_answering.TASK.keras_head, str(tiny_model_dir), None)
    encoding = tiny_tokenizer(
        ["where is paris", "who"], ["paris is in france", "john"], padding=True, return_tensors="np"
    )
    outputs = model(keras_inputs(encoding))

    keras_models.save(model, tmp_path, "question-answering", None)
    loaded, task, label_names = keras_models.load(tmp_path)
    reloaded = loaded(keras_inputs(encoding))

    assert (task, label_names) == ("question-answering", None)
    assert not loaded.compiled  # saved without optimizer state
    assert loaded.get_layer("transformer_layer_0").get_config()["activation"] == "gelu"
    padding = encoding["attention_mask"] == 0
    assert padding.any()
    for name in ("start_logits", "end_logits"):
        np.testing.assert_array_equal(outputs[name].numpy(), reloaded[name].numpy())
        assert (outputs[name].numpy()[padding] == keras_models.MASKED_LOGIT).all()
        assert (outputs[name].numpy()[~padding] > keras_models.MASKED_LOGIT).all()


@pytest.mark.parametrize("accumulation", [1, 3])
def test_learning_rates_are_the_pytorch_paths_update_by_update(accumulation):
    warmup, total = 3, 10
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1e-3)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=warmup, num_training_steps=total)
    expected = []
    for _ in range(total):
        expected.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()

    schedule = keras_models.LinearWarmupDecay(1e-3, warmup, total, accumulation)
    # Keras applies update k on its (k + 1) * accumulation - 1-th batch, counting from 0.
    actual = [float(schedule((update + 1) * accumulation - 1)) for update in range(total)]
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-12)


def test_an_embedding_row_used_several_times_in_a_batch_moves_as_in_pytorch():
    """Keras's Adam on TensorFlow's sparse embedding gradients moves such a row sqrt(n) times too far."""
    start = np.ones((3, 2), np.float32)
    tokens = np.array([[0, 0, 0, 0, 1]])  # row 0 four times, row 1 once, row 2 never
    weights = np.array([1.0, 2.0], np.float32)

    torch_embedding = torch.nn.Embedding(3, 2)
    torch_embedding.weight.data = torch.tensor(start)
    torch_optimizer = torch.optim.AdamW(torch_embedding.parameters(), lr=0.1, weight_decay=0.0)
    embedding = keras.layers.Embedding(3, 2, embeddings_initializer=keras.initializers.Constant(start))
    embedding.build((None, 5))
    optimizer = keras_models.DenseGradientAdamW(learning_rate=0.1, weight_decay=0.0, epsilon=1e-8)
    for _ in range(2):
        torch_optimizer.zero_grad()
        (torch_embedding(torch.tensor(tokens)) * torch.tensor(weights)).sum().backward()
        torch_optimizer.step()
        with tf.GradientTape() as tape:
            loss = keras.ops.sum(embedding(tokens) * weights)
        optimizer.apply(tape.gradient(loss, embedding.trainable_variables), embedding.trainable_variables)

    np.testing.assert_allclose(
        embedding.embeddings.numpy(), torch_embedding.weight.detach().numpy(), atol=1e-5
    )


def test_weight_decay_spares_exactly_the_parameters_pytorch_spares(tiny_model_dir):
    keras_model = keras_models.build_model(
        classification.TASK.keras_head, str(tiny_model_dir), ["neg", "pos"]
    )
    keras_models.compile_for_training(keras_model, classification.TASK.keras_head, 1e-3, 0.01, 1, 10)
    decayed = [v for v in keras_model.trainable_variables if keras_model.optimizer._use_weight_decay(v)]

    torch_model = BertForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")  # torch_loop.setup's rule
    torch_decayed = [p for n, p in torch_model.named_parameters() if not n.endswith(no_decay)]

    assert len(keras_model.trainable_variables) == len(list(torch_model.parameters()))
    assert sorted(int(np.prod(v.shape)) for v in decayed) == sorted(p.numel() for p in torch_decayed)
    assert {v.name for v in decayed} == {"kernel", "embeddings"}
    assert isinstance(keras_model.optimizer, keras.optimizers.AdamW)
