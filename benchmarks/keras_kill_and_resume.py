"""A Keras run killed (SIGKILL) after its first checkpoint and resumed, next to the same run uninterrupted: how
exactly `--framework tensorflow --resume_from_checkpoint latest` continues on real data.

    python benchmarks/keras_kill_and_resume.py --data_dir ../shared/data/wnut17

Three `train.py --framework tensorflow` runs in fresh processes, in a temporary folder (outputs and Arrow cache):
the uninterrupted run; the same run, SIGKILLed as soon as its first `checkpoints/step_N` is complete; that run
resumed. One line per finished run (its evaluation-split figures), then `keras_resume` with the step it was killed
after, how many of the saved model's weight arrays equal the uninterrupted run's, and the largest difference. The
default is W-NUT 17 train -> dev for one epoch; `--task` and `--data_dir` take any task the Keras path trains.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import REPO_ROOT, ensure_repo_on_path, result_line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", required=True, help="the task's data folder (train and dev files)")
    parser.add_argument("--task", default="wnut17")
    parser.add_argument("--model", help="default: train.py's default model")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--learning_rate", type=float, default=5e-4)
    parser.add_argument("--checkpointing_steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def command(args: argparse.Namespace, output_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        *("--framework", "tensorflow", "--task", args.task, "--data_dir", args.data_dir),
        *("--output_dir", str(output_dir), "--num_train_epochs", str(args.epochs)),
        *("--learning_rate", str(args.learning_rate), "--seed", str(args.seed)),
        *("--checkpointing_steps", str(args.checkpointing_steps), "--report_to", "none"),
        *(("--model", args.model) if args.model else ()),
        *extra,
    ]


def killed_after_first_checkpoint(args: argparse.Namespace, output_dir: Path, env: dict[str, str]) -> str:
    """Start the run, SIGKILL it once a checkpoint folder is complete (renamed from `.partial`); its name."""
    process = subprocess.Popen(command(args, output_dir), cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL)
    folder = output_dir / "checkpoints"
    while not (done := [p for p in folder.glob("step_*") if not p.name.endswith(".partial")]):
        if process.poll() is not None:
            raise SystemExit(f"the run ended (status {process.returncode}) before its first checkpoint")
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return done[0].name


def figures(output_dir: Path) -> dict:
    results = json.loads((output_dir / "eval_results.json").read_text(encoding="utf-8"))
    return {key: value for key, value in results.items() if isinstance(value, float) and key != "runtime_s"}


def saved_weights(output_dir: Path) -> list:
    """The saved model's weight arrays; TensorFlow is imported only now, once the runs are over."""
    ensure_repo_on_path()
    from processing import keras_models

    return keras_models.load(output_dir)[0].get_weights()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="keras-resume-") as folder:
        work = Path(folder)
        env = {**os.environ, "HF_DATASETS_CACHE": str(work / "cache")}
        uninterrupted, resumed = work / "uninterrupted", work / "resumed"
        subprocess.run(
            command(args, uninterrupted), check=True, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL
        )
        killed_after = killed_after_first_checkpoint(args, resumed, env)
        resume = command(args, resumed, "--resume_from_checkpoint", "latest")
        subprocess.run(resume, check=True, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL)
        for name, output_dir in (("uninterrupted", uninterrupted), ("resumed", resumed)):
            print(result_line("keras_run", {"run": name, **figures(output_dir)}))
        expected, weights = saved_weights(uninterrupted), saved_weights(resumed)
    equal = sum(int((a == b).all()) for a, b in zip(weights, expected, strict=True))
    largest = max(float(abs(a - b).max()) for a, b in zip(weights, expected, strict=True) if a.size)
    print(
        result_line(
            "keras_resume",
            {"killed_after": killed_after, "weights": len(expected), "equal": equal, "max_abs_diff": largest},
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
