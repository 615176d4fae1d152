"""Early stopping and the best model: a validation figure made to peak early stops the run after its patience, the
peak's weights are what the run saves, a run resumed mid-patience ends as an uninterrupted one, and the flags that
cannot be honoured are one line before any work."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import loaders
import train
from conftest import REPO_ROOT, SAMPLES, reset_accelerate
from processing import classification
from processing.registry import TASKS, TaskChoice
from processing.tasks import Metric
from runner import best_model, checkpoints, torch_loop

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

STEPS_PER_EPOCH = 6  # 21 training reviews (24 less 3 held out for validation) in batches of 4


def flags(model: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--task", "imdb", "--data_dir", str(SAMPLES / "imdb"), "--model", str(model),
        "--output_dir", str(output_dir), "--max_seq_length", "48", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "8", "--learning_rate", "1e-3", "--num_train_epochs", "3",
        "--report_to", "none", "--eval_steps", "2", *extra,
    ]  # fmt: skip


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@dataclasses.dataclass
class Evaluations:
    """Gives the model outputs of each new set of weights the next accuracy of `planned`, so the peak is where the
    test puts it; the same outputs again (the same weights, reloaded or retrained identically) get the same figure.
    Keeps a copy of the weights at each evaluation of the validation split."""

    planned: list[float]
    given: dict[bytes, float] = dataclasses.field(default_factory=dict)
    weights: list[dict[str, torch.Tensor]] = dataclasses.field(default_factory=list)

    def install(self, monkeypatch) -> None:
        task = classification.TASK
        score = task.score

        def planned_score(raw, features, outputs, label_names, config):
            scored = score(raw, features, outputs, label_names, config)
            key = outputs["logits"].tobytes()
            if key not in self.given:
                self.given[key] = (
                    self.planned[len(self.given)] if len(self.given) < len(self.planned) else 0.0
                )
            return dataclasses.replace(scored, metrics={**scored.metrics, "accuracy": self.given[key]})

        monkeypatch.setitem(TASKS, "imdb", TaskChoice("imdb", dataclasses.replace(task, score=planned_score)))
        model_outputs = torch_loop.Run.model_outputs

        def recording_outputs(run, split):
            if split == run.config.eval_split:
                state = run.accelerator.unwrap_model(run.model).state_dict()
                self.weights.append({name: tensor.detach().clone() for name, tensor in state.items()})
            return model_outputs(run, split)

        monkeypatch.setattr(torch_loop.Run, "model_outputs", recording_outputs)


def same_weights(saved: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(tensor, expected[name]) for name, tensor in saved.items())


def test_a_metric_that_peaks_early_stops_after_patience_and_the_peaks_weights_are_saved(
    tiny_model_dir, tmp_path, monkeypatch
):
    evaluations = Evaluations([0.3, 0.9, 0.5, 0.4, 0.95])  # evaluated at steps 2, 4, 6, 8 (stopped), never 10
    evaluations.install(monkeypatch)
    argv = flags(tiny_model_dir, tmp_path, "--early_stopping_patience", "2")
    argv += ["--checkpointing_steps", "2", "--save_total_limit", "1"]
    assert train.main(argv) == 0

    outcome = read_json(tmp_path / "training_args.json")["best_model"]
    assert outcome["evaluations"] == [[2, 0.3], [4, 0.9], [6, 0.5], [8, 0.4]]
    assert (outcome["metric"], outcome["best_step"], outcome["best_score"]) == ("accuracy", 4, 0.9)
    assert outcome["last_step"] == 8 and outcome["stopped_early"]
    assert outcome["stopped"].startswith(f"at step 8 of {3 * STEPS_PER_EPOCH}, after 2 evaluations")

    saved = load_file(tmp_path / "model.safetensors")
    at_peak, at_stop = evaluations.weights[1], evaluations.weights[3]
    assert saved.keys() <= at_peak.keys() and same_weights(saved, at_peak)
    assert not same_weights(saved, at_stop)  # training did go on after the peak
    # The validation and test figures are those of the peak's weights, scored again at the end.
    assert read_json(tmp_path / "eval_results.json")["accuracy"] == 0.9
    # The newest checkpoint (--save_total_limit 1) and the best one, kept beside it.
    assert {p.name for p in (tmp_path / "checkpoints").iterdir()} == {"step_4", "step_8"}
    card = (tmp_path / "README.md").read_text()
    assert "the best model (step 4)" in card and "best accuracy (0.9 at step 4, of 4 evaluations)" in card


def test_a_run_resumed_mid_patience_ends_like_an_uninterrupted_one(tiny_model_dir, tmp_path, monkeypatch):
    evaluations = Evaluations([0.3, 0.9, 0.5, 0.4, 0.6])  # best at step 4; patience 3 runs out at step 10
    evaluations.install(monkeypatch)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    common = ("--early_stopping_patience", "3", "--checkpointing_steps", "2")
    assert train.main(flags(tiny_model_dir, whole, *common)) == 0
    assert read_json(whole / "training_args.json")["best_model"]["last_step"] == 10

    # A run that died after step 8 (mid-epoch, two evaluations without improvement): its newest checkpoint and the
    # best one survive.
    for step in (4, 8):
        shutil.copytree(whole / "checkpoints" / f"step_{step}", resumed / "checkpoints" / f"step_{step}")
    recorded = read_json(resumed / "checkpoints" / "step_8" / checkpoints.STATE_FILE)[best_model.STATE_KEY]
    assert (recorded["best_step"], recorded["without_improvement"]) == (4, 2)
    reset_accelerate()
    evaluated_before = len(evaluations.weights)
    assert train.main(flags(tiny_model_dir, resumed, *common, "--resume_from_checkpoint", "latest")) == 0

    assert len(evaluations.weights) - evaluated_before == 2  # step 10, then the best model at the end
    assert (
        read_json(resumed / "training_args.json")["best_model"]
        == read_json(whole / "training_args.json")["best_model"]
    )
    for name in ("eval_results.json", "test_results.json"):
        ours, theirs = read_json(resumed / name), read_json(whole / name)
        assert {k: v for k, v in ours.items() if k != "runtime_s"} == {
            k: v for k, v in theirs.items() if k != "runtime_s"
        }
    weights_whole, weights_resumed = (
        load_file(whole / "model.safetensors"),
        load_file(resumed / "model.safetensors"),
    )
    assert same_weights(weights_resumed, weights_whole)
    assert same_weights(weights_whole, evaluations.weights[1])  # the peak's, at step 4


def test_patience_alone_chooses_by_the_tasks_headline_figure_after_each_epoch(tiny_model_dir, tmp_path):
    argv = [
        "--task", "wnut17", "--data_dir", str(SAMPLES / "wnut17"), "--model", str(tiny_model_dir),
        "--output_dir", str(tmp_path), "--max_seq_length", "64", "--per_device_train_batch_size", "4",
        "--learning_rate", "1e-3", "--num_train_epochs", "3", "--report_to", "none",
        "--early_stopping_patience", "5",
    ]  # fmt: skip
    assert train.main(argv) == 0

    outcome = read_json(tmp_path / "training_args.json")["best_model"]
    steps = [step for step, _ in outcome["evaluations"]]
    assert outcome["metric"] == "f1" and steps == [5, 10, 15]  # each epoch's end (5 steps), the final one too
    scores = [score for _, score in outcome["evaluations"]]
    assert outcome["best_step"] == steps[scores.index(max(scores))]  # the first of equal scores
    assert outcome["stopped"] == "at step 15, the end of the last epoch" and not outcome["stopped_early"]
    assert read_json(tmp_path / "eval_results.json")["f1"] == outcome["best_score"]


def test_under_two_processes_every_checkpoint_is_whole_and_the_best_is_what_is_saved(
    tiny_model_dir, tmp_path
):
    """Two real CPU processes with gloo: each new best is a checkpoint holding both processes' RNG states (no
    `.partial` folder left behind), and both processes load it back before the model is saved."""
    argv = flags(tiny_model_dir, tmp_path, "--early_stopping_patience", "1", "--metric_for_best_model", "f1")
    argv[argv.index("--per_device_train_batch_size") + 1] = "2"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29523",
    ]
    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [*command, "train.py", *argv],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    outcome = read_json(tmp_path / "training_args.json")["best_model"]
    assert outcome["stopped_early"] and outcome["best_step"] < outcome["last_step"]
    folders = list((tmp_path / "checkpoints").iterdir())
    assert [folder.name for folder in folders] == [f"step_{outcome['best_step']}"]
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= {path.name for path in folders[0].iterdir()}
    assert same_weights(
        load_file(tmp_path / "model.safetensors"), load_file(folders[0] / "model.safetensors")
    )


@pytest.fixture
def no_loading(monkeypatch) -> list:
    """Records any attempt to load data: flag checks must come first."""
    calls = []
    monkeypatch.setattr(loaders, "load_dataset", lambda *args, **kwargs: calls.append(args) or 1 / 0)
    return calls


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--metric_for_best_model", "f1_score"],
            "--metric_for_best_model 'f1_score': expected one of accuracy, f1 for --task imdb",
        ),
        (["--early_stopping_patience", "0"], "--early_stopping_patience 0: expected an integer >= 1"),
        (["--eval_steps", "often"], "--eval_steps 'often': expected an integer >= 1 or 'epoch'"),
        (["--eval_steps", "0"], "--eval_steps '0'"),
        (
            ["--early_stopping_patience", "2", "--do_train", "false"],
            "--early_stopping_patience and --eval_steps: evaluations during training, none with --do_train false",
        ),
        (
            ["--metric_for_best_model", "f1", "--framework", "tensorflow"],
            "--metric_for_best_model and --eval_steps: not supported with --framework tensorflow",
        ),
    ],
)
def test_flags_that_cannot_be_honoured_are_one_line_before_any_work(
    extra, message, tiny_model_dir, tmp_path, no_loading, capsys
):
    output_dir = tmp_path / "out"
    assert train.main([*flags(tiny_model_dir, output_dir), *extra]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in err and len(errors) == 1 and errors[0].startswith(f"error: {message}"), errors
    assert no_loading == [] and not output_dir.exists()


def test_a_checkpoint_whose_best_model_was_chosen_by_another_metric_is_not_resumed(tmp_path):
    checkpoint = tmp_path / "step_4"
    checkpoint.mkdir()
    identity = {"task": "t", "model": "m", "data": "d", "label_names": ["a"], "metric_for_best_model": "f1"}
    (checkpoint / checkpoints.STATE_FILE).write_text(json.dumps(identity))

    with pytest.raises(ValueError, match="metric for the best model 'f1' there, 'accuracy' here"):
        checkpoints.check_same_run(checkpoint, {**identity, "metric_for_best_model": "accuracy"})


def test_a_tie_is_no_improvement_and_a_loss_is_better_lower():
    best = best_model.BestModel(Metric("accuracy"), patience=2)
    assert [best.update({"accuracy": a}, step, "validation") for step, a in enumerate([0.5, 0.5, 0.7])] == [
        True,
        False,
        True,
    ]
    assert (best.best_step, best.without_improvement, best.should_stop) == (2, 0, False)
    lowest = best_model.BestModel(Metric("loss", greater_is_better=False), patience=1)
    assert [lowest.update({"loss": x}, step, "validation") for step, x in enumerate([0.9, 0.4, 0.6])] == [
        True,
        True,
        False,
    ]
    assert (lowest.best_step, lowest.should_stop) == (1, True)

    resumed = best_model.BestModel(Metric("accuracy"), patience=2)
    resumed.restore(json.loads(json.dumps(best.state())))
    assert resumed.state() == best.state()


def test_a_figure_the_evaluation_does_not_produce_is_named_with_those_it_does():
    best = best_model.BestModel(Metric("HasAns_f1"), patience=None)
    with pytest.raises(ValueError) as error:
        best.update({"exact": 50.0, "f1": 51.0, "total": 14}, 2, "validation")
    assert str(error.value) == (
        "--metric_for_best_model 'HasAns_f1': the 'validation' split's evaluation has no such figure "
        "(it has exact, f1, total)"
    )


def test_every_task_offers_its_headline_figure_first():
    defaults = {choice.task.name: choice.task.best_model_metrics[0] for choice in TASKS.values()}
    assert {name: metric.name for name, metric in defaults.items()} == {
        "text-classification": "accuracy",
        "multi-label-classification": "micro_f1",
        "token-classification": "f1",
        "question-answering": "f1",
    }
    assert all(metric.greater_is_better for metric in defaults.values())
