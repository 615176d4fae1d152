"""Publish a finished run to the Hugging Face Hub: a model card made from the run's own files, then the upload.

Everything before the network is local and tested offline: the card (built with `huggingface_hub`'s own
`ModelCardData`/`EvalResult`, so its YAML is what the Hub parses) and the exact list of files to send.
`push_output_dir` only hands that list to `HfApi`, which finds the token itself (`HF_TOKEN` or the
`hf auth login` cache): nothing here reads, prints or logs it.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import Future
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from huggingface_hub import CommitInfo, EvalResult, HfApi, ModelCard, ModelCardData, metadata_load
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers.modelcard import TASK_TAG_TO_NAME_MAPPING

from processing.models import embedded_hub_id, resolve_model
from processing.outputs import atomic_path
from processing.registry import TASKS
from processing.tasks import Task

logger = logging.getLogger(__name__)

README = "README.md"
CHECKPOINTS = "checkpoints"
DEFAULT_LICENSE = "apache-2.0"

# Top-level files of an output folder that a model repository needs: weights, config, tokenizer, the card, the
# figures and predictions the card reports, and the flags that produced them. Subfolders (checkpoints/, tracker
# logs) are never matched: only top-level names are tested against these.
UPLOAD_PATTERNS = (
    "*.safetensors",
    "model.keras",
    "label_names.json",
    "model.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "*.model",
    README,
    "*_results.json",
    "*predictions.json",
    "*predictions.jsonl",
    "*null_odds.json",
    "training_args.json",
    "*.png",
    "*_analysis.json",
    "*_confusion_matrix.json",
    "*_per_label.json",
    "*_entity_confusions.*",
    "*_qa_breakdown.json",
)
WEIGHTS_PATTERNS = ("*.safetensors", "model.keras")
"""A transformers model's weights, or the Keras model `--framework tensorflow` saves (see `KERAS_USAGE`)."""
# TensorBoard event files, which Accelerate's tracker writes under <output_dir>/<run name>/.
TRACKER_LOG_PATTERN = "events.out.tfevents.*"

# Flags worth a row in the card for every task (the task adds its own, `Task.card_settings`); paths and run bookkeeping stay out (they are local to the trainer's
# machine). `training_args.json`, uploaded with the model, has them all.
HYPERPARAMETERS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "weight_decay",
    "warmup_ratio",
    "max_seq_length",
    "seed",
    "group_by_length",
    "eval_steps",
    "metric_for_best_model",
    "mixed_precision",
    "early_stopping_patience",
    "train_runtime_s",
)


# A `--framework tensorflow` run saves a Keras model, which no transformers pipeline loads; one snippet fits every
# task because the model's outputs are named after what they hold.
KERAS_USAGE = """```python
from pathlib import Path

from transformers import AutoTokenizer

from processing import keras_models  # rawtune's package, with its tf extra

out = Path("{model}")  # the run's output folder
model, task, label_names = keras_models.load(out)
tokenizer = AutoTokenizer.from_pretrained(out)
batch = tokenizer(["Sam Okafor just landed in Seattle"], return_tensors="np")
inputs = {{
    "token_ids": batch["input_ids"],
    "segment_ids": batch["token_type_ids"],
    "padding_mask": batch["attention_mask"],
}}
# "logits" over `label_names` (per text or per token), or "start_logits" and "end_logits" for QA
outputs = model.predict(inputs)
```"""
KERAS_FRAMEWORK = "tensorflow"
KERAS_NOTE = (
    "Trained with Keras 3 on TensorFlow (KerasHub's BERT): the model is `model.keras`, with its task and labels in "
    "`label_names.json`, not a transformers model; load it with Keras as shown below."
)
# Written by `processing.keras_models.save` (which this module cannot import: it loads TensorFlow).
KERAS_LABELS_FILE = "label_names.json"


