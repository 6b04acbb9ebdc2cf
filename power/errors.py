"""The one error type for unreadable or inconsistent case data."""

from __future__ import annotations

from pathlib import Path


class CaseDataError(ValueError):
    """Bad case data, located as ``file:line: field: message``.

    ``line`` is 1-based; ``None`` when the problem is not tied to one line
    (for example a table that is missing altogether).
    """

    def __init__(self, path: str, line: int | None, field: str, message: str):
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {field}: {message}")


def read_case_text(path) -> str:
    """The text of a case file; a file that is not UTF-8 text is refused naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise CaseDataError(str(path), None, "encoding", f"not UTF-8 text (byte {err.start}); save the file "
                            "as UTF-8 or ASCII") from None
