"""Which data format a file or folder is in, when the user does not say (`--data_format`).

Extensions decide where they can (`.csv`, `.parquet`, `.conll`, ...); where one extension serves several formats,
the first record decides: a `.json` object with a `data` list is SQuAD, a `.json` list of tasks with `data` and
`annotations` is a Label Studio export, a `.jsonl` whose first record has `text` and span lists (`label` or
`entities`) and no `tokens` is a doccano export. A folder is the format of the split files directly in it, or, when
it holds none, a folder of label folders of `.txt` files; an archive (`.tar.gz`, `.zip`) is such a folder. Anything else is one error listing the formats.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import DataFormatError

FORMAT_NAMES = (
    "conll",
    "csv",
    "doccano",
    "folders",
    "imdb",
    "jsonl",
    "label_studio",
    "parquet",
    "squad",
    "squad_v2",
    "tsv",
    "wnut17",
)
"""Every `--data_format` value."""
BY_EXTENSION = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".conll": "conll",
    ".iob": "conll",
    ".iob2": "conll",
    ".bio": "conll",
    ".json": "json",
    ".txt": "txt",
}
"""`json` and `txt` are not formats: the file's content decides."""
ARCHIVE_ENDINGS = (".tar.gz", ".tgz", ".tar", ".zip")
"""An archive is read as the folder it holds (the `folders` loader extracts archives of label folders)."""


def detect_format(path: str | Path) -> str:
    """The format name (a key of `loaders.LOADERS`) of a data file or folder."""
    path = Path(path)
    if path.is_dir():
        return _folder_format(path)
    if not path.is_file():
        raise DataFormatError(path, "does not exist")
    found = _file_format(path)
    if found is None:
        raise _undecided(path, "its extension or content")
    return found


def _kind(path: Path) -> str | None:
    if path.name.lower().endswith(ARCHIVE_ENDINGS):
        return "folders"
    return BY_EXTENSION.get(path.suffix.lower())


def _file_format(path: Path) -> str | None:
    kind = _kind(path)
    if kind == "json":
        return _json_format(path)
    if kind == "jsonl":
        return "doccano" if _is_doccano(path) else "jsonl"
    if kind == "txt":
        return "conll" if _looks_like_conll(path) else None
    return kind


def _folder_format(folder: Path) -> str:
    """The one format of the files directly in `folder`, or `folders` when label folders of `.txt` files are
    under it (`train/pos/1.txt`, or `aclImdb/train/pos/1.txt`)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    formats = {found for p in files if _kind(p) and (found := _file_format(p))}
    if len(formats) == 1:
        return formats.pop()
    if len(formats) > 1:
        raise _undecided(folder, f"its files, which are in several formats ({', '.join(sorted(formats))})")
    subfolders = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "__MACOSX"))]
    if any(next(d.rglob("*.txt"), None) is not None for d in subfolders):
        return "folders"
    raise _undecided(folder, "its files")


def _json_format(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFormatError(path, f"is not valid JSON ({err}); cannot tell its format") from None
    except RecursionError:
        raise DataFormatError(path, "is JSON nested too deeply to read; cannot tell its format") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return "squad_v2"
    if (
        isinstance(data, list)
        and data
        and all(isinstance(t, dict) and {"data", "annotations"} <= set(t) for t in data)
    ):
        return "label_studio"
    return None


def _first_record(path: Path) -> object:
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                try:
                    return json.loads(line)
                except (json.JSONDecodeError, RecursionError):
                    return None
    return None


def _is_doccano(path: Path) -> bool:
    """doccano exports character spans as `[start, end, label]` lists under `label` (or `entities` objects)."""
    record = _first_record(path)
    if not isinstance(record, dict) or "tokens" in record or not isinstance(record.get("text"), str):
        return False
    spans = record.get("entities", record.get("label"))
    return isinstance(spans, list) and all(isinstance(s, (list, dict)) for s in spans)


def _looks_like_conll(path: Path) -> bool:
    """A `.txt` file is CoNLL when its first line holds exactly a token and a tag."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    return len(first.split()) == 2


def _undecided(path: Path, what: str) -> DataFormatError:
    return DataFormatError(
        path,
        f"cannot tell the data format from {what}; pass --data_format, one of: {', '.join(FORMAT_NAMES)}",
    )
