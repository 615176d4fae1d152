"""Reading raw text files the way users actually have them: UTF-8 with or without a BOM, Unix or Windows newlines."""

from __future__ import annotations

from pathlib import Path

from .errors import DataFormatError


def read_text(path: str | Path) -> str:
    """Decode strictly as UTF-8 (a BOM is dropped) and normalise newlines, so no byte is guessed at or lost."""
    data = Path(path).read_bytes()
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


SPLIT_NAME_HINTS = {
    "train": ("train",),
    "validation": ("dev", "valid"),
    "test": ("test",),
}


def split_from_name(file_name: str) -> str | None:
    """The split a data file's name says it holds (`train-v2.0.json`, `emerging.dev.conll`), if any."""
    lowered = file_name.lower()
    return next(
        (split for split, hints in SPLIT_NAME_HINTS.items() if any(h in lowered for h in hints)), None
    )
