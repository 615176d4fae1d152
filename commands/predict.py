"""`python -m commands.predict --model OUTPUT_DIR --input FILE_OR_DIR --out predictions.jsonl`: run a trained
model on new raw files in the formats it was trained from, one JSON line per example.

The task comes from the model's `config.json` (`architectures`), and so does the input format. The whole input is
read and checked against that format before the model runs, so an input of another task's format (SQuAD JSON given
to a NER model, reviews given to a QA model) is one error naming the file, not predictions on the wrong data:

- text classification: a `.txt` file or a folder of them (flat, or aclImdb-style `split/label/*.txt`): the texts
  are the `.txt` files of the folders that have no subfolders, so aclImdb's `urls_*.txt` and `imdbEr.txt`, which
  sit beside folders, are not taken for reviews. Hidden entries and `__MACOSX` are skipped. The format is the
  `.txt` name: any UTF-8 text is a text.
  Line: `{"file", "label", "score"}`; for a multi-label model `{"file", "labels", "scores"}`: the labels whose
  sigmoid score is over the decision threshold tuned in training, and every label's score.
- token classification: a CoNLL file (or a folder of them) with one token per line, with or without a tag column
  (ignored), separated by a TAB or by spaces, documents separated by blank or whitespace-only lines. A `.json` file
  or one that parses as a JSON object or array is refused, and so is a line of more than two fields (prose).
  Line: `{"file", "document", "tokens", "tags", "entities": [{"type", "start", "end", "text"}]}`, word indices with
  `end` exclusive.
- question answering: a SQuAD JSON file (or a folder of `.json` files): a JSON object with a `data` list of
  articles, checked as `loaders.squad.read_squad` checks training data; answers in it are ignored.
  Line: `{"id", "answer", "start", "end", "null_odds"}`: character offsets into the context (null when the model
  abstains, `answer` then ""), and the null odds (no-answer score minus best span score) the threshold is applied to.

Long inputs are handled as in evaluation, with the settings the model was trained with (read from
`training_args.json` when the folder has one; flags override): texts are truncated at `max_seq_length`, or for a
model trained with `--long_documents windows` cut into the same windows and aggregated per text as evaluation did; QA
contexts are cut into the same windows by `prepare_eval_features` and answered by `answer_windows`, at the
`null_score_diff_threshold` tuned in training and kept in the model's `config.json`. Evaluation truncates CoNLL documents, but here no word may go untagged, so a long
document is cut into overlapping windows of whole words (see `word_windows`).

`--batch_size` counts what one forward pass holds: texts, NER windows, or QA windows. A long QA context has many
windows (a 256 KB context about 220 of 384 tokens), so they go through the model `batch_size` at a time and their
logits are joined before the span search: memory is bounded by the batch size, not by the longest context.

Started by `accelerate launch` (or `torchrun`) with several processes, each predicts a share of the inputs and the
main process writes the one `--out` file, every input once, in input order (see `predict_shards`).

A Keras output directory (`train.py --framework tensorflow`: `model.keras` and `label_names.json`) names its task in
`label_names.json`; its model runs in TensorFlow behind the same windows and post-processing, TensorFlow being
imported only then.

`--backend onnx` runs the model's ONNX export (`python -m processing.export --onnx`, `--quantize int8` for the
quantized one) in ONNX Runtime on the CPU instead of its PyTorch weights; the tasks' code is the same either way.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase
from transformers.hf_argparser import string_to_bool

from loaders import DataFormatError, detect_format
from loaders.files import read_text
from loaders.squad import read_squad
from processing import classification, keras_folder, multi_label, question_answering
from processing.export import QUANTIZATIONS, onnx_file
from processing.models import resolve_model
from processing.outputs import atomic_path
from processing.predicting import BACKENDS, Settings
from processing.registry import TASKS
from processing.tasks import Task

from .predict_shards import agree, gathered_rows, launched_state, shard
from .predict_tables import EXPORT_FORMATS, TABLE_FORMATS, export_documents, table_examples, with_ids

SETTING_DEFAULTS = {
    "doc_stride": question_answering.DOC_STRIDE,
    "n_best_size": question_answering.N_BEST_SIZE,
    "max_answer_length": question_answering.MAX_ANSWER_LENGTH,
    "null_score_diff_threshold": 0.0,
    "decision_threshold": multi_label.DECISION_THRESHOLD,
    "long_documents": "truncate",
    "window_aggregation": "mean",
}
"""`train.py`'s defaults, used when the model folder has no `training_args.json`."""
MODEL_SETTINGS = tuple(
    dict.fromkeys(choice.task.tuning.setting for choice in TASKS.values() if choice.task.tuning)
)
"""Settings a run tunes and saves in the model's `config.json` (see `Task.calibrate`): they win over
`training_args.json`, which holds the flags as given."""
PREDICT_COLUMNS = ("text", "text_pair", "tokens", "question", "context", "id")
"""Columns a table's rows are read through (`--text_column`, ...): what predict needs, no labels."""
USER_ERRORS = (DataFormatError, OSError, ValueError)
"""Bad input, a missing model or file, an unwritable `--out`: one line for the user, no traceback."""
BATCH_SIZE = 32
"""Texts or windows per forward pass unless `--batch_size` says otherwise."""


