"""Final outputs appear whole or not at all: written under a temporary name beside the target, then renamed.

A run killed mid-write (preemption, Ctrl-C, a full disk) must not leave a truncated results file or model that a
later step, a model card or `--push_to_hub` would take for a real one. `os.replace` is atomic within one folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; it replaces `path` only when the block ends without error."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a directory (expected a file path to write)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    try:
        yield Path(temporary)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(value, indent=indent, ensure_ascii=False) + "\n")


@contextmanager
def atomic_files_into(folder: str | Path) -> Iterator[Path]:
    """A temporary folder inside `folder`; each file written there is moved into `folder` when the block ends.

    For writers that take a folder (`save_pretrained`): every file they write lands whole, and a failure part-way
    leaves none of the new files behind.
    """
    destination = Path(folder)
    destination.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=destination))
    try:
        yield staging
        for written in sorted(staging.iterdir()):
            if written.is_dir():
                shutil.rmtree(destination / written.name, ignore_errors=True)
            os.replace(written, destination / written.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
