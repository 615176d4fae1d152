"""Which loader reads the data, and its config from the flags: the one place the run layer meets the formats."""

from __future__ import annotations

import dataclasses
from typing import Any

import loaders
from processing.tasks import Task

from .config import TrainingConfig

COLUMN_FLAGS = (
    "text_column",
    "text_pair_column",
    "label_column",
    "tokens_column",
    "tags_column",
    "question_column",
    "context_column",
    "answers_column",
    "answer_text_column",
    "answer_start_column",
    "title_column",
    "id_column",
)
"""Flags that name a column of a tabular file; the loader gets them as `columns` keyed by the flag's stem."""
OPTION_FLAGS = ("label_names", "label_columns", "strict")
"""Flags passed on as the loader's config field of the same name, to the formats whose config has it."""


def data_format(config: TrainingConfig, loader: str | None) -> str:
    """`--data_format`, else the task name's own format (`imdb`, `wnut17`, ...), else what the files look like."""
    if config.data_format:
        return config.data_format
    if loader is not None:
        return loader
    source = config.data_dir or config.train_file or config.validation_file or config.test_file
    if source is None:
        raise ValueError(f"--task {config.task} reads your files: give --data_dir or --train_file")
    return loaders.detect_format(source)


def loader_options(config: TrainingConfig, data_format: str, task: Task) -> dict[str, Any]:
    """The loader's config values for the flags, refusing a flag the format has no use for (instead of ignoring
    it) and a format that cannot hold the task's data."""
    builder_class, _ = loaders.LOADERS[data_format]
    fields = {f.name for f in dataclasses.fields(builder_class.BUILDER_CONFIG_CLASS)}
    schema = getattr(builder_class, "SCHEMA", None)
    if "schema" not in fields and schema != task.name:
        meaning = "" if config.task == task.name else f" ({task.name})"
        raise ValueError(
            f"--data_format {data_format} holds {schema or 'other'} data, not data for --task {config.task}{meaning}"
        )
    options: dict[str, Any] = {"schema": task.name} if "schema" in fields else {}
    columns = {flag.removesuffix("_column"): getattr(config, flag) for flag in COLUMN_FLAGS}
    columns = {key: value for key, value in columns.items() if value is not None}
    for flag in (*COLUMN_FLAGS, *OPTION_FLAGS):
        value = getattr(config, flag)
        wanted = "columns" if flag in COLUMN_FLAGS else flag
        if value not in (None, False) and wanted not in fields:
            raise ValueError(
                f"--{flag} {value!r}: expected no value with --data_format {data_format}, which has no {wanted}"
            )
    if columns:
        options["columns"] = columns
    options.update({flag: getattr(config, flag) for flag in OPTION_FLAGS if getattr(config, flag)})
    return options
