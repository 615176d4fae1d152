"""CSV, TSV, JSON Lines and Parquet tables for every task, read into the schema the task's module expects.

One builder, four configs (`csv`, `tsv`, `jsonl`, `parquet`), and `schema=` picks the canonical table:
`text-classification`, `multi-label-classification`, `token-classification` or `question-answering` (columns in
the module's `SCHEMAS`). `columns` maps a canonical name to the file's column (`{"text": "review"}`).

Why pyarrow's readers and not `datasets`' packaged `csv`/`json`/`parquet` builders: those infer one type per column
and then cast, and every check below needs the value as the file holds it, with its row. The packaged `csv` reads
through pandas, which turns a label column with a blank cell into floats (`1` -> `1.0`, the blank -> NaN); the
packaged `json` and `pyarrow.json` merge a column of ints and floats into floats (a label `1.5` among ints can no
longer be told from `1.0`), and a column mixing strings and numbers fails with a row number that does not count
blank lines. So:
- CSV/TSV: `pyarrow.csv`, every column read as text (no inference: `007` stays `007`), quoted values may span
  lines. A cell that is a decimal integer is an integer label. TSV follows the IANA definition: no quoting, so a
  text may start with `"`. A list cell (tokens, tags, multi-label names, answers) holds JSON (`["New", "York"]`,
  `{"text": [...], "answer_start": [...]}`); tokens and tags may also be a whitespace-separated string.
- JSON Lines: Python's `json` per line, which keeps each value's own type and its line number.
- Parquet: `pyarrow.parquet`, types as stored. A file written by `datasets` keeps its features in the schema
  metadata; a `ClassLabel` column's ids are read as its names, which then order the classes when `label_names` is
  not given.

Everything is checked before anything is tokenized, and each problem is one `DataFormatError` naming the file and
row (`line` for JSON Lines): missing columns, labels that are floats, booleans, empty or null, tags that are not a
list or not as long as the tokens, answers not at their offset in the context, a label validation or test has that
train never had. Class names come from `label_names` when given, else from the train split (strings sorted, ints
sorted numerically and named `str(int)`; tags in the CoNLL loader's order, `O` then B-/I- per type, so the same
tags give the same ids in every format). Integer labels given with `label_names` are ids into it, unless every name
is itself an integer, in which case the integer is the name (ratings 1..5 with `label_names=["1", ..., "5"]`).
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from . import repairs
from .conll import order_tags
from .errors import DataFormatError
from .files import files_by_split, read_text, split_from_name, warn_not_taken
from .squad import FEATURES as QA_FEATURES

logger = datasets.logging.get_logger(__name__)

TEXT_CLASSIFICATION = "text-classification"
MULTI_LABEL = "multi-label-classification"
TOKEN_CLASSIFICATION = "token-classification"
QUESTION_ANSWERING = "question-answering"
SCHEMAS = {
    TEXT_CLASSIFICATION: ("text", "text_pair", "label", "id"),
    MULTI_LABEL: ("text", "text_pair", "labels", "id"),
    TOKEN_CLASSIFICATION: ("id", "tokens", "ner_tags"),
    QUESTION_ANSWERING: ("id", "title", "context", "question", "answers", "answer_text", "answer_start"),
}
"""The canonical names each schema reads, i.e. the keys `columns` may map."""
DEFAULT_COLUMNS = {
    name: name
    for names in SCHEMAS.values()
    for name in names
    if name not in ("text_pair", "answer_text", "answer_start")
}
"""`text_pair` and the one-answer-per-row columns have no default: they are read only when mapped."""
FLAG_KEYS = {"ner_tags": "tags", "labels": "label"}
"""Other keys for a column, as `train.py`'s flags name them (`--tags_column`, `--label_column` for every schema)."""
EXTENSIONS = {
    "csv": frozenset({".csv"}),
    "tsv": frozenset({".tsv", ".tab"}),
    "jsonl": frozenset({".jsonl", ".ndjson"}),
    "parquet": frozenset({".parquet"}),
}
_INTEGER = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][+-]?\d+|nan|inf)", re.IGNORECASE)


