"""Fine-tune a transformer on raw files: load, process, train, evaluate, save.

    accelerate launch train.py --task imdb --data_dir aclImdb
    python train.py --task wnut17 --data_dir wnut17/ --num_train_epochs 3

The loop is task-agnostic (see `processing/tasks.py`): the task supplies model class, features, collator and
scoring. Device placement, mixed precision and multi-process runs come from Accelerate's own config and flags.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, LoggerType, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoTokenizer, HfArgumentParser, get_scheduler

import loaders
from processing import analysis
from processing.batching import EpochLengthGroupedSampler, feature_lengths, longest_first, restore_order
from processing.hub import push_output_dir, shareable_args, write_model_card
from processing.models import resolve_model, save_tokenizer
from processing.outputs import atomic_files_into, write_json
from processing.registry import TASKS
from processing.tasks import Task, model_inputs

logger = get_logger(__name__)

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"


@dataclass
class TrainingConfig:
    """Every flag of `train.py`; also readable from a YAML or JSON file given as the only argument."""

    task: str = field(metadata={"help": f"What to train: {', '.join(TASKS)}."})
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder (or archive) in the task's raw format."}
    )
    train_file: str | None = field(default=None, metadata={"help": "Training file, instead of --data_dir."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation file."})
    test_file: str | None = field(default=None, metadata={"help": "Test file, scored once at the end."})
    model: str = field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        metadata={
            "help": "Hub id or local path; the default is embedded in the installed package (no download)."
        },
    )
    use_safetensors: bool = field(
        default=True,
        metadata={
            "help": "Load --model's weights from safetensors only; false also accepts pickle files "
            "(pytorch_model.bin), which can run code when loaded: only for models you trust."
        },
    )
    output_dir: str | None = field(
        default=None, metadata={"help": "Where to save (default: outputs/<task>)."}
    )
    max_seq_length: int | None = field(
        default=None, metadata={"help": "Truncation length (default: per task)."}
    )
    per_device_train_batch_size: int = 16
    per_device_eval_batch_size: int = 64
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    num_train_epochs: float = 3.0
    warmup_ratio: float = 0.1
    gradient_accumulation_steps: int = 1
    seed: int = 42
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on the first N examples only."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on the first N examples only."}
    )
    eval_split: str = field(default="validation", metadata={"help": "Split scored after each epoch."})
    validation_size: float = field(
        default=0.1,
        metadata={"help": "Share (or count, if >= 1) of train held out when the data has no validation."},
    )
    group_by_length: bool = field(
        default=True,
        metadata={
            "help": "Batch examples of similar length (training: shuffled mega-batches; evaluation: sorted)."
        },
    )
    preprocessing_num_workers: int | None = field(
        default=None,
        metadata={"help": "Processes for tokenizing with Dataset.map (helps on large data sets)."},
    )
    label_all_tokens: bool = field(
        default=False,
        metadata={"help": "Token classification: label every sub-token, not only a word's first."},
    )
    doc_stride: int = field(
        default=128, metadata={"help": "Question answering: overlap between context windows."}
    )
    n_best_size: int = field(
        default=20, metadata={"help": "Question answering: start/end candidates per window."}
    )
    max_answer_length: int = field(
        default=30, metadata={"help": "Question answering: longest answer in tokens."}
    )
    null_score_diff_threshold: float = field(
        default=0.0,
        metadata={"help": 'Question answering: answer "" when null score - best span score exceeds it.'},
    )
    tune_null_threshold: bool = field(
        default=True,
        metadata={
            "help": "Question answering: score the test split at the validation split's best_f1_thresh."
        },
    )
    checkpointing_steps: str | None = field(
        default=None, metadata={"help": "Save a checkpoint every N optimizer steps, or 'epoch'."}
    )
    save_total_limit: int | None = field(
        default=None, metadata={"help": "Keep only the newest N checkpoints."}
    )
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "A checkpoint folder, or 'latest' in <output_dir>/checkpoints."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Replace an earlier run's results, figures, model and checkpoints in --output_dir."
        },
    )
    report_to: str = field(
        default="auto",
        metadata={"help": "Tracker for accelerator.init_trackers: tensorboard, all, none, auto."},
    )
    do_train: bool = field(
        default=True, metadata={"help": "Train; with --do_train false, only evaluate --model."}
    )
    framework: str = field(
        default="pytorch",
        metadata={
            "help": "pytorch (Accelerate) or tensorflow (Keras 3 and KerasHub: pip install '.[tf]').",
            "choices": ["pytorch", "tensorflow"],
        },
    )
    push_to_hub: bool = field(
        default=False,
        metadata={"help": "Upload the output directory (model, tokenizer, card, results) at the end."},
    )
    hub_model_id: str | None = field(
        default=None, metadata={"help": "Hub repository for --push_to_hub: user/name."}
    )
    debug: bool = field(default=False, metadata={"help": "Show Python tracebacks for errors in the input."})

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown --task {self.task!r}; expected one of: {', '.join(TASKS)}")
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("--push_to_hub needs --hub_model_id user/name")
        if self.output_dir is None:
            self.output_dir = str(Path("outputs") / self.task)


def parse_args(argv: list[str] | None = None) -> TrainingConfig:
    parser = HfArgumentParser(TrainingConfig, description=__doc__.split("\n")[0])
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(argv[0])[0]
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])[0]
    return parser.parse_args_into_dataclasses(args=argv)[0]


EARLIER_OUTPUTS = (
    "training_args.json", "README.md", "*_results.json", "*_predictions.jsonl", "*predictions.json",
    "*null_odds.json", "*_analysis.json", "*_confusion_matrix.json", "*_confusion_matrix.png", "*_per_type.png",
    "*_entity_confusions.json", "*_entity_confusions.md", "*_qa_breakdown.json", "*_qa_breakdown.png",
    "config.json", "generation_config.json", "model.safetensors", "model-*.safetensors",
    "model.safetensors.index.json", "pytorch_model*.bin", "model.keras", "label_names.json", "tokenizer*",
    "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model",
    "sentencepiece.bpe.model",
)  # fmt: skip
"""What a run of either framework writes at the top of its output directory: a folder holding any of these holds an
earlier run's outputs, and `--overwrite_output_dir` removes exactly these (plus checkpoints, tracker logs and
half-written files), never anything else the folder holds."""
PARTIAL_WRITES = (".*.partial", ".partial-*")
TRACKERS = {"auto", "none", *(tracker.value for tracker in LoggerType)}


def check_config(config: TrainingConfig) -> None:
    """Refuse a bad flag before any work, in one line naming it: each of these would otherwise fail (or, worse, be
    quietly ignored or clamped) after data loading and tokenizing, or deep inside the loop."""
    check_flags(config)
    check_output_dir(config)
    check_max_seq_length(config)


def _refuse(flag: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"--{flag} {value!r}: expected {expected}")


def check_flags(config: TrainingConfig) -> None:
    """The flags whose validity depends on nothing but their own values."""
    required = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps")
    required += ("n_best_size", "max_answer_length")
    optional = ("max_seq_length", "max_train_samples", "max_eval_samples", "save_total_limit")
    optional += ("preprocessing_num_workers",)
    for flag in (*required, *optional):
        value = getattr(config, flag)
        if (value is None and flag not in optional) or (value is not None and value < 1):
            raise _refuse(flag, value, "an integer >= 1")
    for flag in ("num_train_epochs", "learning_rate"):
        value = getattr(config, flag)
        if not (math.isfinite(value) and value > 0):
            raise _refuse(flag, value, "a number > 0")
    if not (math.isfinite(config.weight_decay) and config.weight_decay >= 0):
        raise _refuse("weight_decay", config.weight_decay, "a number >= 0")
    if not 0 <= config.warmup_ratio <= 1:
        raise _refuse("warmup_ratio", config.warmup_ratio, "a share of the steps between 0 and 1")
    size = config.validation_size
    if not (0 < size < 1 or (size >= 1 and float(size).is_integer())):
        raise _refuse("validation_size", size, "a share between 0 and 1, or a whole number of examples")
    if not 0 <= config.seed < 2**32:
        raise _refuse("seed", config.seed, "an integer from 0 to 2**32 - 1")
    if config.doc_stride < 0:
        raise _refuse("doc_stride", config.doc_stride, "an integer >= 0")
    if not math.isfinite(config.null_score_diff_threshold):
        raise _refuse("null_score_diff_threshold", config.null_score_diff_threshold, "a finite number")
    every = config.checkpointing_steps
    if every is not None and every != "epoch" and not (every.isdigit() and int(every) >= 1):
        raise _refuse("checkpointing_steps", every, "an integer >= 1 or 'epoch'")
    if config.report_to not in TRACKERS:
        raise _refuse("report_to", config.report_to, f"one of {', '.join(sorted(TRACKERS))}")
    check_resume_flags(config)


def check_resume_flags(config: TrainingConfig) -> None:
    """A resume that could not happen must not be dropped silently into a run from scratch."""
    resume = config.resume_from_checkpoint
    if resume is None:
        return
    if not config.do_train:
        raise _refuse("resume_from_checkpoint", resume, "no value with --do_train false (nothing is trained)")
    if config.overwrite_output_dir:
        raise ValueError(
            "--overwrite_output_dir removes the checkpoints --resume_from_checkpoint would continue from: "
            "give one or the other"
        )
    if resume != "latest" and not (Path(resume) / STATE_FILE).is_file():
        raise _refuse(
            "resume_from_checkpoint", resume, f"'latest' or a checkpoint folder holding {STATE_FILE}"
        )


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


def clear_earlier_outputs(config: TrainingConfig) -> None:
    """For --overwrite_output_dir: no stale result, prediction, figure or checkpoint may outlive the run it came
    from and reach the new run's model card or Hub upload."""
    output_dir = Path(config.output_dir)
    leftovers = [*earlier_outputs(output_dir), output_dir / CHECKPOINTS, output_dir / f"train-{config.task}"]
    leftovers += [path for pattern in PARTIAL_WRITES for path in output_dir.glob(pattern)]
    for path in leftovers:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def check_max_seq_length(config: TrainingConfig) -> None:
    """Longer windows than the model has position embeddings for crash in the first forward pass (or are cut to
    the tokenizer's limit without a word); the model's config is a small file, read before any data."""
    length = config.max_seq_length or TASKS[config.task].task.default_max_seq_length
    limit, source = model_length_limit(resolve_model(config.model), config.model)
    if limit is not None and length > limit:
        default = "" if config.max_seq_length else " (the task's default)"
        raise _refuse("max_seq_length", length, f"at most {limit}{default}, the model's {source}")


