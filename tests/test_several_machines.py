"""Two machines on 127.0.0.1: one `accelerate launch` per machine, one CPU process each, joined over gloo.

`accelerate launch --cpu` with several processes starts one (it picks the single-process launcher), so the processes
are asked for with `--multi_gpu` and put on the CPU with `ACCELERATE_USE_CPU=1`, as on one machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from safetensors.torch import load_file

from conftest import REPO_ROOT, SAMPLES, free_port

LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
LAUNCH += ["--mixed_precision", "no", "--dynamo_backend", "no"]
ENVIRONMENT = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
TIMEOUT_S = 240
"""A launch that never joins its process group fails the test instead of blocking it."""


def train_flags(model: Path, output_dir: Path) -> list[str]:
    return [
        "train.py", "--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--model", str(model),
        "--output_dir", str(output_dir), "--max_seq_length", "64", "--per_device_train_batch_size", "4",
        "--learning_rate", "1e-3", "--num_train_epochs", "1", "--seed", "7", "--report_to", "none",
    ]  # fmt: skip


def run_machines(commands: list[list[str]], logs: Path) -> None:
    """Start every command at once, wait for all (at most `TIMEOUT_S`), check that each succeeded. Their output
    goes to files in `logs`: a pipe left unread while waiting for another process could fill and stall it."""
    logs.mkdir()
    with ExitStack() as stack:
        processes = []
        for number, command in enumerate(commands):
            log = stack.enter_context(open(logs / f"{number}.log", "w"))
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=ENVIRONMENT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            stack.callback(end_session, process)
            processes.append(process)
        for process in processes:
            process.wait(timeout=TIMEOUT_S)
    for number, process in enumerate(processes):
        assert process.returncode == 0, (logs / f"{number}.log").read_text()[-3000:]


def end_session(process: subprocess.Popen) -> None:
    """Kill a launch and the training processes it started (its session), should it still run: killed alone, the
    launcher would leave them waiting for each other."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def machine(rank: int, port: str, *flags: str) -> list[str]:
    """The launch one machine of two runs: its rank, and where machine 0 listens."""
    return [*LAUNCH, "--num_machines", "2", "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1",
            "--main_process_port", port, *flags]  # fmt: skip


def test_two_machines_train_the_weights_of_two_processes_on_one(tiny_model_dir, tmp_path):
    """Both jobs run at once, on ports of their own: the two machines' launches and one launch of two processes."""
    port = str(free_port())
    machines = [machine(rank, port, *train_flags(tiny_model_dir, tmp_path / "machines")) for rank in (0, 1)]
    one_machine = [
        *LAUNCH,
        "--main_process_port",
        str(free_port()),
        *train_flags(tiny_model_dir, tmp_path / "one"),
    ]
    run_machines([*machines, one_machine], tmp_path / "logs")

    machines = load_file(tmp_path / "machines" / "model.safetensors")
    one = load_file(tmp_path / "one" / "model.safetensors")
    assert machines.keys() == one.keys()
    assert all((machines[name] == one[name]).all() for name in one), "the weights differ"
    start = load_file(tiny_model_dir / "model.safetensors")
    embeddings = "embeddings.word_embeddings.weight"
    assert not (machines[f"bert.{embeddings}"] == start[embeddings]).all()  # they did train