@dataclass
class TabularConfig(datasets.BuilderConfig):
    """`schema`: the canonical table to produce (a key of `SCHEMAS`).

    `columns`: canonical name -> the file's column, for the names whose default (the canonical name itself) does
    not fit; `text_pair` (sentence pairs) and `answer_text`/`answer_start` (one answer per row, empty text = no
    answer) are read only when mapped. `label_names`: the class names in label-id order; by default collected from
    the train split. `label_columns`: multi-label data as one 0/1 column per class, named by the column.
    `datasets` hashes these fields into the cache folder's name, so a changed mapping is never served stale.
    `name` is the file format (`csv`, `tsv`, `jsonl`, `parquet`).
    """

    schema: str = TEXT_CLASSIFICATION
    columns: dict[str, str] | None = None
    label_names: list[str] | None = None
    label_columns: list[str] | None = None

    def check(self) -> None:
        """Mistakes in the config itself, before any file is read (`datasets` sets the fields given to
        `load_dataset` after `__post_init__` has run, so the builder calls this)."""
        if self.schema not in SCHEMAS:
            raise ValueError(f"unknown schema {self.schema!r}; expected one of {sorted(SCHEMAS)}")
        readable = {*SCHEMAS[self.schema], *(FLAG_KEYS[n] for n in SCHEMAS[self.schema] if n in FLAG_KEYS)}
        unknown = sorted(set(self.columns or {}) - readable)
        if unknown:
            raise ValueError(
                f"columns {unknown} mean nothing for the {self.schema} schema; "
                f"it reads {list(SCHEMAS[self.schema])}"
            )
        if self.label_columns is not None and self.schema != MULTI_LABEL:
            raise ValueError(f"label_columns is for the {MULTI_LABEL} schema, not {self.schema}")
        if len({"answer_text", "answer_start"} & set(self.columns or {})) == 1:
            raise ValueError("map both answer_text and answer_start (one answer per row), or neither")
        if self.label_names and self.label_columns and set(self.label_names) != set(self.label_columns):
            raise ValueError(
                f"label_names {self.label_names} must name the label_columns {self.label_columns}"
            )
        for field in ("label_names", "label_columns"):
            values = getattr(self, field)
            if values is not None and (not values or len(set(values)) != len(values)):
                raise ValueError(f"{field} must be a non-empty list without repeats, got {values}")

    def column(self, name: str) -> str | None:
        """The file's column for a canonical name (or its key in `FLAG_KEYS`), None when an optional one is not
        mapped."""
        columns = self.columns or {}
        return columns.get(name, columns.get(FLAG_KEYS.get(name, ""), DEFAULT_COLUMNS.get(name)))


