"""The output directory is a folder of the run's own: refuse one that would mix runs, clear one on request."""

from __future__ import annotations

import shutil
from pathlib import Path

from .checkpoints import CHECKPOINTS, checkpoint_to_resume, complete_checkpoints
from .config import TrainingConfig

EARLIER_OUTPUTS = (
    "training_args.json", "README.md", "*_results.json", "*_predictions.jsonl", "*predictions.json",
    "*null_odds.json", "*_analysis.json", "*_confusion_matrix.json", "*_confusion_matrix.png", "*_per_type.png",
    "*_entity_confusions.json", "*_entity_confusions.md", "*_qa_breakdown.json", "*_qa_breakdown.png",
    "*_calibration.json", "*_reliability.png",
    "config.json", "generation_config.json", "model.safetensors", "model-*.safetensors",
    "model.safetensors.index.json", "pytorch_model*.bin", "model.keras", "label_names.json", "tokenizer*",
    "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model",
    "sentencepiece.bpe.model",
)  # fmt: skip
"""What a run of either framework writes at the top of its output directory: a folder holding any of these holds an
earlier run's outputs, and `--overwrite_output_dir` removes exactly these (plus checkpoints, tracker logs and
half-written files), never anything else the folder holds."""


PARTIAL_WRITES = (".*.partial", ".partial-*")


def check_output_dir(config: TrainingConfig) -> None:
    """The output directory must be a folder of its own: not a file, not where the data or the model is read from,
    and not an earlier run's outputs unless the user says to replace them (or continues that run)."""
    check_output_dir_location(config)
    check_output_dir_reuse(config)


def check_output_dir_location(config: TrainingConfig) -> None:
    output_dir = Path(config.output_dir)
    for folder in (output_dir, *output_dir.parents):
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"--output_dir {output_dir}: {folder} is a file, not a folder")
    resolved = output_dir.resolve()
    if config.data_dir and Path(config.data_dir).is_dir():
        data_dir = Path(config.data_dir).resolve()
        if resolved == data_dir or data_dir in resolved.parents:
            raise ValueError(
                f"--output_dir {output_dir} is inside --data_dir {config.data_dir}: its files could be read as "
                "data; write them elsewhere"
            )
    files = {"data_dir": config.data_dir, "train_file": config.train_file}
    files |= {"validation_file": config.validation_file, "test_file": config.test_file}
    for flag, path in files.items():
        if path and Path(path).is_file() and Path(path).resolve().parent == resolved:
            raise ValueError(
                f"--output_dir {output_dir} is the folder of --{flag} {path}: outputs there could replace data "
                "files; write them elsewhere"
            )
    if Path(config.model).is_dir() and Path(config.model).resolve() == resolved:
        raise ValueError(
            f"--output_dir {output_dir} is the --model folder: write this run's outputs to another folder"
        )


def check_output_dir_reuse(config: TrainingConfig) -> None:
    output_dir = Path(config.output_dir)
    resolved = output_dir.resolve()
    earlier = earlier_outputs(output_dir)
    checkpoint = checkpoint_to_resume(config)
    continues = checkpoint is not None and (resolved / CHECKPOINTS) in checkpoint.resolve().parents
    if earlier and not config.overwrite_output_dir and not continues:
        shown = ", ".join(path.name for path in earlier[:3]) + (", ..." if len(earlier) > 3 else "")
        raise ValueError(
            f"--output_dir {output_dir} holds an earlier run's outputs ({shown}): pass --overwrite_output_dir to "
            "replace them, --resume_from_checkpoint to continue that run, or choose another --output_dir"
        )


def earlier_outputs(output_dir: Path) -> list[Path]:
    """Files of an earlier run, and its checkpoints if one is complete (a run killed in its first save left none)."""
    found = sorted({path for pattern in EARLIER_OUTPUTS for path in output_dir.glob(pattern)})
    return found + ([output_dir / CHECKPOINTS] if complete_checkpoints(output_dir) else [])


def tracker_dir(config: TrainingConfig) -> Path:
    """Where a run's tracker logs go: Accelerate's TensorBoard tracker writes to `<project_dir>/<run name>`, the
    run being named `train-<task>` by train.py, and the Keras path's TensorBoard callback writes to the same folder."""
    return Path(config.output_dir) / f"train-{config.task}"


def clear_earlier_outputs(config: TrainingConfig) -> None:
    """For --overwrite_output_dir: no stale result, prediction, figure or checkpoint may outlive the run it came
    from and reach the new run's model card or Hub upload."""
    output_dir = Path(config.output_dir)
    leftovers = [*earlier_outputs(output_dir), output_dir / CHECKPOINTS, tracker_dir(config)]
    leftovers += [path for pattern in PARTIAL_WRITES for path in output_dir.glob(pattern)]
    for path in leftovers:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