def card_task(pipeline_tag: str, task_name: str | None = None) -> Task:
    """The task whose card layout (headline metrics, settings, usage) a run gets: its `--task`'s, else the first
    task registered for the pipeline tag (several tasks share `text-classification`)."""
    if task_name in TASKS and TASKS[task_name].task.pipeline_tag == pipeline_tag:
        return TASKS[task_name].task
    tasks: dict[str, Task] = {}
    for choice in TASKS.values():
        tasks.setdefault(choice.task.pipeline_tag, choice.task)
    if pipeline_tag not in tasks:
        raise ValueError(
            f"no model card layout for task type {pipeline_tag!r}; expected one of {list(tasks)}"
        )
    return tasks[pipeline_tag]


def model_card(
    output_dir: Path,
    config: dict[str, Any],
    results: dict[str, dict[str, Any]],
    task_name: str,
    pipeline_tag: str,
    base_model: str,
    dataset_name: str | None,
    *,
    model_id: str | None = None,
    license: str | None = None,
    figures: list[tuple[str, str]] | None = None,
) -> ModelCard:
    """The README.md of a run: Hub metadata (model-index with every split's headline figures) and a body saying what
    was trained on what, with which settings, how well it did and how to use it.

    `config` is training_args.json's content and `results` maps split names to the `<split>_results.json` metrics;
    `task_name` is train.py's `--task` (it names the raw format). `dataset_name` is a Hub dataset id when the data
    came from the Hub; otherwise the card names the local data. `model_id` (the Hub repository, else the output
    folder's name) goes in the usage snippet. No absolute local path reaches the card (see `shareable_args`).
    The license is `license`, else the base model card's when it is on disk (the embedded default model), else
    apache-2.0. A run with `"framework": "tensorflow"` in `config` saved a Keras model: the card says so and shows
    how to load that. `figures` are the (file, caption) pairs of the error analysis the run just wrote; without
    them the card lists the pictures named in the folder's `*_analysis.json`.
    """
    task = card_task(pipeline_tag, task_name)
    output_dir = Path(output_dir)
    config = shareable_args(config)
    name = model_id or output_dir.resolve().name
    hub_base_model = _hub_model_id(base_model)
    dataset_type, dataset_pretty_name = _dataset_names(config, task_name, dataset_name)
    task_title = TASK_TAG_TO_NAME_MAPPING[pipeline_tag]
    eval_results = [
        EvalResult(
            task_type=pipeline_tag,
            task_name=task_title,
            dataset_type=dataset_type,
            dataset_name=dataset_pretty_name,
            dataset_split=split,
            metric_type=metric_type,
            metric_value=round(float(metrics[key]), 4),
            metric_name=metric_name,
        )
        for split, metrics in results.items()
        for key, metric_type, metric_name in task.card_metrics
        if key in metrics
    ]
    card_data = ModelCardData(
        license=license or _base_model_license(base_model) or DEFAULT_LICENSE,
        base_model=hub_base_model,
        datasets=[dataset_name] if dataset_name else None,
        metrics=sorted({result.metric_type for result in eval_results}) or None,
        pipeline_tag=pipeline_tag,
        library_name="keras" if _is_keras_run(config) else "transformers",
        tags=["rawtune", pipeline_tag],
        model_name=name,
        eval_results=eval_results or None,
    )
    body = _card_body(
        output_dir,
        config,
        results,
        name=name,
        task_name=task_name,
        task_title=task_title,
        task=task,
        base_model=shareable_value(base_model),
        hub_base_model=hub_base_model,
        dataset_pretty_name=dataset_pretty_name,
        figures=_figures(output_dir) if figures is None else figures,
    )
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}")


def write_model_card(output_dir: Path, *args: Any, **kwargs: Any) -> Path:
    """Write `model_card(output_dir, ...)` (same arguments) as the output folder's README.md, which is what the Hub
    shows and parses."""
    path = Path(output_dir) / README
    with atomic_path(path) as temporary:
        model_card(output_dir, *args, **kwargs).save(temporary)
    return path


