"""Preprocessing IMDb: our Arrow path versus the classic in-memory recipe, wall time and peak memory per path.

    python benchmarks/preprocess_imdb.py --data ../shared/data/imdb/aclImdb-train.tar.gz --num_reviews 25000
    python benchmarks/preprocess_imdb.py --data ... --num_reviews 1000,5000,25000,50000 --path ours

ours:    loaders.load_dataset("imdb", data_dir=..., cache_dir=<fresh temp dir>)["train"], the first N reviews
         (the set repeated with `datasets.concatenate_datasets` when N > 25,000), `classification.prepare`
         (batched `Dataset.map`, truncation without padding, Arrow cache, memory-mapped), then one pass over the
         features in torch format through a DataLoader (batch 16, no collation), as training reads them.
classic: the texts read into Python lists (aclImdb/train/neg then pos, files sorted: the same N reviews in the
         same order as ours; repeated when N > 25,000), `tokenizer(texts, truncation=True, padding=True)`, and a
         `torch.utils.data.Dataset` whose `__getitem__` builds tensors per item, iterated once fully through the
         same DataLoader.

Both paths read the whole train folder (25,000 files), since the loader always prepares the whole split; N only
decides how many reviews are tokenized. By default an archive is extracted once into a temporary folder before any
measurement and both paths read that folder (extraction not timed); with `--from_archive` both paths start from the
archive and their timings include extraction (ours through the `datasets` download manager, classic with tarfile).

Every measurement runs in a fresh Python process (the same imports in both paths), so peak memory is per path:
`peak_rss_mb` is that process's `ru_maxrss` (children included), which also counts pages of memory-mapped Arrow
files that were read; `peak_anon_mb` is the sampled peak of anonymous memory (`RssAnon`, what the process really
holds); `base_rss_mb` is the resident memory after imports and loading the tokenizer, before the timed work.
Repeats are interleaved (ours, classic, ours, classic, ...). One line per measurement on stdout.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from _bench import (
    AnonymousMemoryPeak,
    classic_imdb_dataset,
    current_rss_mb,
    ensure_repo_on_path,
    folder_size_mb,
    peak_rss_mb,
    phase_times,
    quiet_libraries,
    result_line,
    run_child,
    write_result,
)

PATHS = ("ours", "classic")
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LOADER_BATCH_SIZE = 16


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--data", required=True, help="aclImdb tarball, or a folder holding aclImdb/train")
    parser.add_argument(
        "--num_reviews",
        default="25000",
        help="N, or a comma-separated list of N (one measurement per N and path); N > 25000 repeats the data",
    )
    parser.add_argument("--max_seq_length", type=int, default=512)
    parser.add_argument("--path", choices=(*PATHS, "both"), default="both")
    parser.add_argument("--repeats", type=int, default=1, help="rounds, interleaved over sizes and paths")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="tokenizer: Hub id or folder")
    parser.add_argument(
        "--from_archive",
        action="store_true",
        help="time extraction too: both paths start from the archive given as --data",
    )
    parser.add_argument("--tmp_dir", default=None, help="where temporary folders go (default: system temp)")
    parser.add_argument("--_child", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--_result", help=argparse.SUPPRESS)
    parser.add_argument("--_source", help=argparse.SUPPRESS)
    parser.add_argument("--_n", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def find_acl_root(folder: Path) -> Path:
    """The folder that holds `train/`: `folder` itself or its single `aclImdb`-like child."""
    if (folder / "train").is_dir():
        return folder
    for child in sorted(folder.iterdir()):
        if (child / "train").is_dir():
            return child
    raise SystemExit(f"error: no aclImdb/train folder under {folder}")


def extract(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        if sys.version_info >= (3, 12):
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    return find_acl_root(into)


# --- the two paths, run in a child process ---------------------------------------------------------------------


def repeat_list(values: list, n: int) -> list:
    copies = -(-n // len(values))
    return (values * copies)[:n]


def run_ours(source: str, n: int, max_seq_length: int, tokenizer, work_dir: Path) -> dict:
    import datasets
    from torch.utils.data import DataLoader

    import loaders
    from processing import classification

    cache_dir = work_dir / "datasets-cache"
    started = time.perf_counter()
    train = loaders.load_dataset("imdb", data_dir=source, cache_dir=str(cache_dir))["train"]
    if n > len(train):
        train = datasets.concatenate_datasets([train] * -(-n // len(train)))
    train = train.select(range(n))
    loaded = time.perf_counter()
    config = argparse.Namespace(max_seq_length=max_seq_length)
    features = classification.prepare(train, tokenizer, config, True)
    tokenized = time.perf_counter()
    torch_features = features.with_format("torch", columns=features.column_names)
    seen = sum(
        len(batch) for batch in DataLoader(torch_features, batch_size=LOADER_BATCH_SIZE, collate_fn=list)
    )
    iterated = time.perf_counter()
    assert seen == n, (seen, n)
    return {
        **phase_times(started, loaded, tokenized, iterated),
        "disk_mb": folder_size_mb(cache_dir),
    }


def read_imdb_split(split_dir: Path) -> tuple[list[str], list[int]]:
    """The classic reader, walking the label folders and files in sorted order (the loader's order)."""
    texts: list[str] = []
    labels: list[int] = []
    for label, label_dir in enumerate(("neg", "pos")):
        for text_file in sorted((split_dir / label_dir).iterdir()):
            if text_file.suffix == ".txt":
                texts.append(text_file.read_text(encoding="utf-8"))
                labels.append(label)
    return texts, labels


def run_classic(source: str, n: int, max_seq_length: int, tokenizer, work_dir: Path) -> dict:
    from torch.utils.data import DataLoader

    started = time.perf_counter()
    folder = Path(source)
    if folder.is_file():
        folder = extract(folder, work_dir / "extracted")
    texts, labels = read_imdb_split(find_acl_root(folder) / "train")
    texts, labels = repeat_list(texts, n), repeat_list(labels, n)
    loaded = time.perf_counter()
    encodings = tokenizer(texts, truncation=True, padding=True, max_length=max_seq_length)
    dataset = classic_imdb_dataset(encodings, labels)
    tokenized = time.perf_counter()
    seen = sum(len(batch) for batch in DataLoader(dataset, batch_size=LOADER_BATCH_SIZE, collate_fn=list))
    iterated = time.perf_counter()
    assert seen == n, (seen, n)
    return {
        **phase_times(started, loaded, tokenized, iterated),
        "padded_to": len(encodings["input_ids"][0]),
    }


def child(args: argparse.Namespace) -> None:
    ensure_repo_on_path()
    quiet_libraries()
    # The same imports for both paths, so the baseline memory is the same.
    import datasets  # noqa: F401
    import torch  # noqa: F401
    from transformers import AutoTokenizer

    import loaders  # noqa: F401
    from processing import classification  # noqa: F401
    from processing.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(args.model))
    base_rss = current_rss_mb()
    run = run_ours if args._child == "ours" else run_classic
    with (
        tempfile.TemporaryDirectory(prefix=f"preprocess-{args._child}-", dir=args.tmp_dir) as work_dir,
        AnonymousMemoryPeak() as anonymous,
    ):
        result = run(args._source, args._n, args.max_seq_length, tokenizer, Path(work_dir))
    result.update(peak_rss_mb=peak_rss_mb(), peak_anon_mb=anonymous.peak_mb, base_rss_mb=base_rss)
    write_result(args._result, result)