def model_length_limit(model_path: str, flag_value: str) -> tuple[int | None, str]:
    """The model's `max_position_embeddings`; for a folder without `config.json` (a Keras model written by this
    project) the `model_max_length` its tokenizer was saved with."""
    tokenizer_config = Path(model_path) / "tokenizer_config.json"
    if Path(model_path).is_dir() and not (Path(model_path) / "config.json").is_file():
        if tokenizer_config.is_file():
            limit = json.loads(tokenizer_config.read_text()).get("model_max_length")
            return (limit if isinstance(limit, int) else None), "tokenizer's model_max_length"
        return None, ""
    try:
        model_config = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"--model {flag_value}: cannot read its config ({first_line})") from err
    limit = getattr(model_config, "max_position_embeddings", None)
    return (limit if isinstance(limit, int) else None), "max_position_embeddings"


def checkpoint_to_resume(config: TrainingConfig) -> Path | None:
    """The checkpoint --resume_from_checkpoint names; None when not resuming, or 'latest' finds none."""
    if not config.resume_from_checkpoint:
        return None
    if config.resume_from_checkpoint == "latest":
        return latest_checkpoint(Path(config.output_dir))
    return Path(config.resume_from_checkpoint)


def check_splits(config: TrainingConfig, raw: datasets.DatasetDict) -> None:
    """Flags that name splits or sizes of the data, checked right after loading, before any tokenizing."""
    if config.eval_split not in raw:
        raise ValueError(f"--eval_split {config.eval_split!r} is not in the data (splits: {list(raw)})")
    used = [config.eval_split, *(s for s in ("test",) if s in raw)] + (["train"] if config.do_train else [])
    for split in dict.fromkeys(used):
        missing = unlabelled_examples(raw[split])
        if missing:
            flag = "--eval_split" if split == config.eval_split else "the split"
            raise ValueError(
                f"{flag} {split!r} has {missing} missing labels (-1, unlabelled examples): it can be neither "
                "scored nor trained on; use a split with labels"
            )


