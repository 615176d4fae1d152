"""The one error type the loaders raise for bad input, so the CLI can turn it into a single clear line."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """Malformed input, located as precisely as the format allows (file, line or question id).

    `where` is whatever locates the problem inside the file: `line 12`, `question 5733be28...`.
    """

    def __init__(self, path: str | Path, problem: str, where: str | None = None) -> None:
        self.path = str(path)
        self.where = where
        self.problem = problem
        location = f"{self.path}, {where}" if where else self.path
        super().__init__(f"{location}: {problem}")

    def __reduce__(self):
        """Rebuild from the three fields, so the error survives pickling (worker processes, `multiprocess`)."""
        return type(self), (self.path, self.problem, self.where)
