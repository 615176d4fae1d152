"""CoNLL-style `token<TAB>tag` files (W-NUT 17 and any tag set of the user's own), one document per blank line.

Unlike `datasets`' packaged `conll` builder, which pads or truncates malformed lines silently, every line here must
hold exactly a token and a tag from the label set; anything else is an error naming the file and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import datasets

from . import repairs
from .errors import DataFormatError
from .files import order_splits, read_text, split_from_name, warn_not_taken

logger = datasets.logging.get_logger(__name__)

WNUT17_LABELS = [
    "O",
    "B-corporation",
    "I-corporation",
    "B-creative-work",
    "I-creative-work",
    "B-group",
    "I-group",
    "B-location",
    "I-location",
    "B-person",
    "I-person",
    "B-product",
    "I-product",
]
WHITESPACE = "whitespace"
WNUT17_BASE_URL = "https://raw.githubusercontent.com/leondz/emerging_entities_17/master/"
WNUT17_FILES = {
    datasets.Split.TRAIN: "wnut17train.conll",
    datasets.Split.VALIDATION: "emerging.dev.conll",
    datasets.Split.TEST: "emerging.test.annotated",
}
SHOWN_CHARS = 80
"""How much of a bad line an error quotes: enough to recognise it, never a whole file read as one line."""
DATA_EXTENSIONS = frozenset({".conll", ".txt", ".tsv", ".iob", ".iob2", ".bio"})
NOT_TAKEN_RULE = (
    "split files are W-NUT's file names or files ending in "
    f"{'/'.join(sorted(DATA_EXTENSIONS))} named by a word train, dev, valid, validation or test"
)


@dataclass
class ConllConfig(datasets.BuilderConfig):
    """`label_names`: the tag set in label-id order; None collects it from the train file (see `collect_labels`).

    `delimiter`: what separates token and tag (W-NUT uses a TAB; "whitespace" or None splits on any run of
    whitespace; through `load_dataset` pass "whitespace", as `datasets` ignores config values of None).
    `file_names`: split -> file name looked up in `data_dir`; when none is there, files are matched by a whole word
    train, dev/valid/validation or test in their names (see `find_split_files`).
    `download_url`: base URL the `file_names` are fetched from when no local data is given.
    """

    label_names: list[str] | None = None
    delimiter: str | None = "\t"
    file_names: dict[str, str] | None = None
    download_url: str = WNUT17_BASE_URL


class Conll(datasets.GeneratorBasedBuilder):
    SCHEMA = "token-classification"
    """The table it produces: the `datasets` schema the task of that name reads."""

    BUILDER_CONFIG_CLASS = ConllConfig
    BUILDER_CONFIGS = [
        ConllConfig(name="wnut17", label_names=WNUT17_LABELS, file_names=dict(WNUT17_FILES)),
        ConllConfig(name="conll"),
    ]
    DEFAULT_CONFIG_NAME = "wnut17"

    def _info(self) -> datasets.DatasetInfo:
        names = self.config.label_names or collect_labels(self._local_train_files(), self.config.delimiter)
        return datasets.DatasetInfo(
            description="Token classification documents read from CoNLL token<TAB>tag files.",
            features=datasets.Features(
                {
                    "id": datasets.Value("string"),
                    "tokens": datasets.List(datasets.Value("string")),
                    "ner_tags": datasets.List(datasets.ClassLabel(names=names)),
                }
            ),
        )

    def _local_train_files(self) -> list[str]:
        files = self._local_files()
        if datasets.Split.TRAIN not in files:
            raise DataFormatError(
                self.config.data_dir or "data_files",
                "has no train file to collect the tag set from; pass label_names=[...] or a train file",
            )
        return files[datasets.Split.TRAIN]

    def _local_files(self) -> dict[str, list[str]]:
        if self.config.data_files:
            return {split: list(files) for split, files in self.config.data_files.items()}
        if self.config.data_dir:
            return find_split_files(Path(self.config.data_dir), self.config.file_names or {})
        return {}

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        files = self._local_files()
        if self.config.data_dir and not self.config.data_files:
            warn_not_taken(logger, Path(self.config.data_dir), files, NOT_TAKEN_RULE)
        if not files:
            if not self.config.file_names:
                raise ValueError("a CoNLL data set needs data_dir or data_files (there is no public default)")
            base = self.config.download_url.rstrip("/") + "/"
            urls = {split: base + name for split, name in self.config.file_names.items()}
            files = {split: [path] for split, path in dl_manager.download(urls).items()}
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"paths": paths, "split": split})
            for split, paths in files.items()
        ]

    def _generate_examples(self, paths: list[str], split: str) -> Iterator[tuple[str, dict]]:
        label_names = set(self.info.features["ner_tags"].feature.names)
        doc_id = -1  # ids run on across a split's files, so they stay unique within the split
        counts = repairs.file_counts(b"")
        counts["whitespace_separators"] = 0
        for path in paths:
            counts.update(repairs.file_counts(Path(path).read_bytes()))
            whitespace_separators = 0
            for doc in read_conll(path, self.config.delimiter):
                doc_id += 1
                whitespace_separators += doc.after_whitespace_line
                for offset, tag in enumerate(doc.tags):
                    if tag not in label_names:
                        raise DataFormatError(
                            path,
                            f"tag {tag!r} is not in the label set {sorted(label_names)}",
                            f"line {doc.first_line + offset}",
                        )
                yield f"{path}:{doc_id}", {"id": str(doc_id), "tokens": doc.tokens, "ner_tags": doc.tags}
            counts["whitespace_separators"] += whitespace_separators
            if whitespace_separators:
                logger.info(
                    f"{path}: {whitespace_separators} document separators were lines holding only whitespace"
                )
        repairs.save(self, split, f"files {paths[0] if paths else ''}", counts)


class Document(NamedTuple):
    tokens: list[str]
    tags: list[str]
    first_line: int
    after_whitespace_line: bool
    """The separator before it held whitespace (most W-NUT train separators are a single TAB)."""


def read_conll(path: str | Path, delimiter: str | None = "\t") -> Iterator[Document]:
    """Documents in file order; a file without any (empty, or only separators) is an error, not an empty split."""
    documents = 0
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    after_whitespace_line = False
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            if tokens:
                documents += 1
                yield Document(tokens, tags, first_line, after_whitespace_line)
                tokens, tags = [], []
            after_whitespace_line = line != ""
            continue
        parts = line.split(None if delimiter == WHITESPACE else delimiter)
        if len(parts) != 2 or not parts[0] or not parts[1].strip():
            expected = "a token and a tag separated by a TAB" if delimiter == "\t" else "a token and a tag"
            shown = line if len(line) <= SHOWN_CHARS else line[: SHOWN_CHARS - 3] + "..."
            raise DataFormatError(path, f"expected {expected}, got {shown!r}", f"line {number}")
        if not tokens:
            first_line = number
        tokens.append(parts[0])
        tags.append(parts[1].strip())
    if tokens:
        yield Document(tokens, tags, first_line, after_whitespace_line)
    elif not documents:
        raise DataFormatError(path, "holds no documents (it is empty or holds only blank separator lines)")


def split_tag(tag: str) -> tuple[str | None, str]:
    """`B-PER` -> ("B", "PER"), `I-PER` -> ("I", "PER"), any other tag -> (None, tag).

    The raw-format layer's copy of `processing.token_classification.split_tag`: the two layers import nothing from
    each other, so each reads BIO tags once.
    """
    return (tag[0], tag[2:]) if tag[:2] in ("B-", "I-") else (None, tag)


def collect_labels(paths: list[str], delimiter: str | None = "\t") -> list[str]:
    """The tag set in a stable order: `O` first, then per entity type (sorted) its B- tag then its I- tag.

    For W-NUT 17 this order is exactly the Hub's `wnut_17` label order. Tags without a B-/I- prefix follow, sorted.
    """
    return order_tags({tag for path in paths for doc in read_conll(path, delimiter) for tag in doc.tags})


def order_tags(tags: set[str]) -> list[str]:
    """`collect_labels`' order for any set of tags, so the same tags read from another format get the same ids."""
    types = sorted({kind for prefix, kind in map(split_tag, tags) if prefix is not None})
    ordered = ["O"] if "O" in tags else []
    for entity_type in types:
        ordered += [f"{prefix}-{entity_type}" for prefix in "BI" if f"{prefix}-{entity_type}" in tags]
    return ordered + sorted(tags - set(ordered))