def unlabelled_examples(split: datasets.Dataset) -> int:
    """Labels of -1 (the missing class) in any `ClassLabel` column, or in any position of a sequence of them."""
    missing = 0
    for name, feature in split.features.items():
        labels = feature if isinstance(feature, datasets.ClassLabel) else getattr(feature, "feature", None)
        if isinstance(labels, datasets.ClassLabel):
            column = split.with_format("arrow")[name]
            values = column if labels is feature else pa.compute.list_flatten(column)
            missing += pa.compute.sum(pa.compute.less(values, 0)).as_py() or 0
    return missing


def data_fingerprint(split: datasets.Dataset) -> str:
    """A hash of the training examples themselves, in training order: the same data copied elsewhere matches, a
    changed example, another selection or another held-out validation split does not. Batches are rebuilt as one
    chunk each so the hash does not depend on how the Arrow files happen to be chunked."""
    digest = hashlib.sha256(repr(split.features).encode())
    for table in split.with_format("arrow").iter(batch_size=10_000):
        for batch in table.combine_chunks().to_batches():
            digest.update(batch.serialize())
    return digest.hexdigest()[:16]


def run_identity(config: TrainingConfig, task: Task, train_split: datasets.Dataset, label_names: Any) -> dict:
    """What a checkpoint must share with the run that resumes it, recorded in its state file."""
    model = str(Path(config.model).resolve()) if Path(config.model).is_dir() else config.model
    return {
        "task": task.name,
        "model": model,
        "data": data_fingerprint(train_split),
        "label_names": label_names,
    }


