"""Errors a user can cause; the CLI and the UI turn them into one clear line."""
from __future__ import annotations


class EmbedLabError(Exception):
    """Base of every user-facing error."""


class InputError(EmbedLabError):
    """Bad input data, located by file, row and column where known (rows count from 1, as a person reads)."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None) -> None:
        self.detail, self.file, self.row, self.column = message, file, row, column
        super().__init__(self.line())

    def line(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return (": ".join([", ".join(where), self.detail]) if where else self.detail).replace("\n", " ")
