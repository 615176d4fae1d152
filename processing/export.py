"""`python -m processing.export --model OUTPUT_DIR --onnx [--quantize int8]`: a saved model as ONNX, for ONNX
Runtime on the CPU, written next to its PyTorch weights as `onnx/model.onnx` (and `onnx/model_quantized.onnx`).

Hugging Face's own exporter, Optimum's `optimum-onnx`, is not used: its only release (0.1.0) requires
transformers < 4.58 and fails to import with transformers 5. The export is PyTorch's own `torch.onnx.export`
with `dynamo=True` (the `torch.export` route; the older TorchScript tracer baked the example's attention-mask
shapes into the graph, and its logits were 1e-2 off on other lengths), with the batch and the sequence length
dynamic, then rewritten into ONNX Runtime's fused transformer kernels (`fuse_for_onnx_runtime`). Quantization is
ONNX Runtime's dynamic quantization (`quantize_dynamic`: int8 weights, activations quantized per batch at run time;
see `quantize_int8`), which is what Optimum's `ORTQuantizer` runs underneath; the file names follow Optimum's, so
its `ORTModel` classes can load the folder once it supports transformers 5.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import AutoConfig, AutoTokenizer, PreTrainedModel

from .models import load_pretrained

if TYPE_CHECKING:
    import onnx_ir

ONNX_FOLDER = "onnx"
MODEL_FILE = "model.onnx"
QUANTIZED_FILE = "model_quantized.onnx"
QUANTIZATIONS = ("int8",)
INSTALL_HINT = "pip install 'rawtune[onnx]'"
EXAMPLE_TEXTS = (
    ["Where is the exported model written?", "Which shapes does it take?"],
    ["Next to the PyTorch weights, in its own folder.", "Any batch size and any length the model allows."],
)
"""A pair of sentence pairs to trace with: two rows of unequal length, so neither the batch nor the sequence axis
is size 1 (which `torch.export` would take for a constant), and token type ids of both segments."""


def onnx_file(model: str | Path, quantize: str | None = None) -> Path:
    """The ONNX file predict runs for `--backend onnx` (`--quantize int8`: the quantized one), which must exist."""
    path = Path(model) / ONNX_FOLDER / (QUANTIZED_FILE if quantize else MODEL_FILE)
    if not path.is_file():
        flags = "--onnx" + (f" --quantize {quantize}" if quantize else "")
        raise ValueError(
            f"--backend onnx: {path} does not exist; export it with "
            f"python -m processing.export --model {model} {flags}"
        )
    return path


def require(module: str) -> None:
    """Fail with the install command, not a traceback, when the optional `onnx` extra is absent."""
    try:
        __import__(module)
    except ImportError:
        raise ValueError(f"ONNX export and --backend onnx need {module}: {INSTALL_HINT}") from None


def load_torch_model(model: Path) -> PreTrainedModel:
    """The saved model with the head class its `config.json` names, so any head exports the same way."""
    import transformers

    if not (model / "config.json").is_file():
        raise ValueError(f"--model {model}: no config.json (expected a train.py output directory)")
    architectures = AutoConfig.from_pretrained(model).architectures or []
    head = next((getattr(transformers, name) for name in architectures if hasattr(transformers, name)), None)
    if head is None:
        raise ValueError(f"--model {model}: config.json names no transformers model class ({architectures})")
    return load_pretrained(head, str(model)).eval()


def export_onnx(model: str | Path) -> Path:
    """Write `onnx/model.onnx` for the saved model in `model`; its outputs are named as the model's outputs
    (`logits`, or `start_logits` and `end_logits`), so the runtime side needs no table of heads."""
    require("onnxscript")
    import torch

    model = Path(model)
    network = load_torch_model(model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    encoding = tokenizer(*EXAMPLE_TEXTS, padding=True, return_tensors="pt")
    inputs = {name: encoding[name] for name in tokenizer.model_input_names if name in encoding}
    with torch.no_grad():
        outputs = [name for name, value in network(**inputs).items() if isinstance(value, torch.Tensor)]
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    program = torch.onnx.export(
        network,
        (),
        kwargs=inputs,
        dynamo=True,
        input_names=list(inputs),
        output_names=outputs,
        dynamic_shapes={name: {0: batch, 1: sequence} for name in inputs},
        verbose=False,
    )
    fuse_for_onnx_runtime(program.model)
    path = model / ONNX_FOLDER / MODEL_FILE
    path.parent.mkdir(exist_ok=True)
    program.save(str(path))
    return path


def fuse_for_onnx_runtime(model: onnx_ir.Model) -> None:
    """Rewrite the exported graph, in place, into ONNX Runtime's fused kernels (Attention, SkipLayerNormalization,
    BiasGelu) with onnxscript's `ort_fusions`, the ONNX Runtime team's rewriter for graphs from the dynamo exporter.

    The exporter spells each attention as some twenty small nodes, with the NaN guard of PyTorch's SDPA
    (`Where(IsNaN(...))`) that alone took 19% of the int8 model's time; ONNX Runtime's own session-time fusions
    match the patterns of the older TorchScript exporter, not these. On IMDb reviews at length 256 the fused fp32
    graph is faster than PyTorch where the unfused one was slower; logits are unchanged (tests/test_onnx.py).
    """
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    optimize_for_ort(model)


def quantize_int8(model: str | Path) -> Path:
    """`onnx/model_quantized.onnx`: ONNX Runtime's dynamic int8 quantization of `onnx/model.onnx`, of the matrix
    products only, weights scaled per output channel and kept to 7 bits (`reduce_range`).

    The choice is agreement with the fp32 model: on 200 held-out IMDb reviews (MiniLM-L6, length 256) per-channel
    MatMul-only kept 98.0% of the labels, against 96.5% when the embedding tables (Gather) are quantized too and
    94.5% with one scale per tensor (those only make the file smaller; the speed is in the int8 matrix products).
    On 500 reviews of the fused graph, 7-bit weights kept 98.8% instead of 97.8%, at the same speed: on CPUs without
    VNNI, ONNX Runtime's u8 x s8 products add pairs in 16 bits that can saturate, which the 7-bit range avoids (its
    documentation's advice for such CPUs); on CPUs with VNNI the one bit less costs little.
    """
    require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = onnx_file(model)
    target = source.with_name(QUANTIZED_FILE)
    quantize_dynamic(
        source,
        target,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        op_types_to_quantize=["MatMul"],
    )
    return target


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m processing.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a train.py output directory")
    parser.add_argument("--onnx", action="store_true", help="write onnx/model.onnx")
    parser.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        help="also write onnx/model_quantized.onnx (dynamic int8; with --onnx, or from an earlier export)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not (args.onnx or args.quantize):
        print("error: nothing to do: pass --onnx (and/or --quantize int8)", file=sys.stderr)
        return 2
    model = Path(args.model)
    try:
        if not model.is_dir():
            raise ValueError(f"--model {model}: no such folder (expected a train.py output directory)")
        written = [export_onnx(model)] if args.onnx else []
        if args.quantize:
            written.append(quantize_int8(model))
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