def check_same_run(checkpoint: Path, identity: dict[str, Any]) -> None:
    """A checkpoint of another task, model or data would resume silently into nonsense."""
    if not (checkpoint / STATE_FILE).is_file():
        raise FileNotFoundError(f"{checkpoint} is not a complete checkpoint (no {STATE_FILE})")
    recorded = json.loads((checkpoint / STATE_FILE).read_text())
    names = {"task": "task", "model": "model", "data": "training data", "label_names": "labels"}
    differences = [
        f"{names[key]} {recorded[key]!r} there, {value!r} here"
        if key in recorded
        else f"{names[key]} not recorded"
        for key, value in identity.items()
        if recorded.get(key) != value
    ]
    if differences:
        raise ValueError(
            f"{checkpoint} is another run's checkpoint: {'; '.join(differences)}. Resume with the same task, "
            "model and data, or start a new --output_dir"
        )


def load_raw(config: TrainingConfig, loader: str, task: Task) -> datasets.DatasetDict:
    """Raw splits from the loaders, with a seeded validation split held out of train when the data has none."""
    files = {"train": config.train_file, "validation": config.validation_file, "test": config.test_file}
    data_files = {split: path for split, path in files.items() if path} or None
    raw = loaders.load_dataset(loader, data_dir=config.data_dir, data_files=data_files)
    size = int(config.validation_size) if config.validation_size >= 1 else config.validation_size
    if "validation" not in raw and isinstance(size, int) and size >= len(raw["train"]):
        raise _refuse(
            "validation_size", size, f"fewer examples than the {len(raw['train'])} of the train split"
        )
    raw = loaders.with_validation_split(
        raw, size, seed=config.seed, stratify_by_column=task.label_column, group_by_column=task.group_column
    )
    if config.max_train_samples is not None:
        raw["train"] = raw["train"].select(range(min(config.max_train_samples, len(raw["train"]))))
    for split in raw:
        if split != "train" and config.max_eval_samples is not None:
            raw[split] = raw[split].select(range(min(config.max_eval_samples, len(raw[split]))))
    check_splits(config, raw)
    return raw


