"""Predict inputs given as rows (CSV, TSV, JSON Lines, Parquet) or as annotation-tool exports (Label Studio, doccano).

The rows are read with the tabular loader's readers and checked the way training checks them (a missing column is one
error listing the file's columns; a text that is no string names its row), but no label column is needed. Each row
becomes the example shape of the task's own predict input, named by the row's id (the `--id_column`, default `id`,
else its row number), so every prediction line starts with the input's id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from loaders import DataFormatError
from loaders.files import read_text
from loaders.spans import split_words
from loaders.tabular import EXTENSIONS, columns_of, list_cell, read_rows, text_value

TABLE_FORMATS = tuple(EXTENSIONS)
EXPORT_FORMATS = ("label_studio", "doccano")
DEFAULT_COLUMNS = {
    "text": "text",
    "tokens": "tokens",
    "question": "question",
    "context": "context",
    "id": "id",
}


def table_examples(
    predict_format: str, path: Path, data_format: str, columns: dict[str, str | None]
) -> list[Any]:
    """The task's examples from a table: texts (or sentence pairs), words, or questions with their contexts."""
    names = {**DEFAULT_COLUMNS, **{key: value for key, value in columns.items() if value}}
    needed = {"texts": ["text"], "conll": ["tokens"], "squad": ["question", "context"]}[predict_format]
    needed += ["text_pair"] if predict_format == "texts" and names.get("text_pair") else []
    has = columns_of(path, data_format)
    missing = [names[key] for key in needed if names[key] not in has]
    if missing:
        raise DataFormatError(
            path, f"has no column {', '.join(map(repr, missing))} (its columns: {', '.join(has)})"
        )
    examples = []
    text_cells = data_format in ("csv", "tsv")
    for number, (where, row) in enumerate(read_rows(path, data_format), start=1):
        example_id = str(row[names["id"]]) if names["id"] in has else str(number)
        if predict_format == "texts":
            examples.append((example_id, partial(_text_or_pair, path, where, row, names)))
        elif predict_format == "conll":
            tokens = list_cell(str(path), where, names["tokens"], row[names["tokens"]], text_cells, True)
            examples.append((example_id, 0, [text_value(str(path), where, "token", t) for t in tokens]))
        else:
            question = text_value(str(path), where, "question", row[names["question"]])
            context = text_value(str(path), where, "context", row[names["context"]])
            examples.append({"id": example_id, "question": question, "context": context})
    return examples


def _text_or_pair(path: Path, where: str, row: dict[str, Any], names: dict[str, str]) -> str | dict[str, str]:
    text = text_value(str(path), where, "text", row[names["text"]])
    if not names.get("text_pair"):
        return text
    return {"text": text, "text_pair": text_value(str(path), where, "text_pair", row[names["text_pair"]])}


def export_documents(path: Path, data_format: str, text_key: str | None) -> list[tuple[str, int, list[str]]]:
    """(id, 0, words) of every record of an annotation-tool export, annotated or not, split into words as the
    span loader splits them (runs of non-whitespace)."""
    records = (
        _label_studio_texts(path, text_key)
        if data_format == "label_studio"
        else _doccano_texts(path, text_key)
    )
    return [
        (record_id, 0, [text[start:end] for start, end in split_words(text, ())])
        for record_id, text in records
    ]


def _label_studio_texts(path: Path, text_key: str | None) -> list[tuple[str, str]]:
    tasks = _json(path, read_text(path))
    if not isinstance(tasks, list):
        raise DataFormatError(path, "is not a Label Studio JSON export (expected a list of tasks)")
    key = text_key or "text"
    texts = []
    for number, task in enumerate(tasks, start=1):
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get(key), str):
            raise DataFormatError(
                path, f'expected a task with a "data" object holding text {key!r}', f"task {number}"
            )
        texts.append((str(task.get("id", number)), data[key]))
    return texts


def _doccano_texts(path: Path, text_key: str | None) -> list[tuple[str, str]]:
    key = text_key or "text"
    texts = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        record = _json(path, line, number)
        if not isinstance(record, dict) or not isinstance(record.get(key), str):
            raise DataFormatError(path, f"expected a JSON object holding text {key!r}", f"line {number}")
        texts.append((str(record.get("id", number)), record[key]))
    return texts


def _json(path: Path, text: str, line: int | None = None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, f"is not valid JSON ({err.msg})", f"line {line or err.lineno}") from None


def with_ids(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Prediction lines with the input's id first, in place of the file name (and document index) that
    predictions for files of texts or CoNLL documents carry."""
    for row in rows:
        if "file" in row:
            row = {"id": row.pop("file"), **{k: v for k, v in row.items() if k != "document"}}
        yield row
