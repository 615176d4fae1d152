"""Training throughput of random-weight BERT-sized classifiers on synthetic IMDb-like lengths, in bf16 autocast.

    python benchmarks/gpu_throughput.py                       # on a CUDA machine (see gpu_check.sh)
    python benchmarks/gpu_throughput.py --device cpu --steps 2  # smoke check on a CPU

On a CPU the defaults shrink to a smoke check (batch 2, length 64, fp32: most CPUs emulate bf16, slowly);
the figures there say nothing about a GPU.

Needs only torch and transformers (no data, no Hub access, no project package). Models are
`BertForSequenceClassification` built from configs with random weights: `distilbert-size` (6 layers, 768 hidden,
12 heads) and `bert-base-size` (12 layers, 768 hidden, 12 heads), 2 labels, SDPA attention.

Lengths are drawn from a log-normal fitted to IMDb reviews under a BERT uncased vocabulary (median 230 tokens, 15%
over 512: measured on a 1-in-8 sample, 3,125 reviews, of the aclImdb train set), clipped to [16, max_seq_length];
token ids are random. Batching strategies, as in benchmarks/train_throughput.py:

grouped: transformers' `LengthGroupedSampler` (what train.py uses), each batch padded to its longest member rounded
         up to a multiple of 8 (train.py's collator on CUDA).
padded:  random batches, every sequence padded to max_seq_length (the classic recipe's padding=True on IMDb).
dynamic: random batches padded to their longest member (Trainer's default `DataCollatorWithPadding`).

Batches are built on the CPU before timing and copied to the device in the loop. Per (model, strategy):
`--warmup_steps` untimed steps (on the first batches again), then `--steps` timed steps (one per batch) of forward (autocast), backward, AdamW (fused on CUDA),
synchronised before and after. Printed per run: samples/s, real (non-pad) and padded tokens/s, and model FLOPs
utilisation estimated as 6 x parameters x tokens / time / peak, with the parameters excluding the embedding tables
(lookups, not matrix products) and attention's sequence-length-dependent FLOPs ignored: `mfu` counts real tokens
(useful work), `mfu_padded` padded tokens (work the device did). Peak dense bf16 TFLOP/s comes from a small table by
`torch.cuda.get_device_name()` or `--peak_tflops`; unknown devices print nan.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

MODELS = {"distilbert-size": 6, "bert-base-size": 12}
STRATEGIES = ("grouped", "padded", "dynamic")
LENGTH_MEDIAN = 230
LENGTH_SIGMA = 0.77
MIN_LENGTH = 16
VOCAB_SIZE = 30522
CLS_ID, SEP_ID, PAD_ID = 101, 102, 0

# Dense bf16 tensor-core peak in TFLOP/s, matched in order against the device name.
PEAK_BF16_TFLOPS = (
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("RTX 4090", 165.0),
    ("A6000", 155.0),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto (cuda when available)")
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}"
    )
    parser.add_argument(
        "--strategies",
        default=",".join(STRATEGIES),
        help="comma-separated subset of grouped, padded, dynamic",
    )
    parser.add_argument("--batch_size", type=int, default=None, help="default 32 on CUDA, 2 on CPU")
    parser.add_argument("--max_seq_length", type=int, default=None, help="default 512 on CUDA, 64 on CPU")
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps per run (default 50 on CUDA, 2 on CPU)"
    )
    parser.add_argument(
        "--warmup_steps", type=int, default=None, help="untimed steps first (default 10 on CUDA, 1 on CPU)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the strategies this many times, interleaved"
    )
    parser.add_argument(
        "--dtype",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="bf16: autocast; auto: bf16 on CUDA, fp32 on CPU (most CPUs emulate bf16, slowly)",
    )
    parser.add_argument("--peak_tflops", type=float, default=None, help="override the device's peak TFLOP/s")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def peak_tflops(device: torch.device, override: float | None) -> tuple[str, float]:
    if device.type != "cuda":
        return "cpu", override if override is not None else math.nan
    name = torch.cuda.get_device_name(device)
    if override is not None:
        return name, override
    return name, next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), math.nan)


def synthetic_lengths(count: int, max_seq_length: int, rng: np.random.Generator) -> np.ndarray:
    lengths = np.exp(rng.normal(math.log(LENGTH_MEDIAN), LENGTH_SIGMA, size=count)).round().astype(np.int64)
    return np.clip(lengths, MIN_LENGTH, max_seq_length)


def batch_orders(
    strategy: str, lengths: np.ndarray, batch_size: int, num_batches: int, seed: int
) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    if strategy == "grouped":
        from transformers.trainer_pt_utils import LengthGroupedSampler

        order = list(LengthGroupedSampler(batch_size, lengths=lengths.tolist(), generator=generator))
    else:
        order = torch.randperm(len(lengths), generator=generator).tolist()
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(num_batches)]


def make_batch(indices: list[int], strategy: str, lengths: np.ndarray, max_seq_length: int, rng) -> dict:
    batch_lengths = lengths[indices]
    if strategy == "padded":
        width = max_seq_length
    elif strategy == "grouped":
        width = min(max_seq_length, -(-int(batch_lengths.max()) // 8) * 8)
    else:
        width = int(batch_lengths.max())
    input_ids = torch.full((len(indices), width), PAD_ID, dtype=torch.long)
    attention_mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, length in enumerate(batch_lengths.tolist()):
        input_ids[row, 0] = CLS_ID
        input_ids[row, 1 : length - 1] = torch.from_numpy(rng.integers(1000, VOCAB_SIZE, size=length - 2))
        input_ids[row, length - 1] = SEP_ID
        attention_mask[row, :length] = 1
    labels = torch.from_numpy(rng.integers(0, 2, size=len(indices)))
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def build_model(layers: int, max_seq_length: int, device: torch.device, seed: int):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=768,
        num_hidden_layers=layers,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=max(512, max_seq_length),
        num_labels=2,
    )
    config._attn_implementation = "sdpa"
    model = BertForSequenceClassification(config).to(device)
    embedding = sum(p.numel() for p in model.bert.embeddings.parameters())
    total = sum(p.numel() for p in model.parameters())
    return model, total, total - embedding


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(model, optimizer, batch: dict, device: torch.device, dtype) -> None:
    batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def timed_run(model, optimizer, batches: list[dict], warmup: int, device: torch.device, dtype) -> float:
    """`warmup` untimed steps on the first batches (cycled), then one timed step per batch."""
    model.train()
    for step in range(warmup):
        train_step(model, optimizer, batches[step % len(batches)], device, dtype)
    synchronize(device)
    started = time.perf_counter()
    for batch in batches:
        train_step(model, optimizer, batch, device, dtype)
    synchronize(device)
    return time.perf_counter() - started


def line(fields: dict) -> str:
    parts = []
    for key, value in fields.items():
        if isinstance(value, float):
            value = f"{value:.4g}" if abs(value) < 100 else f"{value:.1f}"
        parts.append(f"{key}={value}")
    return "gpu_train " + " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    on_cuda = device.type == "cuda"
    batch_size = args.batch_size or (32 if on_cuda else 2)
    max_seq_length = args.max_seq_length or (512 if on_cuda else 64)
    steps = args.steps or (50 if on_cuda else 2)
    warmup = args.warmup_steps if args.warmup_steps is not None else (10 if on_cuda else 1)
    models = [m for m in args.models.split(",") if m]
    strategies = [s for s in args.strategies.split(",") if s]
    if any(m not in MODELS for m in models) or any(s not in STRATEGIES for s in strategies):
        raise SystemExit(f"error: models are {', '.join(MODELS)}; strategies are {', '.join(STRATEGIES)}")
    if args.dtype == "auto":
        args.dtype = "bf16" if on_cuda else "fp32"
    dtype = torch.bfloat16 if args.dtype == "bf16" else None
    if on_cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    device_name, peak = peak_tflops(device, args.peak_tflops)
    print(f"device: {device_name}, peak bf16 {peak} TFLOP/s, torch {torch.__version__}", file=sys.stderr)

    rng = np.random.default_rng(args.seed)
    # One pool of steps x batch_size lengths, cut into batches by each strategy: every strategy trains on the same
    # sequences. The grouped sampler sorts mega-batches of 50 batches, so 50 steps (or a multiple) are one whole
    # mega-batch (or several), as representative of an epoch as any.
    lengths = synthetic_lengths(steps * batch_size, max_seq_length, rng)
    batches = {
        strategy: [
            make_batch(indices, strategy, lengths, max_seq_length, rng)
            for indices in batch_orders(strategy, lengths, batch_size, steps, args.seed)
        ]
        for strategy in strategies
    }
    for name in models:
        model, total_params, matmul_params = build_model(MODELS[name], max_seq_length, device, args.seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=on_cuda)
        real_rates: dict[str, list[float]] = {strategy: [] for strategy in strategies}
        for _ in range(args.rounds):
            for strategy in strategies:
                seconds = timed_run(model, optimizer, batches[strategy], warmup, device, dtype)
                timed = batches[strategy]
                samples = sum(len(b["labels"]) for b in timed)
                real = sum(int(b["attention_mask"].sum()) for b in timed)
                padded = sum(b["input_ids"].numel() for b in timed)
                flops_per_token = 6 * matmul_params
                real_rates[strategy].append(real / seconds)
                print(
                    line(
                        {
                            "model": name,
                            "strategy": strategy,
                            "device": device_name.replace(" ", "_"),
                            "dtype": args.dtype,
                            "batch_size": batch_size,
                            "max_seq_length": max_seq_length,
                            "steps": steps,
                            "samples_per_s": samples / seconds,
                            "real_tokens_per_s": real / seconds,
                            "padded_tokens_per_s": padded / seconds,
                            "real_share": real / padded,
                            "params_m": total_params / 1e6,
                            "matmul_params_m": matmul_params / 1e6,
                            "mfu": flops_per_token * real / seconds / (peak * 1e12),
                            "mfu_padded": flops_per_token * padded / seconds / (peak * 1e12),
                            "peak_tflops": peak,
                        }
                    ),
                    flush=True,
                )
        if "grouped" in real_rates:
            for other in ("padded", "dynamic"):
                if other in real_rates:
                    ratio = float(np.median(real_rates["grouped"]) / np.median(real_rates[other]))
                    print(
                        f"gpu_ratio model={name} ratio=grouped/{other} real_tokens_per_s={ratio:.3g}",
                        flush=True,
                    )
        del model, optimizer
        if on_cuda:
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
