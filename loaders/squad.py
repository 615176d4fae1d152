"""SQuAD-format JSON (v1.1 and v2.0) with the Hub `squad_v2` schema; unanswerable questions are kept.

Answers whose `answer_start` is off by a character or two (a known quirk of SQuAD-style files) are repaired and
counted; an answer that is not found near its offset, a field of the wrong type, or answers that contradict
`is_impossible` are errors naming the question id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from . import repairs
from .errors import DataFormatError
from .files import files_by_split, read_text, warn_not_taken

logger = datasets.logging.get_logger(__name__)

DATA_EXTENSIONS = frozenset({".json"})
NOT_TAKEN_RULE = "split files are .json files named by a word train, dev, valid, validation or test"
SQUAD_V2_URLS = {
    datasets.Split.TRAIN: "https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v2.0.json",
    datasets.Split.VALIDATION: "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v2.0.json",
}
FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "context": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answers": {
            "text": datasets.List(datasets.Value("string")),
            "answer_start": datasets.List(datasets.Value("int32")),
        },
    }
)


@dataclass
class SquadConfig(datasets.BuilderConfig):
    """`max_offset_repair`: how many characters an `answer_start` may be off and still be repaired.

    `download_urls`: split -> URL fetched when neither `data_dir` nor `data_files` is given.
    """

    max_offset_repair: int = 2
    download_urls: dict[str, str] | None = None


class Squad(datasets.GeneratorBasedBuilder):
    SCHEMA = "question-answering"
    """The table it produces: the `datasets` schema the task of that name reads."""

    BUILDER_CONFIG_CLASS = SquadConfig
    BUILDER_CONFIGS = [SquadConfig(name="squad_v2", download_urls=dict(SQUAD_V2_URLS))]
    DEFAULT_CONFIG_NAME = "squad_v2"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="Extractive question answering read from SQuAD-format JSON.", features=FEATURES
        )

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        if self.config.data_files:
            files = {split: list(paths) for split, paths in self.config.data_files.items()}
        elif self.config.data_dir:
            files = find_split_files(Path(self.config.data_dir))
            warn_not_taken(logger, Path(self.config.data_dir), files, NOT_TAKEN_RULE)
        else:
            files = {split: [path] for split, path in dl_manager.download(self.config.download_urls).items()}
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"paths": paths, "split": split})
            for split, paths in files.items()
        ]

    def _generate_examples(self, paths: list[str], split: str) -> Iterator[tuple[str, dict]]:
        seen_ids: dict[str, str] = {}  # question ids are unique across all of a split's files
        counts = repairs.file_counts(b"")
        counts["repaired_answer_starts"] = 0
        for path in paths:
            counts.update(repairs.file_counts(Path(path).read_bytes()))
            repaired = 0
            for example, repaired_here in read_squad(path, self.config.max_offset_repair, seen_ids):
                repaired += repaired_here
                yield example["id"], example
            if repaired:
                logger.warning(
                    f"{path}: repaired {repaired} answer_start offsets that were off by "
                    f"1 to {self.config.max_offset_repair} characters"
                )
            counts["repaired_answer_starts"] += repaired
        repairs.save(self, split, f"files {paths[0] if paths else ''}", counts)


def read_squad(
    path: str | Path,
    max_offset_repair: int = 2,
    seen_ids: dict[str, str] | None = None,
    labelled: bool = True,
) -> Iterator[tuple[dict[str, Any], int]]:
    """Yield (example, how many of its answer offsets were repaired) for every question, answerable or not.

    `seen_ids` (question id -> file) carries the ids already read from other files of the same split.
    `labelled=False` reads questions to be answered: they need no `answers`, and any given are not read.
    Every field is type-checked: a value of the wrong type (`"is_impossible": "false"`, a numeric title) would
    otherwise change or drop answers without a word. A file without questions is an error, never an empty split.
    """
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataFormatError(path, 'is not SQuAD-shaped: expected an object with a "data" list of articles')
    seen_ids = {} if seen_ids is None else seen_ids
    version_1 = str(data.get("version", "")).lstrip("v").startswith("1.")
    questions = 0
    for article_index, article in enumerate(data["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataFormatError(
                path, 'is not SQuAD-shaped: expected a "paragraphs" list', f"article {article_index}"
            )
        title = article.get("title", "")
        if not isinstance(title, str):
            raise DataFormatError(
                path, f'"title" must be a string, got {_shown(title)}', f"article {article_index}"
            )
        for paragraph_index, paragraph in enumerate(paragraphs):
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str) or not isinstance(paragraph.get("qas"), list):
                raise DataFormatError(
                    path,
                    'is not SQuAD-shaped: expected paragraphs with "context" and "qas", a string and a list '
                    f"(paragraph {paragraph_index} has {_paragraph_fields(paragraph)})",
                    f"article {title!r}",
                )
            for qa in paragraph["qas"]:
                qid = qa.get("id") if isinstance(qa, dict) else None
                if not isinstance(qid, str):
                    raise DataFormatError(
                        path, 'expected questions with string "id" and "question"', f"article {title!r}"
                    )
                if not isinstance(qa.get("question"), str):
                    raise DataFormatError(
                        path,
                        f'"question" must be a string, got {_shown(qa.get("question"))}',
                        f"question {qid}",
                    )
                if qid in seen_ids:
                    elsewhere = "" if seen_ids[qid] == str(path) else f"; first in {seen_ids[qid]}"
                    raise DataFormatError(
                        path, f"appears twice (question ids must be unique{elsewhere})", f"question {qid}"
                    )
                seen_ids[qid] = str(path)
                answers, repaired = (
                    _answers(path, qid, context, qa, max_offset_repair, version_1)
                    if labelled
                    else ({"text": [], "answer_start": []}, 0)
                )
                example = {
                    "id": qid,
                    "title": title,
                    "context": context,
                    "question": qa["question"],
                    "answers": answers,
                }
                questions += 1
                yield example, repaired
    if not questions:
        raise DataFormatError(path, 'holds no questions (its "data" list is empty or its articles have none)')


def _read_json(path: str | Path) -> Any:
    """The parsed file; invalid JSON names its line, and nesting too deep for the parser is one line too."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, f"is not valid JSON ({err.msg})", f"line {err.lineno}") from None
    except RecursionError:
        raise DataFormatError(
            path, "is nested too deeply to read as JSON (SQuAD nests articles > paragraphs > qas > answers)"
        ) from None


