"""Long reviews read whole or cut short: one trained model scored on the held-out reviews longer than N tokens,
truncated at `--max_seq_length` versus cut into windows of that length and aggregated per review.

    python benchmarks/long_reviews.py --data ../shared/data/imdb/aclImdb-train.tar.gz --model outputs/imdb \\
        --min_tokens 256 --max_seq_length 256

The held-out reviews are the validation split `train.py --task imdb --data_dir ARCHIVE` held out for that model
(its seed and `--validation_size`, read from the model folder's `training_args.json`), so none was trained on.
Both readings run the same model on the same reviews through the task's own `prepare` and `score`: truncation is
`--long_documents truncate`, windows are `--long_documents windows` with `--doc_stride` and
`--window_aggregation`. One result line per reading (accuracy, macro F1, reviews, windows), then the difference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _bench import ensure_repo_on_path, quiet_libraries, result_line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="aclImdb folder or archive the model was trained from")
    parser.add_argument("--model", required=True, help="a train.py --task imdb output directory")
    parser.add_argument(
        "--min_tokens", type=int, default=256, help="score reviews longer than this (sub-tokens)"
    )
    parser.add_argument("--max_seq_length", type=int, default=256, help="truncation length and window length")
    parser.add_argument("--doc_stride", type=int, default=128, help="overlap between windows, in tokens")
    parser.add_argument("--window_aggregation", choices=["mean", "max"], default="mean")
    parser.add_argument("--batch_size", type=int, default=32, help="windows per forward pass")
    parser.add_argument("--device", help="default: cuda when available, else cpu")
    return parser.parse_args(argv)


def held_out_reviews(data: str, model: Path) -> Any:
    """The validation split the model's run held out of the train split, loaded as `train.py` loads it."""
    ensure_repo_on_path()
    from processing.registry import TASKS
    from runner.config import TrainingConfig
    from runner.data import load_raw

    trained = json.loads((model / "training_args.json").read_text())
    config = TrainingConfig(
        task="imdb",
        data_dir=data,
        validation_size=trained.get("validation_size", 0.1),
        seed=trained.get("seed", 42),
        output_dir=str(model),
    )
    return load_raw(config, TASKS["imdb"].loader, TASKS["imdb"].task)["validation"]


def longer_than(reviews: Any, tokenizer: Any, min_tokens: int) -> Any:
    lengths = [len(ids) for ids in tokenizer(list(reviews["text"]), add_special_tokens=False)["input_ids"]]
    return reviews.select([i for i, length in enumerate(lengths) if length > min_tokens])


def logits_of(model: Any, tokenizer: Any, features: Any, batch_size: int, device: str) -> Any:
    """The model's logits for every feature, in feature order, batches padded to their longest member."""
    import numpy as np
    import torch
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding

    from processing.tasks import model_inputs

    loader = DataLoader(
        features.with_format("torch", columns=model_inputs(model, features, with_labels=False)),
        batch_size=batch_size,
        collate_fn=DataCollatorWithPadding(tokenizer),
    )
    logits = []
    with torch.no_grad():
        for batch in loader:
            logits.append(model(**batch.to(device)).logits.float().cpu().numpy())
    return np.concatenate(logits)


def score(reading: str, reviews: Any, model: Any, tokenizer: Any, args: argparse.Namespace) -> dict[str, Any]:
    from processing import classification

    config = SimpleNamespace(
        max_seq_length=args.max_seq_length,
        doc_stride=args.doc_stride,
        long_documents=reading,
        window_aggregation=args.window_aggregation,
    )
    features = classification.prepare(reviews, tokenizer, config, training=False)
    logits = logits_of(model, tokenizer, features, args.batch_size, args.device)
    names = reviews.features["label"].names
    metrics = classification.score(reviews, features, {"logits": logits}, names, config).metrics
    return {
        "reading": reading,
        "accuracy": metrics["accuracy"],
        "f1": metrics["f1"],
        "reviews": len(reviews),
        "windows": metrics.get("num_windows", len(reviews)),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_libraries()
    ensure_repo_on_path()
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from processing import classification
    from processing.models import load_pretrained

    model_dir = Path(args.model)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    classification.check_stride(tokenizer, args.max_seq_length, args.doc_stride)
    model = load_pretrained(AutoModelForSequenceClassification, str(model_dir)).to(args.device).eval()
    held_out = held_out_reviews(args.data, model_dir)
    reviews = longer_than(held_out, tokenizer, args.min_tokens)
    if len(reviews) == 0:
        print(f"error: none of the {len(held_out)} held-out reviews is longer than {args.min_tokens} tokens")
        return 2
    common = {"min_tokens": args.min_tokens, "max_seq_length": args.max_seq_length, "held_out": len(held_out)}
    results = {}
    for reading in classification.LONG_DOCUMENTS:
        results[reading] = score(reading, reviews, model, tokenizer, args)
        extra = {"doc_stride": args.doc_stride, "aggregation": args.window_aggregation}
        print(
            result_line(
                "long_reviews", {**results[reading], **common, **(extra if reading == "windows" else {})}
            )
        )
    gain = results["windows"]["accuracy"] - results["truncate"]["accuracy"]
    print(result_line("difference", {"accuracy_windows_minus_truncate": gain}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
