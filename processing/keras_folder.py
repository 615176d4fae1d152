"""A Keras output directory (`model.keras`, `label_names.json` and the tokenizer) as far as it can be read without
TensorFlow: predict and the run's finishing step tell it from a PyTorch folder and read its task, labels and tuned
settings here, so the PyTorch path never imports TensorFlow (`processing.keras_models` loads the model itself).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import BertConfig

if TYPE_CHECKING:
    from .tasks import Task

MODEL_FILE = "model.keras"
LABELS_FILE = "label_names.json"


def is_keras_folder(model: str | Path) -> bool:
    """Told by `model.keras` alone, so that predict and the report decide before importing TensorFlow."""
    return (Path(model) / MODEL_FILE).is_file()


def read_labels(folder: str | Path) -> dict[str, Any]:
    """`label_names.json`: `task`, `label_names` (None for question answering) and the `settings` the run tuned."""
    path = Path(folder) / LABELS_FILE
    labels = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(labels, dict) or not {"task", "label_names"} <= set(labels):
        raise ValueError(f"{path}: expected a JSON object with task and label_names")
    return labels


def save_settings(folder: str | Path, settings: dict[str, Any]) -> None:
    """Keep what the run tuned beside the labels: `model.keras` has no `config.json` to hold it as a PyTorch model
    does, and predict must answer at the threshold evaluation measured."""
    path = Path(folder) / LABELS_FILE
    labels = {**read_labels(folder), "settings": settings}
    path.write_text(json.dumps(labels, indent=2), encoding="utf-8")


def sequence_length(folder: str | Path) -> int | None:
    """The longest input the model takes, its position embedding's length, from the layer configs in the `.keras`
    zip (its `config.json`): predict checks `--max_seq_length` against it before loading Keras."""
    with zipfile.ZipFile(Path(folder) / MODEL_FILE) as archive:
        config = json.loads(archive.read("config.json"))
    for layer in config.get("config", {}).get("layers", []):
        if layer.get("class_name") == "PositionEmbedding":
            return layer["config"].get("sequence_length")
    return None


def model_config(folder: str | Path, task: Task) -> BertConfig:
    """What the tasks' predict and transformers' pipelines read of a PyTorch model's `config.json`: the head class
    of the task (the Keras path trains BERT only), the labels, the problem type, the longest input, and the tuned
    settings."""
    labels = read_labels(folder)
    names = labels["label_names"]
    named = (
        {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}} if names else {}
    )
    limit = sequence_length(folder)
    return BertConfig(
        architectures=[f"Bert{task.architecture_suffix}"],
        problem_type=task.problem_type,
        **({"max_position_embeddings": limit} if limit else {}),
        **named,
        **labels.get("settings", {}),
    )