def _shown(value: Any) -> str:
    """A value as it appears in JSON, cut short: `"false"` (a string) is then visibly not `false`."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _paragraph_fields(paragraph: Any) -> str:
    if not isinstance(paragraph, dict):
        return f"the value {_shown(paragraph)}"
    return ", ".join(
        f'"{key}": {_shown(paragraph[key])}' if key in paragraph else f'no "{key}"'
        for key in ("context", "qas")
    )


def _answers(
    path: str | Path, qid: str, context: str, qa: dict[str, Any], max_offset_repair: int, version_1: bool
) -> tuple[dict[str, list], int]:
    """The answers, checked against `is_impossible`: where the flag and the list disagree, neither is taken over
    the other (which one is wrong cannot be told from the file)."""
    raw_answers = _raw_answers(path, qid, qa, version_1)
    texts: list[str] = []
    starts: list[int] = []
    repaired = 0
    for answer in raw_answers:
        text, start = (
            (answer.get("text"), answer.get("answer_start")) if isinstance(answer, dict) else (None, None)
        )
        if not isinstance(text, str) or not isinstance(start, int) or isinstance(start, bool):
            raise DataFormatError(
                path, 'expected answers with string "text" and integer "answer_start"', f"question {qid}"
            )
        if not text.strip():
            raise DataFormatError(
                path, f"answer text {text!r} is empty (at answer_start {start})", f"question {qid}"
            )
        if not 0 <= start < len(context):
            raise DataFormatError(
                path,
                f"answer_start {start} is outside its context of {len(context)} characters",
                f"question {qid}",
            )
        found = _locate(context, text, start, max_offset_repair)
        if found is None:
            raise DataFormatError(
                path,
                f"answer {text!r} is not in the context at answer_start {start} "
                f"(nor within {max_offset_repair} characters of it)",
                f"question {qid}",
            )
        repaired += found != start
        texts.append(text)
        starts.append(found)
    return {"text": texts, "answer_start": starts}, repaired


def _raw_answers(path: str | Path, qid: str, qa: dict[str, Any], version_1: bool) -> list:
    """The `answers` list once it agrees with `is_impossible` and the file's SQuAD version.

    v2.0 marks an unanswerable question with `"is_impossible": true` or, as the official scorer and the Hub's
    `squad_v2` read it, an empty `answers` list; v1.1 has no unanswerable questions, so every question lists answers.
    A question without an `answers` key is unanswerable only when it says so.
    """
    where = f"question {qid}"
    impossible = qa.get("is_impossible")
    if "is_impossible" in qa and not isinstance(impossible, bool):
        raise DataFormatError(path, f'"is_impossible" must be true or false, got {_shown(impossible)}', where)
    if "answers" not in qa:
        if impossible:
            return []
        raise DataFormatError(
            path, 'has no "answers" list (an unanswerable question says "is_impossible": true)', where
        )
    raw_answers = qa["answers"]
    if not isinstance(raw_answers, list):
        raise DataFormatError(path, '"answers" must be a list', where)
    if impossible and raw_answers:
        raise DataFormatError(
            path,
            f'"is_impossible" is true but it lists {len(raw_answers)} answers '
            '(an unanswerable question has "answers": [])',
            where,
        )
    if not raw_answers and impossible is False:
        raise DataFormatError(
            path,
            '"answers" is empty but "is_impossible" is false (an answerable question lists its answers)',
            where,
        )
    if not raw_answers and version_1:
        raise DataFormatError(
            path, '"answers" is empty, but a SQuAD 1.1 file has no unanswerable questions', where
        )
    return raw_answers


def _locate(context: str, text: str, start: int, max_shift: int) -> int | None:
    """The nearest offset to `start` where `text` really is, preferring no shift, then -1, +1, -2, +2."""
    for shift in sorted(range(-max_shift, max_shift + 1), key=lambda s: (abs(s), s)):
        candidate = start + shift
        if candidate >= 0 and context.startswith(text, candidate):
            return candidate
    return None


def find_split_files(data_dir: Path) -> dict[str, list[str]]:
    """Every `.json` file in `data_dir` whose name holds the word train, dev/valid/validation or test.

    Words are runs of letters or of digits, so SQuAD's own `train-v2.0.json` and `dev-v2.0.json` match, while
    `latest.json` or a backup `train-v2.0.json.bak` do not.
    """
    if not data_dir.is_dir():
        raise DataFormatError(data_dir, "is not a folder (expected a folder of SQuAD JSON files)")
    found = files_by_split(data_dir, DATA_EXTENSIONS)
    if not found:
        raise DataFormatError(
            data_dir,
            "has no SQuAD JSON file with train, dev or test in its name "
            "(a whole word of a .json file's name, as in train-v2.0.json)",
        )
    return found
