"""Training throughput on IMDb: our train.py loop versus the classic padded loop versus `transformers.Trainer`.

    python benchmarks/train_throughput.py --data ../shared/data/imdb/aclImdb-train.tar.gz --num_reviews 2000 \\
        --max_seq_length 512 --batch_size 16 --steps 50 --rounds 3

Same model (default: the embedded all-MiniLM-L6-v2), same batch size, same machine, same reviews: every path takes
the N training reviews `train.py` would train on with `--max_train_samples N` (the loader's data, minus the
seeded 10% validation split, first N of the rest). Each path runs `--warmup_steps` untimed optimizer steps, then
`--steps` timed ones; the paths alternate (ours, classic, trainer, ours, ...) for `--rounds` rounds, each run in a
fresh Python process.

ours:    `torch_loop.setup(TrainingConfig(...))` (so: our loader, `classification.prepare`, length-grouped batches on by
         default, dynamic padding, Accelerate), then `torch_loop.train_loop(run)` itself with `run.max_steps` set to
         warmup + steps. The training data loader is wrapped to note when the loop asks for each batch; the clock
         runs from the request of the first timed batch to the loop's return.
ours-bf16: the same, with `--mixed_precision bf16` (Accelerate's bf16 autocast on the CPU; float32 weights).
classic: `tokenizer(texts, truncation=True, padding=True)` (padded to the longest review: the maximum length on
         real IMDb), a `torch.utils.data.Dataset` building tensors per item, `DataLoader(shuffle=True)`, and
         `optimizer.zero_grad(); model(**batch).loss.backward(); optimizer.step()` with `torch.optim.AdamW`.
trainer: `Dataset.map(tokenizer(..., truncation=True))`, `Trainer(processing_class=tokenizer)` with its defaults
         (random batches, `DataCollatorWithPadding`, its default optimizer, gradient clipping, `use_cpu=True`,
         `report_to=[]`, `max_steps=warmup + steps`, no saving). A callback notes the time at each step's end; the
         clock runs from the end of the last warm-up step to the end of the last step. Tokens are counted from the
         batches `Trainer.training_step` receives (a subclass counts them, then calls the original), so they are
         exactly the batches trained on. Its own `train_runtime` / `train_samples_per_second` (which include its
         set-up and the warm-up steps) are printed beside.

CPU only: the runs see no GPU (CUDA_VISIBLE_DEVICES is emptied); benchmarks/gpu_throughput.py covers GPUs.
`--profile` adds, after the timed steps of ours and ours-bf16, one optimizer step under torch.profiler (not timed)
and prints its top ops by self CPU time. Real tokens are the attention mask's ones (non-pad tokens), padded tokens are batch x width. Per run one line;
then per path the median over rounds, and the ratios ours/classic, ours/trainer and ours-bf16/ours of real tokens/s
(the median of the rounds' ratios, with their min and max).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _bench import (
    classic_imdb_dataset,
    ensure_repo_on_path,
    quiet_libraries,
    result_line,
    run_child,
    write_result,
)

PATHS = ("ours", "ours-bf16", "classic", "trainer")
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
VALIDATION_SHARE = 0.1  # train.py's default --validation_size
LEARNING_RATE = 5e-5
TOP_OPS = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument(
        "--data", required=True, help="aclImdb tarball or folder (what train.py's --data_dir takes)"
    )
    parser.add_argument(
        "--num_reviews", type=int, required=True, help="N training reviews to draw batches from"
    )
    parser.add_argument("--max_seq_length", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--steps", type=int, required=True, help="timed optimizer steps per run")
    parser.add_argument(
        "--warmup_steps", type=int, default=2, help="untimed optimizer steps first (at least 1)"
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Hub id or folder")
    parser.add_argument(
        "--paths", default=",".join(PATHS), help=f"comma-separated subset of {','.join(PATHS)}"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument(
        "--cache_dir",
        default=None,
        help="datasets cache shared by the runs (default: a temporary folder, removed at the end)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="ours and ours-bf16: after the timed steps, profile one more and print its top ops (not timed)",
    )
    parser.add_argument("--_child", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--_result", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- in the child ----------------------------------------------------------------------------------------------


def batch_counts(batch) -> tuple[int, int, int]:
    """(samples, real tokens, padded tokens) of a batch of model inputs."""
    input_ids = batch["input_ids"]
    return int(input_ids.shape[0]), int(batch["attention_mask"].sum()), int(input_ids.numel())


def training_config(args: argparse.Namespace, output_dir: str, mixed_precision: str = "no"):
    from runner.config import TrainingConfig

    return TrainingConfig(
        task="imdb",
        data_dir=args.data,
        model=args.model,
        output_dir=output_dir,
        max_seq_length=args.max_seq_length,
        per_device_train_batch_size=args.batch_size,
        learning_rate=LEARNING_RATE,
        num_train_epochs=1,
        seed=args.seed,
        max_train_samples=args.num_reviews,
        max_eval_samples=args.batch_size,
        validation_size=VALIDATION_SHARE,
        group_by_length=True,
        report_to="none",
        mixed_precision=mixed_precision,
    )


def training_reviews(args: argparse.Namespace, output_dir: str):
    """Exactly the raw reviews `torch_loop.setup` trains on with this configuration."""
    from processing.registry import TASKS
    from runner import data as run_data

    choice = TASKS["imdb"]
    return run_data.load_raw(training_config(args, output_dir), choice.loader, choice.task)["train"]


class TimedBatches:
    """Wraps the training data loader: notes when the loop asks for each batch, and each batch's token counts."""

    def __init__(self, loader) -> None:
        self.loader = loader
        self.asked: list[float] = []
        self.counts: list[tuple[int, int, int]] = []

    def set_epoch(self, epoch: int) -> None:
        self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        batches = iter(self.loader)
        while True:
            asked = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            self.asked.append(asked)
            self.counts.append(batch_counts(batch))
            yield batch