def files_to_upload(output_dir: Path, include_logs: bool = False) -> list[str]:
    """The files (relative POSIX paths, sorted) that `push_output_dir` sends: top-level model, tokenizer, card,
    results and predictions files; never `checkpoints/` (resumable training state, several times the model's size)
    and tracker logs only with `include_logs` (TensorBoard event files outside `checkpoints/`)."""
    output_dir = Path(output_dir)
    files = [
        path.name
        for path in output_dir.iterdir()
        if path.is_file() and any(fnmatchcase(path.name, pattern) for pattern in UPLOAD_PATTERNS)
    ]
    if include_logs:
        files += [
            path.relative_to(output_dir).as_posix()
            for path in output_dir.rglob(TRACKER_LOG_PATTERN)
            if path.is_file() and path.relative_to(output_dir).parts[0] != CHECKPOINTS
        ]
    return sorted(files)


def push_output_dir(
    output_dir: Path,
    repo_id: str,
    api: HfApi | None = None,
    private: bool = False,
    commit_message: str = "Upload fine-tuned model, tokenizer, card and evaluation results",
    include_logs: bool = False,
) -> str:
    """Create the model repository if needed and upload exactly `files_to_upload(output_dir)` in one commit.

    Returns the commit URL. `private` applies only when the repository is created. Files already in the repository
    and absent here are left alone (earlier checkpoints, files added by hand).
    """
    output_dir = Path(output_dir)
    files = files_to_upload(output_dir, include_logs=include_logs)
    if not any(fnmatchcase(name, pattern) for name in files for pattern in WEIGHTS_PATTERNS):
        raise FileNotFoundError(
            f"{output_dir} holds no model weights ({' or '.join(WEIGHTS_PATTERNS)}): nothing to publish"
        )
    api = api or HfApi()
    repo = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    logger.info("Uploading %d files of %s to %s: %s", len(files), output_dir, repo.repo_id, ", ".join(files))
    commit = api.upload_folder(
        repo_id=repo.repo_id,
        repo_type="model",
        folder_path=output_dir,
        allow_patterns=files,
        commit_message=commit_message,
    )
    return commit.commit_url


def push_checkpoint(checkpoint_dir: Path, repo_id: str, api: HfApi | None = None) -> Future[CommitInfo]:
    """Upload one complete checkpoint folder to `checkpoints/<name>` in the background, so training goes on.

    Call it after the checkpoint got its final name (train.py renames it when complete), on the main process only;
    the returned future raises the upload's error, if any, when its result is asked for.
    """
    checkpoint_dir = Path(checkpoint_dir)
    api = api or HfApi()
    repo = api.create_repo(repo_id, repo_type="model", exist_ok=True)
    return api.upload_folder(
        repo_id=repo.repo_id,
        repo_type="model",
        folder_path=checkpoint_dir,
        path_in_repo=f"{CHECKPOINTS}/{checkpoint_dir.name}",
        commit_message=f"Checkpoint {checkpoint_dir.name}",
        run_as_future=True,
    )


def shareable_args(args: dict[str, Any]) -> dict[str, Any]:
    """A run's arguments as they may be published (`training_args.json`, the model card), with `shareable_value`
    applied to each."""
    return {key: shareable_value(value) for key, value in args.items()}


def shareable_value(value: Any) -> Any:
    """An absolute local path as something that says what it was without saying where it was on this machine.

    The embedded model's folder becomes its Hub id; any other absolute path its last component (the folder or file
    name, which the card also uses to name local data); relative paths and everything else are kept as given.
    An absolute path shows user names and folder layouts, and `--push_to_hub` publishes it.
    """
    if not isinstance(value, str) or not Path(value).is_absolute():
        return value
    return embedded_hub_id(value) or Path(value).name


