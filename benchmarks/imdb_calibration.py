"""Temperature scaling on IMDb: the test split's expected calibration error before and after, the temperature
fitted on a validation split that test never touches.

    python benchmarks/imdb_calibration.py --data ../shared/data/imdb/aclImdb-train.tar.gz --work_dir /tmp/calib

The shared IMDb archive holds only the train split, so its reviews are shuffled once (seeded) and written as three
disjoint CSV files, `train.csv`, `validation.csv` and `test.csv` (text, label name). Then one `train.py --task
text-classification --calibrate temperature` run reads them as any user's CSV files: it fits T on validation,
folds it into the saved classifier and scores test with and without it. One result line per split written, then
the run's temperature, test accuracy and test ECE before and after.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

from _bench import REPO_ROOT, ensure_repo_on_path, result_line, write_reviews_csv

SPLITS = ("train", "validation", "test")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb folder or archive (train split)")
    parser.add_argument("--work_dir", required=True, help="where the three CSV files and the run's output go")
    parser.add_argument("--train_reviews", type=int, default=2000)
    parser.add_argument("--validation_reviews", type=int, default=1000)
    parser.add_argument("--test_reviews", type=int, default=2000)
    parser.add_argument("--num_train_epochs", type=float, default=1.0)
    parser.add_argument("--max_seq_length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def write_splits(args: argparse.Namespace, folder: Path) -> dict[str, int]:
    """Three disjoint, seeded samples of the archive's reviews as `text,label` CSV files (label names)."""
    ensure_repo_on_path()
    import loaders

    reviews = loaders.load_dataset("imdb", data_dir=args.data, split="train")
    sizes = (args.train_reviews, args.validation_reviews, args.test_reviews)
    if sum(sizes) > len(reviews):
        raise SystemExit(
            f"--data holds {len(reviews)} reviews: expected at least {sum(sizes)} for the three splits"
        )
    order = list(range(len(reviews)))
    random.Random(args.seed).shuffle(order)
    counts, start = {}, 0
    for split, size in zip(SPLITS, sizes, strict=True):
        counts[split] = write_reviews_csv(
            reviews.select(order[start : start + size]), folder / f"{split}.csv"
        )
        start += size
    return counts


def train(args: argparse.Namespace, data_dir: Path, output_dir: Path) -> dict[str, dict]:
    command = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        "--task",
        "text-classification",
        "--data_dir",
        str(data_dir),
        "--calibrate",
        "temperature",
        "--output_dir",
        str(output_dir),
        "--overwrite_output_dir",
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
    return {
        "config": json.loads((output_dir / "config.json").read_text()),
        "validation": json.loads((output_dir / "eval_results.json").read_text()),
        "test": json.loads((output_dir / "test_results.json").read_text()),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(args.work_dir).resolve()
    counts = write_splits(args, work / "data")
    for split, rows in counts.items():
        print(
            result_line(
                "split", {"name": split, "reviews": rows, "path": str(work / "data" / f"{split}.csv")}
            )
        )
    run = train(args, work / "data", work / "model")
    test = run["test"]
    print(
        result_line(
            "calibration",
            {
                "temperature": run["config"]["calibration_temperature"],
                "fitted_on": f"validation ({run['validation']['num_examples']} reviews)",
                "test_reviews": test["num_examples"],
                "test_accuracy": test["accuracy"],
                "test_ece_before": test["ece_before_temperature"],
                "test_ece_after": test["ece"],
            },
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