def run_ours(args: argparse.Namespace, work_dir: str, mixed_precision: str = "no") -> dict:
    from runner import torch_loop

    run = torch_loop.setup(training_config(args, work_dir, mixed_precision))
    total = args.warmup_steps + args.steps
    if len(run.train_dataloader) < total:
        raise SystemExit(f"error: only {len(run.train_dataloader)} batches in an epoch, {total} steps asked")
    run.max_steps = total
    timed = TimedBatches(run.train_dataloader)
    run.train_dataloader = timed
    torch_loop.train_loop(run)
    ended = time.perf_counter()
    assert len(timed.counts) == total, (len(timed.counts), total)
    result = {"seconds": ended - timed.asked[args.warmup_steps], "counts": timed.counts[args.warmup_steps :]}
    if args.profile:
        result["top_ops"] = profile_one_step(run, timed.loader)
    return result


def profile_one_step(run, loader) -> list[list]:
    """torch.profiler's view of one more optimizer step (`torch_loop.training_step`: forward under the run's
    autocast, backward, AdamW) on a batch of the same loader: the ops with the most CPU time of their own, as
    [name, share of the step's self CPU time, calls]."""
    from torch.profiler import ProfilerActivity, profile

    from runner import torch_loop

    batch = next(iter(loader))
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        torch_loop.training_step(run, batch, run.max_steps + 1)
    events = [e for e in profiler.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [[e.key, round(e.self_cpu_time_total / total, 4), e.count] for e in events[:TOP_OPS]]


def run_classic(args: argparse.Namespace, work_dir: str) -> dict:
    import torch
    from torch.utils.data import DataLoader
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    from processing.models import resolve_model

    reviews = training_reviews(args, work_dir)[:]  # a dict of Python lists
    texts, labels = reviews["text"], reviews["label"]
    model_path = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    encodings = tokenizer(texts, truncation=True, padding=True, max_length=args.max_seq_length)
    set_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    loader = DataLoader(
        classic_imdb_dataset(encodings, labels),
        batch_size=args.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    model.train()
    batches = iter(loader)
    counts = []
    started = None
    for step in range(args.warmup_steps + args.steps):
        if step == args.warmup_steps:
            started = time.perf_counter()
        batch = next(batches)
        counts.append(batch_counts(batch))
        optimizer.zero_grad()
        outputs = model(**batch)
        loss = outputs.loss
        loss.backward()
        optimizer.step()
    ended = time.perf_counter()
    return {"seconds": ended - started, "counts": counts[args.warmup_steps :]}


def run_trainer(args: argparse.Namespace, work_dir: str) -> dict:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    from processing.models import resolve_model

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.step_ends: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.step_ends.append(time.perf_counter())

    class CountingTrainer(Trainer):
        counts: list[tuple[int, int, int]]

        def training_step(self, model, inputs, num_items_in_batch=None):
            self.counts.append(batch_counts(inputs))
            return super().training_step(model, inputs, num_items_in_batch)

    reviews = training_reviews(args, work_dir)
    model_path = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenized = reviews.map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=args.max_seq_length), batched=True
    )
    set_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    training_args = TrainingArguments(
        output_dir=str(Path(work_dir) / "trainer"),
        max_steps=args.warmup_steps + args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=LEARNING_RATE,
        seed=args.seed,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
    )
    clock = StepClock()
    trainer = CountingTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized,
        processing_class=tokenizer,
        callbacks=[clock],
    )
    trainer.counts = []
    output = trainer.train()
    total = args.warmup_steps + args.steps
    assert len(clock.step_ends) == total and len(trainer.counts) == total, (len(clock.step_ends), total)
    return {
        "seconds": clock.step_ends[-1] - clock.step_ends[args.warmup_steps - 1],
        "counts": trainer.counts[args.warmup_steps :],
        "trainer_runtime_s": output.metrics["train_runtime"],
        "trainer_samples_per_s": output.metrics["train_samples_per_second"],
        "collator": type(trainer.data_collator).__name__,
        "optim": str(getattr(training_args.optim, "value", training_args.optim)),
    }


