"""How a number reads, on the pages and in the report alike: one formatter per kind of number.

Sizes are decimal (SI): 1 kB = 1,000 bytes, 1 MB = 1,000,000 bytes, as the CLI and the export dialog print them.
Durations are seconds or milliseconds; a duration too short to read at two decimals shows as "<0.01", never as
"0.00" or "8e-06". A missing or non-finite value is "—".
"""
from __future__ import annotations

import math
from typing import Any

MISSING = "—"
SIZE_UNITS = (("GB", 1e9), ("MB", 1e6), ("kB", 1e3))


def as_number(value: Any) -> float | None:
    """A finite float, or None for anything else (None, text, bool, NaN, infinities)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_size(n: Any) -> str:
    """Bytes in decimal units: "552 B", "1.9 kB", "4.2 MB", "1.3 GB"."""
    value = as_number(n)
    if value is None:
        return MISSING
    for unit, scale in SIZE_UNITS:
        if abs(value) >= scale:
            return f"{value / scale:,.1f} {unit}"
    return f"{value:,.0f} B"


def format_seconds(s: Any) -> str:
    """A duration in seconds: two decimals ("0.03"), one from 10 s ("370.2"); "<0.01" below 5 ms."""
    value = as_number(s)
    if value is None:
        return MISSING
    if abs(value) < 0.005:
        return "<0.01"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:,.1f}"


def format_ms(ms: Any) -> str:
    """A latency in milliseconds: three decimals below 10 ms ("0.072"), one above ("97.8")."""
    value = as_number(ms)
    if value is None:
        return MISSING
    return f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"


def format_score(x: Any) -> str:
    """A score or a rate in [0, 1] (nDCG, AUROC, FPR…): four decimals."""
    value = as_number(x)
    return MISSING if value is None else f"{value:.4f}"


def format_interval(interval: Any) -> str:
    """A (low, high) interval: "0.850–0.950"; "—" when it is not two finite numbers."""
    if isinstance(interval, (list, tuple)) and len(interval) == 2:
        lo, hi = as_number(interval[0]), as_number(interval[1])
        if lo is not None and hi is not None:
            return f"{lo:.3f}–{hi:.3f}"
    return MISSING


def format_count(n: Any) -> str:
    """A whole number with thousands separators: "6,750"."""
    value = as_number(n)
    return MISSING if value is None else f"{value:,.0f}"


def format_metric(metric: str, value: Any) -> str:
    """A run's metric as its kind of number says: sizes (…bytes), latencies (ms…), durations (…_s), whole counts,
    else a score."""
    if metric.endswith("bytes"):
        return format_size(value)
    if metric.startswith("ms"):
        return format_ms(value)
    if metric.endswith("_s"):
        return format_seconds(value)
    number = as_number(value)
    if number is not None and not isinstance(value, float) and number.is_integer() and abs(number) >= 10:
        return format_count(number)
    return format_score(value)
