"""`train.py --streaming`: each process's part of a sharded train split, read pass after pass; two real CPU
processes (gloo) on uneven parts stop together at `--max_steps`, and a killed run resumes where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import datasets
import pytest
from safetensors.torch import load_file

import loaders
import train
from conftest import REPO_ROOT, SAMPLES, refused_before_loading, reset_accelerate
from processing.registry import TASKS
from runner.config import TrainingConfig
from runner.streaming import StreamBatches, training_stream

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

WORDS = ["good", "bad", "great", "awful", "movie", "film", "london", "paris", "apple"]
"""One word per example, each a single token of the tiny vocabulary: a feature's input ids say which example it is."""


def write_parquet_shards(folder: Path, shards: int) -> None:
    """The train split as `python -m loaders push` lays it out: `train-0000i-of-0000n.parquet`."""
    rows = datasets.Dataset.from_dict(
        {"text": WORDS, "label": [i % 2 for i in range(len(WORDS))]},
        features=datasets.Features(
            {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
        ),
    )
    folder.mkdir(parents=True)
    for index in range(shards):
        shard = rows.shard(shards, index, contiguous=True)
        shard.to_parquet(str(folder / f"train-{index:05d}-of-{shards:05d}.parquet"))


def words_read_per_pass(
    train_split: datasets.Dataset, tokenizer, rank: int, passes: int
) -> dict[int, list[str]]:
    """The words process `rank` of 2 trains on in each of its first `passes` passes, read through the stream and
    the batches the loop reads (`training_stream` with the task's own `prepare`, `StreamBatches`)."""
    config = TrainingConfig(task="imdb", max_seq_length=16)
    task = TASKS["imdb"].task
    stream = training_stream(
        train_split,
        lambda split: task.prepare(split, tokenizer, config, True),
        seed=7,
        buffer_size=4,
        rank=rank,
        world_size=2,
    )
    batches = StreamBatches(stream, 2, lambda rows: [row["input_ids"][1] for row in rows], "cpu")
    read: dict[int, list[str]] = {}
    for batch in batches:
        if batches.passes == passes:
            return read
        read.setdefault(batches.passes, []).extend(tokenizer.convert_ids_to_tokens(batch))
    raise AssertionError("unreachable: the batches never end")


def test_each_pass_reads_every_example_once_across_two_processes(tiny_tokenizer, tmp_path):
    """Four Parquet shards of 9 examples, read through the parquet loader: each process's part is its own, the two
    parts together are the whole split in every pass, though the parts are uneven and dealt out anew each pass."""
    write_parquet_shards(tmp_path / "data", 4)
    train_split = loaders.load_dataset(
        "parquet", data_dir=tmp_path / "data", schema="text-classification", split="train"
    )
    assert sorted(train_split["text"]) == sorted(WORDS)

    parts = [words_read_per_pass(train_split, tiny_tokenizer, rank, passes=3) for rank in (0, 1)]
    for number in range(3):
        first, second = parts[0][number], parts[1][number]
        assert Counter(first + second) == Counter(WORDS), number  # every example once, none twice
    assert len(parts[0][0]) != len(parts[1][0])  # 9 examples: one process reads more
    assert [parts[0][n] for n in range(3)] != [parts[0][0]] * 3  # each pass shuffles anew


RUN = [
    "--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--max_seq_length", "32",
    "--per_device_train_batch_size", "2", "--per_device_eval_batch_size", "8", "--learning_rate", "1e-3",
    "--report_to", "none", "--streaming", "--max_steps", "16", "--checkpointing_steps", "1",
    "--shuffle_buffer_size", "1",
]  # fmt: skip
"""21 training reviews after the held-out validation: 11 for one process, 10 for the other, 2 per batch. Without
cycling, the process with 10 would run out at step 6 while the other waits in its 6th step's all-reduce."""


def start_two_processes(model: Path, output_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    """Two real CPU processes with gloo, in their own session so that a kill reaches both."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
        "train.py", *RUN, "--model", str(model), "--output_dir", str(output_dir), *extra,
    ]  # fmt: skip
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen) -> str:
    """The run's output; a run that hangs fails the test after 240 s instead of hanging it."""
    try:
        out, err = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError("the two processes did not finish: a hang") from None
    assert process.returncode == 0, err[-3000:]
    return out


def test_uneven_parts_stop_together_and_a_killed_run_resumes_where_it_stopped(tiny_model_dir, tmp_path, capsys):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    finish(start_two_processes(tiny_model_dir, whole, 29531))
    state = json.loads((whole / "checkpoints" / "step_16" / "trainer_state.json").read_text())
    assert state["completed_steps"] == 16 and state["passes"] >= 2  # the main process read its part twice over
    assert {"process_0_state.json", "process_1_state.json"} <= {
        p.name for p in (whole / "checkpoints" / "step_16").iterdir()
    }

    process = start_two_processes(tiny_model_dir, killed, 29532)
    deadline = time.monotonic() + 240
    while not (killed / "checkpoints" / "step_7").is_dir():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before step 7"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    out = finish(start_two_processes(tiny_model_dir, killed, 29533, "--resume_from_checkpoint", "latest"))
    assert "Resumed from" in out

    weights, expected = load_file(killed / "model.safetensors"), load_file(whole / "model.safetensors")
    assert all((weights[name] == expected[name]).all() for name in expected)  # exact, on CPU
    results = [json.loads((d / "test_results.json").read_text()) for d in (killed, whole)]
    assert [{k: v for k, v in r.items() if k != "runtime_s"} for r in results][0] == {
        k: v for k, v in results[1].items() if k != "runtime_s"
    }

    # One process cannot continue the two parts of the stream that two processes were reading.
    reset_accelerate()
    argv = [*RUN, "--model", str(tiny_model_dir), "--output_dir", str(killed), "--max_steps", "20"]
    capsys.readouterr()
    assert train.main([*argv, "--resume_from_checkpoint", "latest"]) == 2
    assert "holds the stream positions of 2 processes, and 1 resume it" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--streaming"], "--max_steps None: expected an integer >= 1 with --streaming"),
        (["--max_steps", "10"], "--max_steps 10: expected no value without --streaming"),
        (
            ["--streaming", "--max_steps", "10", "--framework", "tensorflow"],
            "--streaming is not supported with --framework tensorflow",
        ),
        (["--streaming", "--max_steps", "10", "--shuffle_buffer_size", "0"], "--shuffle_buffer_size 0"),
    ],
)
def test_streaming_flags_that_cannot_be_honoured_are_one_line_before_any_work(
    extra, message, monkeypatch, capsys, tmp_path
):
    argv = ["--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--output_dir", str(tmp_path), *extra]
    assert message in refused_before_loading(monkeypatch, capsys, argv)