def task_of(model: str) -> Task:
    """The task a saved model was trained for, from the head class named in its config and, for tasks sharing a
    head class, its `problem_type` (a task that names none takes a model whose problem type no task claims); a
    Keras output directory names its task in `label_names.json`."""
    if keras_folder.is_keras_folder(model):
        return keras_task(model)
    config = AutoConfig.from_pretrained(model)
    architectures = config.architectures or []
    tasks = {choice.task.name: choice.task for choice in TASKS.values()}
    claimed = {task.problem_type for task in tasks.values()} - {None}
    problem = getattr(config, "problem_type", None)
    for task in tasks.values():
        fits = task.problem_type == problem or (task.problem_type is None and problem not in claimed)
        if (
            fits
            and task.predict is not None
            and any(name.endswith(task.architecture_suffix) for name in architectures)
        ):
            return task
    raise ValueError(f"{model}: config.json names no architecture this tool predicts with ({architectures})")


def keras_task(model: str) -> Task:
    """The task a Keras output directory names, refused when the Keras path trains no model for it (the name
    comes from a file anyone can edit)."""
    name = keras_folder.read_labels(model)["task"]
    tasks = {choice.task.name: choice.task for choice in TASKS.values()}
    if name not in tasks or not tasks[name].keras_head or tasks[name].predict is None:
        raise ValueError(
            f"{model}: {keras_folder.LABELS_FILE} names task {name!r}, which no Keras model predicts"
        )
    return tasks[name]


def model_config(model: str) -> PretrainedConfig:
    """The saved model's `config.json`, or for a Keras output directory what its files say of the same."""
    if keras_folder.is_keras_folder(model):
        return keras_folder.model_config(model, keras_task(model))
    return AutoConfig.from_pretrained(model)


def read_settings(model: str, tokenizer: PreTrainedTokenizerBase, overrides: dict[str, Any]) -> Settings:
    """Flags first, then what the run tuned (kept in the model's `config.json`), then the run's
    `training_args.json`, then `train.py`'s defaults; without a training length, the longest input the model takes. Batches hold 32 texts or windows by default, on the GPU when there is one."""
    path = Path(model) / "training_args.json"
    trained = read_json(path) if path.is_file() else {}
    if not isinstance(trained, dict):
        raise DataFormatError(path, "is not a JSON object of training settings")
    config = model_config(model)
    model_limit = min(tokenizer.model_max_length, getattr(config, "max_position_embeddings", 1 << 30))
    values = {"max_seq_length": model_limit, **SETTING_DEFAULTS}
    values.update({k: trained[k] for k in values if trained.get(k) is not None})
    values.update({k: getattr(config, k) for k in MODEL_SETTINGS if getattr(config, k, None) is not None})
    on_gpu = (
        torch.cuda.is_available()
        and overrides.get("backend") != "onnx"
        and not keras_folder.is_keras_folder(model)
    )
    values.update(batch_size=BATCH_SIZE, device="cuda" if on_gpu else "cpu")
    values.update({k: v for k, v in overrides.items() if v is not None})
    _check_settings(values, model_limit)
    if keras_folder.is_keras_folder(model):
        values["stand_in"] = keras_network
    return Settings(**values)