def predict(
    model: torch.nn.Module, dataloader: DataLoader, accelerator: Accelerator, output_names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Model outputs for every evaluation feature exactly once, across processes, padded to one length."""
    model.eval()
    gathered: dict[str, list[np.ndarray]] = {name: [] for name in output_names}
    for batch in tqdm(
        dataloader, desc="Evaluating", disable=not accelerator.is_local_main_process, leave=False
    ):
        with torch.no_grad():
            outputs = model(**batch)
        for name in output_names:
            values = accelerator.pad_across_processes(outputs[name], dim=1, pad_index=-1e4)
            gathered[name].append(accelerator.gather_for_metrics(values).float().cpu().numpy())
    return {name: concatenate_padded(arrays) for name, arrays in gathered.items()}


def concatenate_padded(arrays: list[np.ndarray], fill: float = -1e4) -> np.ndarray:
    """Batches are padded to their own longest member; stack them at the longest overall."""
    if arrays[0].ndim == 1:
        return np.concatenate(arrays)
    width = max(a.shape[1] for a in arrays)
    padded = [
        np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2), constant_values=fill)
        for a in arrays
    ]
    return np.concatenate(padded)


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoints oldest first; one still being written has a `.partial` name and is not among them."""
    steps = [(int(p.name[5:]), p) for p in (output_dir / CHECKPOINTS).glob("step_*") if p.name[5:].isdigit()]
    return [path for _, path in sorted(steps)]


def latest_checkpoint(output_dir: Path) -> Path | None:
    checkpoints = complete_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def save_checkpoint(accelerator: Accelerator, config: TrainingConfig, state: dict[str, Any]) -> None:
    """`save_state` into a temporary folder renamed when complete, so a kill mid-save never leaves a torn one.

    Only the newest `--save_total_limit` complete checkpoints are kept.
    """
    final = Path(config.output_dir) / CHECKPOINTS / f"step_{state['completed_steps']}"
    if final.exists():
        return  # an epoch end can fall on a step that was just saved
    partial = final.with_name(final.name + ".partial")
    if accelerator.is_main_process and partial.exists():
        shutil.rmtree(partial)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    if accelerator.is_main_process:
        write_json(partial / STATE_FILE, state, indent=None)
        partial.rename(final)
        if config.save_total_limit:
            for old in complete_checkpoints(Path(config.output_dir))[: -config.save_total_limit]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()


@dataclass
class Run:
    """What one run is made of, built once by `setup` and used by the loop and by evaluation."""

    config: TrainingConfig
    task: Task
    accelerator: Accelerator
    raw: datasets.DatasetDict
    label_names: list[str] | None
    tokenizer: Any
    model: torch.nn.Module
    eval_features: dict[str, datasets.Dataset]
    eval_dataloaders: dict[str, DataLoader]
    eval_orders: dict[str, np.ndarray | None]
    identity: dict[str, Any] = field(default_factory=dict)
    train_dataloader: DataLoader | None = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None
    max_steps: int = 0


def setup(config: TrainingConfig) -> Run:
    """Load, process and `prepare` everything; the task decides the model, features and collator."""
    choice = TASKS[config.task]
    task = choice.task
    config.max_seq_length = config.max_seq_length or task.default_max_seq_length
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=_trackers(config.report_to),
        project_dir=config.output_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
    )
    if config.overwrite_output_dir and accelerator.is_main_process:
        clear_earlier_outputs(config)
    accelerator.wait_for_everyone()
    set_seed(config.seed)
    model_path = resolve_model(config.model)
    with accelerator.main_process_first():
        raw = load_raw(config, choice.loader, task)
    label_names = task.label_names(raw["train"].features)
    identity = run_identity(config, task, raw["train"], label_names) if config.do_train else {}
    checkpoint = checkpoint_to_resume(config) if config.do_train else None
    if checkpoint is not None:
        check_same_run(checkpoint, identity)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if task.check is not None:
        task.check(raw, tokenizer, config)
    model = task.load_model(model_path, label_names, use_safetensors=config.use_safetensors)
    eval_splits = [config.eval_split] + [s for s in ("test",) if s in raw and s != config.eval_split]
    with accelerator.main_process_first():
        eval_features = {split: task.prepare(raw[split], tokenizer, config, False) for split in eval_splits}
        train_features = task.prepare(raw["train"], tokenizer, config, True) if config.do_train else None

    collator = task.collator(tokenizer, 8 if accelerator.device.type == "cuda" else None)
    eval_orders = {
        split: longest_first(feature_lengths(features)) if config.group_by_length else None
        for split, features in eval_features.items()
    }
    eval_dataloaders = {
        split: accelerator.prepare(
            DataLoader(
                features.with_format("torch", columns=model_inputs(model, features, with_labels=False)),
                sampler=None if eval_orders[split] is None else eval_orders[split].tolist(),
                collate_fn=collator,
                batch_size=config.per_device_eval_batch_size,
                generator=_loader_generator(config.seed),
            )
        )
        for split, features in eval_features.items()
    }
    run = Run(
        config,
        task,
        accelerator,
        raw,
        label_names,
        tokenizer,
        model,
        eval_features,
        eval_dataloaders,
        eval_orders,
        identity,
    )
    if train_features is None:
        run.model = accelerator.prepare(model)
        return run

    train_dataloader = DataLoader(
        train_features.with_format("torch", columns=model_inputs(model, train_features, with_labels=True)),
        sampler=EpochLengthGroupedSampler(
            config.per_device_train_batch_size, feature_lengths(train_features), config.seed
        )
        if config.group_by_length
        else None,
        shuffle=not config.group_by_length,
        collate_fn=collator,
        batch_size=config.per_device_train_batch_size,
        generator=_loader_generator(config.seed),
    )
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    decay = [p for n, p in model.named_parameters() if not n.endswith(no_decay)]
    rest = [p for n, p in model.named_parameters() if n.endswith(no_decay)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=config.learning_rate,
        fused=accelerator.device.type in ("cpu", "cuda"),  # one kernel for all parameters, not a loop
    )
    steps_per_epoch = math.ceil(
        len(train_dataloader) / (config.gradient_accumulation_steps * accelerator.num_processes)
    )
    run.max_steps = math.ceil(config.num_train_epochs * steps_per_epoch)
    scheduler = get_scheduler(
        "linear",
        optimizer,
        num_warmup_steps=int(config.warmup_ratio * run.max_steps),
        num_training_steps=run.max_steps,
    )
    run.model, run.optimizer, run.train_dataloader, run.scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, scheduler
    )
    return run


