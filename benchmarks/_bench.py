"""Helpers shared by the benchmark scripts: child processes, memory peaks, quiet libraries, result lines.

Each measurement runs in a fresh child process (the same script, with hidden `--_child` flags), so its peak memory
and its warm-up are its own. The child writes its figures as JSON to a file the parent names; everything the child
prints goes to the parent's stderr, so the parent's stdout holds only result lines.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def ensure_repo_on_path() -> None:
    """Make `loaders`, `processing` and `train` importable when the package is not installed."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


def quiet_libraries() -> None:
    """No progress bars or info logs from `datasets`/`transformers`: they would only go to stderr anyway."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def write_reviews_csv(reviews: Any, path: Path) -> int:
    """IMDb reviews (the `imdb` loader's rows) as a CSV of `text,label` with label names, as a user's file would
    hold them; returns how many were written."""
    import csv

    names = reviews.features["label"].names
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows((row["text"], names[row["label"]]) for row in reviews)
    return len(reviews)


def result_line(kind: str, fields: dict[str, Any]) -> str:
    """`kind key=value ...`, floats rounded to what a table needs."""
    parts = [kind]
    for key, value in fields.items():
        if isinstance(value, float):
            value = f"{value:.4g}" if abs(value) < 100 else f"{value:.1f}"
        parts.append(f"{key}={value}")
    return " ".join(parts)


def run_child(script: Path, argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `script` in a fresh interpreter with `argv` plus `--_result FILE`; return what it wrote there."""
    with tempfile.TemporaryDirectory(prefix="bench-result-") as folder:
        result_file = Path(folder) / "result.json"
        command = [sys.executable, str(script), *argv, "--_result", str(result_file)]
        completed = subprocess.run(
            command, stdout=sys.stderr, stderr=sys.stderr, env={**os.environ, **(env or {})}, check=False
        )
        if completed.returncode != 0 or not result_file.exists():
            raise RuntimeError(f"child run failed (exit {completed.returncode}): {' '.join(command)}")
        return json.loads(result_file.read_text())


def write_result(path: str, result: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(result))


def peak_rss_mb() -> float:
    """Peak resident set of this process or of any child it waited for (Linux reports kilobytes)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def current_rss_mb() -> float | None:
    return _status_mb("VmRSS")


class AnonymousMemoryPeak:
    """Samples `RssAnon` (heap, not file pages) every `interval` seconds in a thread; `peak_mb` is the maximum.

    `ru_maxrss` also counts pages of memory-mapped files that were read (Arrow caches), which the kernel can drop
    at any time; the anonymous part is what a process really holds. Sampling may miss a short spike, so the
    figure is a lower bound of the true peak. None where /proc is not available.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak_mb: float | None = _status_mb("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            value = _status_mb("RssAnon")
            if value is not None:
                self.peak_mb = max(self.peak_mb or 0.0, value)
            time.sleep(self.interval)

    def __enter__(self) -> AnonymousMemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        value = _status_mb("RssAnon")
        if value is not None:
            self.peak_mb = max(self.peak_mb or 0.0, value)


def folder_size_mb(folder: str | Path) -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 2**20


def classic_imdb_dataset(encodings: dict[str, list], labels: list[int]) -> Any:
    """The classic recipe's `torch.utils.data.Dataset`: tensors built per item from Python lists.

    torch is imported here, not at module level, so a child measuring our path pays only for what that path loads.
    """
    import torch

    class IMDbDataset(torch.utils.data.Dataset):
        def __getitem__(self, idx: int) -> dict[str, Any]:
            item = {key: torch.tensor(val[idx]) for key, val in encodings.items()}
            item["labels"] = torch.tensor(labels[idx])
            return item

        def __len__(self) -> int:
            return len(labels)

    return IMDbDataset()


def phase_times(started: float, loaded: float, tokenized: float, iterated: float) -> dict[str, float]:
    """The preprocessing phases every path reports, from the clock readings between them."""
    return {
        "read_s": loaded - started,
        "tokenize_s": tokenized - loaded,
        "iterate_s": iterated - tokenized,
        "wall_s": iterated - started,
    }
