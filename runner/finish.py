"""The one finishing step of a run, whichever framework trained it.

Score the evaluation split, let the task tune what it tunes on those figures (never on later splits), score the
other splits with those settings, then write the model (the tuned settings in its own `config.json`),
`training_args.json` (the flags as given, and what the run derived from the data), the error analysis and the
model card, and push.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import datasets
import numpy as np
from transformers import AutoConfig, PreTrainedTokenizerBase
from transformers.utils import CONFIG_NAME

from processing import analysis, calibration, keras_folder
from processing.batching import restore_order
from processing.models import save_tokenizer
from processing.outputs import atomic_files_into, write_json
from processing.tasks import Scored, Task

from .config import TrainingConfig
from .hub import push_output_dir, shareable_args, write_model_card

TEMPERATURE = "calibration_temperature"
"""The `TrainingConfig` field, and the saved model's `config.json` attribute, holding a fitted temperature
(`temperature` itself is a generation setting that transformers refuses in a model config)."""


class FrameworkRun(Protocol):
    """What a framework's loop hands the finishing step: the data it evaluated and a way to run and save its model."""

    config: TrainingConfig
    task: Task
    raw: datasets.DatasetDict
    label_names: list[str] | None
    tokenizer: PreTrainedTokenizerBase
    eval_features: dict[str, datasets.Dataset]
    eval_orders: dict[str, np.ndarray | None]
    data_settings: dict[str, Any]
    """What the run derived from its data to train with (class weights), kept beside the flags."""
    training_outcome: dict[str, Any]
    """How training ended when a best model was kept (its step and score, why it stopped); else empty."""

    @property
    def trained(self) -> bool: ...

    @property
    def is_main_process(self) -> bool: ...

    def model_outputs(self, split: str) -> dict[str, np.ndarray]:
        """The model's outputs for every evaluation feature of `split`, in evaluation-batch order."""

    def model_saver(self) -> Callable[[Path], None]:
        """Called on every process (sharded weights are gathered then); the saver runs on the main one only."""

    def fold_temperature(self, model_dir: Path, temperature: float) -> None:
        """Divide the model saved in `model_dir` by the temperature at its classifier layer, so that the saved
        model's own logits are the calibrated ones (see `fold_saved_temperature`)."""

    def log(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def print(self, line: str) -> None: ...


def output_name(config: TrainingConfig, split: str) -> str:
    """Files of the evaluation split are named `eval_*`, those of any other split after the split."""
    return "eval" if split == config.eval_split else split


def evaluate(run: FrameworkRun, split: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score one split and, on the main process, write `<name>_results.json` and its predictions."""
    return evaluate_scored(run, split, settings).metrics


def evaluate_scored(run: FrameworkRun, split: str, settings: dict[str, Any] | None = None) -> Scored:
    """`evaluate`, keeping the predictions in memory for the error analysis."""
    started = time.perf_counter()
    return score_split(run, split, run.model_outputs(split), started, settings)


def score_split(
    run: FrameworkRun,
    split: str,
    outputs: dict[str, np.ndarray],
    started: float,
    settings: dict[str, Any] | None = None,
) -> Scored:
    """The task's scoring of model outputs (in evaluation-batch order), and the files on the main process; the
    metrics returned are those of the results file.

    `settings` (what the task tuned) replace the run's flags in the scoring only: the run config stays as given.
    """
    config = run.config
    if run.eval_orders[split] is not None:
        outputs = {name: restore_order(values, run.eval_orders[split]) for name, values in outputs.items()}
    scoring = dataclasses.replace(config, **settings) if settings else config
    scored = run.task.score(run.raw[split], run.eval_features[split], outputs, run.label_names, scoring)
    metrics = {
        **scored.metrics,
        "num_examples": len(run.raw[split]),
        "runtime_s": round(time.perf_counter() - started, 2),
    }
    if run.is_main_process:
        output_dir = Path(config.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        write_json(output_dir / f"{output_name(config, split)}_results.json", metrics)
        scored.write_predictions(output_dir, output_name(config, split))
    return dataclasses.replace(scored, metrics=metrics)


def finish(run: FrameworkRun, train_runtime: float) -> dict[str, dict[str, Any]]:
    """Score every evaluated split and write every output of the run; returns the metrics per split."""
    config = run.config
    scored = {config.eval_split: evaluate_scored(run, config.eval_split)}
    results = {config.eval_split: scored[config.eval_split].metrics}
    run.print(f"{config.eval_split}: " + metrics_line(results[config.eval_split]))
    run.log(scalars(results[config.eval_split]))
    settings = run.task.calibrate(config, results[config.eval_split]) if run.task.calibrate else {}
    settings.update(temperature_setting(config, scored[config.eval_split]))
    for split in run.eval_features:
        if split != config.eval_split:
            scored[split] = evaluate_scored(run, split, settings)
            results[split] = scored[split].metrics
            run.print(f"{split}: " + metrics_line(results[split]))
    save_model = run.model_saver() if run.trained else None
    if run.is_main_process:
        write_outputs(run, scored, train_runtime, save_model, settings)
    return results


def write_outputs(
    run: FrameworkRun,
    scored: dict[str, Scored],
    train_runtime: float,
    save_model: Callable[[Path], None] | None,
    settings: dict[str, Any] | None = None,
) -> None:
    """The model, `training_args.json`, the error analysis of every scored split (from the predictions in memory),
    and the model card showing that analysis; then the push."""
    config = run.config
    results = {split: s.metrics for split, s in scored.items()}
    output_dir = Path(config.output_dir)
    settings = settings or {}
    if save_model is not None:
        with atomic_files_into(output_dir) as staging:
            save_model(staging)
            fold_saved_temperature(run, staging, settings.get(TEMPERATURE, 1.0))
            save_model_settings(staging, settings)
            save_tokenizer(run.tokenizer, staging)
    outcome = {"best_model": run.training_outcome} if run.training_outcome else {}
    fitted = {TEMPERATURE: settings[TEMPERATURE]} if TEMPERATURE in settings else {}  # derived from the data
    run_args = shareable_args(
        {
            **dataclasses.asdict(config),
            **run.data_settings,
            **outcome,
            **fitted,
            "train_runtime_s": round(train_runtime, 1),
        }
    )
    write_json(output_dir / "training_args.json", run_args)
    figures = [
        (written.path.name, written.caption)
        for split, split_scored in scored.items()
        for written in analysis.write_analysis(
            output_dir, output_name(config, split), run.task, split_scored, run.raw[split], run.label_names
        )
    ]
    if save_model is not None:
        write_model_card(  # with the settings the saved model answers with, not the flags
            output_dir, {**run_args, **settings}, results, config.task, run.task.pipeline_tag, config.model, None,
            model_id=config.hub_model_id, figures=figures,
        )  # fmt: skip
    if config.push_to_hub:
        run.print(f"Pushed to the Hub: {push_output_dir(output_dir, config.hub_model_id)}")


def temperature_setting(config: TrainingConfig, validation: Scored) -> dict[str, float]:
    """With `--calibrate temperature`, the temperature fitted on the evaluation split's logits of the final model
    (never on a later split), which later splits are scored with and the saved model answers with; otherwise 1,
    so a model fine-tuned from a calibrated one does not keep its base's temperature in `config.json`."""
    if validation.logits_and_labels is None:
        return {}
    if config.calibrate != "temperature":
        return {TEMPERATURE: 1.0}
    return {TEMPERATURE: round(calibration.fit_temperature(*validation.logits_and_labels()), 6)}


def fold_saved_temperature(run: FrameworkRun, model_dir: Path, temperature: float) -> None:
    """Divide the saved model's classifier layer by the temperature, so the pipeline, predict and a Keras card's
    snippet give the calibrated scores from the weights alone; in the saved files, so the loop's model, whatever
    wraps or shards it, is left alone."""
    if temperature != 1.0:
        run.fold_temperature(model_dir, temperature)


def save_model_settings(model_dir: Path, settings: dict[str, Any]) -> None:
    """Keep what the task tuned as attributes of the saved model's `config.json`, which transformers loads back
    with the model, so predict and the pipeline use it without the run's `training_args.json`; a Keras model,
    which has no `config.json`, keeps them in its `label_names.json`.
    """
    if settings and keras_folder.is_keras_folder(model_dir):
        keras_folder.save_settings(model_dir, settings)
    if not settings or not (model_dir / CONFIG_NAME).is_file():
        return
    model_config = AutoConfig.from_pretrained(model_dir)
    model_config.update(settings)
    model_config.save_pretrained(model_dir)


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {f"eval/{k}": v for k, v in metrics.items() if isinstance(v, int | float)}


def metrics_line(metrics: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in metrics.items()
        if not isinstance(v, dict)
    )
