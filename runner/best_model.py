"""The best evaluation of a run and early stopping: transformers' `load_best_model_at_end` and
`EarlyStoppingCallback`, kept as plain state that every checkpoint records.

Trainer keeps this in `TrainerState`; here the loop is Accelerate's own, so the state is a small dict beside the
position in the data: a run resumed mid-patience knows the best score, its step and how many evaluations went
without improvement, and ends exactly like an uninterrupted run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from processing.tasks import Metric, Task

from .config import TrainingConfig

STATE_KEY = "best_model"
"""Where a checkpoint's `trainer_state.json` keeps this state."""


def chosen_metric(config: TrainingConfig, task: Task) -> Metric | None:
    """The figure that chooses the best model: `--metric_for_best_model`, else the task's default when
    `--early_stopping_patience` asks for one; None when neither flag is given (the final weights are saved)."""
    if config.metric_for_best_model is None and config.early_stopping_patience is None:
        return None
    name = config.metric_for_best_model or task.best_model_metrics[0].name
    return next(metric for metric in task.best_model_metrics if metric.name == name)


@dataclass
class BestModel:
    """The best evaluation so far and the patience counter; `update` after each evaluation during training."""

    metric: Metric
    patience: int | None
    best_score: float | None = None
    best_step: int | None = None
    without_improvement: int = 0
    evaluations: list[list[float]] = field(default_factory=list)
    """[step, score] of every evaluation during training, for the card and `training_args.json`."""

    def update(self, metrics: dict[str, Any], step: int, split: str) -> bool:
        """Record one evaluation; True when it is a new best (a tie is not: the earlier weights are kept)."""
        score = metrics.get(self.metric.name)
        if not isinstance(score, int | float) or isinstance(score, bool):
            figures = ", ".join(k for k, v in metrics.items() if isinstance(v, int | float))
            raise ValueError(
                f"--metric_for_best_model {self.metric.name!r}: the {split!r} split's evaluation has no such "
                f"figure (it has {figures})"
            )
        self.evaluations.append([step, score])
        if self.best_score is None or self._better(score, self.best_score):
            self.best_score, self.best_step, self.without_improvement = score, step, 0
            return True
        self.without_improvement += 1
        return False

    def _better(self, score: float, than: float) -> bool:
        return score > than if self.metric.greater_is_better else score < than

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.without_improvement >= self.patience

    def state(self) -> dict[str, Any]:
        """What a checkpoint records to resume counting where this run was."""
        return {
            "metric": self.metric.name,
            "best_score": self.best_score,
            "best_step": self.best_step,
            "without_improvement": self.without_improvement,
            "evaluations": self.evaluations,
        }

    def restore(self, recorded: dict[str, Any]) -> None:
        """Continue from a checkpoint's `state()` (the metric itself was checked with the run's identity)."""
        self.best_score, self.best_step = recorded["best_score"], recorded["best_step"]
        self.without_improvement = recorded["without_improvement"]
        self.evaluations = [list(pair) for pair in recorded["evaluations"]]

    def outcome(self, last_step: int, max_steps: int) -> dict[str, Any]:
        """What `training_args.json` and the model card say: the step and score kept, and why training ended."""
        if self.should_stop:
            stopped = (
                f"at step {last_step} of {max_steps}, after {self.without_improvement} evaluations without "
                f"improvement of {self.metric.name} (--early_stopping_patience {self.patience})"
            )
        else:
            stopped = f"at step {last_step}, the end of the last epoch"
        return {
            "metric": self.metric.name,
            "greater_is_better": self.metric.greater_is_better,
            "best_step": self.best_step,
            "best_score": self.best_score,
            "last_step": last_step,
            "stopped_early": self.should_stop,
            "stopped": stopped,
            "evaluations": self.evaluations,
        }