def keras_network(model: str) -> Any:
    """A Keras output directory's model, called like the PyTorch head of its task; TensorFlow loads only here."""
    from processing.keras_runtime import KerasNetwork

    return KerasNetwork.from_folder(model)


def _check_settings(values: dict[str, Any], model_limit: int) -> None:
    """Refuse sizes the model cannot run with before any work, instead of a range or index error mid-way."""
    for name in ("batch_size", "max_seq_length", "n_best_size", "max_answer_length"):
        if values[name] < 1:
            raise ValueError(f"--{name} must be at least 1, got {values[name]}")
    if not 0 < values["decision_threshold"] < 1:
        raise ValueError(f"--decision_threshold must be between 0 and 1, got {values['decision_threshold']}")
    for name, choices in (
        ("long_documents", classification.LONG_DOCUMENTS),
        ("window_aggregation", classification.WINDOW_AGGREGATIONS),
    ):
        if values[name] not in choices:
            raise ValueError(f"--{name} {values[name]!r}: expected {' or '.join(choices)}")
    if values.get("quantize") and values.get("backend") != "onnx":
        raise ValueError(f"--quantize {values['quantize']}: expected --backend onnx with it")
    if values["max_seq_length"] > model_limit:
        raise ValueError(
            f"--max_seq_length {values['max_seq_length']} exceeds the model's limit of {model_limit}"
        )


def read_json(path: Path) -> Any:
    """JSON with every failure as a `DataFormatError` naming the file; nesting deeper than Python's recursion
    limit makes `json.loads` raise `RecursionError`, which is the input's fault too."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataFormatError(path, f"is not valid JSON ({err.msg})", f"line {err.lineno}") from None
    except RecursionError:
        raise DataFormatError(path, "is JSON nested too deeply to read") from None


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "__MACOSX"))


def _input_files(path: Path, pattern: str, kind: str) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.glob(pattern) if p.is_file() and _visible(p))
    if not files:
        raise DataFormatError(path, f"holds no {kind}")
    return files


def text_files(root: Path) -> list[Path]:
    """The `.txt` files of the folders under `root` that have no subfolders (a flat folder is its own leaf)."""
    if root.is_file():
        return [root]
    folders = sorted(p for p in root.iterdir() if p.is_dir() and _visible(p))
    if folders:
        return [path for folder in folders for path in text_files(folder)]
    return sorted(p for p in root.iterdir() if p.is_file() and _visible(p) and p.suffix == ".txt")


def read_documents(path: Path) -> list[tuple[str, int, list[str]]]:
    """(file name, document index, words) of every document under `path`."""
    documents = [document for file in _input_files(path, "*", "files") for document in _conll_documents(file)]
    if not documents:
        raise DataFormatError(path, "holds no documents")
    return documents


def _conll_documents(file: Path) -> Iterator[tuple[str, int, list[str]]]:
    """A line's word is what precedes its first TAB (or its first run of whitespace when it has no TAB), so tagged
    and untagged files read alike; a second field is the tag, ignored. More fields, or no word, is not CoNLL:
    most likely prose or another task's file, which would otherwise be tagged by the first word of each line."""
    text = read_text(file)
    if _is_json(file, text):
        raise DataFormatError(file, "is JSON, not CoNLL text")
    words: list[str] = []
    index = 0
    for number, line in enumerate([*text.split("\n"), ""], start=1):
        if line.strip():
            fields = line.split("\t") if "\t" in line else line.split()
            if len(fields) > 2 or not fields[0].strip():
                raise DataFormatError(
                    file, f"expected a token and at most a tag, got {len(fields)} fields", f"line {number}"
                )
            words.append(fields[0])
        elif words:
            yield file.name, index, words
            words, index = [], index + 1


def _is_json(file: Path, text: str) -> bool:
    """A `.json` name, or a JSON object or array (an untagged CoNLL file may start with a `{` or `[` token, but
    then does not parse)."""
    if file.suffix.lower() == ".json":
        return True
    if not text.lstrip().startswith(("{", "[")):
        return False
    try:
        return isinstance(json.loads(text), dict | list)
    except json.JSONDecodeError:
        return False
    except RecursionError:
        return True