def _loader_generator(seed: int) -> torch.Generator:
    """A DataLoader draws a seed from the global RNG each time it is iterated unless it has its own generator.

    With its own, dropout's random stream does not depend on how often loaders were iterated, so a run resumed
    mid-epoch (whose loader is iterated once more, to skip batches) trains exactly like an uninterrupted one.
    """
    return torch.Generator().manual_seed(seed)


def resume_position(run: Run) -> dict[str, int]:
    """Load the checkpoint asked for and say where in training it was taken."""
    config = run.config
    start = {"completed_steps": 0, "epoch": 0, "batches_in_epoch": 0}
    checkpoint = checkpoint_to_resume(config)
    if checkpoint is None:
        if config.resume_from_checkpoint:
            run.accelerator.print(
                f"No checkpoint in {config.output_dir}/{CHECKPOINTS}: starting from scratch"
            )
        return start
    position = json.loads((checkpoint / STATE_FILE).read_text())
    run.accelerator.load_state(str(checkpoint))
    run.accelerator.print(f"Resumed from {checkpoint} at step {position['completed_steps']}")
    return position


def training_step(run: Run, batch: dict[str, torch.Tensor], step: int) -> torch.Tensor:
    """Forward, backward and (every `gradient_accumulation_steps` batches) an optimizer step."""
    with run.accelerator.accumulate(run.model):
        loss = run.model(**batch).loss
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at step {step}: stopping instead of training on it"
            )
        run.accelerator.backward(loss)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad()
    return loss


