"""IMDb from a CSV file trains to the same model as IMDb from its aclImdb folders, with the same seed.

    python benchmarks/imdb_csv_parity.py --data ../shared/data/imdb/aclImdb-train.tar.gz --work_dir /tmp/parity

The folder loader reads the archive; its train split (text, label name) is written to `imdb.csv` in that order.
Then `train.py` runs twice with the same flags and seed, once as `--task imdb --data_dir ARCHIVE` and once as
`--task text-classification --train_file imdb.csv` (the format detected from the name), each holding out the same
seeded validation split. One result line per run (accuracy and macro F1 on the held-out split), then whether the
two agree.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _bench import REPO_ROOT, ensure_repo_on_path, result_line, write_reviews_csv


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb folder or archive (train split)")
    parser.add_argument("--work_dir", required=True, help="where the CSV and both runs' outputs go")
    parser.add_argument("--max_train_samples", type=int, default=1000)
    parser.add_argument("--max_eval_samples", type=int, default=500)
    parser.add_argument("--num_train_epochs", type=float, default=1.0)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def write_csv(data: str, path: Path) -> int:
    """The folder loader's train split as a CSV of `text,label` (label names, not ids), in the loader's order."""
    ensure_repo_on_path()
    import loaders

    return write_reviews_csv(loaders.load_dataset("imdb", data_dir=data, split="train"), path)


def train(args: argparse.Namespace, output_dir: Path, data_flags: list[str]) -> dict[str, float]:
    command = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        *data_flags,
        "--output_dir",
        str(output_dir),
        "--overwrite_output_dir",
        "--max_train_samples",
        str(args.max_train_samples),
        "--max_eval_samples",
        str(args.max_eval_samples),
        "--num_train_epochs",
        str(args.num_train_epochs),
        "--max_seq_length",
        str(args.max_seq_length),
        "--seed",
        str(args.seed),
        "--report_to",
        "none",
    ]
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    return json.loads((output_dir / "eval_results.json").read_text())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(args.work_dir).resolve()
    csv_path = work / "imdb.csv"
    rows = write_csv(args.data, csv_path)
    print(result_line("csv", {"rows": rows, "path": str(csv_path)}))
    runs = {
        "folders": ["--task", "imdb", "--data_dir", str(Path(args.data).resolve())],
        "csv": ["--task", "text-classification", "--train_file", str(csv_path)],
    }
    results = {name: train(args, work / name, flags) for name, flags in runs.items()}
    for name, metrics in results.items():
        print(result_line("run", {"data": name, "accuracy": metrics["accuracy"], "f1": metrics["f1"]}))
    same = results["folders"]["accuracy"] == results["csv"]["accuracy"]
    print(result_line("parity", {"same_accuracy": same}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
