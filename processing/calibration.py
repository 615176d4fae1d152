"""How far a model's confidence can be trusted: expected calibration error, the reliability diagram, and one
temperature that rescales the logits so the confidence matches the accuracy.

A classifier that says 0.95 should be right about 95% of the time; fine-tuned transformers are usually
over-confident. ECE and the diagram measure that gap on a scored split; `fit_temperature` closes most of it
without changing a single prediction (dividing every logit by one positive number keeps the argmax), which is why
it is the one calibration offered: the saved model answers exactly as it was scored, only its scores move.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

NUM_BINS = 15
"""Equal-width confidence bins of the ECE, the number Guo et al. (2017) report and most papers since."""

ROWS_PER_SOFTMAX = 65_536
"""Decisions turned into probabilities at a time when only their top class is kept (see `logits_top_class`)."""

TEMPERATURE_RANGE = (0.05, 20.0)
"""Bounds of a fitted temperature: 20 flattens any fine-tuned model's softmax to near uniform, 0.05 sharpens it
twenty-fold; a fit that runs into either says the evaluation split cannot tell how confident the model should be."""


@dataclass(frozen=True)
class Confidence:
    """Each scored decision's top-class confidence and whether the decision was right, for the calibration
    analysis; `about` names the decision in captions ("the predicted label")."""

    confidences: np.ndarray
    correct: np.ndarray
    about: str


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of `logits / temperature`, shifted by the row maximum so large logits cannot overflow."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    shifted = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


Logits = np.ndarray | Iterable[np.ndarray]
"""Every decision's logits as one array, or as consecutive row blocks read anew each time they are iterated (a
task holding its logits per example need not copy them into one array just to be scored)."""


def logits_top_class(logits: Logits, labels: np.ndarray, temperature: float, about: str) -> Confidence:
    """The probability of the predicted (most probable) class of `softmax(logits, temperature)`, right where it is
    the gold label; a block of rows at a time: for a split of a million decisions the float64 probabilities and their softmax's temporaries would be several times the size
    of the logits themselves, and only the top class of each row is kept. Row-wise, so the figures are the same."""
    blocks = _row_blocks(logits) if isinstance(logits, np.ndarray) else logits
    confidence, predicted = [np.zeros(0)], [np.zeros(0, dtype=np.int64)]
    for block in blocks:
        probabilities = softmax(block, temperature)
        confidence.append(probabilities.max(axis=-1))
        predicted.append(probabilities.argmax(axis=-1))
    return Confidence(np.concatenate(confidence), np.concatenate(predicted) == np.asarray(labels), about)


def _row_blocks(logits: np.ndarray) -> Iterator[np.ndarray]:
    """Views, not copies: one array's blocks cost nothing until their softmax."""
    for start in range(0, len(logits), ROWS_PER_SOFTMAX):
        yield logits[start : start + ROWS_PER_SOFTMAX]


def calibration_bins(confidence: Confidence, num_bins: int = NUM_BINS) -> list[dict[str, float]]:
    """Per equal-width bin of (0, 1]: how many decisions, their mean confidence and their accuracy.

    Bins are closed on the right, as in Guo et al.: a confidence of exactly 0.6 with 15 bins falls in (8/15, 9/15].
    Empty bins are kept (count 0) so every diagram has the same bars.
    """
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence.confidences, side="left") - 1, 0, num_bins - 1)
    bins = []
    for b in range(num_bins):
        inside = index == b
        count = int(inside.sum())
        bins.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "count": count,
                "confidence": float(confidence.confidences[inside].mean()) if count else 0.0,
                "accuracy": float(confidence.correct[inside].mean()) if count else 0.0,
            }
        )
    return bins


def expected_calibration_error(confidence: Confidence, num_bins: int = NUM_BINS) -> float:
    """sum over bins of (bin size / n) * |accuracy - mean confidence|: the standard ECE over the top-class
    confidence. Written here because it is a few lines of numpy and the libraries that have it (torchmetrics,
    netcal) would be a dependency for one function."""
    total = len(confidence.confidences)
    if total == 0:
        return 0.0
    return float(
        sum(
            b["count"] / total * abs(b["accuracy"] - b["confidence"])
            for b in calibration_bins(confidence, num_bins)
        )
    )