class Tabular(datasets.GeneratorBasedBuilder):
    BUILDER_CONFIG_CLASS = TabularConfig
    BUILDER_CONFIGS = [TabularConfig(name=name) for name in EXTENSIONS]
    DEFAULT_CONFIG_NAME = "csv"

    def _info(self) -> datasets.DatasetInfo:
        self.config.check()
        schema = self.config.schema
        if schema == QUESTION_ANSWERING:
            features = QA_FEATURES
        elif schema == TOKEN_CLASSIFICATION:
            features = datasets.Features(
                {
                    "id": datasets.Value("string"),
                    "tokens": datasets.List(datasets.Value("string")),
                    "ner_tags": datasets.List(datasets.ClassLabel(names=self._label_names())),
                }
            )
        else:
            features = datasets.Features({"text": datasets.Value("string")})
            if self.config.column("text_pair"):
                features["text_pair"] = datasets.Value("string")
            label = datasets.ClassLabel(names=self._label_names())
            if schema == MULTI_LABEL:
                features["labels"] = datasets.List(label)
            else:
                features["label"] = label
            if self._keeps_id():
                features["id"] = datasets.Value("string")
        return datasets.DatasetInfo(
            description=f"{self.config.schema} rows read from {self.config.name} files.", features=features
        )

    # Files

    def _files(self) -> dict[str, list[str]]:
        if self.config.data_files:
            return {str(split): list(paths) for split, paths in self.config.data_files.items()}
        if self.config.data_dir:
            return find_split_files(Path(self.config.data_dir), self.config.name)
        raise ValueError(f"a {self.config.name} data set needs data_dir or data_files")

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        files = self._files()
        if self.config.data_dir and not self.config.data_files and Path(self.config.data_dir).is_dir():
            rule = f"split files end in {'/'.join(sorted(EXTENSIONS[self.config.name]))} and name a split"
            warn_not_taken(logger, Path(self.config.data_dir), files, rule)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"paths": paths, "split": split})
            for split, paths in files.items()
        ]

    def _rows(self, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        return read_rows(path, self.config.name)

    # Labels

    def _label_names(self) -> list[str]:
        """`label_names`, or the names a `datasets`-written Parquet file stores, or what the train split holds."""
        if self.config.label_names:
            return list(self.config.label_names)
        if self.config.label_columns:
            return list(self.config.label_columns)
        files = self._files()
        stored = [names for paths in files.values() for p in paths if (names := self._stored_names(p))]
        if stored:
            return stored[0]
        if "train" not in files:
            raise DataFormatError(
                self.config.data_dir or ", ".join(p for paths in files.values() for p in paths),
                "has no train file to collect the labels from; pass label_names or a train file",
            )
        values: set[str | int] = set()
        for path in files["train"]:
            for where, row in self._rows(path):
                require_columns(path, where, row, self._required())
                values.update(self._raw_labels(path, where, row))
        if self.config.schema == TOKEN_CLASSIFICATION:
            return order_tags(values)  # tags are names here: integer tags need label_names
        return names_from_values(values)

    def _stored_names(self, path: str) -> list[str] | None:
        if self.config.name != "parquet":
            return None
        key = "ner_tags" if self.config.schema == TOKEN_CLASSIFICATION else "label"
        if self.config.schema == MULTI_LABEL:
            key = "labels"
        return stored_label_names(path).get(self.config.column(key) or "")

    def _raw_labels(self, path: str, where: str, row: dict[str, Any]) -> list[str | int]:
        """The labels (names, or ints) of one row, checked for type but not yet against the class names."""
        schema = self.config.schema
        if schema == TOKEN_CLASSIFICATION:
            return self._tags(path, where, row)
        if schema == MULTI_LABEL:
            if self.config.label_columns:
                return self._flag_labels(path, where, row)
            cell = self._cell(row, "labels")
            values = list_cell(path, where, self.config.column("labels"), cell, self._text_cells, False)
            return [label_value(path, where, v, self._text_cells) for v in values]
        return [label_value(path, where, self._cell(row, "label"), self._text_cells)]

    def _tags(self, path: str, where: str, row: dict[str, Any]) -> list[str | int]:
        column = self.config.column("ner_tags")
        tags = list_cell(path, where, column, self._cell(row, "ner_tags"), self._text_cells, True)
        values = [label_value(path, where, tag, self._text_cells) for tag in tags]
        if not self.config.label_names and any(isinstance(v, int) for v in values):
            raise DataFormatError(
                path,
                f"tags in column {column!r} are integers and there are no tag names; pass label_names "
                "(the tag names in id order)",
                where,
            )
        return values

    def _flag_labels(self, path: str, where: str, row: dict[str, Any]) -> list[str]:
        require_columns(path, where, row, self.config.label_columns)
        names = []
        for column in self.config.label_columns:
            value = row[column]
            flag = value.strip() if self._text_cells and isinstance(value, str) else value
            if flag in ("1", 1) and not isinstance(flag, bool):
                names.append(column)
            elif flag not in ("0", 0) or isinstance(flag, bool):
                raise DataFormatError(path, f"column {column!r} holds {value!r}; expected 0 or 1", where)
        return names

    def _label_id(self, path: str, where: str, value: str | int, names: list[str]) -> int:
        """The class id of a label, with an error naming the label and row when the names do not hold it."""
        given = bool(self.config.label_names)
        noun = "tag" if self.config.schema == TOKEN_CLASSIFICATION else "label"
        if isinstance(value, int) and given and not all(_INTEGER.fullmatch(n) for n in names):
            if 0 <= value < len(names):
                return value
            raise DataFormatError(
                path, f"{noun} id {value} is not an id into label_names (0 to {len(names) - 1})", where
            )
        name = str(value)
        if name in names:
            return names.index(name)
        if given:
            raise DataFormatError(path, f"{noun} {name!r} is not in label_names {names}", where)
        if self._stored_names(path) is not None:
            raise DataFormatError(path, f"{noun} {name!r} is not among the file's class names {names}", where)
        raise DataFormatError(
            path, f"{noun} {name!r} is not in the train split (train has {names}); pass label_names", where
        )

    # Rows

    @property
    def _text_cells(self) -> bool:
        """CSV and TSV cells are all text: integers, lists and objects are written in them as text."""
        return self.config.name in ("csv", "tsv")

    def _keeps_id(self) -> bool:
        """An `id` column for classification when it is mapped, or when some file has the default one."""
        if self.config.columns and "id" in self.config.columns:
            return True
        return any("id" in columns_of(p, self.config.name) for paths in self._files().values() for p in paths)

    def _cell(self, row: dict[str, Any], name: str) -> Any:
        return row[self.config.column(name)]

    def _required(self) -> list[str]:
        """The file columns every row must have (checked before any value is read)."""
        schema = self.config.schema
        names = {
            TEXT_CLASSIFICATION: ["text", "text_pair", "label"],
            MULTI_LABEL: ["text", "text_pair"] + ([] if self.config.label_columns else ["labels"]),
            TOKEN_CLASSIFICATION: ["tokens", "ner_tags"],
            QUESTION_ANSWERING: ["context", "question", "answer_text", "answer_start"],
        }[schema]
        if schema == QUESTION_ANSWERING and not (self.config.columns or {}).get("answer_text"):
            names = ["context", "question", "answers"]
        columns = [self.config.column(n) for n in names if self.config.column(n)]
        if self.config.columns:  # a mapped optional column must be there
            columns += [self.config.columns[n] for n in ("id", "title") if n in self.config.columns]
        return columns

    def _generate_examples(self, paths: list[str], split: str) -> Iterator[tuple[str, dict]]:
        features = self.info.features
        keep_id = "id" in features
        number = -1  # ids made from row numbers run on across a split's files, so they stay unique in it
        seen_ids: dict[str, str] = {}
        counts = Counter(bom_files=0, crlf_files=0, row_number_ids=0)
        for path in paths:
            if self.config.name != "parquet":
                counts.update(repairs.file_counts(Path(path).read_bytes()))
            has_id = self.config.column("id") in columns_of(path, self.config.name)
            for where, row in self._rows(path):
                number += 1
                require_columns(path, where, row, self._required())
                example = self._example(path, where, row, features)
                if keep_id:
                    example["id"] = self._row_id(path, where, row, has_id, number)
                    counts["row_number_ids"] += not has_id
                if self.config.schema == QUESTION_ANSWERING:
                    _check_unique(path, where, example["id"], seen_ids)
                yield f"{path}:{where}", example
        repairs.save(self, split, f"files {paths[0] if paths else ''}", counts)

    def _row_id(self, path: str, where: str, row: dict[str, Any], has_id: bool, number: int) -> str:
        if not has_id:
            return str(number)
        value = row[self.config.column("id")]
        if value is None or isinstance(value, (bool, float, list, dict)) or str(value).strip() == "":
            raise DataFormatError(path, f"id {value!r} is not a non-empty string or integer", where)
        return str(value)

    def _example(self, path: str, where: str, row: dict[str, Any], features: datasets.Features) -> dict:
        schema = self.config.schema
        if schema == QUESTION_ANSWERING:
            return self._qa_example(path, where, row)
        if schema == TOKEN_CLASSIFICATION:
            names = features["ner_tags"].feature.names
            tokens = list_cell(
                path,
                where,
                self.config.column("tokens"),
                self._cell(row, "tokens"),
                self._text_cells,
                True,
            )
            tags = self._raw_labels(path, where, row)
            _check_tokens(path, where, tokens, tags)
            return {"tokens": tokens, "ner_tags": [self._label_id(path, where, t, names) for t in tags]}
        example = {"text": text_value(path, where, "text", self._cell(row, "text"))}
        if "text_pair" in features:
            example["text_pair"] = text_value(path, where, "text_pair", self._cell(row, "text_pair"))
        key = "labels" if schema == MULTI_LABEL else "label"
        feature = features[key].feature if schema == MULTI_LABEL else features[key]
        ids = [self._label_id(path, where, v, feature.names) for v in self._raw_labels(path, where, row)]
        example[key] = ids if schema == MULTI_LABEL else ids[0]
        return example

    def _qa_example(self, path: str, where: str, row: dict[str, Any]) -> dict:
        context = text_value(path, where, "context", self._cell(row, "context"))
        question = text_value(path, where, "question", self._cell(row, "question"))
        title_column = self.config.column("title")
        title = row.get(title_column)
        if title is not None and not isinstance(title, str):
            raise DataFormatError(path, f"title {title!r} is not a string", where)
        if (self.config.columns or {}).get("answer_text"):
            answers = self._one_answer(path, where, row)
        else:
            answers = answers_value(path, where, self._cell(row, "answers"), self._text_cells)
        for text, start in zip(answers["text"], answers["answer_start"], strict=True):
            _check_answer(path, where, context, text, start)
        return {"title": title or "", "context": context, "question": question, "answers": answers}

    def _one_answer(self, path: str, where: str, row: dict[str, Any]) -> dict[str, list]:
        text = row[self.config.columns["answer_text"]]
        start = row[self.config.columns["answer_start"]]
        if text is None or text == "":
            if start not in (None, "", -1, "-1"):
                raise DataFormatError(
                    path, f"answer_start {start!r} is given for an empty answer (no answer)", where
                )
            return {"text": [], "answer_start": []}
        if not isinstance(text, str):
            raise DataFormatError(path, f"answer text {text!r} is not a string", where)
        return {"text": [text], "answer_start": [offset_value(path, where, start, self._text_cells)]}


# Reading the files


def read_rows(path: str | Path, file_format: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) for every data row: `row N` (1-based, header not counted), or `line N` for JSON Lines."""
    rows = 0
    reader = {"csv": _csv_rows, "tsv": _csv_rows, "jsonl": _jsonl_rows, "parquet": _parquet_rows}[file_format]
    for where, row in reader(Path(path), file_format):
        rows += 1
        yield where, row
    if not rows:
        raise DataFormatError(path, "holds no rows (expected a header and at least one data row)")


def columns_of(path: str | Path, file_format: str) -> list[str]:
    """The file's column names (for JSON Lines, the keys of its first record)."""
    path = Path(path)
    try:
        if file_format == "parquet":
            names = pq.read_schema(path).names
        elif file_format == "jsonl":
            return list(_first_record(path))
        else:
            with pacsv.open_csv(path, parse_options=_parse_options(file_format)) as reader:
                names = reader.schema.names
    except (pa.ArrowInvalid, OSError) as err:
        raise _not_valid(path, file_format, err) from None
    _check_unique_names(path, names, None)
    return names


def _check_unique_names(path: Path, names: list[str], where: str | None) -> None:
    """A row as a dict keeps one value per name: a repeated column (or JSON key) would lose the others unseen."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataFormatError(
            path, f"has the column {repeated[0]!r} more than once; columns must be unique", where
        )


def _not_valid(path: Path, file_format: str, err: Exception) -> DataFormatError:
    """pyarrow knows no row number where quoted values may span lines; its message quotes the bad row instead."""
    message = str(err).removeprefix("CSV parse error: ")
    return DataFormatError(path, f"is not valid {file_format.upper()} ({message})")


def _parse_options(file_format: str) -> pacsv.ParseOptions:
    if file_format == "tsv":
        return pacsv.ParseOptions(delimiter="\t", quote_char=False)
    return pacsv.ParseOptions(newlines_in_values=True)


def _csv_rows(path: Path, file_format: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every cell as text (empty cells as ""), newlines inside quoted values read as LF (counted per file)."""
    names = columns_of(path, file_format)
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    number = 0
    try:
        with pacsv.open_csv(
            path, parse_options=_parse_options(file_format), convert_options=convert
        ) as reader:
            for batch in reader:
                columns = [
                    pc.replace_substring(pc.replace_substring(col, "\r\n", "\n"), "\r", "\n")
                    for col in batch.columns
                ]
                for row in pa.RecordBatch.from_arrays(columns, names=batch.schema.names).to_pylist():
                    number += 1
                    yield f"row {number}", row
    except pa.ArrowInvalid as err:
        raise _not_valid(path, file_format, err) from None


def _jsonl_rows(path: Path, file_format: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """One JSON object per line; blank lines are allowed (a trailing newline often leaves one)."""
    yield from _jsonl_records(read_text(path).split("\n"), path, 1)


def _jsonl_records(lines: Iterable[str], path: Path, first: int) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, line in enumerate(lines, start=first):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            record = json.loads(line, object_pairs_hook=functools.partial(_object, path, where=where))
        except json.JSONDecodeError as err:
            raise DataFormatError(path, f"is not valid JSON ({err.msg})", where) from None
        if not isinstance(record, dict):
            raise DataFormatError(path, f"expected a JSON object, got {type(record).__name__}", where)
        yield where, record


def _object(path: Path, pairs: list[tuple[str, Any]], where: str) -> dict[str, Any]:
    """A JSON object whose keys do not repeat (`json` would keep the last value of a repeated key unseen)."""
    _check_unique_names(path, [key for key, _ in pairs], where)
    return dict(pairs)


def _first_record(path: Path) -> dict[str, Any]:
    """The first object of a JSON Lines file, read without reading the rest (empty when there is none)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    return next(_jsonl_records([line], path, number))[1]
    except UnicodeDecodeError:
        read_text(path)  # raises the error naming the first invalid byte
    return {}


def _parquet_rows(path: Path, file_format: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows as stored; a `ClassLabel` column (ids) is read as its class names."""
    columns_of(path, file_format)  # checks that no column name repeats
    stored = stored_label_names(path)
    number = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches():
            for row in batch.to_pylist():
                number += 1
                for column, names in stored.items():
                    row[column] = _id_to_name(row[column], names)
                yield f"row {number}", row
    except (pa.ArrowInvalid, OSError) as err:
        raise DataFormatError(path, f"is not a readable Parquet file ({err})") from None


def stored_label_names(path: str | Path) -> dict[str, list[str]]:
    """Column -> class names of the `ClassLabel` (or list of `ClassLabel`) columns a `datasets`-written file has."""
    try:
        features = datasets.Features.from_arrow_schema(pq.read_schema(path))
    except (pa.ArrowInvalid, OSError) as err:
        raise DataFormatError(path, f"is not a readable Parquet file ({err})") from None
    stored = {}
    for column, feature in features.items():
        inner = getattr(feature, "feature", feature)
        if isinstance(inner, datasets.ClassLabel):
            stored[column] = list(inner.names)
    return stored


def _id_to_name(value: Any, names: list[str]) -> Any:
    """Ids become names; anything else (None, an id out of range) is left for the checks to report."""
    if isinstance(value, list):
        return [_id_to_name(v, names) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    return value


def find_split_files(data_dir: Path, file_format: str) -> dict[str, list[str]]:
    """Files named as a split (`train.csv`, `reviews-dev.csv`) with the format's extensions; a single file given
    as `data_dir` is the split its name says, or train."""
    extensions = EXTENSIONS[file_format]
    if data_dir.is_file():
        return {split_from_name(data_dir, extensions) or "train": [str(data_dir)]}
    found = files_by_split(data_dir, extensions)
    if not found:
        raise DataFormatError(
            data_dir,
            f"has no {'/'.join(sorted(extensions))} file named by a word train, dev, valid, validation or test",
        )
    return found


# Checking values


def require_columns(path: str, where: str, row: dict[str, Any], needed: list[str]) -> None:
    missing = [c for c in dict.fromkeys(needed) if c not in row]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise DataFormatError(path, f"has no column {names}; the file has columns {list(row)}", where)


def label_value(path: str, where: str, value: Any, text_cells: bool) -> str | int:
    """A class name or an integer; floats, booleans, nulls and empty cells are errors, never guessed at."""
    expected = "expected a class name or an integer id"
    if isinstance(value, bool):
        raise DataFormatError(path, f"label {value!r} is a boolean; {expected}", where)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        raise DataFormatError(path, f"label {value!r} is a float; {expected}", where)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataFormatError(path, f"label is empty; {expected}", where)
    if not isinstance(value, str):
        raise DataFormatError(path, f"label {value!r} is a {type(value).__name__}; {expected}", where)
    if text_cells and _INTEGER.fullmatch(value.strip()):
        return int(value)
    if text_cells and _FLOAT.fullmatch(value.strip()):
        raise DataFormatError(path, f"label {value!r} is a float; {expected}", where)
    return value


def names_from_values(values: set[str | int]) -> list[str]:
    """Integers first, sorted numerically, then strings, sorted; integers are named `str(int)`."""
    ordered = sorted(values, key=lambda v: (0, v, "") if isinstance(v, int) else (1, 0, v))
    return list(dict.fromkeys(str(v) for v in ordered))


def list_cell(path: str, where: str, column: str, value: Any, text_cells: bool, words: bool) -> list:
    """A list value; in CSV/TSV a JSON array, or (for tokens and tags, `words=True`) a whitespace-separated string."""
    if text_cells and isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError as err:
                raise DataFormatError(
                    path, f"column {column!r} is not a valid JSON array ({err.msg})", where
                ) from None
        elif words:
            value = stripped.split()
    if not isinstance(value, list):
        expected = "a JSON array or a whitespace-separated string" if words and text_cells else "a list"
        raise DataFormatError(
            path, f"column {column!r} holds {value!r}, not a list; expected {expected}", where
        )
    return value


def text_value(path: str, where: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise DataFormatError(path, f"{name} {value!r} is not a string", where)
    if not value.strip():
        raise DataFormatError(path, f"{name} is empty", where)
    return value


def offset_value(path: str, where: str, value: Any, text_cells: bool) -> int:
    if text_cells and isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise DataFormatError(path, f"answer_start {value!r} is not an integer character offset", where)


def answers_value(path: str, where: str, value: Any, text_cells: bool) -> dict[str, list]:
    """The Hub's `answers` struct: `{"text": [...], "answer_start": [...]}` of equal lengths (JSON in CSV/TSV)."""
    expected = 'expected {"text": [...], "answer_start": [...]}'
    if text_cells and isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, f"answers is not valid JSON ({err.msg}); {expected}", where) from None
    if not isinstance(value, dict) or set(value) != {"text", "answer_start"}:
        raise DataFormatError(path, f"answers {value!r} is not an answers object; {expected}", where)
    texts, starts = value["text"], value["answer_start"]
    if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
        raise DataFormatError(
            path, f"answers {value!r} needs two lists of the same length; {expected}", where
        )
    return {"text": texts, "answer_start": [offset_value(path, where, s, False) for s in starts]}


def _check_answer(path: str, where: str, context: str, text: Any, start: int) -> None:
    if not isinstance(text, str) or not text:
        raise DataFormatError(path, f"answer text {text!r} is not a non-empty string", where)
    if not 0 <= start <= len(context) - len(text):
        raise DataFormatError(
            path,
            f"answer {text!r} at offset {start} is not inside the context ({len(context)} characters)",
            where,
        )
    found = context[start : start + len(text)]
    if found != text:
        raise DataFormatError(
            path, f"answer {text!r} is not at offset {start}: the context has {found!r}", where
        )


def _check_tokens(path: str, where: str, tokens: list, tags: list) -> None:
    if not tokens:
        raise DataFormatError(path, "has no tokens", where)
    bad = next((t for t in tokens if not isinstance(t, str) or not t), None)
    if bad is not None:
        raise DataFormatError(path, f"token {bad!r} is not a non-empty string", where)
    if len(tokens) != len(tags):
        raise DataFormatError(path, f"has {len(tokens)} tokens but {len(tags)} tags", where)


def _check_unique(path: str, where: str, example_id: str, seen: dict[str, str]) -> None:
    """Question answering keys its predictions by id, so two questions may not share one."""
    if example_id in seen:
        raise DataFormatError(
            path, f"id {example_id!r} is used twice in the split (also {seen[example_id]})", where
        )
    seen[example_id] = f"{path}, {where}"
