"""Per-task knowledge lives in the task's module: no shared module names a task.

Adding a task is one module and one registry line; a literal task name anywhere else is a table or an if/elif that
the next task would have to extend. `loaders/` is not searched: its names are formats, not tasks.
"""

from __future__ import annotations

import re
from pathlib import Path

from processing.registry import TASKS

ROOT = Path(__file__).resolve().parent.parent
SEARCHED = ("runner", "commands", "processing")
TASK_MODULES = {
    "processing/classification.py",
    "processing/multi_label.py",
    "processing/token_classification.py",
    "processing/question_answering.py",
    "processing/registry.py",
}


def task_names() -> set[str]:
    return set(TASKS) | {choice.task.name for choice in TASKS.values()}


def searched_files() -> list[Path]:
    files = [ROOT / "train.py"] + [
        path for folder in SEARCHED for path in sorted((ROOT / folder).rglob("*.py"))
    ]
    return [path for path in files if path.relative_to(ROOT).as_posix() not in TASK_MODULES]


def literal_task_names(path: Path, names: set[str]) -> list[str]:
    """`file:line: name` for every quoted string literal that is exactly a task name."""
    pattern = re.compile(r"""(["'])(""" + "|".join(re.escape(name) for name in sorted(names)) + r")\1")
    return [
        f"{path.relative_to(ROOT).as_posix()}:{number}: {match.group(2)}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        for match in pattern.finditer(line)
    ]


def test_the_search_finds_a_literal_task_name(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    sample = tmp_path / "runner" / "sample.py"
    sample.parent.mkdir()
    sample.write_text('x = 1\nif name == "ner":\n    pass\nnote = "named entity recognition"\n')

    assert literal_task_names(sample, task_names()) == ["runner/sample.py:2: ner"]


def test_no_shared_module_names_a_task():
    names = task_names()
    files = searched_files()
    assert any(path.name == "finish.py" for path in files) and (ROOT / "train.py") in files
    found = [hit for path in files for hit in literal_task_names(path, names)]
    assert found == [], "task names outside the task modules:\n" + "\n".join(found)
