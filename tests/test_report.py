"""`python -m commands.report`: the numbers checked against the hand counts in samples/README.md, under the default
(embedded) all-MiniLM-L6-v2 tokenizer, and every plot a readable PNG."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, Features, List, Value
from PIL import Image

from commands.report import compute_report, label_counts, main, summary_lines, token_lengths, write_report
from conftest import SAMPLES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.width > 100 and image.height > 100


def by_split(report) -> dict:
    return {stats.split: stats for stats in report.splits}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("datasets_cache"))


def test_imdb_counts_lengths_and_fixes(cache):
    splits = by_split(compute_report("imdb", SAMPLES / "imdb", cache_dir=cache))

    assert {name: s.counts for name, s in splits.items()} == {
        "train": {"neg": 12, "pos": 12},
        "unsupervised": {"unlabelled": 3},
        "test": {"neg": 8, "pos": 8},
    }
    assert [len(s.lengths) for s in splits.values()] == [24, 3, 16]
    # More than 256 tokens: train/pos/4_10.txt and train/neg/4_1.txt; test/neg/2_2.txt.
    assert [s.longer_than_max for s in splits.values()] == [2, 0, 1]
    # BOM: train/neg/9_2.txt; CRLF: train/pos/9_9.txt.
    assert splits["train"].loader == {"bom_files": 1, "crlf_files": 1, "skipped_files": 0, "nested_files": 0}
    assert splits["test"].loader == {"bom_files": 0, "crlf_files": 0, "skipped_files": 0, "nested_files": 0}


def test_wnut17_counts_lengths_and_separators(cache):
    report = compute_report("wnut17", SAMPLES / "wnut17", cache_dir=cache)
    splits = by_split(report)

    assert report.max_seq_length == 128
    assert splits["train"].counts == {
        "corporation": 6,
        "creative-work": 7,
        "group": 5,
        "location": 10,
        "person": 7,
        "product": 6,
    }
    assert splits["validation"].counts == dict.fromkeys(
        ["corporation", "location", "product"], 2
    ) | dict.fromkeys(["creative-work", "group", "person"], 1)
    assert sum(splits["test"].counts.values()) == 8
    assert [s.examples for s in splits.values()] == [18, 6, 6]
    # Only the 10th train document (213 words) is longer than 128 sub-tokens.
    assert [s.longer_than_max for s in splits.values()] == [1, 0, 0]
    assert [s.loader["whitespace_separators"] for s in splits.values()] == [10, 0, 0]


def test_squad_counts_contexts_and_windows(cache):
    splits = by_split(compute_report("squad_v2", SAMPLES / "squad", cache_dir=cache))

    assert splits["train"].counts == {"answerable": 21, "unanswerable": 10}
    assert splits["validation"].counts == {"answerable": 9, "unanswerable": 5}
    # Lengths are per distinct context: 7 paragraphs in train, 3 in dev; one long one in each.
    assert [len(s.lengths) for s in splits.values()] == [7, 3]
    assert [s.longer_than_max for s in splits.values()] == [1, 1]
    # The 5 questions on each long paragraph (Lake_Orvanne 0, Velmora 0) need more than one window.
    for stats, questions in [(splits["train"], 31), (splits["validation"], 14)]:
        assert sum(stats.windows.values()) == questions
        assert stats.windows[1] == questions - 5
        assert max(stats.windows) > 1
    assert splits["train"].loader == {"bom_files": 0, "crlf_files": 0, "repaired_answer_starts": 0}


def test_squad_repairs_and_bom_are_counted(tmp_path, cache):
    article = {
        "title": "T",
        "paragraphs": [
            {
                "context": "John Smith went to London.",
                "qas": [
                    {"id": "a", "question": "who?", "answers": [{"text": "John Smith", "answer_start": 1}]},
                    {"id": "b", "question": "where?", "answers": [{"text": "London", "answer_start": 19}]},
                    {"id": "c", "question": "when?", "answers": [], "is_impossible": True},
                ],
            }
        ],
    }
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"data": [article]}).encode())

    stats = compute_report("squad_v2", data, cache_dir=cache).splits[0]

    assert stats.counts == {"answerable": 2, "unanswerable": 1}
    assert stats.loader == {"bom_files": 1, "crlf_files": 0, "repaired_answer_starts": 1}


def test_text_folder_files_the_loader_skips_are_counted(tmp_path, cache):
    for label in ("neg", "pos"):
        (tmp_path / "train" / label).mkdir(parents=True)
        (tmp_path / "train" / label / "0_1.txt").write_text("a fine film", encoding="utf-8")
    (tmp_path / "train" / "pos" / "._0_1.txt").write_bytes(b"\x00\x05mac")
    (tmp_path / "train" / "pos" / "notes.md").write_text("not a review", encoding="utf-8")

    stats = compute_report("imdb", tmp_path, cache_dir=cache).splits[0]

    assert stats.loader == {"bom_files": 0, "crlf_files": 0, "skipped_files": 2, "nested_files": 0}


def test_summary_json_plots_and_printed_lines_come_from_one_computation(tmp_path, cache):
    report = compute_report("squad_v2", SAMPLES / "squad", cache_dir=cache)
    written = write_report(report, tmp_path)

    assert [p.name for p in written] == ["summary.json", "counts.png", "lengths.png", "windows.png"]
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(
        json.dumps(dataclasses.asdict(report))
    )
    for path in written[1:]:
        assert_png(path)
    text = "\n".join(summary_lines(report))
    assert "31 questions; questions: answerable=21, unanswerable=10" in text
    assert "longer than 384: 1 of 7 (14.3%)" in text


def test_cli_prints_the_summary_and_writes_the_plots(tmp_path, cache, capsys):
    out = tmp_path / "report"
    argv = [
        "wnut17",
        "--data_dir",
        str(SAMPLES / "wnut17"),
        "--out",
        str(out),
        "--cache_dir",
        cache,
    ]

    assert main(argv) == 0

    printed = capsys.readouterr().out
    assert "train: 18 documents; entities per type: corporation=6, creative-work=7" in printed
    assert "whitespace-only document separators read as blank lines: 10" in printed
    assert "longer than 128: 1 of 18 (5.6%)" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert [s["examples"] for s in summary["splits"]] == [18, 6, 6]
    for name in ("counts.png", "lengths.png"):
        assert_png(out / name)


def test_cli_reports_bad_input_as_an_error(tmp_path, cache, capsys):
    (tmp_path / "train.conll").write_text(
        textwrap.dedent("""\
        word\tO
        broken line without a tag
        """),
        encoding="utf-8",
    )

    argv = [
        "conll",
        "--data_dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "r"),
        "--cache_dir",
        cache,
    ]
    assert main(argv) == 2

    assert "line 2" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_multi_label_counts_each_label_of_an_example_and_pairs_count_as_one_input(tiny_tokenizer):
    features = Features(
        {
            "text": Value("string"),
            "text_pair": Value("string"),
            "labels": List(ClassLabel(names=["action", "comedy", "drama"])),
        }
    )
    rows = Dataset.from_dict(
        {"text": ["the movie", "good"], "text_pair": ["a film", "bad"], "labels": [[0, 2], [2]]},
        features=features,
    )
    assert label_counts(rows) == {"action": 1, "comedy": 0, "drama": 2}
    # [CLS] the movie [SEP] a film [SEP]; [CLS] good [SEP] bad [SEP].
    assert token_lengths(rows, tiny_tokenizer) == [7, 5]
