"""Raw files to typed Arrow datasets: `load_dataset(FORMAT, data_dir=...)`, FORMAT a key of `LOADERS`.

`datasets` no longer runs loading scripts, so the builders are used as classes here, behind the same one call.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path

import datasets

from . import repairs
from .archives import content_key
from .conll import Conll
from .errors import DataFormatError
from .formats import detect_format
from .spans import Spans
from .squad import Squad
from .tabular import Tabular
from .text_folders import TextFolders

__all__ = [
    "LOADERS",
    "DataFormatError",
    "detect_format",
    "load_dataset",
    "load_with_repairs",
    "with_validation_split",
]

LOADERS: dict[str, tuple[type[datasets.DatasetBuilder], str]] = {
    "imdb": (TextFolders, "imdb"),
    "folders": (TextFolders, "folders"),
    "wnut17": (Conll, "wnut17"),
    "conll": (Conll, "conll"),
    "squad_v2": (Squad, "squad_v2"),
    "label_studio": (Spans, "label_studio"),
    "doccano": (Spans, "doccano"),
    "squad": (Squad, "squad_v2"),
    "csv": (Tabular, "csv"),
    "tsv": (Tabular, "tsv"),
    "jsonl": (Tabular, "jsonl"),
    "parquet": (Tabular, "parquet"),
}
"""Format name -> (builder, config). `folders` is any aclImdb-like layout (no download when no data is given);
`squad` is `squad_v2`, which reads v1.1 files too."""


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    data_files: str | list[str] | dict[str, str | list[str]] | None = None,
    split: str | None = None,
    cache_dir: str | None = None,
    num_proc: int | None = None,
    download_mode: datasets.DownloadMode | str | None = None,
    **config_kwargs,
) -> datasets.DatasetDict | datasets.Dataset:
    """Prepare (or reuse from the Arrow cache) one of our formats, like `datasets.load_dataset` would.

    Extra keyword arguments are fields of the format's `BuilderConfig` (`label_names=[...]`, ...).
    """
    builder = _prepared(name, data_dir, data_files, cache_dir, num_proc, download_mode, config_kwargs)
    return builder.as_dataset(split=split)


def load_with_repairs(
    name: str,
    data_dir: str | Path | None = None,
    cache_dir: str | None = None,
    data_files: str | list[str] | dict[str, str | list[str]] | None = None,
    **config_kwargs,
) -> tuple[datasets.DatasetDict, dict[str, dict[str, int]]]:
    """`load_dataset`, and per split what the loader repaired or skipped while preparing it (keys and meanings in
    `repairs.REPAIRS`), as counted when the files were read, also for a data set reused from the cache."""
    builder = _prepared(name, data_dir, data_files, cache_dir, None, None, config_kwargs)
    return builder.as_dataset(), repairs.read(builder.cache_dir)


def _prepared(
    name: str,
    data_dir: str | Path | None,
    data_files,
    cache_dir: str | None,
    num_proc: int | None,
    download_mode: datasets.DownloadMode | str | None,
    config_kwargs: dict,
) -> datasets.DatasetBuilder:
    """The format's builder with its Arrow files prepared (or found in the cache)."""
    if name not in LOADERS:
        raise ValueError(f"unknown data set format {name!r}; expected one of {sorted(LOADERS)}")
    builder_class, config_name = LOADERS[name]
    ignored = {
        key: getattr(builder_class.builder_configs[config_name], key)
        for key, value in config_kwargs.items()
        if value is None and getattr(builder_class.builder_configs[config_name], key, None) is not None
    }
    if ignored:
        # `datasets` skips config values of None, so the default would be used without a word.
        raise ValueError(
            f"{name}: a value of None would be ignored for {sorted(ignored)} (defaults: {ignored})"
        )
    if data_dir is not None:
        data_dir = str(Path(data_dir).resolve())
        if not Path(data_dir).exists():
            raise DataFormatError(data_dir, "does not exist")
    builder = builder_class(
        config_name=config_name,
        data_dir=data_dir,
        data_files=data_files,
        cache_dir=cache_dir,
        hash=_fingerprint(data_dir, data_files),
        **config_kwargs,
    )
    try:
        builder.download_and_prepare(num_proc=num_proc, download_mode=download_mode)
    except datasets.exceptions.DatasetGenerationError as err:
        # `datasets` wraps whatever `_generate_examples` raises; bad input must still surface as DataFormatError.
        _raise_data_format_error(err)
        if not num_proc or num_proc < 2:
            raise
        # A worker process's error reaches us only as traceback text: prepare again in this process (the
        # failed run left nothing in the cache) so that the bad file is reported as a DataFormatError.
        try:
            builder.download_and_prepare(download_mode=download_mode)
        except datasets.exceptions.DatasetGenerationError as again:
            _raise_data_format_error(again)
            raise
    return builder


