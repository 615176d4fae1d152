"""NER span annotations exported by annotation tools, read as words and BIO tags (the `token-classification` schema).

Two exports: Label Studio's JSON export (`label_studio`: a list of tasks with `data` and `annotations`) and
doccano's JSONL export (`doccano`: one record per line with `text` and `label` triples or `entities` objects).
Both give a text and character spans with a label; a model trains on words and tags, so the text is split into
words that keep their character offsets, and each span becomes `B-TYPE` on its first word and `I-TYPE` on the others.

Words are runs of non-whitespace, so text written as tokens joined by single spaces splits back into exactly those
tokens. A run is also cut where a span edge falls next to punctuation (a span on "Paris" in "Paris." gives the words
"Paris" and "."). An edge between two letters or digits ("Paris" in "Parisian") is inside a word: the span is widened
to the whole word and counted, or, with `strict=True`, it is an error. No library tokenizer does this: a
pre-tokenizer that also splits punctuation would cut "U.S." or "@user" into pieces the annotator never saw, and
the words must follow the spans, which a tokenizer does not know.

What is read, and what is not (every case is counted in `repairs.REPAIRS` or is an error naming the record):
- Label Studio: per task, one annotation. Cancelled annotations (`was_cancelled`, or `skipped` in older exports)
  are not read; of several others, the one marked `ground_truth` is read, else the most recently updated one, so
  a text is one document, never several with different tags. A task with no annotation left is skipped: read as
  all `O`, its unlabelled entities would teach the model that they are not entities. `predictions` (a model's
  output, not an annotator's) are never read; results that are not `labels` spans (choices, relations, ...) are
  counted and not read. When a result gives the span's `text` and the offsets do not point at it, offsets
  counted in UTF-16 code units (older Label Studio versions, with emoji in the text) are converted; any other
  disagreement is an error, as it means the offsets refer to another text.
- doccano: every record is read (an export cannot tell "no entity" from "not annotated"; export only approved
  documents to leave unannotated ones out); relations are counted and not read.
- Both: a span is trimmed of whitespace at its edges (selections often take the next space); the same span given
  twice with the same label is read once. A text without any word is skipped. Overlapping spans, a span outside
  the text, an empty one, and one with no label or several are errors naming the record.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import datasets

from . import repairs
from .errors import DataFormatError
from .files import files_by_split, read_text, warn_not_taken

logger = datasets.logging.get_logger(__name__)

DATA_EXTENSIONS = {"label_studio": frozenset({".json"}), "doccano": frozenset({".jsonl"})}
TOOL_NAMES = {"label_studio": "Label Studio JSON export", "doccano": "doccano JSONL export"}
OUTSIDE = "O"
_WORD = re.compile(r"\S+")
_SHOWN_CHARS = 40
SPAN_REPAIRS = (
    "unannotated_tasks",
    "cancelled_annotations",
    "extra_annotations",
    "other_results",
    "utf16_offsets",
    "duplicate_spans",
    "widened_spans",
    "punctuation_cuts",
    "empty_documents",
)
"""The `repairs.REPAIRS` keys this loader counts (all reported, zero or not)."""


@dataclass
class SpansConfig(datasets.BuilderConfig):
    """`label_names`: the tag set in label-id order (`O`, `B-PER`, `I-PER`, ...), or just the entity types
    (`PER`, `LOC`), which become `O` then per type its `B-` and `I-` tag in the order given. None collects the
    types from the train split (sorted).

    `strict`: a span edge inside a word is an error instead of being widened to the whole word.
    `text_key`: the field holding the text (Label Studio: a key of a task's `data`; doccano: a key of a record).
    None takes doccano's `text`, and for Label Studio the data field the spans' `to_name` names, else `text`, else
    the only string field every task has.
    """

    label_names: list[str] | None = None
    strict: bool = False
    text_key: str | None = None


class Span(NamedTuple):
    """A labelled character span; `given_start`/`given_end` are the export's offsets, shown in errors."""

    start: int
    end: int
    label: str
    given_start: int
    given_end: int


class Record(NamedTuple):
    id: str
    where: str
    """Locates the record in its file for errors: `task 7`, `record 7, line 9`."""
    text: str
    spans: list[Span]


class Spans(datasets.GeneratorBasedBuilder):
    SCHEMA = "token-classification"
    """The table it produces: the `datasets` schema the task of that name reads."""

    BUILDER_CONFIG_CLASS = SpansConfig
    BUILDER_CONFIGS = [SpansConfig(name="label_studio"), SpansConfig(name="doccano")]
    DEFAULT_CONFIG_NAME = "label_studio"

    def _info(self) -> datasets.DatasetInfo:
        names = tag_names(self.config.label_names) if self.config.label_names else self._collected_names()
        return datasets.DatasetInfo(
            description=f"Token classification documents read from a {TOOL_NAMES[self.config.name]}.",
            features=datasets.Features(
                {
                    "id": datasets.Value("string"),
                    "tokens": datasets.List(datasets.Value("string")),
                    "ner_tags": datasets.List(datasets.ClassLabel(names=names)),
                }
            ),
        )

    def _collected_names(self) -> list[str]:
        """`O`, then per entity type of the train split (sorted) its `B-` and `I-` tag."""
        paths = self._local_files().get(datasets.Split.TRAIN)
        if not paths:
            raise DataFormatError(
                self.config.data_dir or "data_files",
                "has no train file to collect the entity types from; pass label_names=[...] or a train file",
            )
        types = {
            span.label for path in paths for record in self._records(path, Counter()) for span in record.spans
        }
        if not types:
            raise DataFormatError(paths[0], "holds no entity span to collect the entity types from")
        return tag_names(sorted(types))

    def _local_files(self) -> dict[str, list[str]]:
        if self.config.data_files:
            return {split: list(files) for split, files in self.config.data_files.items()}
        if self.config.data_dir:
            return find_split_files(Path(self.config.data_dir), self.config.name)
        return {}

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        files = self._local_files()
        if not files:
            raise ValueError(f"a {TOOL_NAMES[self.config.name]} needs data_dir or data_files")
        if self.config.data_dir and not self.config.data_files:
            extensions = "/".join(sorted(DATA_EXTENSIONS[self.config.name]))
            rule = f"split files are {extensions} files named by a word train, dev, valid, validation or test"
            warn_not_taken(logger, Path(self.config.data_dir), files, rule)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"paths": paths, "split": split})
            for split, paths in files.items()
        ]

    def _records(self, path: str, counts: Counter[str]) -> Iterator[Record]:
        if self.config.name == "doccano":
            return read_doccano(path, self.config.text_key, counts)
        return read_label_studio(path, self.config.text_key, counts)

    def _generate_examples(self, paths: list[str], split: str) -> Iterator[tuple[str, dict]]:
        label_names = self.info.features["ner_tags"].feature.names
        names = set(label_names)
        source = "label_names" if self.config.label_names else "the train split"
        counts = repairs.file_counts(b"")
        counts.update(dict.fromkeys(SPAN_REPAIRS, 0))
        for path in paths:
            counts.update(repairs.file_counts(Path(path).read_bytes()))
            for index, record in enumerate(self._records(path, counts)):
                tokens, tags = words_and_tags(path, record, self.config.strict, counts)
                if not tokens:
                    counts["empty_documents"] += 1
                    continue
                unknown = sorted({tag for tag in tags if tag not in names})
                if unknown:
                    raise DataFormatError(
                        path,
                        f"entity type {unknown[0][2:]!r} ({unknown[0]}) is not in the label set of {source} "
                        f"{label_names}",
                        record.where,
                    )
                yield f"{path}:{index}", {"id": record.id, "tokens": tokens, "ner_tags": tags}
        repairs.save(self, split, f"files {paths[0] if paths else ''}", counts)


