"""What the Atlas map is coloured by: categories (the rarest folded into "other") with a fixed palette, or a
numeric colour bar; and the columns a user can colour by (label, metadata keys, document length).

Labels get one colour per label value wherever they are drawn (every map, the compare view, the OOD map):
`label_palette` assigns the palette to a corpus's label values in their natural sorted order, so the same
label has the same colour and legend place in every figure, whatever subset of documents a figure shows and
whatever names the user gives the labels."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from storage.label_names import natural_key  # the label order (re-exported: pages sort by it)

MAX_CATEGORIES = 30
OTHER = "other"
MISSING = "(none)"
NOISE = "noise"
# 29 distinct colours for the most frequent categories; "other" and "(none)" are greys.
PALETTE = ["#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F",
           "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#B68100", "#750D86", "#EB663B", "#511CB5",
           "#00A08B", "#FB00D1", "#FC0080", "#B2828D", "#6C7C32", "#778AAE", "#862A16", "#A777F1", "#620042",
           "#1616A7", "#6C4516"]
OTHER_COLOUR = "#9E9E9E"
MISSING_COLOUR = "#D0D0D0"


def fold_categories(values: Iterable[Any], *, max_categories: int = MAX_CATEGORIES,
                    other: str = OTHER) -> tuple[np.ndarray, list[str]]:
    """Values as strings, the rarest folded into `other` when there are more than `max_categories`.

    Returns (one category per value, the categories most frequent first; `other` comes last).
    Missing values (None, NaN, "") become MISSING. Ties in frequency are broken by name, so the
    order is stable from run to run.
    """
    as_text = np.array([_category_text(v) for v in values], dtype=object)
    if as_text.size == 0:
        return as_text, []
    names, counts = np.unique(as_text.astype(str), return_counts=True)
    order = sorted(range(len(names)), key=lambda i: (-counts[i], names[i]))
    ranked = [str(names[i]) for i in order]
    if len(ranked) <= max_categories:
        return as_text, ranked
    keep = ranked[:max_categories - 1]
    kept = np.isin(as_text.astype(str), keep)
    folded = np.where(kept, as_text, other).astype(object)
    return folded, [*keep, other]


def _category_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return MISSING
    return str(value)


def category_colours(categories: Sequence[str]) -> dict[str, str]:
    """A colour per category, in order; `other`, MISSING and NOISE (HDBSCAN's) are grey."""
    colours, i = {}, 0
    for name in categories:
        if name == OTHER:
            colours[name] = OTHER_COLOUR
        elif name in (MISSING, NOISE):
            colours[name] = MISSING_COLOUR
        else:
            colours[name] = PALETTE[i % len(PALETTE)]
            i += 1
    return colours


def is_numeric(values: Sequence[Any], *, min_distinct: int = MAX_CATEGORIES + 1) -> bool:
    """True when every present value is a real number and there are enough distinct ones for a colour bar."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not present or not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                               for v in present):
        return False
    return len(set(present)) >= min_distinct


@dataclass(frozen=True)
class ColourSpec:
    """What the map is coloured by: `values` are category strings (categorical) or floats (numeric).

    `categories` is the legend order; `colours` (category -> colour), when given, fixes each category's colour
    (labels); otherwise `category_colours(categories)` assigns the palette in legend order."""
    name: str
    kind: str  # "categorical" | "numeric"
    values: np.ndarray
    categories: list[str] = field(default_factory=list)
    colours: dict[str, str] | None = None

    def colour_of(self) -> dict[str, str]:
        """The colour of each category (categorical specs)."""
        return dict(self.colours) if self.colours is not None else category_colours(self.categories)


def categorical_colour(name: str, values: Iterable[Any], *, max_categories: int = MAX_CATEGORIES) -> ColourSpec:
    folded, categories = fold_categories(values, max_categories=max_categories)
    return ColourSpec(name, "categorical", folded, categories)


def label_palette(labels: Iterable[Any], *, max_categories: int = MAX_CATEGORIES) -> dict[str, str]:
    """One colour per label value of a corpus (pass all its labels): the values kept by `fold_categories`
    take the palette in natural sorted order ("1", "2", …, "10"); OTHER and MISSING are grey.

    Deterministic from the set of label values alone, so every figure of the corpus (and every corpus with
    the same label values) agrees. Past MAX_CATEGORIES values the rarest share OTHER's grey."""
    _, categories = fold_categories(labels, max_categories=max_categories)
    kept = sorted((c for c in categories if c not in (OTHER, MISSING)), key=natural_key)
    palette = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(kept)}
    if OTHER in categories:
        palette[OTHER] = OTHER_COLOUR
    palette[MISSING] = MISSING_COLOUR
    return palette


def display_label(value: Any, names: Mapping[str, str] | None) -> str:
    """A label as the user named it (the value itself when unnamed; MISSING for none)."""
    text = _category_text(value)
    return (names or {}).get(text) or text


def label_colour(labels: Sequence[Any], *, names: Mapping[str, str] | None = None,
                 palette: Mapping[str, str] | None = None, name: str = "label") -> ColourSpec:
    """Colour by label: one trace per label value in natural sorted order, each in its `palette` colour
    (default: `label_palette(labels)`; pass the corpus's palette when `labels` are a subset of it), named by
    `names` (label value -> name). Values missing from the palette fold into OTHER."""
    palette = dict(palette) if palette is not None else label_palette(labels)
    as_text = [_category_text(v) for v in labels]
    raw = np.array([t if t in palette else OTHER for t in as_text], dtype=object)
    present = set(raw.tolist())
    order = sorted((c for c in present if c not in (OTHER, MISSING)), key=natural_key)
    order += [c for c in (MISSING, OTHER) if c in present]
    shown = {c: display_label(c, names) if c not in (OTHER, MISSING) else c for c in order}
    colours: dict[str, str] = {}
    categories: list[str] = []
    for c in order:  # two values named alike share one trace, in the first one's colour
        if shown[c] not in colours:
            colours[shown[c]] = palette.get(c, OTHER_COLOUR)
            categories.append(shown[c])
    values = np.array([shown[c] for c in raw.tolist()], dtype=object)
    return ColourSpec(name, "categorical", values, categories, colours)


def numeric_colour(name: str, values: Iterable[Any]) -> ColourSpec:
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=np.float32)
    return ColourSpec(name, "numeric", arr)


def colour_spec(name: str, values: Sequence[Any]) -> ColourSpec:
    """Numeric colour bar for many distinct numbers, categories otherwise."""
    return numeric_colour(name, values) if is_numeric(values) else categorical_colour(name, values)


def document_lengths(texts: Sequence[str]) -> np.ndarray:
    """Length of each document in characters, float32 (a numeric colour)."""
    return np.fromiter((len(t) for t in texts), dtype=np.float32, count=len(texts))


def metadata_columns(metas: Sequence[Mapping[str, Any]], *, limit: int = 50) -> list[str]:
    """Metadata keys in first-seen order (at most `limit`)."""
    seen: dict[str, None] = {}
    for meta in metas:
        for key in meta:
            if key not in seen:
                seen[key] = None
                if len(seen) >= limit:
                    return list(seen)
    return list(seen)
