"""`train.py --streaming`: each process's part of a sharded train split, read pass after pass; two real CPU
processes (gloo) on uneven parts stop together at `--max_steps`, and a resumed run continues where it stopped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import pytest
import torch
from safetensors.torch import load_file

import loaders
import train
from conftest import REPO_ROOT, SAMPLES, free_port, refused_before_loading
from processing.registry import TASKS
from runner import checkpoints
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


def run_two_processes(model: Path, output_dir: Path, *extra: str) -> str:
    """Two real CPU processes with gloo; a run that hangs fails the test after 240 s instead of hanging it."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        "train.py", *RUN, "--model", str(model), "--output_dir", str(output_dir), *extra,
    ]  # fmt: skip
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    try:
        completed = subprocess.run(
            command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=240
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("the two processes did not finish: a hang") from None
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_uneven_parts_stop_together_and_a_resumed_run_continues_where_it_stopped(
    tiny_model_dir, tmp_path, capsys
):
    """The resumed run starts from the uninterrupted run's step 7 checkpoint alone, as a run killed after writing
    it would (tests/test_faults.py kills runs at any moment: only complete checkpoints are ever resumed from)."""
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    run_two_processes(tiny_model_dir, whole)
    last = whole / "checkpoints" / "step_16"
    state = json.loads((last / "trainer_state.json").read_text())
    assert (
        state["completed_steps"] == 16 and state["passes"] >= 2
    )  # the main process read its part twice over
    assert {"process_0_state.json", "process_1_state.json"} <= {p.name for p in last.iterdir()}
    # The learning rate decays linearly over the 16 steps of both processes together (1 step of warmup), not
    # twice as fast because Accelerate's scheduler steps once per process.
    for step in (8, 15, 16):
        scheduler = torch.load(whole / "checkpoints" / f"step_{step}" / "scheduler.bin", weights_only=True)
        assert scheduler["_last_lr"][0] == pytest.approx(1e-3 * (16 - step) / 15)

    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(whole / "checkpoints" / "step_7", resumed / "checkpoints" / "step_7")
    out = run_two_processes(tiny_model_dir, resumed, "--resume_from_checkpoint", "latest")
    assert "Resumed from" in out and "at step 7" in out

    weights, expected = load_file(resumed / "model.safetensors"), load_file(whole / "model.safetensors")
    assert all((weights[name] == expected[name]).all() for name in expected)  # exact, on CPU
    scored = [json.loads((d / "test_results.json").read_text()) for d in (resumed, whole)]
    for results in scored:
        del results["runtime_s"]
    assert scored[0] == scored[1]

    # One process cannot continue the two parts of the stream that two processes were reading: at the same
    # per-device batch its global batch is half theirs, and at the same global batch it has one stream to two.
    argv = [*RUN, "--model", str(tiny_model_dir), "--output_dir", str(resumed), "--max_steps", "20"]
    capsys.readouterr()
    assert train.main([*argv, "--resume_from_checkpoint", "latest"]) == 2
    assert "global batch size 4 there, 2 here" in capsys.readouterr().err
    same_batch = [*argv, "--per_device_train_batch_size", "4", "--resume_from_checkpoint", "latest"]
    assert train.main(same_batch) == 2
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


def test_a_checkpoint_from_before_streaming_existed_resumes_as_a_map_style_run(tmp_path):
    identity = {"task": "text-classification", "data": "0123"}
    (tmp_path / checkpoints.STATE_FILE).write_text(json.dumps({"completed_steps": 3, **identity}))
    checkpoints.check_same_run(tmp_path, {**identity, "streaming": False})
    with pytest.raises(ValueError, match="--streaming False there, True here"):
        checkpoints.check_same_run(tmp_path, {**identity, "streaming": True})


def multi_label_split(folder: Path) -> datasets.Dataset:
    rows = folder / "topics.jsonl"
    rows.write_text(
        "\n".join(
            json.dumps({"text": text, "labels": labels})
            for text, labels in [
                ("the film was good", ["film"]),
                ("london and paris", ["city"]),
                ("a good film in paris", ["film", "city"]),
                ("apple went to google", []),
            ]
        )
        + "\n"
    )
    return loaders.load_dataset(
        "jsonl", data_files={"train": str(rows)}, schema="multi-label-classification", split="train"
    )


@pytest.mark.parametrize("task_name", ["imdb", "wnut17", "squad_v2", "multi-label-classification"])
def test_every_tasks_prepare_streams_the_features_it_maps(task_name, tiny_tokenizer, tmp_path):
    """One pass of the stream holds exactly the training features `prepare` maps the split to, in another order:
    the same function, run lazily on an `IterableDataset`."""
    choice = TASKS[task_name]
    if choice.loader is None:
        split = multi_label_split(tmp_path)
    else:
        folder = {"imdb": "imdb", "wnut17": "wnut17", "squad_v2": "squad"}[task_name]
        split = loaders.load_dataset(choice.loader, data_dir=SAMPLES / folder, split="train")
    config = TrainingConfig(task=task_name, max_seq_length=128, doc_stride=32)
    prepare = choice.task.prepare
    mapped = prepare(split, tiny_tokenizer, config, True)
    stream = training_stream(
        split,
        lambda part: prepare(part, tiny_tokenizer, config, True),
        seed=3,
        buffer_size=5,
        rank=0,
        world_size=1,
    )
    streamed = list(stream)
    assert set(streamed[0]) == set(mapped.column_names)
    as_text = sorted(json.dumps(row, sort_keys=True) for row in streamed)
    assert as_text == sorted(json.dumps(row, sort_keys=True) for row in mapped)
