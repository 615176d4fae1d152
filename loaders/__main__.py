"""`python -m loaders summary NAME --data_dir DIR`: load raw files and print what came out, split by split."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import datasets

from . import LOADERS, DataFormatError, load_dataset


def summarize(dataset: datasets.DatasetDict) -> list[str]:
    """One line per split: row count and the label balance (classes, entity tags, or answerable/unanswerable)."""
    lines = []
    for split, rows in dataset.items():
        features = rows.features
        if "label" in features:
            names = features["label"].names
            counts = Counter(rows["label"])
            detail = ", ".join(
                f"{names[i] if i >= 0 else 'unlabelled'}={n}" for i, n in sorted(counts.items())
            )
        elif "ner_tags" in features:
            names = features["ner_tags"].feature.names
            counts = Counter(
                names[t][2:] for tags in rows["ner_tags"] for t in tags if names[t].startswith("B-")
            )
            detail = f"{sum(len(t) for t in rows['tokens'])} tokens, entities: " + ", ".join(
                f"{k}={v}" for k, v in sorted(counts.items())
            )
        else:
            unanswerable = sum(not answers["text"] for answers in rows["answers"])
            detail = f"answerable={len(rows) - unanswerable}, unanswerable={unanswerable}"
        lines.append(f"{split:>12}: {len(rows):>6} rows  {detail}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loaders", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    summary = commands.add_parser("summary", help="load a data set and print rows and labels per split")
    summary.add_argument("name", choices=sorted(LOADERS))
    summary.add_argument("--data_dir")
    summary.add_argument("--cache_dir")
    args = parser.parse_args(argv)
    try:
        dataset = load_dataset(args.name, data_dir=args.data_dir, cache_dir=args.cache_dir)
    except DataFormatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.name} ({args.data_dir or 'downloaded'})")
    print("\n".join(summarize(dataset)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
