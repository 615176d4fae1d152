"""Fine-tune a transformer on raw files: load, process, train, evaluate, save.

    accelerate launch train.py --task imdb --data_dir aclImdb
    python train.py --task wnut17 --data_dir wnut17/ --num_train_epochs 3

The loop is task-agnostic (see `processing/tasks.py`): the task supplies model class, features, collator and
scoring. Device placement, mixed precision and multi-process runs come from Accelerate's own config and flags. The
run layer (`runner/`) checks the flags, loads the data, and finishes every run the same way for both frameworks.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import loaders
from runner import torch_loop
from runner.checks import check_config
from runner.config import TrainingConfig, parse_args, tracked_settings
from runner.finish import finish


def train(config: TrainingConfig) -> dict[str, dict[str, Any]]:
    """The whole job: check the flags, set up, train (unless --do_train false), score every evaluated split, save."""
    check_config(config)
    if config.framework == "tensorflow":
        from runner import keras_loop  # imports TensorFlow, which the PyTorch path never needs

        run = keras_loop.setup(config)
        started = time.perf_counter()
        try:
            if run.trained and not keras_loop.train_loop(run):
                return {}  # SIGTERM: stopped after saving a checkpoint
            return finish(run, time.perf_counter() - started)
        finally:
            run.tracking.finish()
    accelerator = torch_loop.make_accelerator(config, trackers(config.report_to))
    run = torch_loop.setup(config, accelerator)
    if accelerator.log_with:
        accelerator.init_trackers(f"train-{config.task}", config=tracked_settings(config))
    started = time.perf_counter()
    if run.trained and not torch_loop.train_loop(run):
        accelerator.end_training()
        return {}
    results = finish(run, time.perf_counter() - started)
    accelerator.end_training()
    return results


def trackers(report_to: str) -> str | list[str] | None:
    """`auto` is TensorBoard when it is installed, else no tracker; any other value is Accelerate's own name."""
    if report_to == "none":
        return None
    if report_to == "auto":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            return None
        return "tensorboard"
    return report_to


USER_ERRORS = (loaders.DataFormatError, OSError, ValueError, FloatingPointError)
"""Bad input, a missing file, a Hub refusal, a diverging run: one line for the user, no traceback."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        train(parse_args(argv))
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