def fit_temperature(logits: np.ndarray, labels: np.ndarray, max_iter: int = 100) -> float:
    """The temperature T > 0 minimising the negative log-likelihood of `labels` under softmax(logits / T).

    One scalar, as Guo et al.'s temperature scaling: it cannot overfit a small validation split the way a
    per-class or matrix scaling can, and it keeps every prediction. LBFGS on log T (so T stays positive without
    a constraint) in float64: the problem is one-dimensional and smooth, and converges in a few steps.
    A split the model gets entirely right has no finite optimum (T -> 0), one it gets entirely wrong neither
    (T -> infinity): T is held within `TEMPERATURE_RANGE`, so the weights it divides stay finite.
    """
    if len(labels) == 0:
        raise ValueError("no scored labels to fit a temperature on")
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    low, high = (float(np.log(bound)) for bound in TEMPERATURE_RANGE)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.clamp(low, high).exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().clamp(low, high).exp())


def temperature_metrics(
    logits: Logits, labels: np.ndarray, temperature: float, about: str
) -> tuple[dict, Confidence]:
    """`ece` at the temperature the split is scored with and, when that is not 1, `ece_before_temperature` of the
    raw logits, so a results file shows what the temperature bought; with the confidence at that temperature, which
    the reliability diagram draws, so no task computes it a second time.

    Rounded to 6 digits as the predictions' scores are: logits differ in their last float32 bits with the batch
    they were computed in (one process or several), and the results must not.
    """
    confidence = logits_top_class(logits, labels, temperature, about)
    metrics = {"ece": ece_figure(confidence)}
    if temperature != 1.0:
        metrics["ece_before_temperature"] = ece_figure(logits_top_class(logits, labels, 1.0, about))
    return metrics, confidence


def ece_figure(confidence: Confidence) -> float:
    """The ECE as a results file shows it (see `temperature_metrics`)."""
    return round(expected_calibration_error(confidence), 6)


def fold_temperature(model: torch.nn.Module, temperature: float) -> None:
    """Divide the classifier layer's weight and bias by `temperature`, so the model's own logits are the scaled
    ones: the transformers pipeline and predict then apply it with no code of ours, and the argmax is unchanged.

    The classifier layer is the last linear layer with one output per label; the model's logits on its dummy
    input are checked to be divided by exactly `temperature`, so a head of another shape is refused, not
    silently mis-scaled.
    """
    num_labels = model.config.num_labels
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == num_labels]
    if not heads:
        raise ValueError(f"cannot fold a temperature into {type(model).__name__}: no linear classifier layer")
    model.eval()
    with torch.no_grad():
        before = model(**model.dummy_inputs).logits
        heads[-1].weight.div_(temperature)
        if heads[-1].bias is not None:
            heads[-1].bias.div_(temperature)
        after = model(**model.dummy_inputs).logits
    if not torch.allclose(after, before / temperature, rtol=1e-4, atol=1e-5):
        raise ValueError(
            f"cannot fold a temperature into {type(model).__name__}: its last linear layer is not its output"
        )


def reliability_diagram(confidence: Confidence, where: str) -> Figure:
    """Accuracy per confidence bin against the diagonal of perfect calibration, the gap to each bin's mean
    confidence shaded; `where` names the split in the title."""
    bins = calibration_bins(confidence)
    ece = expected_calibration_error(confidence)
    figure = Figure(figsize=(5, 5), layout="constrained")
    axes = figure.add_subplot()
    width = bins[0]["upper"] - bins[0]["lower"]
    lowers = [b["lower"] for b in bins]
    axes.bar(lowers, [b["accuracy"] for b in bins], width, align="edge", edgecolor="black", label="accuracy")
    gaps = [b["confidence"] - b["accuracy"] if b["count"] else 0.0 for b in bins]
    axes.bar(
        lowers, gaps, width, bottom=[b["accuracy"] for b in bins], align="edge", color="red", alpha=0.3,
        label="gap to mean confidence",
    )  # fmt: skip
    axes.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel(f"confidence in {confidence.about}")
    axes.set_ylabel("accuracy")
    axes.set_title(f"Reliability, {where} (ECE {ece:.3f})")
    axes.legend(loc="upper left")
    return figure
