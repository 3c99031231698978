"""What every CLI command shares: its exit codes and error, the database it opens and its progress lines on stderr."""
from __future__ import annotations

import sys
import time
from typing import Callable

import sqlite_utils

from embedlab.errors import EmbedLabError
from storage.db import connect

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


class CliError(EmbedLabError):
    """Bad input found by the CLI itself."""


def open_db(args) -> sqlite_utils.Database:
    return connect(args.db)


def progress_printer(label: str) -> Callable[[float, str], None]:
    """Progress to stderr: live on a terminal, every 10 % otherwise."""
    state = {"last": -1.0, "t": 0.0}
    tty = sys.stderr.isatty()

    def report(fraction: float, message: str) -> None:
        now = time.monotonic()
        step = int(fraction * 10)
        if tty and (now - state["t"] > 0.2 or fraction >= 1):
            sys.stderr.write(f"\r{label}: {fraction:6.1%} {message[:70]:<70}")
            if fraction >= 1:
                sys.stderr.write("\n")
            state["t"] = now
        elif not tty and fraction > 0 and (step > state["last"] or fraction >= 1 and state["last"] < 10):
            # (nothing at 0 %: a refusal while starting, e.g. a model that cannot load, stays one line)
            sys.stderr.write(f"{label}: {fraction:.0%} {message}\n")
            state["last"] = 10 if fraction >= 1 else step
        sys.stderr.flush()

    return report
