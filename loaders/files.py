"""Reading raw text files the way users actually have them: UTF-8 with or without a BOM, Unix or Windows newlines.

And finding which file of a folder holds which split, by whole words of its name and the format's extensions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from pathlib import Path

from .errors import DataFormatError


def read_text(path: str | Path) -> str:
    """Decode strictly as UTF-8 (a BOM is dropped) and normalise newlines, so no byte is guessed at or lost."""
    return decode_text(path, Path(path).read_bytes())


def decode_text(path: str | Path, data: bytes) -> str:
    """`read_text` of bytes already read from `path` (which names the file in errors)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            path, f"is not UTF-8 text (invalid byte 0x{data[err.start]:02x} at byte offset {err.start})"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def has_bom(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(3) == b"\xef\xbb\xbf"


SPLIT_WORDS = {
    "train": ("train",),
    "validation": ("dev", "valid", "validation"),
    "test": ("test",),
}
_IGNORED_SHOWN = 20


def _name_words(file_name: str) -> set[str]:
    """Runs of letters and runs of digits: `wnut17train.conll` -> {wnut, 17, train, conll}.

    Whole words, not substrings, name a split, so `latest`, `contest` or `attestation` never mean `test`.
    """
    return set(re.findall(r"[a-z]+|[0-9]+", file_name.lower()))


def split_from_name(path: str | Path, data_extensions: Collection[str]) -> str | None:
    """The split a data file's name says it holds (`train-v2.0.json`, `emerging.dev.conll`), if any.

    Only a file whose last extension is one of the format's `data_extensions` can hold a split, so a backup
    (`train.conll.orig`, `dev.json.bak`) is never read; a name naming two splits is an error, not a guess.
    """
    path = Path(path)
    if path.suffix.lower() not in data_extensions:
        return None
    words = _name_words(path.name)
    splits = [split for split, names in SPLIT_WORDS.items() if words.intersection(names)]
    if len(splits) > 1:
        raise DataFormatError(
            path, f"names more than one split ({' and '.join(splits)}); rename it or pass data_files"
        )
    return splits[0] if splits else None


def files_by_split(data_dir: Path, data_extensions: Collection[str]) -> dict[str, list[str]]:
    """The files directly in `data_dir` whose names say their split (see `split_from_name`), in split order; empty
    when none does (each format words that error its own way)."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in data_dir.iterdir() if p.is_file()):
        split = split_from_name(path, data_extensions)
        if split is not None:
            found.setdefault(split, []).append(str(path))
    return order_splits(found)


def order_splits(found: dict[str, list[str]]) -> dict[str, list[str]]:
    """train, validation, test: the order users and the split generators expect."""
    return {split: found[split] for split in SPLIT_WORDS if split in found}


def _not_taken(data_dir: Path, found: dict[str, list[str]]) -> list[str]:
    """Names of the entries in `data_dir` that no split reads (folders end in `/`), sorted."""
    taken = {Path(path).name for paths in found.values() for path in paths}
    return sorted(
        entry.name + ("/" if entry.is_dir() else "")
        for entry in data_dir.iterdir()
        if entry.name not in taken
    )


def _describe_ignored(ignored: list[str]) -> str:
    """A short list for a log line: the first names and how many more, so a huge folder stays one line."""
    shown = ", ".join(ignored[:_IGNORED_SHOWN])
    more = len(ignored) - _IGNORED_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def warn_not_taken(logger: logging.Logger, data_dir: Path, found: dict[str, list[str]], rule: str) -> None:
    """One warning listing what in `data_dir` is not read, so a misnamed split file is never dropped unseen."""
    ignored = _not_taken(data_dir, found)
    if ignored:
        logger.warning(f"{data_dir}: not read: {_describe_ignored(ignored)} ({rule})")
