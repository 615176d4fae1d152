"""Which mixed precision a PyTorch run trains in, from `--mixed_precision` and what the hardware can do.

bf16 autocast pays off on a CPU only where the CPU multiplies bf16 itself (AVX512-BF16, or AMX tiles); elsewhere
PyTorch emulates it and a run gets slower, not faster. So `auto` asks the CPU, through PyTorch's own capability
checks (the ones its oneDNN kernels dispatch on), and never guesses from a model name. Without the flag the choice
is Accelerate's: `accelerate launch --mixed_precision ...` or `accelerate config`, "no" when neither says.
"""

from __future__ import annotations

PRECISIONS = ("no", "bf16", "fp16", "auto")


def native_cpu_bf16() -> bool:
    """Whether this CPU computes in bf16 natively: AVX512-BF16 (AMD Zen 4 and later, Intel Cooper Lake) or AMX
    (Intel Sapphire Rapids and later). torch is imported here, not at the top: the flags' module imports this one
    and the Keras path reads the flags."""
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def cpu_run() -> bool:
    """Whether Accelerate will put this process on the CPU: asked for (`ACCELERATE_USE_CPU`, which `accelerate
    launch --cpu` and a config's `use_cpu` set) or no GPU. Read from the environment, not from `PartialState`: a
    state made before the Accelerator would be the one it reuses, without the launcher's settings."""
    import torch
    from accelerate.utils import parse_flag_from_env

    return parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()


def resolve_mixed_precision(flag: str | None, use_cpu: bool) -> str | None:
    """What `Accelerator(mixed_precision=...)` gets: the flag as given, with `auto` decided here (bf16 on a CPU run
    whose CPU has native bf16, else no; a GPU run keeps full precision unless asked), and None (Accelerate's own
    setting) without the flag. fp16 is refused on a CPU, where it would need a GPU's loss scaling."""
    if flag == "fp16" and use_cpu:
        raise ValueError("--mixed_precision fp16: needs a GPU (loss scaling); on a CPU use bf16 or auto")
    if flag != "auto":
        return flag
    return "bf16" if use_cpu and native_cpu_bf16() else "no"


def check_mixed_precision(flag: str | None, framework: str) -> None:
    """The Keras loop trains in float32; refused before any work rather than ignored."""
    if flag not in (None, "no") and framework == "tensorflow":
        raise ValueError(
            f"--mixed_precision {flag}: not supported with --framework tensorflow (it trains in float32); "
            "use --framework pytorch"
        )