def _hub_model_id(base_model: str) -> str | None:
    """The Hub id to name as `base_model`: the embedded default under its Hub id (given by id or by its installed
    folder); None for another local folder or anything else that is not a repository id, whose origin is unknown
    (the Hub rejects a path there)."""
    hub_id = embedded_hub_id(base_model)
    if hub_id:
        return hub_id
    if Path(base_model).exists():
        return None
    try:
        validate_repo_id(base_model)
    except HFValidationError:
        return None
    return base_model


def _base_model_license(base_model: str) -> str | None:
    """The license in the base model's own card, when that card is on disk (a local folder or the embedded model)."""
    try:
        card = Path(resolve_model(base_model)) / README
    except FileNotFoundError:
        return None
    if not card.is_file():
        return None
    license = (metadata_load(card) or {}).get("license")
    return license if isinstance(license, str) else None


def _dataset_names(config: dict[str, Any], task_name: str, dataset_name: str | None) -> tuple[str, str]:
    """model-index's dataset type (an identifier) and name (for people).

    A Hub dataset is named by its id; local data by its folder or file name, so the card never claims a public
    benchmark for someone's own files in that benchmark's format.
    """
    if dataset_name:
        return dataset_name, dataset_name
    source = config.get("data_dir") or config.get("train_file")
    if source:
        label = Path(source).name
        return label, f"{label} (local {task_name}-format files)"
    return task_name, f"{task_name} (the original public files, downloaded by the loader)"


def _card_body(
    output_dir: Path,
    config: dict[str, Any],
    results: dict[str, dict[str, Any]],
    *,
    name: str,
    task_name: str,
    task_title: str,
    task: Task,
    base_model: str,
    hub_base_model: str | None,
    dataset_pretty_name: str,
    figures: list[tuple[str, str]],
) -> str:
    keras = _is_keras_run(config)
    framework_flag = f" --framework {KERAS_FRAMEWORK}" if keras else ""
    base = (
        f"[{hub_base_model}](https://huggingface.co/{hub_base_model})"
        if hub_base_model
        else f"`{base_model}`"
    )
    lines = [
        f"# {name}",
        "",
        f"A {task_title.lower()} model: {base} fine-tuned on {dataset_pretty_name} with rawtune's "
        f"`train.py --task {task_name}{framework_flag}`.",
        "",
    ]
    if keras:
        lines += [KERAS_NOTE, ""]
    labels = _label_names(output_dir)
    if labels:
        lines += [f"Labels ({len(labels)}): " + ", ".join(f"`{label}`" for label in labels), ""]
    keys = HYPERPARAMETERS + task.card_settings
    lines += ["## Training", "", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {_format(config[key])} |" for key in keys if config.get(key) is not None]
    lines += ["", "## Evaluation", "", _evaluation_note(config, results, task), ""]
    lines += _metrics_table(results)
    per_type = {split: metrics["per_type"] for split, metrics in results.items() if "per_type" in metrics}
    if per_type:
        lines += ["", "Per entity type:", "", *_per_type_table(per_type)]
    for file, caption in figures:
        if file.endswith(".png"):
            lines += ["", f"![{caption}]({file})", "", f"*{caption}*"]
    threshold = config.get(task.tuning.setting, 0.0) if task.tuning else 0.0
    usage = (KERAS_USAGE if keras else task.usage).format(model=name, threshold=_format(threshold))
    lines += ["", "## How to use", "", usage, ""]
    return "\n".join(lines)


def _figures(output_dir: Path) -> list[tuple[str, str]]:
    """The error-analysis files of an existing output folder, listed in its `<split>_analysis.json` files."""
    return [
        (entry["file"], entry["caption"])
        for index in sorted(output_dir.glob("*_analysis.json"))
        for entry in json.loads(index.read_text())
    ]


def _evaluation_note(config: dict[str, Any], results: dict[str, dict[str, Any]], task: Task) -> str:
    """What the figures mean, from the run's own settings: which split any choice was made on, and which not."""
    eval_split = config.get("eval_split", "validation")
    tuned = task.tuning is not None and config.get(task.tuning.flag)
    steps = config.get("eval_steps", "epoch")
    best = config.get("best_model")
    model = f"the best model (step {best['best_step']})" if best else "the final model"
    note = (
        f"The `{eval_split}` split (the data's own, or a seeded share of train held out when the data had none) was "
        + ("scored after each epoch" if steps == "epoch" else f"scored every {steps} steps")
        + (f" and {task.tuning.words} was tuned on it" if tuned else "")
        + f"; its figures are those of {model}."
    )
    if best:
        note += (
            f" The model kept is that of the evaluation with the best {best['metric']} "
            f"({_format(best['best_score'])} at step {best['best_step']}, of {len(best['evaluations'])} "
            f"evaluations), loaded back at the end; training stopped {best['stopped']}."
        )
    others = [split for split in results if split != eval_split]
    if others:
        note += (
            f" The {', '.join(f'`{s}`' for s in others)} split was scored once, with {model}, and used for "
            "no choice."
        )
    else:
        note += " The data had no test split; validation figures flatter settings that were chosen by looking at them."
    if config.get("calibrate") == "temperature" and "calibration_temperature" in config:
        temperature = _format(config["calibration_temperature"])
        note += (
            f" One temperature (T = {temperature}) was fitted on the `{eval_split}` logits of the "
            "final model by minimising their negative log-likelihood; the saved classifier layer is divided by it, so "
            "the pipeline's scores are the calibrated ones and its labels unchanged. `ece` is the expected "
            "calibration error (15 equal-width bins) at that temperature, `ece_before_temperature` that of the "
            "unscaled logits."
        )
    if task.card_note:
        note += " " + task.card_note
    return note


def _metrics_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Every scalar figure of every split's results file, one column per split."""
    splits = list(results)
    keys = list(
        dict.fromkeys(
            key
            for metrics in results.values()
            for key, value in metrics.items()
            if isinstance(value, int | float) and key != "runtime_s"
        )
    )
    lines = ["| metric | " + " | ".join(splits) + " |", "|---" * (len(splits) + 1) + "|"]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(_format(results[s].get(key, "-")) for s in splits) + " |")
    return lines


