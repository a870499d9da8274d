"""Import problems: a bad row is reported with its file, line and reason."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ImportProblem:
    """A row (or a whole file, when ``line`` is None) that was not imported."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.reason}"
