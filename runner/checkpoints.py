"""Checkpoints that say which run they belong to and where in the data they were taken, written atomically."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
from accelerate import Accelerator

from processing.outputs import write_json
from processing.tasks import Task

from .best_model import chosen_metric
from .config import TrainingConfig

CHECKPOINTS = "checkpoints"


STATE_FILE = "trainer_state.json"
PROCESS_STATE_FILE = "process_{}_state.json"
"""What one process alone knows, written by that process (its position in its own part of a stream)."""

SIGTERM_LINE = (
    "SIGTERM: saved a checkpoint at step {} and stopped; continue with --resume_from_checkpoint latest"
)
"""What either loop prints when SIGTERM stopped it."""

IDENTITY_DEFAULTS = {"streaming": False, "framework": "pytorch"}
"""Identity keys added after checkpoints were first written: a checkpoint without one was written by a run with
this value."""
UNRECORDED_BEFORE = ("global_batch_size", "gradient_accumulation_steps")
"""Identity keys added later still, with no value to assume: a checkpoint written without them is not checked on
them."""


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoints oldest first; one still being written has a `.partial` name and is not among them."""
    steps = [(int(p.name[5:]), p) for p in (output_dir / CHECKPOINTS).glob("step_*") if p.name[5:].isdigit()]
    return [path for _, path in sorted(steps)]


def latest_checkpoint(output_dir: Path) -> Path | None:
    checkpoints = complete_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def checkpoint_to_resume(config: TrainingConfig) -> Path | None:
    """The checkpoint --resume_from_checkpoint names; None when not resuming, or 'latest' finds none."""
    if not config.resume_from_checkpoint:
        return None
    if config.resume_from_checkpoint == "latest":
        return latest_checkpoint(Path(config.output_dir))
    return Path(config.resume_from_checkpoint)


def checkpoint_folder(config: TrainingConfig, step: int) -> Path:
    return Path(config.output_dir) / CHECKPOINTS / f"step_{step}"


def save_checkpoint(
    accelerator: Accelerator,
    config: TrainingConfig,
    state: dict[str, Any],
    keep: int | None = None,
    process_state: dict[str, Any] | None = None,
) -> None:
    """`save_state` into a temporary folder renamed when complete, so a kill mid-save never leaves a torn one.

    `state` is the main process's; `process_state`, if given, is each process's own, written by it beside its RNG
    state (see `read_process_state`). Only the newest `--save_total_limit` complete checkpoints are kept, and the
    one of step `keep` (the best model, loaded back at the end) beside them.
    """
    final = checkpoint_folder(config, state["completed_steps"])
    if final.exists():
        return  # an epoch end can fall on a step that was just saved
    partial = final.with_name(final.name + ".partial")
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    if process_state is not None:
        write_json(partial / PROCESS_STATE_FILE.format(accelerator.process_index), process_state, indent=None)
    accelerator.wait_for_everyone()  # every process's RNG state is in the folder before it is renamed
    if accelerator.is_main_process:
        publish_checkpoint(config, partial, state, keep)
    accelerator.wait_for_everyone()