def child(args: argparse.Namespace) -> None:
    ensure_repo_on_path()
    quiet_libraries()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    run = {
        "ours": run_ours,
        "ours-bf16": lambda args, work_dir: run_ours(args, work_dir, "bf16"),
        "classic": run_classic,
        "trainer": run_trainer,
    }[args._child]
    with tempfile.TemporaryDirectory(prefix=f"throughput-{args._child}-") as work_dir:
        result = run(args, work_dir)
    result["threads"] = torch.get_num_threads()
    write_result(args._result, result)


# --- the parent --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args._child:
        child(args)
        return
    paths = [p for p in args.paths.split(",") if p]
    if not paths or any(p not in PATHS for p in paths):
        raise SystemExit(f"error: --paths takes a comma-separated subset of {','.join(PATHS)}")
    if args.warmup_steps < 1 or args.steps < 1 or args.rounds < 1:
        raise SystemExit("error: --warmup_steps, --steps and --rounds must be at least 1")
    needed = (args.warmup_steps + args.steps) * args.batch_size
    if args.num_reviews < needed:
        raise SystemExit(
            f"error: --num_reviews must be at least (warmup_steps + steps) x batch_size = {needed}"
        )
    data = str(Path(args.data).resolve())
    model_name = Path(args.model.rstrip("/")).name
    forwarded = [
        *("--data", data, "--num_reviews", str(args.num_reviews), "--model", args.model),
        *("--max_seq_length", str(args.max_seq_length), "--batch_size", str(args.batch_size)),
        *("--steps", str(args.steps), "--warmup_steps", str(args.warmup_steps), "--seed", str(args.seed)),
        *(("--threads", str(args.threads)) if args.threads else ()),
        *(("--profile",) if args.profile else ()),
    ]
    rates: dict[str, list[dict[str, float]]] = {path: [] for path in paths}
    with tempfile.TemporaryDirectory(prefix="throughput-cache-") as scratch:
        # One datasets cache for all runs: the loader prepares the reviews once, the runs reuse them.
        # CPU only, for every path alike (torch_loop.setup's Accelerator would otherwise take a GPU if there is one).
        env = {"HF_DATASETS_CACHE": args.cache_dir or scratch, "CUDA_VISIBLE_DEVICES": ""}
        for round_index in range(1, args.rounds + 1):
            for path in paths:
                result = run_child(Path(__file__), [*forwarded, "--_child", path], env=env)
                samples, real, padded = (sum(column) for column in zip(*result["counts"], strict=True))
                seconds = result["seconds"]
                rate = {
                    "samples_per_s": samples / seconds,
                    "real_tokens_per_s": real / seconds,
                    "padded_tokens_per_s": padded / seconds,
                }
                rates[path].append(rate)
                fields = {
                    "path": path,
                    "round": round_index,
                    "model": model_name,
                    "max_seq_length": args.max_seq_length,
                    "batch_size": args.batch_size,
                    "steps": args.steps,
                    **rate,
                    "real_share": real / padded,
                    "timed_s": seconds,
                    "threads": result["threads"],
                    **{
                        key: result[key]
                        for key in ("trainer_runtime_s", "trainer_samples_per_s", "collator", "optim")
                        if key in result
                    },
                }
                print(result_line("train", fields), flush=True)
                for rank, (name, share, calls) in enumerate(result.get("top_ops", []), start=1):
                    op = {"path": path, "round": round_index, "rank": rank, "name": name, "share": share}
                    print(result_line("top_op", {**op, "calls": calls}), flush=True)
    medians = {
        path: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for path, runs in rates.items()
    }
    for path, median in medians.items():
        print(result_line("train_median", {"path": path, "rounds": args.rounds, **median}), flush=True)
    for ours, other in (("ours", "classic"), ("ours", "trainer"), ("ours-bf16", "ours")):
        if ours in medians and other in medians:
            ratios = [
                a["real_tokens_per_s"] / b["real_tokens_per_s"]
                for a, b in zip(rates[ours], rates[other], strict=True)
            ]
            fields = {"ratio": f"{ours}/{other}", "real_tokens_per_s": statistics.median(ratios)}
            print(result_line("train_ratio", {**fields, "min": min(ratios), "max": max(ratios)}), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