def tag_names(label_names: list[str]) -> list[str]:
    """The tag set from `label_names`: tags as given, or entity types expanded to `O`, `B-T`, `I-T`, ..."""
    tags = [name for name in label_names if name == OUTSIDE or name[:2] in ("B-", "I-")]
    if len(set(label_names)) != len(label_names):
        raise ValueError(f"label_names {label_names} names a label twice")
    if not tags:
        return [OUTSIDE] + [f"{prefix}-{kind}" for kind in label_names for prefix in "BI"]
    if len(tags) != len(label_names) or OUTSIDE not in tags:
        raise ValueError(
            f"label_names {label_names}: expected tags (O, B-TYPE, I-TYPE, ..., with O) or entity types only"
        )
    return list(label_names)


# Label Studio


def read_label_studio(path: str | Path, text_key: str | None, counts: Counter[str]) -> Iterator[Record]:
    """The annotated tasks of a Label Studio JSON export, each with the spans of its one annotation read."""
    tasks = _read_json(path)
    if not isinstance(tasks, list):
        raise DataFormatError(path, "is not a Label Studio JSON export (expected a list of tasks)")
    if not tasks:
        raise DataFormatError(path, "holds no tasks")
    key = text_key or _label_studio_text_key(path, tasks)
    read = 0
    for position, task in enumerate(tasks, start=1):
        task_id = task.get("id", position) if isinstance(task, dict) else position
        where = f"task {task_id}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise DataFormatError(
                path,
                'expected a task with a "data" object (Label Studio JSON export; JSON-MIN and CSV exports '
                "are not read)",
                where,
            )
        text = _text(path, where, task["data"], key, '"data"')
        annotation = _chosen_annotation(path, task, where, counts)
        if annotation is None:
            counts["unannotated_tasks"] += 1
            continue
        spans = []
        for result in annotation["result"]:
            if not isinstance(result, dict):
                raise DataFormatError(path, "expected annotation results that are objects", where)
            if result.get("type") != "labels":
                counts["other_results"] += 1
                continue
            spans.append(_label_studio_span(path, where, text, result.get("value"), counts))
        read += 1
        yield Record(str(task_id), where, text, spans)
    if not read:
        raise DataFormatError(
            path, f"holds no annotated task (none of its {len(tasks)} tasks has an annotation not cancelled)"
        )