def find_split_files(data_dir: Path, file_names: dict[str, str]) -> dict[str, list[str]]:
    """The config's known file names (W-NUT's) when any is present, else the files named as a split.

    A file is named as a split by its exact W-NUT name (`emerging.test.annotated`) or by a whole word train,
    dev/valid/validation or test in a name ending in a CoNLL extension (`my-train.conll`, `wnut17train.conll`:
    words are runs of letters or of digits), so `train.conll.orig` or `notes_latest.txt` are never read.
    """
    if not data_dir.is_dir():
        raise DataFormatError(data_dir, "is not a folder (expected a folder of CoNLL files)")
    found = {
        split: [str(data_dir / name)] for split, name in file_names.items() if (data_dir / name).is_file()
    }
    if not found:
        exact = {name: split for split, name in WNUT17_FILES.items()}
        for path in sorted(p for p in data_dir.iterdir() if p.is_file()):
            split = exact.get(path.name) or split_from_name(path, DATA_EXTENSIONS)
            if split is not None:
                found.setdefault(split, []).append(str(path))
    if datasets.Split.TRAIN not in found:
        expected = file_names.get(
            datasets.Split.TRAIN, f"a {'/'.join(sorted(DATA_EXTENSIONS))} file named train"
        )
        raise DataFormatError(data_dir, f"has no train file (expected {expected})")
    return order_splits(found)
