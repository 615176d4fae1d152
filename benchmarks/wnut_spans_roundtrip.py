"""W-NUT 17 written as JSON Lines and as annotation-tool exports and read back: the words and tags must come back
exactly.

    python benchmarks/wnut_spans_roundtrip.py --data_dir ../shared/data/wnut17 --out_dir /tmp/wnut_spans

Each split that `loaders.load_dataset("wnut17", data_dir=...)` reads is written, document by document, with text =
the tokens joined by single spaces and one character span per entity of its BIO tags (a `B-` tag and the `I-` tags
of the same type after it), as:

label_studio:        a Label Studio JSON export (one annotation per task, the span's text given with its offsets);
label_studio_utf16:  the same with offsets counted in UTF-16 code units, as older Label Studio versions wrote them
                     for text with emoji (the loader converts them, and counts how many it converted);
doccano:             a doccano JSONL export (`"label": [[start, end, type], ...]`);
jsonl:               JSON Lines of `{"id", "tokens", "ner_tags"}` with the tags as names (the tabular loader).

into `OUT_DIR/<format>/{train,dev}.<ext>`, loaded back with `loaders.load_with_repairs(<format>, ...)` (entity types
collected from the train file), and compared with the CoNLL loader's documents. One line per format and split:
documents, tokens, entities, documents whose words or tags differ (`mismatches`), and the loader's non-zero repair
counts. The script exits with status 1 if any document differs or the entity types come back in another order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _bench import ensure_repo_on_path, quiet_libraries, result_line

ensure_repo_on_path()

FILE_NAMES = {"train": "train", "validation": "dev", "test": "test"}
FORMATS = {"label_studio": ".json", "label_studio_utf16": ".json", "doccano": ".jsonl", "jsonl": ".jsonl"}
OPTIONS = {"jsonl": {"schema": "token-classification"}}
"""Loader config per format: a table says which task's columns it holds."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--data_dir", required=True, help="folder of the W-NUT 17 CoNLL files")
    parser.add_argument(
        "--out_dir", required=True, help="folder the exports (and the Arrow cache) are written to"
    )
    return parser.parse_args(argv)


def entity_spans(tokens: list[str], tags: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, type) in the text `" ".join(tokens)` for each entity: a `B-` tag, or an `I-` tag that does not
    continue an entity of its type, starts one; `I-` tags of the same type extend it."""
    spans: list[list] = []
    offset = 0
    open_type = None
    for token, tag in zip(tokens, tags, strict=True):
        prefix, kind = (tag[0], tag[2:]) if tag[:2] in ("B-", "I-") else (None, None)
        if prefix == "I" and kind == open_type:
            spans[-1][1] = offset + len(token)
        elif prefix is not None:
            spans.append([offset, offset + len(token), kind])
        open_type = kind
        offset += len(token) + 1
    return [tuple(span) for span in spans]


def utf16_offset(text: str, offset: int) -> int:
    """A character offset as JavaScript counts it: characters outside the Basic Multilingual Plane count twice."""
    return offset + sum(ord(char) > 0xFFFF for char in text[:offset])


def label_studio_task(number: int, text: str, spans: list[tuple[int, int, str]], utf16: bool) -> dict:
    def shifted(offset: int) -> int:
        return utf16_offset(text, offset) if utf16 else offset

    result = [
        {
            "id": f"{number}-{index}",
            "from_name": "label",
            "to_name": "text",
            "type": "labels",
            "origin": "manual",
            "value": {
                "start": shifted(start),
                "end": shifted(end),
                "text": text[start:end],
                "labels": [kind],
            },
        }
        for index, (start, end, kind) in enumerate(spans)
    ]
    annotation = {"id": number, "result": result, "was_cancelled": False, "ground_truth": False}
    return {"id": number, "data": {"text": text}, "annotations": [annotation], "predictions": []}


def write_exports(documents: dict[str, list[tuple[list[str], list[str]]]], out_dir: Path) -> None:
    """Every split in every format, under `out_dir/<format>/`."""
    for name, extension in FORMATS.items():
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for split, docs in documents.items():
            path = folder / f"{FILE_NAMES[split]}{extension}"
            texts = [(" ".join(tokens), entity_spans(tokens, tags)) for tokens, tags in docs]
            if name == "jsonl":
                lines = [
                    json.dumps({"id": str(n), "tokens": tokens, "ner_tags": tags}, ensure_ascii=False)
                    for n, (tokens, tags) in enumerate(docs)
                ]
                path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            elif name == "doccano":
                lines = [
                    json.dumps({"id": n, "text": text, "label": [list(s) for s in spans]}, ensure_ascii=False)
                    for n, (text, spans) in enumerate(texts, start=1)
                ]
                path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            else:
                tasks = [
                    label_studio_task(n, text, spans, utf16=name.endswith("utf16"))
                    for n, (text, spans) in enumerate(texts, start=1)
                ]
                path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_libraries()
    import loaders

    out_dir = Path(args.out_dir)
    cache_dir = str(out_dir / "cache")
    conll = loaders.load_dataset("wnut17", data_dir=args.data_dir, cache_dir=cache_dir)
    documents = {}
    for split, rows in conll.items():
        names = rows.features["ner_tags"].feature.names
        documents[split] = [
            (tokens, [names[t] for t in tags])
            for tokens, tags in zip(rows["tokens"], rows["ner_tags"], strict=True)
        ]
    write_exports(documents, out_dir)
    failed = False
    for name in FORMATS:
        loader = name.removesuffix("_utf16")
        loaded, counts = loaders.load_with_repairs(
            loader, data_dir=out_dir / name, cache_dir=cache_dir, **OPTIONS.get(name, {})
        )
        for split, docs in documents.items():
            rows = loaded[split]
            names = rows.features["ner_tags"].feature.names
            back = [
                (tokens, [names[t] for t in tags])
                for tokens, tags in zip(rows["tokens"], rows["ner_tags"], strict=True)
            ]
            mismatches = sum(a != b for a, b in zip(docs, back, strict=False)) + abs(len(docs) - len(back))
            same_order = names == conll[split].features["ner_tags"].feature.names
            failed |= bool(mismatches) or not same_order
            repairs = {key: n for key, n in counts.get(split, {}).items() if n}
            fields = {
                "format": name,
                "split": split,
                "documents": len(back),
                "tokens": sum(len(tokens) for tokens, _ in back),
                "entities": sum(tag.startswith("B-") for _, tags in back for tag in tags),
                "mismatches": mismatches,
                "label_order_same": same_order,
            }
            print(result_line("wnut_spans_roundtrip", fields | repairs), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