def _per_type_table(per_type: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """NER figures per entity type: F1 and support per split, precision and recall beside them."""
    splits = list(per_type)
    header = (
        "| type | " + " | ".join(f"{s} precision | {s} recall | {s} f1 | {s} number" for s in splits) + " |"
    )
    lines = [header, "|---" * (4 * len(splits) + 1) + "|"]
    types = sorted({entity for figures in per_type.values() for entity in figures})
    for entity in types:
        cells = []
        for split in splits:
            figures = per_type[split].get(entity, {})
            cells += [_format(figures.get(k, "-")) for k in ("precision", "recall", "f1", "number")]
        lines.append(f"| {entity} | " + " | ".join(cells) + " |")
    return lines


def _is_keras_run(config: dict[str, Any]) -> bool:
    """Runs from before the TensorFlow path have no `framework` in training_args.json: they were PyTorch runs."""
    return config.get("framework") == KERAS_FRAMEWORK


def _label_names(output_dir: Path) -> list[str]:
    """Class or tag names in id order: a Keras model's `label_names.json`, else the saved config.json's `id2label`
    (empty for QA or without either file)."""
    keras_labels = output_dir / KERAS_LABELS_FILE
    if keras_labels.is_file():
        return json.loads(keras_labels.read_text(encoding="utf-8"))["label_names"] or []
    path = output_dir / "config.json"
    if not path.is_file():
        return []
    id2label = json.loads(path.read_text(encoding="utf-8")).get("id2label") or {}
    if all(label.startswith("LABEL_") for label in id2label.values()):
        return []
    return [id2label[key] for key in sorted(id2label, key=int)]


def _format(value: Any) -> str:
    if isinstance(value, dict):  # class weights per label
        return ", ".join(f"{key}: {_format(item)}" for key, item in value.items())
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)
