"""What the WebGL map draws over its points, as small arrays: one colour code per point (uint8) with its palette
and legend, optional emphasis (faded / shown) or size levels, the selection to outline, the focused point and a few
marks (rings around points). The coordinates are not here: they go to the browser once per map
(`components/scatter_map.py`), and a change of colour sends only this.

Built from the Atlas's `ColourSpec`: categories keep their colours; numbers fall into `N_BINS` colour bins of a
sequential (or diverging) scale, and a point without a value is grey (code `N_BINS`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from embedlab.map_colours import MISSING_COLOUR, ColourSpec

N_BINS = 64
GREY = MISSING_COLOUR
FOCUS_COLOUR = "#d62728"
# Viridis at 8 stops (matplotlib's), interpolated to N_BINS colours; RdBu (reversed: red low, blue high) for
# differences centred on 0.
VIRIDIS = ["#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#fde725"]
RDBU = ["#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7f7", "#d1e5f0", "#92c5de", "#4393c3", "#2166ac"]


@dataclass(frozen=True)
class Mark:
    """A ring (circle, square or diamond) drawn around point `index` in `colour`, or at map `position` (x, y in the
    map's own coordinates: a placed query that is not a document)."""
    index: int
    colour: str
    shape: str = "circle"
    radius: float = 0.025
    width: float = 2.0
    position: tuple[float, float] | None = None


@dataclass
class ScatterLayer:
    """Everything drawn over the points of one map; `codes` has one entry per point."""
    codes: np.ndarray
    palette: list[str]
    legend: list[tuple[str, str]]
    categories: list[str] = field(default_factory=list)   # name of each code (hover text above the text limit)
    title: str = ""
    note: str = ""
    emphasis: np.ndarray | None = None     # uint8 0/1: faded / shown
    sizes: np.ndarray | None = None        # uint8 size level per point (0 .. len(size_levels) - 1)
    size_levels: list[float] = field(default_factory=lambda: [2.0, 3.0, 4.5, 6.0, 8.0, 11.0])
    selected: Sequence[int] = ()
    focus: int | None = None
    marks: list[Mark] = field(default_factory=list)
    zoom_to: Sequence[int] | None = None   # move the view to these points once (when they change), e.g. a new focus
    focus_colour: str = FOCUS_COLOUR
    tags: np.ndarray | None = None          # uint16 per point: which group it belongs to, named in the hover text
    tag_names: list[str] = field(default_factory=list)
    point_size: float = 3.0
    opacity: float = 0.85


def _interpolate(stops: Sequence[str], n: int) -> list[str]:
    rgb = np.array([[int(s[i:i + 2], 16) for i in (1, 3, 5)] for s in stops], dtype=np.float64)
    at = np.linspace(0, len(stops) - 1, n)
    lo = np.floor(at).astype(int).clip(0, len(stops) - 2)
    frac = (at - lo)[:, None]
    mixed = rgb[lo] * (1 - frac) + rgb[lo + 1] * frac
    return ["#%02x%02x%02x" % tuple(int(round(v)) for v in row) for row in mixed]


def categorical_layer(spec: ColourSpec) -> ScatterLayer:
    """One code per category in legend order, with its colour (the spec's, so labels keep theirs)."""
    colours = spec.colour_of()
    categories = list(spec.categories)
    index = {c: i for i, c in enumerate(categories)}
    codes = np.fromiter((index.get(str(v), len(categories)) for v in spec.values), dtype=np.uint8,
                        count=len(spec.values)) if len(categories) < 255 else np.zeros(len(spec.values), np.uint8)
    palette = [colours.get(c, GREY) for c in categories] + [GREY]
    return ScatterLayer(codes=codes, palette=palette, legend=[(c, colours.get(c, GREY)) for c in categories],
                        categories=[*categories, ""], title=spec.name)


def numeric_layer(spec: ColourSpec, *, diverging: bool = False, value_range: tuple[float, float] | None = None,
                  missing_name: str | None = None) -> ScatterLayer:
    """`N_BINS` colour bins between the values' min and max (or `value_range`; a diverging scale is centred on 0);
    a missing value (NaN) is grey, named `missing_name` (default "no <colour name>") in the legend."""
    missing_name = missing_name or f"no {spec.name}"
    values = np.asarray(spec.values, dtype=np.float64)
    present = np.isfinite(values)
    if value_range is not None:
        lo, hi = value_range
    elif present.any():
        lo, hi = float(values[present].min()), float(values[present].max())
    else:
        lo, hi = 0.0, 1.0
    if diverging:
        edge = max(abs(lo), abs(hi)) or 1.0
        lo, hi = -edge, edge
    span = hi - lo if hi > lo else 1.0
    bins = np.floor((np.where(present, values, lo) - lo) / span * N_BINS).clip(0, N_BINS - 1).astype(np.uint8)
    codes = np.where(present, bins, N_BINS).astype(np.uint8)
    palette = _interpolate(RDBU if diverging else VIRIDIS, N_BINS) + [GREY]
    ticks = [lo + span * f for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    legend = [(_tick(t), palette[min(N_BINS - 1, int((t - lo) / span * N_BINS))]) for t in ticks]
    if (~present).any():
        legend.append((f"{missing_name} ({int((~present).sum()):,})", GREY))
    categories = [f"{spec.name} ≈ {_tick(lo + span * (i + 0.5) / N_BINS)}" for i in range(N_BINS)] + [missing_name]
    return ScatterLayer(codes=codes, palette=palette, legend=legend, categories=categories, title=spec.name)


def layer_of(spec: ColourSpec, **numeric_options) -> ScatterLayer:
    """The layer of a colour spec: categorical or numeric."""
    return categorical_layer(spec) if spec.kind == "categorical" else numeric_layer(spec, **numeric_options)


def with_emphasis(layer: ScatterLayer, shown: Sequence[int] | np.ndarray, n: int) -> ScatterLayer:
    """The layer with every point outside `shown` faded (hits of a search, a cluster)."""
    emphasis = np.zeros(n, dtype=np.uint8)
    emphasis[np.asarray(shown, dtype=np.int64)] = 1
    layer.emphasis = emphasis
    return layer


def with_sizes(layer: ScatterLayer, values: np.ndarray) -> ScatterLayer:
    """The layer with point sizes in `len(layer.size_levels)` levels of `values` (e.g. hubness N_10), by rank of
    the value between its min and max on a square-root scale."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    top = float(v.max()) if v.size else 0.0
    levels = len(layer.size_levels)
    scaled = np.sqrt(np.clip(v, 0, None) / top) if top > 0 else np.zeros_like(v)
    layer.sizes = np.minimum((scaled * levels).astype(np.int64), levels - 1).astype(np.uint8)
    return layer


def _tick(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"
