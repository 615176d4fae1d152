"""Split one SQuAD-format file into train/dev/test files by article, so no context is seen in two splits.

    python benchmarks/squad_split_by_article.py ../shared/data/squad/squad2-dev-16-articles.json /tmp/squad16 \\
        --validation_articles 2 --test_articles 3 --seed 0

Writes train-v2.0.json, dev-v2.0.json and test-v2.0.json (the names the `squad_v2` loader maps to splits) and prints
one line per split: articles, questions, unanswerable.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--validation_articles", type=int, default=2)
    parser.add_argument("--test_articles", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = json.loads(args.input.read_text(encoding="utf-8-sig"))
    articles = list(data["data"])
    random.Random(args.seed).shuffle(articles)
    test = articles[: args.test_articles]
    validation = articles[args.test_articles : args.test_articles + args.validation_articles]
    train = articles[args.test_articles + args.validation_articles :]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train), ("dev", validation), ("test", test)):
        (args.output_dir / f"{name}-v2.0.json").write_text(
            json.dumps({"version": data.get("version"), "data": part})
        )
        questions = [qa for article in part for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
        unanswerable = sum(bool(qa.get("is_impossible")) or not qa.get("answers") for qa in questions)
        titles = ", ".join(article["title"] for article in part)
        print(
            f"{name}: {len(part)} articles, {len(questions)} questions, {unanswerable} unanswerable ({titles})"
        )


if __name__ == "__main__":
    main()
