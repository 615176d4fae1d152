"""Peak memory of evaluation at two split sizes: each batch reduced as it comes in versus every output gathered first.

    python benchmarks/eval_memory.py --sizes 5000,50000 --tasks wnut17,squad_v2

W-NUT 17: the real dev documents (/work/shared/data/wnut17/emerging.dev.conll, or `--wnut_file`) repeated to
each size. SQuAD 2.0: the questions of /work/shared/data/squad/squad2-dev-16-articles.json (`--squad_file`)
repeated with new ids, so each size is that many examples of real windows at the default 384 tokens and stride 128.
The model is a seeded random 2-layer BERT (`--hidden` wide) with the embedded model's tokenizer: what evaluation
holds depends on the number of windows, tokens and labels, not on the model's depth, and a small model keeps a
50k-example run within minutes on a CPU. Each run is `train.py --do_train false` in a fresh process (its Arrow cache
in a temporary folder): `new` is this code, `gathered` the same run with every output kept whole and reduced once at
the end, as evaluation did before. One line per run: the process's peak RSS, the peak anonymous RSS while
evaluating (heap only, not Arrow pages), the figures scored; then per task the 50k/5k ratio and whether both modes
scored identically.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

from _bench import (
    REPO_ROOT,
    AnonymousMemoryPeak,
    current_rss_mb,
    ensure_repo_on_path,
    peak_rss_mb,
    quiet_libraries,
    result_line,
    run_child,
    write_result,
)

ensure_repo_on_path()

SHARED = REPO_ROOT.parent / "shared" / "data"
METRICS = {
    "wnut17": ("f1", "precision", "recall", "ece"),
    "squad_v2": ("exact", "f1", "HasAns_f1", "abstain_ece"),
}


def make_model(folder: Path, hidden: int) -> Path:
    """The embedded model's tokenizer with a seeded random 2-layer BERT of `hidden` width."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from processing.models import DEFAULT_MODEL, resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(DEFAULT_MODEL))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=512,
    )
    model_dir = folder / "model"
    BertModel(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def wnut_files(source: Path, folder: Path, size: int) -> list[str]:
    """The dev documents as train (for the label set) and, repeated to `size` documents, as validation."""
    documents = [d for d in source.read_text(encoding="utf-8").strip().split("\n\n") if d.strip()]
    repeated = [documents[i % len(documents)] for i in range(size)]
    validation = folder / f"wnut-{size}.conll"
    validation.write_text("\n\n".join(repeated) + "\n", encoding="utf-8")
    return ["--train_file", str(source), "--validation_file", str(validation)]


def squad_files(source: Path, folder: Path, size: int) -> list[str]:
    """The articles' questions repeated with new ids (`<id>-<copy>`) until there are `size`."""
    data = json.loads(source.read_text(encoding="utf-8"))
    paragraphs = [p for article in data["data"] for p in article["paragraphs"]]
    questions = sum(len(p["qas"]) for p in paragraphs)
    copies = -(-size // questions)
    left = size
    out = []
    for copy in range(copies):
        for paragraph in paragraphs:
            qas = [{**q, "id": f"{q['id']}-{copy}"} for q in paragraph["qas"][:left]]
            left -= len(qas)
            if qas:
                out.append({"context": paragraph["context"], "qas": qas})
    validation = folder / f"squad-{size}.json"
    validation.write_text(json.dumps({"version": "v2.0", "data": [{"title": "repeated", "paragraphs": out}]}))
    return ["--train_file", str(source), "--validation_file", str(validation)]


def child(args: argparse.Namespace) -> None:
    """One evaluation; with `--mode gathered`, every output kept whole and reduced once, as before."""
    quiet_libraries()
    from processing.batching import EvaluationOutputs
    from processing.tasks import score_outputs
    from runner import finish, torch_loop
    from runner.config import parse_args

    config = parse_args(args.argv.split("\x1f"))
    run = torch_loop.setup(config)
    if args.mode == "gathered":
        task = run.task
        run.task = dataclasses.replace(
            task,
            score=lambda raw, features, outputs, names, cfg: score_outputs(
                task, raw, features, outputs, names, cfg
            ),
        )
        torch_loop.evaluation_outputs = lambda task, config, features, order: EvaluationOutputs(
            features, order, None
        )
    before = current_rss_mb()
    started = time.perf_counter()
    with AnonymousMemoryPeak() as peak:
        metrics = finish.evaluate(run, config.eval_split)
    write_result(
        args._result,
        {
            "examples": metrics["num_examples"],
            "windows": len(run.eval_features[config.eval_split]),
            "rss_before_eval_mb": before,
            "eval_peak_anon_mb": peak.peak_mb,
            "peak_rss_mb": peak_rss_mb(),
            "eval_s": time.perf_counter() - started,
            **{key: metrics[key] for key in METRICS[config.task]},
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5000,50000")
    parser.add_argument("--tasks", default="wnut17,squad_v2")
    parser.add_argument("--modes", default="new,gathered")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--wnut_file", type=Path, default=SHARED / "wnut17" / "emerging.dev.conll")
    parser.add_argument("--squad_file", type=Path, default=SHARED / "squad" / "squad2-dev-16-articles.json")
    parser.add_argument("--_result", help=argparse.SUPPRESS)
    parser.add_argument("--argv", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._result:
        child(args)
        return
    quiet_libraries()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="eval-memory-") as tmp:
        folder = Path(tmp)
        model_dir = make_model(folder, args.hidden)
        for task in args.tasks.split(","):
            peaks: dict[tuple[str, int], float] = {}
            scores: dict[tuple[str, int], dict] = {}
            for size in sizes:
                files = (
                    wnut_files(args.wnut_file, folder, size)
                    if task == "wnut17"
                    else squad_files(args.squad_file, folder, size)
                )
                for mode in args.modes.split(","):
                    out = folder / f"out-{task}-{size}-{mode}"
                    argv = [
                        "--task", task, *files, "--model", str(model_dir), "--output_dir", str(out),
                        "--do_train", "false", "--per_device_eval_batch_size", str(args.batch_size),
                        "--report_to", "none",
                    ]  # fmt: skip
                    env = {"HF_DATASETS_CACHE": str(folder / f"cache-{task}-{size}-{mode}")}
                    result = run_child(Path(__file__), ["--argv=" + "\x1f".join(argv), "--mode", mode], env)
                    print(result_line("eval_memory", {"task": task, "size": size, "mode": mode, **result}))
                    sys.stdout.flush()
                    peaks[(mode, size)] = result["peak_rss_mb"]
                    scores[(mode, size)] = {k: result[k] for k in METRICS[task]}
            for mode in args.modes.split(","):
                if len(sizes) > 1:
                    ratio = peaks[(mode, sizes[-1])] / peaks[(mode, sizes[0])]
                    print(
                        result_line(
                            "eval_memory_ratio", {"task": task, "mode": mode, "peak_rss_ratio": ratio}
                        )
                    )
            for size in sizes:
                same = len({json.dumps(s, sort_keys=True) for (_, n), s in scores.items() if n == size}) == 1
                print(
                    result_line(
                        "eval_memory_identical", {"task": task, "size": size, "identical_metrics": same}
                    )
                )


if __name__ == "__main__":
    main()
