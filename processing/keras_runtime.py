"""A Keras output directory's model behind the interface predict uses of a PyTorch model, as `onnx_runtime` puts an
ONNX export there: every task's predict, with its windows and post-processing, and transformers' pipelines run on
it unchanged. Imported only for a Keras folder (see `predicting.load_network`): it loads TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import BertConfig
from transformers.utils import ModelOutput

from . import keras_folder, keras_models
from .models import StandInModel, output_class
from .registry import TASKS
from .tf_data import KERAS_INPUT_NAMES


class KerasNetwork(StandInModel):
    """A `model.keras` called like the PyTorch head of its task: tokenizer tensors in, CPU tensors out.

    TensorFlow places the model itself (on its GPU when it sees one), so the tensors around it stay on the CPU.
    """

    placement = (
        "TensorFlow places a Keras model itself, on its GPU when it sees one (expected cpu, the default for a "
        "Keras model)"
    )

    def __init__(self, model: Any, config: BertConfig, output_names: tuple[str, ...]) -> None:
        self.model = model
        self.config = config
        self.output_names = output_names
        self.output_class = output_class(output_names)

    @classmethod
    def from_folder(cls, folder: str | Path) -> KerasNetwork:
        """The folder's model, as an instance of a subclass named as the PyTorch head class of its task:
        `transformers.pipeline` checks a model's class name against the heads its task takes."""
        model, task_name, _ = keras_models.load(Path(folder))
        task = TASKS[task_name].task
        config = keras_folder.model_config(folder, task)
        return type(config.architectures[0], (cls,), {})(model, config, task.output_names)

    def forward(self, **inputs: Any) -> ModelOutput:
        """KerasHub's input names for the tokenizer's tensors (segment ids of zeros when it gives none), one
        `predict_on_batch`, as the Keras path evaluates."""
        named = {
            keras_name: np.asarray(inputs[name], dtype=np.int64)
            for name, keras_name in KERAS_INPUT_NAMES.items()
            if name in inputs
        }
        named.setdefault("segment_ids", np.zeros_like(named["token_ids"]))
        outputs = self.model.predict_on_batch(named)
        return self.output_class(
            *(torch.from_numpy(np.asarray(outputs[name], dtype=np.float32)) for name in self.output_names)
        )
