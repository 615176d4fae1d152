"""Runs that survive faults: SIGKILL at any moment (during a checkpoint save too), SIGTERM, a diverging loss,
resuming on the wrong data. Each killed run is resumed and must end exactly like an uninterrupted one on CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

import train
from conftest import REPO_ROOT, SAMPLES
from runner import checkpoints

RUN = [
    "--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--max_seq_length", "48",
    "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8", "--learning_rate", "1e-3",
    "--num_train_epochs", "4", "--report_to", "none", "--checkpointing_steps", "1",
]  # fmt: skip


def start(model: Path, output_dir: Path, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "train.py",
        *RUN,
        "--model",
        str(model),
        "--output_dir",
        str(output_dir),
        *extra,
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return out


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.001)


def final_state(output_dir: Path) -> tuple[dict, dict]:
    results = {
        k: v
        for k, v in json.loads((output_dir / "test_results.json").read_text()).items()
        if k != "runtime_s"
    }
    return results, load_file(output_dir / "model.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, tmp_path_factory) -> tuple[dict, dict]:
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    finish(start(tiny_model_dir, output_dir))
    return final_state(output_dir)


def assert_same_end(output_dir: Path, uninterrupted: tuple[dict, dict]) -> None:
    results, weights = final_state(output_dir)
    expected_results, expected_weights = uninterrupted
    assert results == expected_results
    assert all((weights[name] == expected_weights[name]).all() for name in expected_weights)  # exact, on CPU


def test_sigkill_during_a_checkpoint_save_resumes_from_the_last_complete_one(
    tiny_model_dir, tmp_path, uninterrupted
):
    process = start(tiny_model_dir, tmp_path, "--save_total_limit", "2")
    folder = tmp_path / "checkpoints"
    wait_for(lambda: folder.is_dir() and any(p.name.endswith(".partial") for p in folder.iterdir()))
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert any(
        p.name.endswith(".partial") for p in folder.iterdir()
    )  # killed mid-save: a torn folder is left
    assert len(checkpoints.complete_checkpoints(tmp_path)) <= 2

    finish(start(tiny_model_dir, tmp_path, "--save_total_limit", "2", "--resume_from_checkpoint", "latest"))
    assert_same_end(tmp_path, uninterrupted)
    assert len(checkpoints.complete_checkpoints(tmp_path)) == 2


def test_sigkill_between_steps_resumes_exactly(tiny_model_dir, tmp_path, uninterrupted):
    process = start(tiny_model_dir, tmp_path)
    wait_for(lambda: (tmp_path / "checkpoints" / "step_9").is_dir())
    process.send_signal(signal.SIGKILL)
    process.wait()

    out = finish(start(tiny_model_dir, tmp_path, "--resume_from_checkpoint", "latest"))
    assert "Resumed from" in out
    assert_same_end(tmp_path, uninterrupted)


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tiny_model_dir, tmp_path, uninterrupted):
    process = start(tiny_model_dir, tmp_path, "--checkpointing_steps", "5")
    wait_for(lambda: (tmp_path / "checkpoints" / "step_5").is_dir())  # training is under way, 19 steps to go
    process.send_signal(signal.SIGTERM)
    out = finish(process)
    assert "SIGTERM: saved a checkpoint at step" in out
    assert (
        checkpoints.latest_checkpoint(tmp_path).name != "step_5"
    )  # saved where the signal arrived, not at step 5
    assert not (tmp_path / "model.safetensors").exists()  # stopped: no final model pretending to be finished

    finish(
        start(tiny_model_dir, tmp_path, "--checkpointing_steps", "1000", "--resume_from_checkpoint", "latest")
    )
    assert_same_end(tmp_path, uninterrupted)


def test_a_diverging_loss_stops_the_run_naming_the_step(
    tiny_model_dir, tmp_path, capsys, fresh_accelerate_state
):
    argv = [*RUN, "--model", str(tiny_model_dir), "--output_dir", str(tmp_path), "--learning_rate", "1e30"]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    err = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(err) == 1 and "at step" in err[0] and ("nan" in err[0] or "inf" in err[0])


def test_resuming_on_data_with_other_labels_is_refused(
    tiny_model_dir, tmp_path, capsys, fresh_accelerate_state
):
    checkpoint = tmp_path / "checkpoints" / "step_1"
    checkpoint.mkdir(parents=True)
    (checkpoint / checkpoints.STATE_FILE).write_text(
        json.dumps(
            {"completed_steps": 1, "epoch": 0, "batches_in_epoch": 1, "label_names": ["bad", "good", "ugly"]}
        )
    )
    argv = [
        *RUN,
        "--model",
        str(tiny_model_dir),
        "--output_dir",
        str(tmp_path),
        "--resume_from_checkpoint",
        "latest",
    ]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    err = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(err) == 1 and "['bad', 'good', 'ugly']" in err[0] and "['neg', 'pos']" in err[0]


@pytest.mark.parametrize(
    "changed, difference",
    [
        (["--per_device_train_batch_size", "8"], "global batch size 4 there, 8 here"),
        (["--gradient_accumulation_steps", "2"], "--gradient_accumulation_steps 1 there, 2 here"),
    ],
)
def test_resuming_with_other_batches_is_refused(
    changed, difference, tiny_model_dir, tmp_path, capsys, fresh_accelerate_state
):
    """The checkpoint's position counts batches of its run's global size and its steps groups of its accumulation:
    resumed with others, the run would skip or repeat examples."""
    argv = [*RUN, "--model", str(tiny_model_dir), "--output_dir", str(tmp_path), "--num_train_epochs", "1"]
    assert train.main(argv) == 0
    capsys.readouterr()
    assert train.main([*argv, *changed, "--resume_from_checkpoint", "latest"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(err) == 1 and "another run's checkpoint" in err[0] and difference in err[0], err


def test_a_checkpoint_written_before_its_batches_were_recorded_still_resumes(
    tiny_model_dir, tmp_path, capsys, fresh_accelerate_state
):
    argv = [*RUN, "--model", str(tiny_model_dir), "--output_dir", str(tmp_path), "--num_train_epochs", "1"]
    assert train.main(argv) == 0
    for checkpoint in checkpoints.complete_checkpoints(tmp_path):
        path = checkpoint / checkpoints.STATE_FILE
        state = json.loads(path.read_text())
        del state["global_batch_size"], state["gradient_accumulation_steps"]
        path.write_text(json.dumps(state))
    capsys.readouterr()
    assert train.main([*argv, "--resume_from_checkpoint", "latest"]) == 0
    assert "Resumed from" in capsys.readouterr().out