def _raise_data_format_error(err: BaseException) -> None:
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, DataFormatError):
            raise cause from None
        cause = cause.__cause__ or cause.__context__


def _fingerprint(data_dir: str | None, data_files) -> str:
    """Our code and the local files, so an edited file or loader is re-read.

    `datasets` hashes the builder's module and its config, but not the content of a `data_dir`. Files named
    directly (an archive as `data_dir`, `data_files`) are hashed whole, so a replaced archive is re-read even
    with the same size and modification time; the many files in a folder count by size and modification time.
    """
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    named: list[Path] = []
    if data_dir is not None:
        root = Path(data_dir)
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    stat = path.stat()
                    digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        else:
            named = [root]
    elif data_files is not None:
        values = data_files.values() if isinstance(data_files, dict) else [data_files]
        named = sorted(Path(f) for v in values for f in ([v] if isinstance(v, str) else v))
    for path in named:
        if path.is_file():
            digest.update(f"{path}\0{content_key(path)}\n".encode())
    return digest.hexdigest()[:16]


def with_validation_split(
    dataset: datasets.DatasetDict,
    validation_size: float | int = 0.1,
    seed: int = 42,
    stratify_by_column: str | None = None,
    group_by_column: str | tuple[str, ...] | None = None,
) -> datasets.DatasetDict:
    """Give data that ships without a validation split a seeded one, held out of train (test is never touched).

    Stratified by `stratify_by_column` when it is a `ClassLabel`, so a small validation set keeps the class balance.
    With `group_by_column` (SQuAD's `title`), whole groups go to one side, so no context is in both splits and the
    validation score is not inflated by questions on paragraphs seen in training. Several columns are tried in
    order, the first with more than one value in train groups (`("title", "context")`: whole articles, or whole
    paragraphs for data without titles).
    """
    if "validation" in dataset:
        return dataset
    train = dataset["train"]
    if isinstance(group_by_column, tuple):
        group_by_column = next(
            (c for c in group_by_column if len(set(train[c])) > 1),
            group_by_column[-1] if group_by_column else None,
        )
    if group_by_column is not None:
        train_part, validation_part = _split_by_group(train, group_by_column, validation_size, seed)
    else:
        feature = train.features.get(stratify_by_column) if stratify_by_column else None
        stratify = stratify_by_column if isinstance(feature, datasets.ClassLabel) else None
        parts = train.train_test_split(test_size=validation_size, seed=seed, stratify_by_column=stratify)
        train_part, validation_part = parts["train"], parts["test"]
    return datasets.DatasetDict(
        {
            "train": train_part,
            "validation": validation_part,
            **{k: v for k, v in dataset.items() if k != "train"},
        }
    )


def _split_by_group(
    rows: datasets.Dataset, column: str, size: float | int, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Shuffled groups go to validation until it holds at least `size` rows (a share if < 1); at least one group
    stays in train."""
    groups = rows[column]
    names = sorted(set(groups))
    if len(names) < 2:
        raise ValueError(f"cannot hold out whole {column!r} groups: the train split has only {len(names)}")
    random.Random(seed).shuffle(names)
    wanted = size * len(rows) if size < 1 else size
    counts = Counter(groups)
    held_out: set = set()
    for name in names[:-1]:
        if sum(counts[n] for n in held_out) >= wanted:
            break
        held_out.add(name)
    validation = [i for i, group in enumerate(groups) if group in held_out]
    train = [i for i, group in enumerate(groups) if group not in held_out]
    return rows.select(train), rows.select(validation)