def train_loop(run: Run) -> bool:
    """The loop of Accelerate's nlp_example, with checkpoints that record where in the data they were taken.

    Returns False when SIGTERM (how clusters preempt) stopped it after saving a checkpoint.
    """
    config, accelerator, model = run.config, run.accelerator, run.model
    signal.signal(signal.SIGTERM, lambda *_: accelerator.set_trigger())
    position = resume_position(run)
    completed_steps = position["completed_steps"]
    every = int(config.checkpointing_steps) if (config.checkpointing_steps or "").isdigit() else None
    with tqdm(
        total=run.max_steps,
        initial=completed_steps,
        desc="Training",
        disable=not accelerator.is_local_main_process,
    ) as progress:
        last_epoch = math.ceil(config.num_train_epochs) - 1
        for epoch in range(position["epoch"], last_epoch + 1):
            model.train()
            run.train_dataloader.set_epoch(epoch)
            skip = position["batches_in_epoch"] if epoch == position["epoch"] else 0
            batches = (
                accelerator.skip_first_batches(run.train_dataloader, skip) if skip else run.train_dataloader
            )
            batches_in_epoch = skip
            for batch in batches:
                loss = training_step(run, batch, completed_steps + 1)
                batches_in_epoch += 1
                if accelerator.sync_gradients:
                    completed_steps += 1
                    progress.update(1)
                    lr = run.scheduler.get_last_lr()[0]
                    accelerator.log({"train/loss": loss.item(), "train/lr": lr}, step=completed_steps)
                    state = {
                        "completed_steps": completed_steps,
                        "epoch": epoch,
                        "batches_in_epoch": batches_in_epoch,
                        **run.identity,
                    }
                    if accelerator.check_trigger():
                        save_checkpoint(accelerator, config, state)
                        accelerator.print(
                            f"SIGTERM: saved a checkpoint at step {completed_steps} and stopped; "
                            "continue with --resume_from_checkpoint latest"
                        )
                        return False
                    if every and completed_steps % every == 0:
                        save_checkpoint(accelerator, config, state)
                if completed_steps >= run.max_steps:
                    break
            if epoch < last_epoch:
                metrics = evaluate(run, config.eval_split)
                accelerator.print(f"epoch {epoch}: " + metrics_line(metrics))
                accelerator.log(_scalars(metrics), step=completed_steps)
            if config.checkpointing_steps == "epoch":
                state = {"completed_steps": completed_steps, "epoch": epoch + 1, "batches_in_epoch": 0}
                save_checkpoint(accelerator, config, {**state, **run.identity})
    return True


