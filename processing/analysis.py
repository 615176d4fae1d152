"""Pictures and tables of where a trained model goes wrong, written beside its metrics in the output directory.

Each task draws its own analysis (`Task.analyse`) from the predictions it scored, handed over in memory by the
finishing step, so the analysis shows exactly the predictions that were scored. `write_analysis` returns the files
written with a one-line caption each (also saved as `<split>_analysis.json`), for the model card to embed; the
shared pieces (captions, atomic figure saving) live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import datasets
from matplotlib.figure import Figure

from .calibration import (
    NUM_BINS,
    Confidence,
    calibration_bins,
    ece_figure,
    reliability_diagram,
)
from .outputs import atomic_path, write_json

if TYPE_CHECKING:
    from .tasks import Scored, Task


@dataclass(frozen=True)
class Written:
    """A file an analysis wrote, and the one-line caption a model card shows with it."""

    path: Path
    caption: str


def write_analysis(
    output_dir: str | Path,
    split: str,
    task: Task,
    scored: Scored,
    raw: datasets.Dataset | None = None,
    label_names: list[str] | None = None,
) -> list[Written]:
    """Write the task's analysis of one scored split, named as the run names its files (`eval`, `test`).

    `raw` (the raw split as scored) is needed where the task compares with gold data beyond its predictions (question
    answering: answers and contexts); `label_names` (classification) orders the confusion matrix and keeps classes
    that were never predicted, defaulting to the labels seen.
    """
    if task.analyse is None:
        raise ValueError(f"no analysis for task {task.name!r}")
    out = Path(output_dir)
    written = task.analyse(out, split, scored, raw, label_names)
    if scored.confidence is not None:
        written += write_reliability(out, split, scored.confidence)
    write_json(out / f"{split}_analysis.json", [{"file": w.path.name, "caption": w.caption} for w in written])
    return written


def split_words(split: str) -> str:
    """How captions name a split: the run files the `--eval_split` under "eval", whatever its name."""
    return "the evaluation split" if split == "eval" else f"the {split} split"


def save_figure(figure: Figure, path: Path) -> Path:
    """`Figure.savefig` renders PNG with the Agg canvas without pyplot, so it works headless and keeps no global
    figure state across a training run. The format is named because the temporary file's suffix is not `.png`."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    return path


def write_reliability(out: Path, split: str, confidence: Confidence) -> list[Written]:
    """Every task with a confidence gets the same calibration analysis: the reliability diagram, and its bins
    with the ECE as a table."""
    ece = ece_figure(confidence)
    table = {"ece": ece, "num_bins": NUM_BINS, "bins": calibration_bins(confidence)}
    data = write_json(out / f"{split}_calibration.json", table)
    picture = save_figure(
        reliability_diagram(confidence, split_words(split)), out / f"{split}_reliability.png"
    )
    caption = (
        f"Reliability of the confidence in {confidence.about} on {split_words(split)} "
        f"({len(confidence.confidences)} decisions, {NUM_BINS} equal-width bins): accuracy per confidence bin "
        f"against the diagonal of perfect calibration; ECE {ece:.4f}."
    )
    return [Written(picture, caption), Written(data, caption)]
