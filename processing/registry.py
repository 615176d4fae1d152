"""Task names users type: each stands for a task type (a `Task`) and, for the historical names, a raw format.

The task types (`text-classification`, ...) read any format that holds their data (`--data_format`, or detected
from the files); the historical names (`imdb`, `wnut17`, `ner`, `squad_v2`) default to their own format.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import classification, multi_label, question_answering, token_classification
from .tasks import Task


@dataclass(frozen=True)
class TaskChoice:
    loader: str | None
    task: Task


TASKS: dict[str, TaskChoice] = {
    "imdb": TaskChoice("imdb", classification.TASK),
    "text-classification": TaskChoice(None, classification.TASK),
    "multi-label-classification": TaskChoice(None, multi_label.TASK),
    "wnut17": TaskChoice("wnut17", token_classification.TASK),
    "token-classification": TaskChoice(None, token_classification.TASK),
    "ner": TaskChoice("conll", token_classification.TASK),
    "squad_v2": TaskChoice("squad_v2", question_answering.TASK),
    "question-answering": TaskChoice(None, question_answering.TASK),
}
