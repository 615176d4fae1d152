"""What a loader repaired or skipped while preparing a split, kept as data beside the split's Arrow files.

The builders count their repairs as they read (BOMs, Windows newlines, the format's own quirks) and save the counts
in the folder `datasets` is preparing, so they move into the cache with the Arrow files and come back with a cached
data set too; nothing has to read the raw files again to know them. `datasets.DatasetInfo` has no field for such
counts (its `description` is prose), hence a small JSON file per split and part.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import datasets

REPAIRS = {
    "bom_files": "UTF-8 BOMs dropped",
    "crlf_files": "files with CRLF newlines read as LF",
    "skipped_files": "files in label folders skipped (hidden, or another extension)",
    "nested_files": "files in subfolders of label folders, not read",
    "whitespace_separators": "whitespace-only document separators read as blank lines",
    "repaired_answer_starts": "answer_start offsets 1-2 characters off, repaired",
    "unannotated_tasks": "annotation tasks without an annotation (none, or all cancelled), skipped",
    "cancelled_annotations": "annotations cancelled by the annotator, not read",
    "extra_annotations": "further annotations of a task (its ground truth, else its latest, is read), not read",
    "other_results": "annotation results that are not entity spans (choices, relations, ...), not read",
    "utf16_offsets": "span offsets counted in UTF-16 code units (emoji in older Label Studio), converted",
    "duplicate_spans": "entity spans given twice with the same label, read once",
    "widened_spans": "entity spans with an edge inside a word, widened to the whole word",
    "punctuation_cuts": "words cut at a span edge next to punctuation (a span on Paris in 'Paris.')",
    "empty_documents": "annotated texts without a word, skipped",
    "row_number_ids": "rows given their row number as id (their file has no id column)",
}
"""Every count a loader reports, with what it means to a reader of the data report."""
_PREFIX = "repairs"


def save(builder: datasets.DatasetBuilder, split: str, part: str, counts: Mapping[str, int]) -> None:
    """Save the counts of one part of a split (a shard's files, or what listing the folders found) into the folder
    being prepared. `part` names the part, so shards prepared in parallel never write the same file."""
    split = str(split)  # a `datasets.NamedSplit` is no JSON string
    name = hashlib.sha256(part.encode()).hexdigest()[:16]
    path = Path(builder._output_dir) / f"{_PREFIX}-{split}-{name}.json"
    path.write_text(json.dumps({"split": split, "counts": dict(counts)}), encoding="utf-8")


def read(cache_dir: str | Path) -> dict[str, dict[str, int]]:
    """Per split, the counts saved by `save`, summed over its parts."""
    totals: dict[str, Counter[str]] = {}
    for path in sorted(Path(cache_dir).glob(f"{_PREFIX}-*.json")):
        saved = json.loads(path.read_text(encoding="utf-8"))
        totals.setdefault(saved["split"], Counter()).update(saved["counts"])
    return {split: {key: counts[key] for key in REPAIRS if key in counts} for split, counts in totals.items()}


def file_counts(data: bytes) -> Counter[str]:
    """The repairs every format makes to a file's bytes: a dropped BOM, Windows newlines read as LF."""
    return Counter(bom_files=int(data.startswith(b"\xef\xbb\xbf")), crlf_files=int(b"\r" in data))