def _label_studio_text_key(path: str | Path, tasks: list) -> str:
    """The `data` field the spans were drawn on: the one named by the results' `to_name`, else `text`, else the
    only string field every task has. Spans on several text fields cannot be one word sequence: an error, and so
    are several string fields, none of them named."""
    data = [task["data"] for task in tasks if isinstance(task, dict) and isinstance(task.get("data"), dict)]
    to_names = {
        result.get("to_name")
        for task in tasks
        if isinstance(task, dict)
        for annotation in _annotations(task)
        if isinstance(annotation, dict) and isinstance(annotation.get("result"), list)
        for result in annotation["result"]
        if isinstance(result, dict) and result.get("type") == "labels"
    }
    if len(to_names) > 1:
        raise DataFormatError(
            path,
            f"has spans on several text fields (to_name {sorted(map(str, to_names))}); one text per task is read",
        )
    fields = set.intersection(
        *({key for key, value in d.items() if isinstance(value, str)} for d in data or [{}])
    )
    for key in [*to_names, "text"]:
        if key in fields:
            return key
    if len(fields) < 2:
        return fields.pop() if fields else "text"  # without one, each task's error names what it has
    raise DataFormatError(
        path,
        f'cannot tell which field of "data" holds the text (string fields of every task: {sorted(fields)}); '
        "pass text_key",
    )


def _annotations(task: dict) -> Any:
    """`annotations`, called `completions` before Label Studio 1.0."""
    return task.get("annotations", task.get("completions", []))