def train(config: TrainingConfig) -> dict[str, dict[str, Any]]:
    """The whole job: check the flags, set up, train (unless --do_train false), score every evaluated split, save."""
    check_config(config)
    if config.framework == "tensorflow":
        from processing import keras_training  # imports TensorFlow, which the PyTorch path never needs

        return keras_training.train(config)
    run = setup(config)
    accelerator = run.accelerator
    if accelerator.log_with:
        accelerator.init_trackers(
            f"train-{config.task}", config={k: v for k, v in vars(config).items() if v is not None}
        )
    started = time.perf_counter()
    if run.train_dataloader is not None and not train_loop(run):
        accelerator.end_training()
        return {}
    train_runtime = time.perf_counter() - started
    results = {config.eval_split: evaluate(run, config.eval_split)}
    accelerator.print(f"{config.eval_split}: " + metrics_line(results[config.eval_split]))
    accelerator.log(_scalars(results[config.eval_split]), step=run.max_steps)
    if run.task.calibrate is not None:
        run.task.calibrate(config, results[config.eval_split])
    for split in run.eval_features:
        if split != config.eval_split:
            results[split] = evaluate(run, split)
            accelerator.print(f"{split}: " + metrics_line(results[split]))

    accelerator.wait_for_everyone()
    # Every process takes part: under FSDP or DeepSpeed the full weights are gathered from the shards.
    state_dict = accelerator.get_state_dict(run.model)
    if accelerator.is_main_process:
        output_dir = Path(config.output_dir)
        if run.train_dataloader is not None:
            with atomic_files_into(output_dir) as staging:
                accelerator.unwrap_model(run.model).save_pretrained(
                    staging, state_dict=state_dict, safe_serialization=True
                )
                save_tokenizer(run.tokenizer, staging)
        run_args = shareable_args({**dataclasses.asdict(config), "train_runtime_s": round(train_runtime, 1)})
        write_json(output_dir / "training_args.json", run_args)
        for split in run.eval_features:
            name = "eval" if split == config.eval_split else split
            analysis.write_analysis(output_dir, name, run.task.name, run.raw[split], run.label_names)
        if run.train_dataloader is not None:
            write_model_card(
                output_dir, run_args, results, config.task, run.task.pipeline_tag, config.model, None,
                model_id=config.hub_model_id,
            )  # fmt: skip
        if config.push_to_hub:
            accelerator.print(f"Pushed to the Hub: {push_output_dir(output_dir, config.hub_model_id)}")
    accelerator.end_training()
    return results


def evaluate(run: Run, split: str) -> dict[str, Any]:
    """Score one split and, on the main process, write `<split>_results.json` and its predictions."""
    started = time.perf_counter()
    outputs = predict(run.model, run.eval_dataloaders[split], run.accelerator, run.task.output_names)
    return score_split(run, split, outputs, started, write=run.accelerator.is_main_process)


def score_split(
    run: Any, split: str, outputs: dict[str, np.ndarray], started: float, write: bool
) -> dict[str, Any]:
    """The task's scoring of model outputs (in evaluation-batch order) and the files, for either framework's run.

    `run` is a `Run` or a `processing.keras_training.KerasRun`: both carry config, task, raw splits, features,
    label names and evaluation orders.
    """
    config = run.config
    if run.eval_orders[split] is not None:
        outputs = {name: restore_order(values, run.eval_orders[split]) for name, values in outputs.items()}
    scored = run.task.score(run.raw[split], run.eval_features[split], outputs, run.label_names, config)
    metrics = {
        **scored.metrics,
        "num_examples": len(run.raw[split]),
        "runtime_s": round(time.perf_counter() - started, 2),
    }
    if write:
        output_dir = Path(config.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        name = "eval" if split == config.eval_split else split
        write_json(output_dir / f"{name}_results.json", metrics)
        scored.write_predictions(output_dir, name)
    return metrics


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {f"eval/{k}": v for k, v in metrics.items() if isinstance(v, int | float)}


def metrics_line(metrics: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in metrics.items()
        if not isinstance(v, dict)
    )


def _trackers(report_to: str) -> str | list[str] | None:
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
