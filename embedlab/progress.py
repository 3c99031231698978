"""Progress lines a person can plan with: the stage, items done, the rate and the time left."""
from __future__ import annotations

import time
from typing import Callable

Report = Callable[[float, str], None]


def duration(seconds: float) -> str:
    """'45 s', '3 min 20 s', '1 h 05 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class StageProgress:
    """A stage of a job: maps the stage's own fraction onto [start, end] of the job's bar and adds the rate
    (with `total` items) and an estimate of the time left to each message."""

    def __init__(self, report: Report | None, stage: str, *, start: float = 0.0, end: float = 1.0,
                 total: int | None = None, unit: str = "docs", clock: Callable[[], float] = time.monotonic) -> None:
        self.report, self.stage, self.start, self.end = report, stage, start, end
        self.total, self.unit, self.clock = total, unit, clock
        self.t0 = clock()
        self.base: tuple[float, float] | None = None   # (time, fraction) of the first report of real work

    def __call__(self, fraction: float, message: str = "") -> None:
        if self.report is None:
            return
        fraction = min(1.0, max(0.0, float(fraction)))
        parts = [f"{self.stage}: {message}" if message else self.stage]
        now = self.clock()
        if self.base is None and fraction > 0.0:
            # Rates count from the first work reported, so loading a model does not read as a slow rate; the
            # first block is measured from the stage's start.
            self.base = (self.t0, 0.0) if now - self.t0 < 1.0 else (now, fraction)
        elif self.base is not None and 0.0 < fraction < 1.0 and not message.startswith("cached"):
            t_base, f_base = self.base
            elapsed, done = now - t_base, fraction - f_base
            if elapsed >= 1.0 and done > 0:
                if self.total:
                    parts.append(f"{done * self.total / elapsed:,.0f} {self.unit}/s")
                parts.append(f"about {duration(elapsed * (1 - fraction) / done)} left")
        self.report(self.start + (self.end - self.start) * fraction, " · ".join(parts))
