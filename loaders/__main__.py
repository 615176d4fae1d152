"""`python -m loaders summary NAME --data_dir DIR`: load raw files and print what came out, split by split.

`python -m loaders push NAME --data_dir DIR --repo_id user/name`: load them and publish the splits to the
Hugging Face Hub as Parquet with a dataset card (the token comes from `HF_TOKEN` or `hf auth login`);
with `--local_dir DIR`, write those files into DIR instead of uploading them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections import Counter
from pathlib import Path

import datasets

from . import LOADERS, DataFormatError, load_dataset
from .conll import split_tag
from .hub import push_dataset, write_hub_folder


def summarize(dataset: datasets.DatasetDict) -> list[str]:
    """One line per split: row count and the label balance (classes, rows per label of multi-label data, entity
    tags, or answerable/unanswerable)."""
    lines = []
    for split, rows in dataset.items():
        features = rows.features
        if "label" in features:
            names = features["label"].names
            counts = Counter(rows["label"])
            detail = ", ".join(
                f"{names[i] if i >= 0 else 'unlabelled'}={n}" for i, n in sorted(counts.items())
            )
        elif "labels" in features:
            names = features["labels"].feature.names
            counts = Counter(names[i] for labels in rows["labels"] for i in labels)
            none = sum(not labels for labels in rows["labels"])
            detail = ", ".join(f"{name}={counts[name]}" for name in names) + f", no label={none}"
        elif "ner_tags" in features:
            names = features["ner_tags"].feature.names
            tags = [split_tag(name) for name in names]
            counts = Counter(tags[t][1] for row in rows["ner_tags"] for t in row if tags[t][0] == "B")
            detail = f"{sum(len(t) for t in rows['tokens'])} tokens, entities: " + ", ".join(
                f"{k}={v}" for k, v in sorted(counts.items())
            )
        else:
            unanswerable = sum(not answers["text"] for answers in rows["answers"])
            detail = f"answerable={len(rows) - unanswerable}, unanswerable={unanswerable}"
        lines.append(f"{split:>12}: {len(rows):>6} rows  {detail}")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m loaders", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    summary = commands.add_parser("summary", help="load a data set and print rows and labels per split")
    push = commands.add_parser(
        "push", help="load a data set and publish it to the Hub as Parquet with a card"
    )
    for command in (summary, push):
        command.add_argument("name", choices=sorted(LOADERS))
        command.add_argument("--data_dir")
        command.add_argument("--cache_dir")
    push.add_argument("--repo_id", required=True, help="the dataset repository: user/name or org/name")
    push.add_argument(
        "--private",
        action="store_true",
        help="create the repository private (an existing one keeps its setting)",
    )
    push.add_argument(
        "--license", default="unknown", help="the data's license, a Hub license id (default: unknown)"
    )
    push.add_argument("--pretty_name", help="the card's title (default: the repository name)")
    push.add_argument(
        "--local_dir",
        help="write the repository's files (data/*.parquet, README.md) into this new or empty folder instead of "
        "uploading them, e.g. for train.py --streaming --data_format parquet --data_dir DIR/data",
    )
    args = parser.parse_args(argv)
    try:
        dataset = load_dataset(args.name, data_dir=args.data_dir, cache_dir=args.cache_dir)
    except DataFormatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.name} ({args.data_dir or 'downloaded'})")
    print("\n".join(summarize(dataset)))
    if args.command == "summary":
        return 0
    card = {
        "license": args.license,
        "pretty_name": args.pretty_name,
        "command": shlex.join(["python", "-m", "loaders", *argv]),
    }
    if args.local_dir:
        return write_local(dataset, args, card)
    try:
        url = push_dataset(dataset, args.name, args.repo_id, private=args.private, **card)
    except OSError as err:
        # huggingface_hub's errors are OSErrors (HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled): no
        # token, a token without write access, someone else's repository; the message says which.
        print(f"error: could not push to {args.repo_id}: {err}", file=sys.stderr)
        return 1
    print(f"pushed: {url}")
    return 0


def write_local(dataset: datasets.DatasetDict, args: argparse.Namespace, card: dict[str, str | None]) -> int:
    """The folder `push` would upload, written where asked: into a new or empty folder only, so files of the
    user's are never mixed with (or overwritten by) the shards."""
    folder = Path(args.local_dir)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        print(f"error: --local_dir {folder}: expected a new or empty folder", file=sys.stderr)
        return 2
    try:
        write_hub_folder(dataset, folder, name=args.name, repo_id=args.repo_id, **card)
    except OSError as err:
        print(f"error: --local_dir {folder}: {err}", file=sys.stderr)
        return 1
    print(f"wrote: {folder} (not uploaded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
