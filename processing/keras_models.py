"""Keras models for the three tasks: KerasHub's BERT backbone, read from the same Hugging Face folder the PyTorch path
loads, with one Dense head per task.

KerasHub has a BERT text classifier but no token-classification or extractive-QA task, so all three heads are built
here the same way, as one flat functional graph of the backbone's layers plus the head. Flat rather than a nested
`BertBackbone` because a nested backbone is rebuilt from its own config on load, which knows nothing of the
activation chosen below; each `TransformerEncoder` layer does save its activation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # read once, by the first `import keras`
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # read as TensorFlow loads: no C++ INFO/WARNING logs

import keras
import keras_hub
import tensorflow as tf

from .keras_folder import LABELS_FILE, MODEL_FILE
from .token_classification import IGNORE_INDEX

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"the TensorFlow path feeds tf.data to Keras and needs KERAS_BACKEND=tensorflow, "
        f"not {keras.backend.backend()!r}"
    )

MASKED_LOGIT = -1e4
"""Span logit at padding positions, so batch padding never takes probability mass in the loss; the same value
`train.py` fills with when it stacks batches of different lengths, and still finite in float16."""

TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")
"""Hugging Face activations equal to KerasHub's default, the tanh approximation of GELU."""


def load_backbone(model_dir: str) -> tuple[keras_hub.models.BertBackbone, dict[str, Any]]:
    """KerasHub's BERT with the weights of a Hugging Face BERT folder, and that folder's config.

    KerasHub always uses the tanh approximation of GELU, while BERT checkpoints (`hidden_act: gelu`) were trained
    with the exact erf form: outputs then differ from PyTorch's by ~1e-3, and by ~1e-6 once the feed-forward
    activation is exact. Settings KerasHub hardcodes are checked, so a checkpoint it would load wrongly is refused.
    """
    config = json.loads((Path(model_dir) / "config.json").read_text())
    activation = config.get("hidden_act", "gelu")
    problems = []
    if config.get("model_type") != "bert":
        problems.append(f"model_type {config.get('model_type')!r} (KerasHub's BertBackbone loads BERT)")
    if activation != "gelu" and activation not in TANH_GELUS:
        problems.append(f"hidden_act {activation!r}")
    if config.get("layer_norm_eps", 1e-12) != 1e-12:
        problems.append(f"layer_norm_eps {config['layer_norm_eps']} (KerasHub uses 1e-12)")
    if config.get("position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type {config['position_embedding_type']!r}")
    dropout = config.get("hidden_dropout_prob", 0.1)
    if config.get("attention_probs_dropout_prob", 0.1) != dropout:
        problems.append("attention and hidden dropout rates that differ (KerasHub has one rate for both)")
    if problems:
        raise ValueError(f"{model_dir} cannot be trained with TensorFlow: unsupported {', '.join(problems)}")

    # KerasHub's converter reads neither setting from config.json: its defaults are BERT-base's.
    backbone = keras_hub.models.BertBackbone.from_preset(
        model_dir, dropout=dropout, num_segments=config.get("type_vocab_size", 2)
    )
    if activation == "gelu":
        for layer in backbone.transformer_layers:
            # `activation` goes into the layer's saved config; the built Dense layer holds the one that runs.
            layer.activation = keras.activations.gelu
            layer._feedforward_intermediate_dense.activation = keras.activations.gelu
    return backbone, config


HeadBuilder = Callable[
    [dict[str, Any], dict[str, Any], int, float, keras.initializers.Initializer], dict[str, Any]
]


def _sequence_head(inputs, outputs, num_labels, dropout, initializer) -> dict[str, Any]:
    """BertForSequenceClassification's head: dropout and a linear layer on the pooled [CLS] output."""
    pooled = keras.layers.Dropout(dropout, name="classifier_dropout")(outputs["pooled_output"])
    return {
        "logits": keras.layers.Dense(num_labels, kernel_initializer=initializer, name="classifier")(pooled)
    }


def _token_head(inputs, outputs, num_labels, dropout, initializer) -> dict[str, Any]:
    """BertForTokenClassification's head: dropout and a linear layer on every token's output."""
    tokens = keras.layers.Dropout(dropout, name="classifier_dropout")(outputs["sequence_output"])
    return {
        "logits": keras.layers.Dense(num_labels, kernel_initializer=initializer, name="classifier")(tokens)
    }


