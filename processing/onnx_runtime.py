"""An exported model (see `processing.export`) run by ONNX Runtime behind the interface predict uses of a PyTorch
model, so every task's predict, with its windows and post-processing, runs on either unchanged.

Optimum's `ORTModelFor...` classes are this, but no release of them imports with transformers 5 (see
`processing.export`); this wrapper is the part predict and `transformers.pipeline` need: `config`, `device`,
`to`/`eval`, and a call on tokenizer tensors that returns a `ModelOutput` named as the graph's outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, PretrainedConfig
from transformers.utils import ModelOutput

from .export import onnx_file, require
from .models import StandInModel, output_class


class OnnxModel(StandInModel):
    """A saved model's ONNX export in an ONNX Runtime session on the CPU, called like the PyTorch model."""

    placement = "the ONNX backend runs on the CPU (expected cpu)"

    def __init__(self, path: Path, config: PretrainedConfig, threads: int | None = None) -> None:
        require("onnxruntime")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.config = config
        self.input_names = [node.name for node in self.session.get_inputs()]
        self.output_class = output_class(tuple(node.name for node in self.session.get_outputs()))

    @classmethod
    def from_folder(cls, model: str | Path, quantize: str | None = None) -> OnnxModel:
        """The export in `model`, as an instance of a subclass named as the PyTorch head class in its config:
        `transformers.pipeline` checks a model's class name against the heads its task takes, and logs an error
        for any other name."""
        config = AutoConfig.from_pretrained(model)
        head = (config.architectures or [cls.__name__])[0]
        return type(head, (cls,), {})(onnx_file(model, quantize), config)

    def forward(self, **inputs: Any) -> ModelOutput:
        """The graph's inputs from the tokenizer's tensors (inputs it does not take, such as token type ids of
        a model without them, are left out); outputs as CPU tensors, as the PyTorch model returns them."""
        feeds = {name: np.asarray(inputs[name], dtype=np.int64) for name in self.input_names}
        outputs = self.session.run(None, feeds)
        return self.output_class(*(torch.from_numpy(output) for output in outputs))
