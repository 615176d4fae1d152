"""Accuracy of a short IMDb run in fp32 and under bf16 autocast, same seed, same reviews: what `--mixed_precision
bf16` costs in accuracy, the condition for making it the default on CPUs with native bf16.

    python benchmarks/bf16_accuracy.py --data ../shared/data/imdb/aclImdb-train.tar.gz

Each precision is one `train.py --task imdb` run in a fresh process (`--max_train_samples 1000`, the validation
split's first `--max_eval_samples 500` scored, seed 42, one epoch, length 256 by default), its output and Arrow cache
in a temporary folder. One line per run (accuracy, F1, the precision the run recorded in training_args.json, wall
seconds), then `bf16_accuracy_delta` (bf16 minus fp32, in points; the issue's bound is -0.5). The wall times are a
by-product: `train_throughput.py` measures speed. On a CPU without native bf16 (`torch.cpu._is_avx512_bf16_supported()`
and `_is_amx_tile_supported()` both False) PyTorch emulates bf16 and the bf16 run is several times slower.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import REPO_ROOT, result_line

PRECISIONS = ("no", "bf16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb folder or archive (the train split)")
    parser.add_argument("--model", help="default: train.py's default model")
    parser.add_argument("--max_train_samples", type=int, default=1000)
    parser.add_argument("--max_eval_samples", type=int, default=500)
    parser.add_argument("--max_seq_length", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def train(args: argparse.Namespace, precision: str, work: Path) -> dict:
    """One train.py run; its validation figures and the precision it recorded."""
    output_dir = work / f"out-{precision}"
    command = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        *("--task", "imdb", "--data_dir", args.data, "--output_dir", str(output_dir)),
        *("--mixed_precision", precision, "--seed", str(args.seed)),
        *(
            "--max_train_samples",
            str(args.max_train_samples),
            "--max_eval_samples",
            str(args.max_eval_samples),
        ),
        *(
            "--max_seq_length",
            str(args.max_seq_length),
            "--per_device_train_batch_size",
            str(args.batch_size),
        ),
        *("--num_train_epochs", str(args.epochs)),
        *(("--model", args.model) if args.model else ()),
    ]
    start = time.perf_counter()
    env = {**os.environ, "HF_DATASETS_CACHE": str(work / "cache")}
    subprocess.run(command, check=True, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    results = json.loads((output_dir / "eval_results.json").read_text(encoding="utf-8"))
    recorded = json.loads((output_dir / "training_args.json").read_text(encoding="utf-8"))["mixed_precision"]
    return {"accuracy": results["accuracy"], "f1": results["f1"], "recorded": recorded, "wall_s": seconds}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bf16-accuracy-") as folder:
        runs = {precision: train(args, precision, Path(folder)) for precision in PRECISIONS}
    for precision, run in runs.items():
        print(result_line("bf16_accuracy", {"mixed_precision": precision, **run}))
    delta = 100 * (runs["bf16"]["accuracy"] - runs["no"]["accuracy"])
    print(result_line("bf16_accuracy_delta", {"points": delta, "within_half_a_point": delta >= -0.5}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