def _chosen_annotation(path: str | Path, task: dict, where: str, counts: Counter[str]) -> dict | None:
    """The annotation read for a task (see the module docstring); None when every one was cancelled."""
    annotations = _annotations(task)
    if not isinstance(annotations, list) or not all(
        isinstance(a, dict) and isinstance(a.get("result"), list) for a in annotations
    ):
        raise DataFormatError(path, 'expected "annotations": a list of objects with a "result" list', where)
    live = [a for a in annotations if not (a.get("was_cancelled") or a.get("skipped"))]
    counts["cancelled_annotations"] += len(annotations) - len(live)
    if not live:
        return None
    counts["extra_annotations"] += len(live) - 1
    ground_truth = [a for a in live if a.get("ground_truth") is True]
    # A stable sort keeps the export's order among equal times, so the last one listed wins a tie.
    return sorted(ground_truth or live, key=_last_saved)[-1]


def _last_saved(annotation: dict) -> str:
    """When an annotation was last saved, as Label Studio writes it (ISO 8601, which sorts as text)."""
    return str(annotation.get("updated_at") or annotation.get("created_at") or "")


def _label_studio_span(path: str | Path, where: str, text: str, value: Any, counts: Counter[str]) -> Span:
    if not isinstance(value, dict):
        raise DataFormatError(path, 'expected a "labels" result with a "value" object', where)
    start, end = _offsets(path, where, value.get("start"), value.get("end"))
    given = value.get("text")
    if isinstance(given, str) and text[start:end] != given:
        converted = _from_utf16(text, start, end)
        if converted is None or text[converted[0] : converted[1]] != given:
            _span(path, where, text, start, end, value.get("labels"))  # offsets outside the text say so first
            raise DataFormatError(
                path,
                f"span {start}-{end} is {_shown(text[start:end])} in the text but {_shown(given)} in the "
                "export (do the offsets refer to another text field? see text_key)",
                where,
            )
        counts["utf16_offsets"] += 1
        start, end = converted
    return _span(path, where, text, start, end, value.get("labels"))


