"""The QA no-answer threshold tuned on a small validation split, raw or shrunk toward 0, against no tuning at all,
scored on articles the tuning never saw.

    python benchmarks/squad_null_threshold.py --model outputs/squad16 --data_dir /tmp/squad16

`--data_dir` is the folder `squad_split_by_article.py` wrote and `--model` the `train.py --task squad_v2` run on its
train file. Both held-out files (dev-v2.0.json and test-v2.0.json, articles the model never trained on) are answered
once through `python -m commands.predict` with an infinite threshold, which gives every question its best span and
its null odds. Any threshold's answers follow from those two (abstain when the null odds exceed it), so the
script then re-partitions the held-out articles: every way of taking `--validation_articles` of them for tuning and
the rest for scoring (the run's own partition among them). For each partition it prints the validation best-F1
threshold, that threshold shrunk as `train.py` does (`shrunk_null_threshold`), and the scored articles' F1 at 0, at
the raw threshold, at the shrunk one, and at their own best (which no tuning can know). A summary line counts
the partitions where the shrunk threshold scores at least as well as 0, and gives the mean F1 of each choice;
`--priors` adds one line per other prior (mean F1, partitions at least as good as 0, the worst difference from 0).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import mean
from typing import Any

from _bench import REPO_ROOT, ensure_repo_on_path, quiet_libraries, result_line

HELD_OUT = {"validation": "dev-v2.0.json", "test": "test-v2.0.json"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a train.py --task squad_v2 output directory")
    parser.add_argument("--data_dir", required=True, help="the folder squad_split_by_article.py wrote")
    parser.add_argument(
        "--validation_articles", type=int, default=2, help="articles to tune on per partition"
    )
    parser.add_argument(
        "--priors",
        default="",
        help="comma-separated priors to compare with train.py's (NULL_THRESHOLD_PRIOR): one line each",
    )
    return parser.parse_args(argv)


def best_spans(model: str, data_file: Path, work: Path) -> dict[str, dict[str, Any]]:
    """Every question's best span and null odds, by id: predict at an infinite threshold answers all it can."""
    out = work / f"{data_file.stem}.jsonl"
    command = [
        sys.executable,
        "-m",
        "commands.predict",
        "--model",
        model,
        "--input",
        str(data_file),
        "--out",
        str(out),
        "--null_score_diff_threshold",
        "inf",
    ]
    subprocess.run(command, check=True, cwd=REPO_ROOT, stdout=sys.stderr)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return {row["id"]: row for row in rows}


def held_out_questions(args: argparse.Namespace) -> Any:
    """The held-out files' questions (id, title, answers), as the squad_v2 loader reads them for training."""
    ensure_repo_on_path()
    quiet_libraries()
    import datasets

    import loaders

    parts = [
        loaders.load_dataset("squad_v2", data_dir=args.data_dir, split=split).select_columns(
            ["id", "title", "answers"]
        )
        for split in HELD_OUT
    ]
    return datasets.concatenate_datasets(parts)


def f1_at(questions: Any, spans: dict[str, dict[str, Any]], threshold: float) -> dict[str, float]:
    """The official figures when questions whose null odds exceed `threshold` are left unanswered."""
    from processing.squad_metric import evaluate_examples

    ids = questions["id"]
    predictions = {qid: spans[qid]["answer"] for qid in ids}
    null_odds = {qid: spans[qid]["null_odds"] for qid in ids}
    return dict(evaluate_examples(questions, predictions, null_odds, na_prob_thresh=threshold))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    questions = held_out_questions(args)
    with tempfile.TemporaryDirectory(prefix="squad-threshold-") as folder:
        spans: dict[str, dict[str, Any]] = {}
        for name in HELD_OUT.values():
            spans.update(best_spans(args.model, Path(args.data_dir) / name, Path(folder)))
    from processing.question_answering import shrunk_null_threshold

    titles = sorted(set(questions["title"]))
    rows, partitions = [], []
    for tuned_on in itertools.combinations(titles, args.validation_articles):
        validation = questions.filter(lambda row, chosen=set(tuned_on): row["title"] in chosen)
        scored = questions.filter(lambda row, chosen=set(tuned_on): row["title"] not in chosen)
        raw = f1_at(validation, spans, 0.0)["best_f1_thresh"]
        shrunk = shrunk_null_threshold(raw, len(validation))
        figures = {
            choice: f1_at(scored, spans, t)["f1"]
            for choice, t in (("zero", 0.0), ("raw", raw), ("shrunk", shrunk))
        }
        figures["own_best"] = f1_at(scored, spans, 0.0)["best_f1"]
        rows.append(figures)
        partitions.append((raw, len(validation), scored, figures["zero"]))
        print(
            result_line(
                "partition",
                {
                    "tuned_on": "+".join(tuned_on),
                    "questions": len(validation),
                    "raw_threshold": raw,
                    "shrunk_threshold": shrunk,
                    "scored_questions": len(scored),
                    **{f"f1_{choice}": value for choice, value in figures.items()},
                },
            )
        )
    print(
        result_line(
            "summary",
            {
                "partitions": len(rows),
                "shrunk_at_least_zero": sum(row["shrunk"] >= row["zero"] for row in rows),
                "raw_at_least_zero": sum(row["raw"] >= row["zero"] for row in rows),
                **{f"mean_f1_{choice}": mean(row[choice] for row in rows) for choice in rows[0]},
            },
        )
    )
    for prior in [int(value) for value in args.priors.split(",") if value]:
        f1 = [
            f1_at(scored, spans, shrunk_null_threshold(raw, n, prior))["f1"]
            for raw, n, scored, _ in partitions
        ]
        zero = [row[3] for row in partitions]
        fields = {
            "prior": prior,
            "mean_f1": mean(f1),
            "at_least_zero": sum(a >= b for a, b in zip(f1, zero, strict=True)),
        }
        print(
            result_line(
                "prior", {**fields, "worst_vs_zero": min(a - b for a, b in zip(f1, zero, strict=True))}
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