# --- the parent: one child per measurement ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args._child:
        child(args)
        return
    sizes = [int(value) for value in args.num_reviews.split(",")]
    if any(n < 1 for n in sizes):
        raise SystemExit("error: --num_reviews must be positive")
    paths = PATHS if args.path == "both" else (args.path,)
    data = Path(args.data).resolve()
    if not data.exists():
        raise SystemExit(f"error: {data} does not exist")
    if args.from_archive and not data.is_file():
        raise SystemExit("error: --from_archive needs an archive as --data")

    with tempfile.TemporaryDirectory(prefix="preprocess-imdb-", dir=args.tmp_dir) as scratch:
        if data.is_file() and not args.from_archive:
            started = time.perf_counter()
            source = extract(data, Path(scratch) / "extracted")
            print(f"extracted {data} in {time.perf_counter() - started:.1f}s (not timed)", file=sys.stderr)
        else:
            source = data if data.is_file() else find_acl_root(data)
        for round_index in range(1, args.repeats + 1):
            for n in sizes:
                for path in paths:
                    child_argv = [
                        *("--data", str(data), "--model", args.model),
                        *("--max_seq_length", str(args.max_seq_length)),
                        *("--_child", path, "--_source", str(source), "--_n", str(n)),
                        *(("--tmp_dir", args.tmp_dir) if args.tmp_dir else ()),
                    ]
                    result = run_child(Path(__file__), child_argv)
                    fields = {
                        "path": path,
                        "reviews": n,
                        "max_seq_length": args.max_seq_length,
                        "source": "archive" if args.from_archive else "folder",
                        "round": round_index,
                        **{k: result[k] for k in ("wall_s", "read_s", "tokenize_s", "iterate_s")},
                        **{k: result[k] for k in ("peak_rss_mb", "peak_anon_mb", "base_rss_mb")},
                        **{k: result[k] for k in ("padded_to", "disk_mb") if k in result},
                    }
                    print(result_line("preprocess", fields), flush=True)


if __name__ == "__main__":
    main()
