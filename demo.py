"""`make demo`: load the three sample sets, fine-tune the embedded model on each task, and use the results.

Everything runs from `samples/` with no network: the default model is embedded in an installed package.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from transformers import pipeline

import processing  # noqa: F401  (registers the extractive QA pipeline)
from loaders import load_dataset
from loaders.__main__ import summarize

SAMPLES = Path(__file__).resolve().parent / "samples"
OUTPUT = Path("outputs") / "demo"

RUNS = {
    "imdb": ["--data_dir", str(SAMPLES / "imdb"), "--max_seq_length", "128", "--num_train_epochs", "4",
             "--learning_rate", "1e-4", "--per_device_train_batch_size", "8"],
    "wnut17": ["--data_dir", str(SAMPLES / "wnut17"), "--num_train_epochs", "8", "--learning_rate", "5e-4",
               "--per_device_train_batch_size", "4"],
    "squad_v2": ["--data_dir", str(SAMPLES / "squad"), "--max_seq_length", "192", "--doc_stride", "64",
                 "--num_train_epochs", "2", "--learning_rate", "2e-4", "--per_device_train_batch_size", "8"],
}  # fmt: skip
EXAMPLES = {
    "imdb": (
        "text-classification",
        {},
        ["A warm, funny and beautifully acted film.", "Dull, slow and a waste of time."],
    ),
    "wnut17": (
        "token-classification",
        {"aggregation_strategy": "simple"},
        [
            "Just got my new iphone from the apple store in denver",
            "watching stranger things on netflix with @maria",
        ],
    ),
    "squad_v2": (
        "extractive-question-answering",
        {"handle_impossible_answer": True},
        [
            {
                "question": "Where does the lake lie?",
                "context": "The lake lies in a valley north of the old mill town.",
            },
            {
                "question": "Who built the bridge?",
                "context": "The lake lies in a valley north of the old mill town.",
            },
        ],
    ),
}


def main() -> int:
    for name, folder in (("imdb", "imdb"), ("wnut17", "wnut17"), ("squad_v2", "squad")):
        print(f"== {name}: samples/{folder}")
        print("\n".join(summarize(load_dataset(name, data_dir=SAMPLES / folder))))

    table = []
    for task, flags in RUNS.items():
        output_dir = OUTPUT / task
        command = [
            sys.executable,
            "train.py",
            "--task",
            task,
            "--output_dir",
            str(output_dir),
            "--report_to",
            "none",
        ]
        print(f"\n== training: {' '.join(command[1:] + flags)}")
        started = time.perf_counter()
        subprocess.run(command + flags, check=True)
        elapsed = time.perf_counter() - started
        for split in ("eval", "test"):
            path = output_dir / f"{split}_results.json"
            if path.exists():
                metrics = json.loads(path.read_text())
                figures = {
                    k: v
                    for k, v in metrics.items()
                    if k in ("accuracy", "f1", "precision", "recall", "exact")
                }
                table.append((task, split, metrics["num_examples"], figures, elapsed))

        pipeline_task, kwargs, texts = EXAMPLES[task]
        predictor = pipeline(pipeline_task, model=str(output_dir), **kwargs)
        for text in texts:
            prediction = predictor(**text) if isinstance(text, dict) else predictor(text)
            print(f"   {text!r} -> {prediction}")

    print("\n== results on the samples (tiny data: the point is the pipeline, not the scores)")
    print(f"{'task':<8} {'split':<5} {'n':>4}  {'metrics':<52} {'train+eval s':>12}")
    for task, split, n, figures, elapsed in table:
        shown = " ".join(f"{k}={v:.3f}" for k, v in figures.items())
        print(f"{task:<8} {split:<5} {n:>4}  {shown:<52} {elapsed:>12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