def _span_head(inputs, outputs, num_labels, dropout, initializer) -> dict[str, Any]:
    """BertForQuestionAnswering's head (start and end logits per token), with padding masked out."""
    spans = keras.layers.Dense(2, kernel_initializer=initializer, name="qa_outputs")(
        outputs["sequence_output"]
    )
    is_token = keras.ops.cast(inputs["padding_mask"], "bool")
    return {
        "start_logits": keras.ops.where(is_token, spans[..., 0], MASKED_LOGIT),
        "end_logits": keras.ops.where(is_token, spans[..., 1], MASKED_LOGIT),
    }


def _cross_entropy(**kwargs: Any) -> keras.losses.Loss:
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, **kwargs)


class WeightedCrossEntropy(keras.losses.Loss):
    """Cross-entropy with each example weighted by its class (`--class_weights`), averaged as the PyTorch path's
    `torch.nn.functional.cross_entropy(weight=...)`: the sum of w * loss over the sum of w. Keras's own
    `class_weight` divides by the batch size instead, which moves the learning rate with the batch's classes.

    One value per example, each scaled by the batch size over the sum of w, so that Keras's own mean over the batch
    gives the weighted mean: Keras then also scales it for several devices (each device's weighted mean, averaged
    as DDP averages processes'), which a loss returned already reduced would skip, and reduces a device's empty
    share of a last batch to 0, where a loss reduced here would be 0 / 0."""

    def __init__(self, weights: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weights = [float(weight) for weight in weights]

    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        losses = keras.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=True)
        weights = keras.ops.take(keras.ops.convert_to_tensor(self.weights, dtype=losses.dtype), labels)
        count = keras.ops.cast(keras.ops.size(labels), losses.dtype)
        return weights * losses * count / keras.ops.sum(weights)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weights": self.weights}


@dataclass(frozen=True)
class Head:
    """What a task puts on the backbone, and how it trains.

    `label_outputs` maps the label columns of the task's training features to the outputs they supervise; the
    output names are the task's `output_names`, so predictions go to its `score` unchanged.
    """

    build: HeadBuilder
    label_outputs: dict[str, str]
    losses: Callable[[], dict[str, keras.losses.Loss]]
    loss_weights: dict[str, float] | None = None
    weighted_losses: Callable[[list[float]], dict[str, keras.losses.Loss]] | None = None  # per-class weights


HEADS: dict[str, Head] = {
    "sequence": Head(
        _sequence_head,
        {"labels": "logits"},
        lambda: {"logits": _cross_entropy()},
        weighted_losses=lambda weights: {"logits": WeightedCrossEntropy(weights)},
    ),
    "token": Head(
        _token_head, {"labels": "logits"}, lambda: {"logits": _cross_entropy(ignore_class=IGNORE_INDEX)}
    ),
    # Binary cross-entropy over every label of every example, as BertForSequenceClassification's
    # "multi_label_classification" problem type takes `BCEWithLogitsLoss` (the mean over all of them).
    "multi_label": Head(
        _sequence_head,
        {"labels": "logits"},
        lambda: {"logits": keras.losses.BinaryCrossentropy(from_logits=True)},
    ),
    # The mean of the start and end losses, as in BertForQuestionAnswering.
    "span": Head(
        _span_head,
        {"start_positions": "start_logits", "end_positions": "end_logits"},
        lambda: {"start_logits": _cross_entropy(), "end_logits": _cross_entropy()},
        {"start_logits": 0.5, "end_logits": 0.5},
    ),
}


def build_model(
    head: str, model_dir: str, label_names: list[str] | None, name: str | None = None
) -> keras.Model:
    """The backbone of `model_dir` with a new head of kind `head` (`Task.keras_head`), initialised like the
    transformers one; `name` names the Keras model (the task's name)."""
    backbone, config = load_backbone(model_dir)
    dropout = config.get("classifier_dropout") or config.get("hidden_dropout_prob", 0.1)
    initializer = keras.initializers.TruncatedNormal(stddev=config.get("initializer_range", 0.02))
    outputs = HEADS[head].build(backbone.input, backbone.output, len(label_names or []), dropout, initializer)
    return keras.Model(backbone.input, outputs, name=(name or head).replace("-", "_"))


