"""Fine-tune a transformer on your own labelled files.

Every flag of `train.py` lives in a small dataclass, one per `--help` group, parsed by `HfArgumentParser` (CLI flags,
or a YAML/JSON file holding the same fields) and merged into one `TrainingConfig`.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

import loaders
from processing import classification, question_answering
from processing.models import DEFAULT_MODEL
from processing.registry import TASKS

from .precision import PRECISIONS


@dataclass(kw_only=True)
class DataFlags:
    _argument_group_name = "task and data"

    task: str = field(metadata={"help": f"What to train: {', '.join(TASKS)}."})
    data_format: str | None = field(
        default=None,
        metadata={
            "help": "How the data is stored (default: the task name's own format, or detected from the files).",
            "choices": sorted(loaders.LOADERS),
        },
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder (or archive) whose file names say their split."}
    )
    train_file: str | None = field(default=None, metadata={"help": "Training file, instead of --data_dir."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation file."})
    test_file: str | None = field(default=None, metadata={"help": "Test file, scored once at the end."})
    validation_size: float = field(
        default=0.1,
        metadata={"help": "Share (or count, if >= 1) of train held out when the data has no validation."},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on the first N examples only."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on the first N examples only."}
    )
    preprocessing_num_workers: int | None = field(
        default=None,
        metadata={"help": "Processes for tokenizing with Dataset.map (helps on large data sets)."},
    )


@dataclass(kw_only=True)
class ColumnFlags:
    _argument_group_name = "columns and labels (CSV, TSV, JSON Lines, Parquet; labels also for other formats)"

    text_column: str | None = field(default=None, metadata={"help": "Text to classify (default: text)."})
    text_pair_column: str | None = field(
        default=None, metadata={"help": "Second text of a sentence pair (NLI, paraphrase); none by default."}
    )
    label_column: str | None = field(
        default=None,
        metadata={"help": "Class name or id (default: label; multi-label: labels, a list of names)."},
    )
    label_columns: list[str] | None = field(
        default=None,
        metadata={"help": "Multi-label as 0/1 columns: each column named is one class."},
    )
    tokens_column: str | None = field(default=None, metadata={"help": "Words (default: tokens)."})
    tags_column: str | None = field(
        default=None, metadata={"help": "Tags, one per word (default: ner_tags)."}
    )
    question_column: str | None = field(default=None, metadata={"help": "Question (default: question)."})
    context_column: str | None = field(default=None, metadata={"help": "Context (default: context)."})
    answers_column: str | None = field(
        default=None, metadata={"help": "Answers as {text: [...], answer_start: [...]} (default: answers)."}
    )
    answer_text_column: str | None = field(
        default=None,
        metadata={"help": "One answer per row, instead of --answers_column: its text (empty: no answer)."},
    )
    answer_start_column: str | None = field(
        default=None, metadata={"help": "With --answer_text_column: the answer's character offset."}
    )
    title_column: str | None = field(default=None, metadata={"help": "Question answering: title (optional)."})
    id_column: str | None = field(
        default=None, metadata={"help": "Example id kept in predictions (default: id, when the file has it)."}
    )
    label_names: list[str] | None = field(
        default=None,
        metadata={"help": "Class or tag names in id order (default: collected from the train split)."},
    )
    strict: bool = field(
        default=False,
        metadata={"help": "Span exports: a span off word boundaries is an error, not widened and counted."},
    )


@dataclass(kw_only=True)
class ModelFlags:
    _argument_group_name = "model"

    model: str = field(
        default=DEFAULT_MODEL,
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
    max_seq_length: int | None = field(
        default=None, metadata={"help": "Truncation length (default: per task)."}
    )
    framework: str = field(
        default="pytorch",
        metadata={
            "help": "pytorch (Accelerate) or tensorflow (Keras 3 and KerasHub: pip install '.[tf]').",
            "choices": ["pytorch", "tensorflow"],
        },
    )
    tf_devices: int | None = field(
        default=None,
        metadata={
            "help": "TensorFlow: train and evaluate on this many devices with tf.distribute.MirroredStrategy, "
            "GPUs or else logical CPU devices, each taking the per_device batch sizes (default: every GPU "
            "when there are several, else one device). PyTorch: accelerate launch --num_processes."
        },
    )


@dataclass(kw_only=True)
class OptimizerFlags:
    _argument_group_name = "training"

    do_train: bool = field(
        default=True, metadata={"help": "Train; with --do_train false, only evaluate --model."}
    )
    per_device_train_batch_size: int = 16
    per_device_eval_batch_size: int = 64
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    num_train_epochs: float = 3.0
    warmup_ratio: float = 0.1
    gradient_accumulation_steps: int = 1
    seed: int = 42
    group_by_length: bool = field(
        default=True,
        metadata={
            "help": "Batch examples of similar length (training: shuffled mega-batches; evaluation: sorted)."
        },
    )
    eval_split: str = field(
        default="validation", metadata={"help": "Split scored during training (see --eval_steps)."}
    )
    eval_steps: str = field(
        default="epoch",
        metadata={"help": "Score --eval_split every N optimizer steps, or after each 'epoch'."},
    )
    metric_for_best_model: str | None = field(
        default=None,
        metadata={
            "help": "Keep the weights of the evaluation with the best value of this figure and save those at the "
            "end (default with --early_stopping_patience: per task, accuracy / entity f1 / SQuAD f1 / micro_f1)."
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={"help": "Stop after N evaluations without improvement of --metric_for_best_model."},
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "PyTorch: read the train split as a datasets IterableDataset, tokenized on the fly as batches "
            "are drawn, shuffled through a buffer, each process reading its own shards; needs --max_steps. "
            "Training batches are then not grouped by length; validation and test are read as usual."
        },
    )
    max_steps: int | None = field(
        default=None,
        metadata={
            "help": "With --streaming: optimizer steps to train (instead of --num_train_epochs); each process "
            "starts a new pass over its part of the stream whenever it has read it all."
        },
    )
    shuffle_buffer_size: int = field(
        default=1000,
        metadata={
            "help": "With --streaming: examples each process shuffles among (IterableDataset.shuffle); 1 shuffles "
            "only the order of the shards, and a resumed run then continues exactly where it stopped."
        },
    )
    mixed_precision: str | None = field(
        default=None,
        metadata={
            "help": "PyTorch: train under bf16 or fp16 autocast (weights stay float32); auto: bf16 on a CPU with "
            "native bf16 (AVX512-BF16 or AMX), else no (default: Accelerate's, e.g. accelerate launch "
            "--mixed_precision; no when unset).",
            "choices": list(PRECISIONS),
        },
    )


@dataclass(kw_only=True)
class TaskSettingFlags:
    _argument_group_name = "task settings"

    label_all_tokens: bool = field(
        default=False,
        metadata={"help": "Token classification: label every sub-token, not only a word's first."},
    )
    doc_stride: int = field(
        default=question_answering.DOC_STRIDE,
        metadata={"help": "Overlap in tokens between the windows of a QA context or a long text."},
    )
    long_documents: str = field(
        default="truncate",
        metadata={
            "help": "Single-label classification: truncate texts at --max_seq_length, or cut them into windows "
            "overlapping by --doc_stride, each trained with its text's label and scored per text.",
            "choices": list(classification.LONG_DOCUMENTS),
        },
    )
    window_aggregation: str = field(
        default="mean",
        metadata={
            "help": "With --long_documents windows: a text's logits are the mean of its windows' or, with max, "
            "each class's largest.",
            "choices": list(classification.WINDOW_AGGREGATIONS),
        },
    )
    n_best_size: int = field(
        default=question_answering.N_BEST_SIZE,
        metadata={"help": "Question answering: start/end candidates per window."},
    )
    max_answer_length: int = field(
        default=question_answering.MAX_ANSWER_LENGTH,
        metadata={"help": "Question answering: longest answer in tokens."},
    )
    null_score_diff_threshold: float = field(
        default=0.0,
        metadata={"help": 'Question answering: answer "" when null score - best span score exceeds it.'},
    )
    tune_null_threshold: bool = field(
        default=True,
        metadata={
            "help": "Question answering: score the test split at the validation split's best_f1_thresh, "
            f"shrunk toward 0 by the validation size (n / (n + {question_answering.NULL_THRESHOLD_PRIOR}) "
            "of it for n questions: a few thousand questions barely move it)."
        },
    )
    class_weights: str = field(
        default="none",
        metadata={
            "help": "Single-label classification: balanced weighs each class's loss by n_examples / "
            "(n_classes * its count in train), against class imbalance.",
            "choices": ["none", "balanced"],
        },
    )
    decision_threshold: float = field(
        default=0.5,
        metadata={"help": "Multi-label classification: predict the labels whose sigmoid score exceeds it."},
    )
    calibrate: str = field(
        default="none",
        metadata={
            "help": "Single-label classification and token classification: temperature fits one temperature "
            "on the --eval_split's logits after training; the test split is scored and the model saved with it.",
            "choices": ["none", "temperature"],
        },
    )
    tune_decision_threshold: bool = field(
        default=True,
        metadata={
            "help": "Multi-label classification: score the test split (and save the model) at the "
            "threshold with the validation split's best micro F1."
        },
    )


@dataclass(kw_only=True)
class OutputFlags:
    _argument_group_name = "checkpoints, outputs and the Hub"

    output_dir: str | None = field(
        default=None, metadata={"help": "Where to save (default: outputs/<task>)."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Replace an earlier run's results, figures, model and checkpoints in --output_dir."
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
    report_to: str = field(
        default="auto",
        metadata={"help": "Tracker for accelerator.init_trackers: tensorboard, all, none, auto."},
    )
    push_to_hub: bool = field(
        default=False,
        metadata={"help": "Upload the output directory (model, tokenizer, card, results) at the end."},
    )
    hub_model_id: str | None = field(
        default=None, metadata={"help": "Hub repository for --push_to_hub: user/name."}
    )
    debug: bool = field(default=False, metadata={"help": "Show Python tracebacks for errors in the input."})


FLAG_GROUPS = (DataFlags, ColumnFlags, ModelFlags, OptimizerFlags, TaskSettingFlags, OutputFlags)
"""In `--help` order."""


@dataclass(kw_only=True)
class TrainingConfig(OutputFlags, TaskSettingFlags, OptimizerFlags, ModelFlags, ColumnFlags, DataFlags):
    """Every flag of `train.py` in one object; also readable from a YAML or JSON file given as the only argument."""

    calibration_temperature: float = 1.0
    """What the logits are divided by when scored: set by `--calibrate temperature` from the evaluation split,
    never a flag (a temperature is measured, not chosen)."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown --task {self.task!r}; expected one of: {', '.join(TASKS)}")
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("--push_to_hub needs --hub_model_id user/name")
        if self.output_dir is None:
            self.output_dir = str(Path("outputs") / self.task)


def tracked_settings(config: TrainingConfig) -> dict:
    """The flags a tracker records as the run's hyperparameters; trackers take no None values."""
    return {name: value for name, value in vars(config).items() if value is not None}


def parse_args(argv: list[str] | None = None) -> TrainingConfig:
    parser = HfArgumentParser(FLAG_GROUPS, description=__doc__.split("\n")[0])
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        groups = parser.parse_yaml_file(argv[0])
    elif len(argv) == 1 and argv[0].endswith(".json"):
        groups = parser.parse_json_file(argv[0])
    else:
        groups = parser.parse_args_into_dataclasses(args=argv)
    return TrainingConfig(**{f.name: getattr(g, f.name) for g in groups for f in dataclasses.fields(g)})
