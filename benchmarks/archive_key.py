"""What keying an extracted archive by its content costs: a full sha256 against a quick size+mtime+edges key.

    python benchmarks/archive_key.py ../shared/data/imdb/aclImdb-train.tar.gz [more files] --rounds 3

`loaders.archives.content_key` (the full sha256, which the loaders use) and the quick key (size, mtime and a
sha256 of the first and last MiB, which misses an edit in the middle that keeps size and mtime) are timed in
interleaved rounds, each from a cold start of the hash (the file pages may be in the page cache: both read the same
pages, so it favours neither). One line per file: size, then the median and the spread (min-max) of each key in ms.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from pathlib import Path

from _bench import ensure_repo_on_path, result_line

ensure_repo_on_path()

EDGE_BYTES = 1 << 20


def quick_key(path: Path) -> str:
    stat = path.stat()
    digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    with open(path, "rb") as f:
        digest.update(f.read(EDGE_BYTES))
        f.seek(max(0, stat.st_size - EDGE_BYTES))
        digest.update(f.read(EDGE_BYTES))
    return digest.hexdigest()


def full_key(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def timed_ms(key, path: Path) -> float:
    started = time.perf_counter()
    key(path)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from loaders.archives import content_key

    for path in args.files:
        assert content_key(path) == full_key(path), "the loaders' key is the file's sha256"
        times: dict[str, list[float]] = {"sha256": [], "quick": []}
        for _ in range(args.rounds):
            times["sha256"].append(timed_ms(full_key, path))
            times["quick"].append(timed_ms(quick_key, path))
        fields = {"file": path.name, "mb": round(path.stat().st_size / 1e6, 1), "rounds": args.rounds}
        for name, values in times.items():
            fields[f"{name}_median_ms"] = statistics.median(values)
            fields[f"{name}_spread_ms"] = f"{min(values):.1f}-{max(values):.1f}"
        print(result_line("archive_key", fields))


if __name__ == "__main__":
    main()
