"""Errors a user can cause; the CLI and the UI turn them into one clear line.

The ground floor of the error hierarchy: storage raises these itself, and the engine re-exports them
(`embedlab.errors`), so every layer shares one root."""
from __future__ import annotations


class UserError(Exception):
    """The root of every error a user can cause or act on: boundaries (CLI, jobs, pages) catch this one class and
    show its message as one line (the CLI exits 2). Anything else is a bug."""


class EmbedLabError(UserError):
    """A user-facing error of the engine (bad parameters, a model that cannot load, a refused operation)."""


class Cancelled(UserError):
    """The caller asked the computation to stop; what was stored stays stored."""


class StorageError(UserError):
    """A storage problem a user can act on (read-only file, full disk, foreign file)."""


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