def _from_utf16(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Offsets counted in UTF-16 code units (as JavaScript counts) as Python's character offsets, if there are
    characters outside the Basic Multilingual Plane (emoji) for them to differ and neither falls inside one."""
    if not any(ord(char) > 0xFFFF for char in text):
        return None
    units = [0]
    for char in text:
        units.append(units[-1] + (2 if ord(char) > 0xFFFF else 1))
    indices = {unit: index for index, unit in enumerate(units)}
    if start not in indices or end not in indices:
        return None
    return indices[start], indices[end]


# doccano


def read_doccano(path: str | Path, text_key: str | None, counts: Counter[str]) -> Iterator[Record]:
    """Every record of a doccano JSONL export, with its spans from `label`/`labels` triples `[start, end, type]`
    (sequence labelling projects) or `entities` objects (projects with relations)."""
    key = text_key or "text"
    read = 0
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, f"is not valid JSON Lines ({err.msg})", f"line {number}") from None
        if not isinstance(record, dict):
            raise DataFormatError(
                path, "expected one JSON object per line (doccano JSONL export)", f"line {number}"
            )
        record_id = record.get("id", number)
        where = f"record {record_id}, line {number}" if "id" in record else f"line {number}"
        text = _text(path, where, record, key, "the record")
        relations = record.get("relations")
        counts["other_results"] += len(relations) if isinstance(relations, list) else 0
        read += 1
        yield Record(str(record_id), where, text, _doccano_spans(path, where, text, record))
    if not read:
        raise DataFormatError(path, "holds no records")


def _doccano_spans(path: str | Path, where: str, text: str, record: dict) -> list[Span]:
    keys = [key for key in ("entities", "label", "labels") if key in record]
    if len(keys) != 1:
        found = f"has {' and '.join(keys)}" if keys else "has neither"
        raise DataFormatError(path, f'expected one list of spans, "label" or "entities" ({found})', where)
    raw = record[keys[0]]
    if not isinstance(raw, list):
        raise DataFormatError(path, f'"{keys[0]}" must be a list of spans', where)
    spans = []
    for item in raw:
        if keys[0] == "entities" and isinstance(item, dict):
            start, end, label = item.get("start_offset"), item.get("end_offset"), item.get("label")
        elif keys[0] != "entities" and isinstance(item, list) and len(item) == 3:
            start, end, label = item
        else:
            expected = (
                'objects with "start_offset", "end_offset" and "label"'
                if keys[0] == "entities"
                else "[start, end, label] triples (a text classification export has label names only)"
            )
            raise DataFormatError(path, f'"{keys[0]}" must hold {expected}, got {_shown(item)}', where)
        start, end = _offsets(path, where, start, end)
        spans.append(_span(path, where, text, start, end, [label] if label is not None else []))
    return spans


def _text(path: str | Path, where: str, fields: dict, key: str, holder: str) -> str:
    if key not in fields:
        raise DataFormatError(
            path, f"{holder} has no text field {key!r} (it has {sorted(fields)}); pass text_key", where
        )
    if not isinstance(fields[key], str):
        raise DataFormatError(
            path, f"{holder} field {key!r} must be the text, got {_shown(fields[key])}", where
        )
    return fields[key]


# Spans to words and tags


def _offsets(path: str | Path, where: str, start: Any, end: Any) -> tuple[int, int]:
    if not all(isinstance(offset, int) and not isinstance(offset, bool) for offset in (start, end)):
        raise DataFormatError(
            path, f"span offsets must be integers, got start {_shown(start)} and end {_shown(end)}", where
        )
    return start, end


def _span(path: str | Path, where: str, text: str, start: int, end: int, labels: Any) -> Span:
    """A checked span with its edges moved off whitespace."""
    if not 0 <= start <= end <= len(text):
        raise DataFormatError(
            path, f"span {start}-{end} is outside the text of {len(text)} characters", where
        )
    if start == end:
        raise DataFormatError(path, f"span {start}-{end} is empty", where)
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise DataFormatError(path, f"span {start}-{end} {_shown(text[start:end])} has no label", where)
    if len(labels) > 1:
        raise DataFormatError(
            path,
            f"span {start}-{end} {_shown(text[start:end])} has {len(labels)} labels {labels} (expected one)",
            where,
        )
    trimmed_start = start + len(text[start:end]) - len(text[start:end].lstrip())
    trimmed_end = start + len(text[start:end].rstrip())
    if trimmed_start >= trimmed_end:
        raise DataFormatError(path, f"span {start}-{end} holds only whitespace", where)
    return Span(trimmed_start, trimmed_end, labels[0], start, end)


def words_and_tags(
    path: str | Path, record: Record, strict: bool, counts: Counter[str]
) -> tuple[list[str], list[str]]:
    """The record's words (see the module docstring) and their BIO tags."""
    spans = sorted(set((s.start, s.end, s.label) for s in record.spans))
    counts["duplicate_spans"] += len(record.spans) - len(spans)
    given = {(s.start, s.end, s.label): s for s in record.spans}
    ordered = [given[key] for key in spans]
    _check_overlaps(path, record, ordered, "")
    widened = [_on_word_boundaries(path, record, span, strict) for span in ordered]
    changed = sum(span != before for span, before in zip(widened, ordered, strict=True))
    if changed:
        counts["widened_spans"] += changed
        _check_overlaps(path, record, widened, " once widened to whole words")
    words = split_words(record.text, [edge for span in widened for edge in (span.start, span.end)])
    counts["punctuation_cuts"] += len(words) - len(_WORD.findall(record.text))
    return [record.text[start:end] for start, end in words], bio_tags(words, widened)


def _is_word_char(char: str) -> bool:
    """Letters, digits and combining marks (an accent written as its own character is part of its letter)."""
    return unicodedata.category(char)[0] in "LNM"


def _inside_word(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and _is_word_char(text[offset - 1]) and _is_word_char(text[offset])


def _on_word_boundaries(path: str | Path, record: Record, span: Span, strict: bool) -> Span:
    """The span widened to the whole word where an edge falls inside one."""
    text = record.text
    start_inside, end_inside = _inside_word(text, span.start), _inside_word(text, span.end)
    if not (start_inside or end_inside):
        return span
    if strict:
        word_start, word_end = _word_around(text, span.start if start_inside else span.end)
        raise DataFormatError(
            path,
            f"span {_described(text, span)} does not fall on word boundaries: it cuts the word "
            f"{_shown(text[word_start:word_end])} (strict; otherwise the span is widened to the whole word)",
            record.where,
        )
    start = _word_around(text, span.start)[0] if start_inside else span.start
    end = _word_around(text, span.end)[1] if end_inside else span.end
    return span._replace(start=start, end=end)


def _word_around(text: str, offset: int) -> tuple[int, int]:
    """The run of letters and digits that `offset` falls inside."""
    start, end = offset, offset
    while start > 0 and _is_word_char(text[start - 1]):
        start -= 1
    while end < len(text) and _is_word_char(text[end]):
        end += 1
    return start, end


def _check_overlaps(path: str | Path, record: Record, spans: list[Span], after: str) -> None:
    """Overlapping spans would need two tags on one word: the export is ambiguous, so it is an error."""
    furthest: Span | None = None
    for span in sorted(spans):
        if furthest is not None and span.start < furthest.end:
            raise DataFormatError(
                path,
                f"spans {_described(record.text, furthest)} and {_described(record.text, span)} overlap{after}",
                record.where,
            )
        if furthest is None or span.end > furthest.end:
            furthest = span


def split_words(text: str, cuts: Iterable[int]) -> list[tuple[int, int]]:
    """(start, end) of each word: runs of non-whitespace, also cut at each offset in `cuts` inside a run."""
    cuts = sorted(set(cuts))
    words = []
    for match in _WORD.finditer(text):
        start, end = match.span()
        inside = cuts[bisect.bisect_right(cuts, start) : bisect.bisect_left(cuts, end)]
        edges = [start, *inside, end]
        words += itertools.pairwise(edges)
    return words


def bio_tags(words: list[tuple[int, int]], spans: list[Span]) -> list[str]:
    """`B-TYPE` on a span's first word, `I-TYPE` on its others, `O` elsewhere; spans do not overlap and start and
    end on word edges."""
    spans = sorted(spans)
    tags = []
    current = 0
    for start, _ in words:
        while current < len(spans) and spans[current].end <= start:
            current += 1
        if current < len(spans) and spans[current].start <= start:
            prefix = "B" if start == spans[current].start else "I"
            tags.append(f"{prefix}-{spans[current].label}")
        else:
            tags.append(OUTSIDE)
    return tags


# Files


def find_split_files(data_dir: Path, tool: str) -> dict[str, list[str]]:
    """Every export file in `data_dir` whose name holds the word train, dev/valid/validation or test."""
    extensions = DATA_EXTENSIONS[tool]
    shown = "/".join(sorted(extensions))
    if not data_dir.is_dir():
        raise DataFormatError(
            data_dir, f"is not a folder (expected a folder of {TOOL_NAMES[tool]} {shown} files)"
        )
    found = files_by_split(data_dir, extensions)
    if not found:
        raise DataFormatError(
            data_dir,
            f"has no {shown} file with train, dev or test in its name (a whole word, as in train.{shown}); "
            "rename the export or pass data_files",
        )
    return found


def _read_json(path: str | Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataFormatError(path, f"is not valid JSON ({err.msg})", f"line {err.lineno}") from None
    except RecursionError:
        raise DataFormatError(path, "is nested too deeply to read as JSON") from None


def _shown(value: Any) -> str:
    """A value as it appears in JSON, cut short."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _described(text: str, span: Span) -> str:
    """A span as the export gave it: its text, offsets and label."""
    return f"{_shown(text[span.given_start : span.given_end])} ({span.given_start}-{span.given_end} {span.label})"
