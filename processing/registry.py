"""Task names users type: each stands for a raw format (a loader) and a task type (a `Task`).

The historical names (`imdb`, `wnut17`, `squad_v2`) serve a user's own data in those formats; the aliases say
what they do.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import classification, multi_label, question_answering, token_classification
from .tasks import Task


@dataclass(frozen=True)
class TaskChoice:
    loader: str
    task: Task


TASKS: dict[str, TaskChoice] = {
    "imdb": TaskChoice("imdb", classification.TASK),
    "text-classification": TaskChoice("imdb", classification.TASK),
    "multi-label-classification": TaskChoice("csv", multi_label.TASK),
    "wnut17": TaskChoice("wnut17", token_classification.TASK),
    "ner": TaskChoice("conll", token_classification.TASK),
    "squad_v2": TaskChoice("squad_v2", question_answering.TASK),
    "question-answering": TaskChoice("squad_v2", question_answering.TASK),
}