class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """transformers' "linear" schedule, which the PyTorch path uses: up from 0 during warmup, then down to 0.

    Keras passes the optimizer's batch counter, which with gradient accumulation counts every batch; divided by
    `accumulation_steps` it is the number of updates made, the step PyTorch's scheduler counts.
    """

    def __init__(
        self, learning_rate: float, warmup_steps: int, total_steps: int, accumulation_steps: int = 1
    ):
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.accumulation_steps = accumulation_steps

    def __call__(self, step):
        step = keras.ops.cast(keras.ops.floor_divide(step, self.accumulation_steps), "float32")
        warmup = step / max(1, self.warmup_steps)
        decay = keras.ops.maximum(
            0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps)
        )
        return self.learning_rate * keras.ops.where(step < self.warmup_steps, warmup, decay)


class DenseGradientAdamW(keras.optimizers.AdamW):
    """AdamW on dense gradients, as PyTorch's AdamW gets them from a (non-sparse) embedding.

    On the TensorFlow backend an embedding's gradient is a `tf.IndexedSlices` with one row per token occurrence, and
    Keras's Adam squares those rows before duplicates are summed: the second moment of a row used n times in a batch
    is underestimated up to n-fold, so it moves up to sqrt(n) times too far. [CLS], [SEP], [PAD], every position and
    the segment embeddings repeat in every batch. Summing duplicates first (densifying) gives PyTorch's update.
    """

    def apply(self, grads, trainable_variables=None):
        dense = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        return super().apply(dense, trainable_variables)


def compile_for_training(
    model: keras.Model,
    head_kind: str,
    learning_rate: float,
    weight_decay: float,
    warmup_steps: int,
    total_steps: int,
    accumulation_steps: int = 1,
    class_weights: list[float] | None = None,
) -> None:
    """AdamW as in the PyTorch path: PyTorch's epsilon, no decay on biases and LayerNorm weights, linear schedule;
    the head's loss, weighted by class where `class_weights` are given."""
    optimizer = DenseGradientAdamW(
        learning_rate=LinearWarmupDecay(learning_rate, warmup_steps, total_steps, accumulation_steps),
        weight_decay=weight_decay,
        epsilon=1e-8,
        gradient_accumulation_steps=accumulation_steps if accumulation_steps > 1 else None,
    )
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    # Built now, not by the first step: variables created while `fit` traces its step make TensorFlow trace it a
    # second time, which doubles the start-up cost (about 10 s for a small BERT on a CPU).
    optimizer.build(model.trainable_variables)
    head = HEADS[head_kind]
    if class_weights is None:
        losses = head.losses()
    elif head.weighted_losses is None:
        raise ValueError(f"the {head_kind} head takes no class weights")
    else:
        losses = head.weighted_losses(class_weights)
    model.compile(optimizer=optimizer, loss=losses, loss_weights=head.loss_weights)


def save(model: keras.Model, output_dir: Path, task_name: str, label_names: list[str] | None) -> None:
    """`model.keras` without optimizer state (a new, uncompiled model on the same layers), and the label names."""
    keras.Model(model.input, model.output, name=model.name).save(output_dir / MODEL_FILE)
    (output_dir / LABELS_FILE).write_text(
        json.dumps({"task": task_name, "label_names": label_names}, indent=2), encoding="utf-8"
    )


def fold_temperature(model_dir: Path, temperature: float) -> None:
    """`calibration.fold_temperature` for a saved Keras model: its `classifier` layer's kernel and bias divided by
    the temperature, so `model.keras` alone gives the calibrated logits (the argmax is unchanged)."""
    model = keras.saving.load_model(model_dir / MODEL_FILE)
    try:
        head = model.get_layer("classifier")
    except ValueError as err:
        raise ValueError(
            f"cannot fold a temperature into {model_dir / MODEL_FILE}: no classifier layer"
        ) from err
    kernel, bias = head.get_weights()
    head.set_weights([kernel / temperature, bias / temperature])
    model.save(model_dir / MODEL_FILE)


def load(model_dir: Path) -> tuple[keras.Model, str, list[str] | None]:
    """A model written by `save`, with its task name and label names."""
    labels = json.loads((model_dir / LABELS_FILE).read_text(encoding="utf-8"))
    return keras.saving.load_model(model_dir / MODEL_FILE), labels["task"], labels["label_names"]
