"""Peak memory and throughput of `train.py --streaming` at two step counts, next to the map-style path.

    python benchmarks/streaming.py --data ../shared/data/imdb/aclImdb-train.tar.gz --steps 200,2000

The IMDb train reviews are written as Parquet shards in the Hub layout (`data/train-0000i-of-0000n.parquet` and a
README.md) by `loaders.hub.write_hub_folder`, the function with which `python -m loaders push` writes its folder
(`--local_dir` keeps it instead of uploading it), here with `--shard_mb` per shard so that 25,000 reviews make
several shards (push's own shards are of up to 500 MB, as `push_to_hub`'s). Each run trains a seeded random 2-layer BERT
(`--hidden` wide, the embedded model's tokenizer) on `--data_format parquet --data_dir <folder>/data`, in a fresh
process, from a copy of the Parquet shards' Arrow cache prepared once beforehand: `streaming` reads the train split as a stream
tokenized on the fly (`--streaming --max_steps N`), `map` tokenizes it whole first (`Dataset.map`, the default) and
trains N steps. One line per run: the process's peak RSS, the sampled peak of anonymous memory while training (heap,
not Arrow pages), the setup time (the map path tokenizes the split there), the training time and samples per
second; then per mode the peak RSS at the most steps over the fewest.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _bench import (
    AnonymousMemoryPeak,
    current_rss_mb,
    ensure_repo_on_path,
    peak_rss_mb,
    quiet_libraries,
    result_line,
    run_child,
    write_result,
)
from eval_memory import make_model

ensure_repo_on_path()

VALIDATION_SIZE = 256
"""Reviews held out of train for validation (tokenized map-style in both modes): few, so setup measures training."""


def write_shards(archive: Path, folder: Path, num_reviews: int | None, shard_mb: int) -> tuple[int, int]:
    """The loader's train reviews (the first `num_reviews` of them shuffled, when given) as Parquet shards in the
    layout `python -m loaders push` uploads; returns the number of reviews and of shards."""
    import datasets

    from loaders import load_dataset
    from loaders.hub import DATA_DIR, write_hub_folder

    train = load_dataset("imdb", data_dir=archive, split="train")
    if num_reviews is not None:
        train = train.shuffle(seed=0).select(range(num_reviews)).flatten_indices()
    write_hub_folder(
        datasets.DatasetDict({"train": train}),
        folder,
        name="imdb",
        repo_id="local/imdb-train",
        max_shard_size=f"{shard_mb}MB",
    )
    return len(train), len(list((folder / DATA_DIR).glob("train-*.parquet")))


def prepare_cache(data_dir: Path, cache: Path) -> None:
    """The Parquet shards' Arrow cache, prepared once: every run starts from a copy of it, so the map-style run
    tokenizes the split in its own setup, not in an earlier run's."""
    from loaders import load_dataset

    load_dataset("parquet", data_dir=data_dir, cache_dir=str(cache), schema="text-classification")


def child(args: argparse.Namespace) -> None:
    """One run: set up as `train.py` does, train `--max_steps` steps, note the time and the memory."""
    quiet_libraries()
    from runner import torch_loop
    from runner.config import parse_args

    config = parse_args(args.argv.split("\x1f"))
    started = time.perf_counter()
    run = torch_loop.setup(config)
    run.max_steps = args.max_steps  # --num_train_epochs gave the map-style run as many, give or take rounding
    set_up = time.perf_counter()
    before = current_rss_mb()
    with AnonymousMemoryPeak() as peak:
        torch_loop.train_loop(run)
    trained = time.perf_counter() - set_up
    write_result(
        args._result,
        {
            "setup_s": set_up - started,
            "train_s": trained,
            "samples_per_s": args.max_steps * config.per_device_train_batch_size / trained,
            "rss_before_train_mb": before,
            "train_peak_anon_mb": peak.peak_mb,
            "peak_rss_mb": peak_rss_mb(),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the IMDb train archive or aclImdb folder")
    parser.add_argument("--steps", default="200,2000")
    parser.add_argument("--modes", default="streaming,map")
    parser.add_argument("--num_reviews", type=int, help="the first N of the shuffled reviews (default: all)")
    parser.add_argument("--shard_mb", type=int, default=4, help="Parquet shard size (of Arrow data), MB")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--_result", help=argparse.SUPPRESS)
    parser.add_argument("--argv", help=argparse.SUPPRESS)
    parser.add_argument("--max_steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._result:
        child(args)
        return
    quiet_libraries()
    steps = [int(s) for s in args.steps.split(",")]
    with tempfile.TemporaryDirectory(prefix="streaming-") as tmp:
        folder = Path(tmp)
        reviews, shards = write_shards(args.data.resolve(), folder / "hub", args.num_reviews, args.shard_mb)
        prepare_cache(folder / "hub" / "data", folder / "cache")
        model_dir = make_model(folder, args.hidden)
        print(result_line("streaming_data", {"reviews": reviews, "parquet_shards": shards}))
        batches_per_epoch = -(-(reviews - VALIDATION_SIZE) // args.batch_size)
        peaks: dict[tuple[str, int], float] = {}
        for mode in args.modes.split(","):
            for count in steps:
                argv = [
                    "--task", "imdb", "--data_format", "parquet", "--data_dir", str(folder / "hub" / "data"),
                    "--model", str(model_dir), "--output_dir", str(folder / f"out-{mode}-{count}"),
                    "--max_seq_length", str(args.max_seq_length), "--validation_size", str(VALIDATION_SIZE),
                    "--per_device_train_batch_size", str(args.batch_size), "--report_to", "none",
                    *(
                        ["--streaming", "--max_steps", str(count)]
                        if mode == "streaming"
                        else ["--num_train_epochs", str(count / batches_per_epoch)]
                    ),
                ]  # fmt: skip
                child_argv = [
                    "--argv=" + "\x1f".join(argv),
                    "--max_steps",
                    str(count),
                    "--data",
                    str(args.data),
                ]
                cache = shutil.copytree(folder / "cache", folder / f"cache-{mode}-{count}")
                result = run_child(Path(__file__), child_argv, {"HF_DATASETS_CACHE": str(cache)})
                shutil.rmtree(cache)
                print(result_line("streaming", {"mode": mode, "steps": count, **result}))
                sys.stdout.flush()
                peaks[(mode, count)] = result["peak_rss_mb"]
            if len(steps) > 1:
                ratio = peaks[(mode, steps[-1])] / peaks[(mode, steps[0])]
                print(result_line("streaming_ratio", {"mode": mode, "peak_rss_ratio": ratio}))


if __name__ == "__main__":
    main()
