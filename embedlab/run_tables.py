"""A run's metric table as text, the same on the Retrieval and OOD pages and in the report: which columns, in which
order, each value formatted by `embedlab.formatting`, the best value of each ranked column starred (★, directions
from `embedlab.metric_directions`) and, for retrieval, each method's significance against the baseline (▲/▼, †).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from embedlab.formatting import as_number, format_interval, format_metric, format_seconds
from embedlab.metric_directions import OOD, OOD_CI_TITLE, OOD_TITLES, RETRIEVAL, arrow

BEST = "★"
SIGNIFICANT = "†"
ALPHA = 0.05
Metrics = Mapping[str, Mapping[str, object]]


@dataclass(frozen=True)
class MetricTable:
    """Header and text rows (the first cell of a row names the method); `best` holds the (row, column) positions
    of starred cells, for a renderer that also makes them bold."""
    columns: list[str]
    rows: list[list[str]]
    best: frozenset[tuple[int, int]]


def best_marks(metrics: Metrics, directions: Mapping[str, bool | None]) -> dict[str, set[str]]:
    """{column: methods holding the best value of that column} for the ranked columns (ties: all of them; a
    column with fewer than two numbers gets no mark: there is nothing to be best against)."""
    marks: dict[str, set[str]] = {}
    for col, higher in directions.items():
        if higher is None:
            continue
        values = {m: as_number(vals.get(col)) for m, vals in metrics.items()}
        values = {m: v for m, v in values.items() if v is not None}
        if len(values) < 2:
            continue
        best = max(values.values()) if higher else min(values.values())
        marks[col] = {m for m, v in values.items() if math.isclose(v, best, rel_tol=1e-9, abs_tol=1e-12)}
    return marks


def significance_mark(value: float | None, base: float | None, p_value: float | None, higher: bool) -> str:
    """▲ or ▼ for better or worse than the baseline, with † when p < ALPHA; "=" when equal; "" without a test."""
    if value is None or base is None or p_value is None:
        return ""
    if math.isclose(value, base, rel_tol=1e-12, abs_tol=1e-12):
        return "="
    better = (value > base) == higher
    return ("▲" if better else "▼") + (SIGNIFICANT if p_value < ALPHA else "")


def metric_table(metrics: Metrics, directions: Mapping[str, bool | None], *,
                 significance: Mapping[str, Mapping[str, float | None]] | None = None,
                 baseline: str | None = None) -> MetricTable:
    """One row per method (in the given order) and one column per metric of `directions` that some method has,
    in the order of `directions`; cells formatted, the best of each ranked column suffixed with ★, tested metrics
    with ▲/▼(†) against the baseline, whose row is labelled "(baseline)"."""
    marks = best_marks(metrics, directions)
    columns = [c for c in directions if any(c in vals for vals in metrics.values())]
    base_vals = metrics.get(baseline, {}) if baseline else {}
    rows, best = [], set()
    for r, (method, vals) in enumerate(metrics.items()):
        row = [f"{method} (baseline)" if method == baseline else str(method)]
        tested = (significance or {}).get(method) or {}
        for c, col in enumerate(columns, start=1):
            value = as_number(vals.get(col))
            cell = format_metric(col, value)
            if significance and method != baseline and col in tested and directions[col] is not None:
                sig = significance_mark(value, as_number(base_vals.get(col)), tested.get(col), bool(directions[col]))
                cell += f" {sig}" if sig else ""
            if method in marks.get(col, set()):
                cell += f" {BEST}"
                best.add((r, c))
            row.append(cell)
        rows.append(row)
    return MetricTable(["method", *columns], rows, frozenset(best))


def retrieval_table(metrics: Metrics, *, significance: Mapping[str, Mapping[str, float | None]] | None = None,
                    baseline: str | None = None) -> MetricTable:
    """A retrieval run's table: columns keyed as the run stores them (ndcg@10 … build_s)."""
    return metric_table(metrics, RETRIEVAL, significance=significance, baseline=baseline)


def ood_table(metrics: Metrics) -> MetricTable:
    """An OOD run's table: methods by AUROC (best first), the five metrics titled with their direction (“AUROC ↑”)
    and AUROC's bootstrap interval after it."""
    ordered = dict(sorted(metrics.items(), key=lambda kv: -(as_number(kv[1].get("auroc")) or 0)))
    table = metric_table(ordered, OOD)
    if not table.rows:
        return table
    keys = table.columns
    at = keys.index("auroc") + 1 if "auroc" in keys else 1
    intervals = [format_interval(vals.get("auroc_ci")) for vals in ordered.values()]
    columns = [OOD_TITLES[k] + f" {arrow(k)}" if k in OOD_TITLES else k for k in keys]
    columns.insert(at, OOD_CI_TITLE)
    rows = [[*row[:at], ci, *row[at:]] for row, ci in zip(table.rows, intervals)]
    best = frozenset((r, c + 1 if c >= at else c) for r, c in table.best)
    return MetricTable(columns, rows, best)


def legend(*, significance: bool = False, baseline: str | None = None) -> str:
    """The line under a retrieval table (plain text: escape it for the medium)."""
    text = f"{BEST} best in its column (bold)"
    if significance:
        text += (f" · ▲/▼ better/worse than the baseline {baseline!r}, {SIGNIFICANT} p < {ALPHA} (paired two-sided "
                 "t-test over queries, ranx)")
    return text + " · ms/query: median of single-query searches · index size as held in memory (1 kB = 1,000 bytes)"


def build_time_note(embed_s: float | None) -> str:
    """What build_s is, and where the embedding time went (`embed_s` of the run; None when it was not recorded)."""
    text = "build_s: building the index from embeddings already computed, not ranked"
    if embed_s is None:
        return text + " (this run did not record how long embedding took)."
    return (text + f"; embedding the documents and queries took {format_seconds(embed_s)} s before any index was "
                   "built (once, for every method that reads embeddings; cached embeddings take no time).")
