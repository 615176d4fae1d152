"""Peak memory of QA predict on one very long context: windows fed a batch at a time versus all in one pass.

    python benchmarks/qa_predict_memory.py --context_kb 256 --batch_sizes 32,100000

The embedded model with a seeded random QA head is saved to a temporary folder; a SQuAD file holds two questions
on one context of `--context_kb` KB built by repeating the sample contexts (samples/squad). Each `--batch_sizes`
value runs `python -m commands.predict` in a fresh process (`--batch_size` counts windows per forward pass, so a
value above the number of windows is the old behaviour: every window of the batch's questions in one pass). One
line per run: windows, peak RSS in MB, wall seconds; and whether the answers of all runs are identical.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _bench import (
    REPO_ROOT,
    ensure_repo_on_path,
    peak_rss_mb,
    quiet_libraries,
    result_line,
    run_child,
    write_result,
)

ensure_repo_on_path()


def make_inputs(folder: Path, context_kb: int) -> tuple[Path, Path]:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from processing.models import DEFAULT_MODEL, resolve_model

    base = resolve_model(DEFAULT_MODEL)
    torch.manual_seed(0)
    model_dir = folder / "model"
    AutoModelForQuestionAnswering.from_pretrained(base).save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(base).save_pretrained(model_dir)
    samples = json.loads((REPO_ROOT / "samples" / "squad" / "dev-v2.0.json").read_text())
    texts = [p["context"] for article in samples["data"] for p in article["paragraphs"]]
    context = ""
    while len(context.encode()) < context_kb * 1024:
        context += " ".join(texts) + " "
    questions = [{"id": "q1", "question": "Who built the bridge?"}, {"id": "q2", "question": "When was it?"}]
    data = {
        "version": "v2.0",
        "data": [{"title": "long", "paragraphs": [{"context": context, "qas": questions}]}],
    }
    input_file = folder / "long.json"
    input_file.write_text(json.dumps(data))
    return model_dir, input_file


def child(args: argparse.Namespace) -> None:
    quiet_libraries()
    from commands.predict import main

    started = time.perf_counter()
    code = main(
        ["--model", args.model, "--input", args.input, "--out", args.out, "--batch_size", str(args.batch)]
    )
    write_result(
        args._result, {"code": code, "wall_s": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}
    )


def windows(model_dir: Path, input_file: Path) -> int:
    from transformers import AutoTokenizer

    from processing.question_answering import DOC_STRIDE, MAX_SEQ_LENGTH, prepare_eval_features

    data = json.loads(input_file.read_text())
    paragraph = data["data"][0]["paragraphs"][0]
    examples = {
        "id": [q["id"] for q in paragraph["qas"]],
        "question": [q["question"] for q in paragraph["qas"]],
        "context": [paragraph["context"]] * len(paragraph["qas"]),
    }
    features = prepare_eval_features(
        examples, AutoTokenizer.from_pretrained(model_dir), MAX_SEQ_LENGTH, DOC_STRIDE
    )
    return len(features["input_ids"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--context_kb", type=int, default=256)
    parser.add_argument("--batch_sizes", default="32,100000")
    parser.add_argument("--_result", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._result:
        child(args)
        return
    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="qa-predict-memory-") as folder:
        model_dir, input_file = make_inputs(Path(folder), args.context_kb)
        count = windows(model_dir, input_file)
        answers = []
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            out = Path(folder) / f"answers-{batch}.jsonl"
            argv = [
                "--model",
                str(model_dir),
                "--input",
                str(input_file),
                "--out",
                str(out),
                "--batch",
                str(batch),
            ]
            result = run_child(Path(__file__), argv)
            if result["code"] != 0:
                sys.exit(f"predict failed with --batch_size {batch}")
            answers.append(out.read_text())
            fields = {"context_kb": args.context_kb, "windows": count, "batch_size": batch}
            print(
                result_line(
                    "qa_predict_memory", {**fields, **{k: v for k, v in result.items() if k != "code"}}
                )
            )
        print(result_line("qa_predict_memory", {"identical_answers": len(set(answers)) == 1}))


if __name__ == "__main__":
    main()