def write_checkpoint(config: TrainingConfig, state: dict[str, Any], write: Callable[[Path], None]) -> None:
    """`save_checkpoint` for a run of one process that saves its own state: `write` fills the temporary folder.

    Nothing is written when a checkpoint of that step is already there (an epoch end can fall on a step just saved).
    """
    final = checkpoint_folder(config, state["completed_steps"])
    if final.exists():
        return
    partial = final.with_name(final.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    write(partial)
    publish_checkpoint(config, partial, state, None)


def publish_checkpoint(
    config: TrainingConfig, partial: Path, state: dict[str, Any], keep: int | None
) -> None:
    """The state file last, then the rename that makes the checkpoint complete; then `--save_total_limit`'s
    pruning, which spares the checkpoint of step `keep`."""
    write_json(partial / STATE_FILE, state, indent=None)
    partial.rename(partial.with_name(partial.name.removesuffix(".partial")))
    if config.save_total_limit:
        kept = checkpoint_folder(config, keep) if keep is not None else None
        for old in complete_checkpoints(Path(config.output_dir))[: -config.save_total_limit]:
            if old != kept:
                shutil.rmtree(old)


def read_process_state(checkpoint: Path, process_index: int, num_processes: int) -> dict[str, Any]:
    """This process's own state in `checkpoint`; a checkpoint of another number of processes holds other parts."""
    written = len(list(checkpoint.glob(PROCESS_STATE_FILE.format("*"))))
    path = checkpoint / PROCESS_STATE_FILE.format(process_index)
    if written != num_processes or not path.is_file():
        raise ValueError(
            f"{checkpoint} holds the stream positions of {written} processes, and {num_processes} resume it: resume "
            "a --streaming run with --streaming and the number of processes it was started with"
        )
    return json.loads(path.read_text())


def data_fingerprint(split: datasets.Dataset) -> str:
    """A hash of the training examples themselves, in training order: the same data copied elsewhere matches, a
    changed example, another selection or another held-out validation split does not. Batches are rebuilt as one
    chunk each so the hash does not depend on how the Arrow files happen to be chunked."""
    digest = hashlib.sha256(repr(split.features).encode())
    for table in split.with_format("arrow").iter(batch_size=10_000):
        for batch in table.combine_chunks().to_batches():
            digest.update(batch.serialize())
    return digest.hexdigest()[:16]


def run_identity(
    config: TrainingConfig,
    task: Task,
    train_split: datasets.Dataset,
    label_names: Any,
    global_batch_size: int,
) -> dict:
    """What a checkpoint must share with the run that resumes it, recorded in its state file.

    `global_batch_size` is the examples one optimizer step's batch takes over every process or device: the position
    in the data is counted in such batches, and the steps in groups of `--gradient_accumulation_steps` of them, so a
    resume with either changed would skip or repeat examples.
    """
    model = str(Path(config.model).resolve()) if Path(config.model).is_dir() else config.model
    metric = chosen_metric(config, task)
    return {
        "task": task.name,
        "model": model,
        "data": data_fingerprint(train_split),
        "label_names": label_names,
        "metric_for_best_model": metric.name if metric else None,  # the best so far was chosen by it
        "long_documents": config.long_documents,  # windows change what a step trains on
        "streaming": config.streaming,  # a stream's position is not a map-style run's
        "framework": config.framework,  # Accelerate's state folder and Keras's weights file are not interchangeable
        "global_batch_size": global_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
    }


def check_same_run(checkpoint: Path, identity: dict[str, Any]) -> None:
    """A checkpoint of another task, model or data would resume silently into nonsense."""
    if not (checkpoint / STATE_FILE).is_file():
        raise FileNotFoundError(f"{checkpoint} is not a complete checkpoint (no {STATE_FILE})")
    recorded = json.loads((checkpoint / STATE_FILE).read_text())
    names = {"task": "task", "model": "model", "data": "training data", "label_names": "labels"}
    names["metric_for_best_model"] = "metric for the best model"
    names["long_documents"] = "--long_documents"
    names["streaming"] = "--streaming"
    names["framework"] = "--framework"
    names["global_batch_size"] = "global batch size"
    names["gradient_accumulation_steps"] = "--gradient_accumulation_steps"
    recorded = {**IDENTITY_DEFAULTS, **recorded}
    differences = [
        f"{names[key]} {recorded[key]!r} there, {value!r} here"
        if key in recorded
        else f"{names[key]} not recorded"
        for key, value in identity.items()
        if recorded.get(key) != value and (key in recorded or key not in UNRECORDED_BEFORE)
    ]
    if differences:
        raise ValueError(
            f"{checkpoint} is another run's checkpoint: {'; '.join(differences)}. Resume with the same task, "
            "model, data, --metric_for_best_model, --long_documents, --streaming, --framework, global batch size "
            "(--per_device_train_batch_size times the processes or devices) and --gradient_accumulation_steps, "
            "or start a new --output_dir"
        )