def read_text_names(root: Path) -> list[tuple[str, Callable[[], str]]]:
    """(name in the output, reader) of every text; the texts themselves are read batch by batch."""
    if root.is_file() and root.suffix != ".txt":
        raise DataFormatError(root, "is not a .txt file")
    files = text_files(root)
    if not files:
        raise DataFormatError(root, "holds no .txt files")
    return [
        (path.name if path == root else path.relative_to(root).as_posix(), partial(read_text, path))
        for path in files
    ]


def read_questions(path: Path) -> list[dict[str, Any]]:
    seen_ids: dict[str, str] = {}
    questions = [
        question
        for file in _input_files(path, "*.json", ".json files")
        for question in _squad_questions(file, seen_ids)
    ]
    if not questions:
        raise DataFormatError(path, "holds no questions")
    return questions


def _squad_questions(file: Path, seen_ids: dict[str, str]) -> list[dict[str, Any]]:
    return [example for example, _ in read_squad(file, seen_ids=seen_ids, labelled=False)]


def predict(
    model: str,
    input_path: str | Path,
    settings_overrides: dict[str, Any],
    data_format: str | None = None,
    columns: dict[str, str | None] | None = None,
    share: Callable[[list], list] | None = None,
) -> Iterator[dict[str, Any]]:
    """Prediction rows for every example under `input_path`, in file order; with `share`, for the examples it
    keeps of them (a process's shard).

    The input is read and checked against the model's task here, before the model runs or anything is written.
    Rows of a table or records of an annotation export (`data_format`, else told from the file) are read through
    `columns` (`text`, `text_pair`, `tokens`, `question`, `context`, `id`), and their lines carry the input's id.
    """
    path = Path(input_path)
    if not path.exists():
        raise ValueError(f"--input {path} does not exist")
    model = resolve_model(model)
    _check_model(model)
    task = task_of(model)
    if settings_overrides.get("backend") == "onnx":
        if keras_folder.is_keras_folder(model):
            raise ValueError(
                f"--backend onnx: {model} holds a Keras model (expected --backend torch, the default)"
            )
        onnx_file(model, settings_overrides.get("quantize"))
    data_format = data_format or _row_format(path)
    inputs = read_input(task, path, data_format, columns or {})
    settings = read_settings(model, AutoTokenizer.from_pretrained(model), settings_overrides)
    if share is not None:
        inputs = share(inputs)
    rows = task.predict(model, inputs, settings) if inputs else iter(())
    return rows if data_format is None else with_ids(rows)


def _row_format(path: Path) -> str | None:
    """The table or export format of a single file, None for the tasks' own formats (texts, CoNLL, SQuAD)."""
    if not path.is_file():
        return None
    try:
        found = detect_format(path)
    except DataFormatError:
        return None
    return found if found in (*TABLE_FORMATS, *EXPORT_FORMATS) else None


def _check_model(model: str) -> None:
    """A model that is neither a folder nor a Hub id is a mistyped path: say so, not what the Hub client says."""
    if Path(model).is_dir():
        return
    try:
        validate_repo_id(model)
    except HFValidationError:
        raise ValueError(f"--model {model}: no such folder (expected a train.py output directory)") from None


def read_input(task: Task, path: Path, data_format: str | None = None, columns: dict | None = None) -> Any:
    """The task's examples under `path`: from a table or an export when `data_format` names one, else from the
    task's own format, where a format error also says what the task reads, since the likeliest cause is an input
    meant for another model."""
    if data_format in TABLE_FORMATS:
        return table_examples(task.predict_format, path, data_format, columns or {})
    if data_format in EXPORT_FORMATS and task.predict_format == "conll":
        return export_documents(path, data_format, (columns or {}).get("text"))
    if data_format is not None:
        raise DataFormatError(path, f"is {data_format} data, which a {task.name} model cannot predict on")
    try:
        return INPUT_READERS[task.predict_format](path)
    except DataFormatError as err:
        problem = f"{err.problem}; a {task.name} model takes {task.predict_input}"
        raise DataFormatError(err.path, problem, err.where) from None


INPUT_READERS = {"texts": read_text_names, "conll": read_documents, "squad": read_questions}
"""The readers of the input formats, named by `Task.predict_format`."""


def check_out(out: Path, input_path: Path) -> None:
    """Refuse an `--out` that cannot be written, or would replace the input, before minutes of predicting."""
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory (expected the path of a JSON lines file to write)")
    blocking = next((parent for parent in out.parents if parent.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise ValueError(f"--out {out}: {blocking} is a file, not a folder")
    if out.exists() and input_path.exists() and out.samefile(input_path):
        raise ValueError(f"--out {out} is the --input file; predictions would replace it")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m commands.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a train.py output directory (or any saved model)")
    parser.add_argument("--input", required=True, help="a file or folder in the task's raw format")
    parser.add_argument("--out", required=True, help="the JSON lines file to write")
    parser.add_argument(
        "--batch_size", type=int, help="texts, NER windows or QA windows per forward pass (32)"
    )
    parser.add_argument("--device", help="where the model runs (default: cuda when available, else cpu)")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="torch: the PyTorch weights; onnx: ONNX Runtime on the CPU, on the export that "
        "python -m processing.export --onnx wrote (torch)",
    )
    parser.add_argument(
        "--quantize", choices=QUANTIZATIONS, help="with --backend onnx: the quantized export (int8)"
    )
    parser.add_argument(
        "--data_format",
        choices=[*TABLE_FORMATS, *EXPORT_FORMATS],
        help="a table or an annotation export (default: told from the --input file's name and content)",
    )
    for key in PREDICT_COLUMNS:
        parser.add_argument(f"--{key}_column", help=f"table column of the {key.replace('_', ' ')} ({key})")
    for name, kind in [
        ("max_seq_length", int),
        ("doc_stride", int),
        ("n_best_size", int),
        ("max_answer_length", int),
        ("null_score_diff_threshold", float),
        ("decision_threshold", float),
    ]:
        parser.add_argument(f"--{name}", type=kind, help="default: the value the model was trained with")
    for name, choices in (
        ("long_documents", classification.LONG_DOCUMENTS),
        ("window_aggregation", classification.WINDOW_AGGREGATIONS),
    ):
        parser.add_argument(
            f"--{name}",
            choices=choices,
            help="text classification; default: the value the model was trained with",
        )
    parser.add_argument(
        "--use_safetensors",
        type=string_to_bool,
        default=True,
        help="false also loads pickle weights (*.bin), which can run code: only for models you trust (true)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = vars(_parser().parse_args(argv))
    model, input_path, out = args.pop("model"), Path(args.pop("input")), Path(args.pop("out"))
    data_format = args.pop("data_format")
    columns = {key: args.pop(f"{key}_column") for key in PREDICT_COLUMNS}
    state = launched_state()
    writes = state is None or state.is_main_process
    try:
        check_out(out, input_path)
        if state is None:
            _write_rows(out, predict(model, input_path, args, data_format, columns))
        else:
            _write_sharded(
                state, out, lambda: _sharded_predict(state, model, input_path, args, data_format, columns)
            )
    except USER_ERRORS as err:
        if writes:
            print(f"error: {err}", file=sys.stderr)
        return 2
    if writes:
        print(f"wrote {out}")
    return 0


def _sharded_predict(
    state: PartialState,
    model: str,
    input_path: Path,
    args: dict[str, Any],
    data_format: str | None,
    columns: dict[str, str | None],
) -> Iterator[dict[str, Any]]:
    """This process's shard on its own device (each process's GPU, or the CPU), every process's rows gathered a
    batch at a time, in input order."""
    if args["device"] is None and args["backend"] != "onnx" and not keras_folder.is_keras_folder(model):
        args = {**args, "device": str(state.device)}
    rows = predict(model, input_path, args, data_format, columns, partial(shard, state=state))
    return gathered_rows(rows, args["batch_size"] or BATCH_SIZE, USER_ERRORS)


def _write_sharded(state: PartialState, out: Path, rows: Callable[[], Iterator[dict[str, Any]]]) -> None:
    """The main process opens `--out` before the first round of gathering and tells the others if it cannot:
    otherwise they would wait in that round for a process that has stopped. The others take part in every round."""
    with ExitStack() as stack:
        file, problem = None, None
        if state.is_main_process:
            try:
                file = stack.enter_context(open(stack.enter_context(atomic_path(out)), "w", encoding="utf-8"))
            except OSError as err:
                problem = f"--out {out}: {err}"
        agree(problem)
        for row in rows():
            if file is not None:
                file.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_rows(out: Path, rows: Iterator[dict[str, Any]]) -> None:
    with atomic_path(out) as partial_path, open(partial_path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
