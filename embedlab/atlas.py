"""The Atlas page's logic, kept free of Streamlit: colour arrays, hover snippets, the map figure and its
payload, selection events to document indices, neighbour rows, search marks, bookmarks, exports.

The map is built for 100k documents without sampling: coordinates go out as float32 typed arrays (plotly
serialises them as base64 `bdata`), `customdata` is the int32 document index, and per-point hover text is
sent only up to HOVER_TEXT_MAX_POINTS documents. Every piece of document text that reaches Plotly is
HTML-escaped, because Plotly renders a subset of HTML in hover labels and legends.
"""
from __future__ import annotations

import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import sqlite_utils

MAX_CATEGORIES = 30
OTHER = "other"
MISSING = "(none)"
NOISE = "noise"
HOVER_TEXT_MAX_POINTS = 20_000
SNIPPET_CHARS = 100
# 29 distinct colours for the most frequent categories; "other" and "(none)" are greys.
PALETTE = ["#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F",
           "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#B68100", "#750D86", "#EB663B", "#511CB5",
           "#00A08B", "#FB00D1", "#FC0080", "#B2828D", "#6C7C32", "#778AAE", "#862A16", "#A777F1", "#620042",
           "#1616A7", "#6C4516"]
OTHER_COLOUR = "#9E9E9E"
MISSING_COLOUR = "#D0D0D0"
UNSELECTED_COLOUR = "#C8C8C8"
UNSELECTED_OPACITY = 0.15


# --- categories and colours ---------------------------------------------------------------------


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
    """What the map is coloured by: `values` are category strings (categorical) or floats (numeric)."""
    name: str
    kind: str  # "categorical" | "numeric"
    values: np.ndarray
    categories: list[str] = field(default_factory=list)


def categorical_colour(name: str, values: Iterable[Any], *, max_categories: int = MAX_CATEGORIES) -> ColourSpec:
    folded, categories = fold_categories(values, max_categories=max_categories)
    return ColourSpec(name, "categorical", folded, categories)


def numeric_colour(name: str, values: Iterable[Any]) -> ColourSpec:
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=np.float32)
    return ColourSpec(name, "numeric", arr)


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


def colour_spec(name: str, values: Sequence[Any]) -> ColourSpec:
    """Numeric colour bar for many distinct numbers, categories otherwise."""
    return numeric_colour(name, values) if is_numeric(values) else categorical_colour(name, values)


# --- text shown on the map ----------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def short_text(text: str | None, limit: int = SNIPPET_CHARS) -> str:
    """Whitespace collapsed and cut to `limit` characters with an ellipsis (not escaped: for dataframes)."""
    flat = _SPACE.sub(" ", text or "").strip()
    return flat if len(flat) <= limit else flat[:max(1, limit - 1)].rstrip() + "…"


def snippet(text: str | None, limit: int = SNIPPET_CHARS) -> str:
    """A hover snippet: cut first, then HTML-escaped (so no entity is cut in half)."""
    return html.escape(short_text(text, limit), quote=True)


def hover_texts(texts: Sequence[str], labels: Sequence[Any] | None = None, *,
                limit: int = SNIPPET_CHARS) -> list[str]:
    """Per-document hover text: the escaped snippet, after the escaped label when `labels` are given (pass
    them when the map is not coloured by label; otherwise the trace name already says it). The only raw
    HTML is ours."""
    if labels is None:
        return [snippet(t, limit) for t in texts]
    return [(f"<i>{html.escape(str(lab), quote=True)}</i><br>" if lab is not None else "") + snippet(t, limit)
            for t, lab in zip(texts, labels)]


# --- the map figure -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Highlight:
    """Documents drawn on top of the map with their own marker (search hits, the focus, its neighbours)."""
    name: str
    indices: Sequence[int]
    symbol: str = "diamond"
    size: int = 11
    colour: str = "#111111"
    line_colour: str = "#FFFFFF"
    hover: Sequence[str] | None = None  # escaped text per index (few points, so always affordable)


def focus_window(coords: np.ndarray, indices: Sequence[int], *, pad: float = 0.25,
                 min_span: float = 0.12) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Axis ranges ((x0, x1), (y0, y1)) framing `indices` on a 2-D map: their bounding box, padded by `pad` of
    its size and at least `min_span` of the whole map's extent wide and high. None for 3-D or no indices.

    Streamlit redraws a chart whose figure changed from scratch (the user's zoom is lost), so after a
    click the page frames the focus and its neighbourhood instead of jumping back to the whole map."""
    coords = np.asarray(coords)
    idx = np.asarray(list(indices), dtype=np.int64)
    if coords.ndim != 2 or coords.shape[1] != 2 or idx.size == 0:
        return None
    full_lo, full_hi = coords.min(axis=0).astype(float), coords.max(axis=0).astype(float)
    lo, hi = coords[idx].min(axis=0).astype(float), coords[idx].max(axis=0).astype(float)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * (1 + pad)
    half = np.maximum(half, (full_hi - full_lo) * min_span / 2)
    half = np.maximum(half, 1e-6)
    half[:] = half.max()  # square window: the map keeps its aspect
    return (float(centre[0] - half[0]), float(centre[0] + half[0])), (float(centre[1] - half[1]),
                                                                       float(centre[1] + half[1]))


def marker_size(n: int) -> float:
    return 7 if n <= 2_000 else 5 if n <= 20_000 else 3 if n <= 100_000 else 2


def build_map_figure(coords: np.ndarray, colour: ColourSpec, *, hover: Sequence[str] | None = None,
                     labels: Sequence[Any] | None = None, selected: Sequence[int] | None = None,
                     highlights: Sequence[Highlight] = (), height: int = 620, uirevision: str | None = None,
                     hover_max_points: int = HOVER_TEXT_MAX_POINTS,
                     window: tuple[tuple[float, float], tuple[float, float]] | None = None) -> "go.Figure":
    """A WebGL scatter (Scatter3d for 3 columns) of the map, coloured by `colour`.

    Categorical: one trace per category (legend); numeric: a shared colour axis (colour bar), one trace
    per label so hover can name the label without per-point text. `hover` (escaped strings, one per
    document, see `hover_texts`) is used only up to `hover_max_points` documents; above, hover shows
    the index and the trace's name. `selected` document indices keep their colour, the rest are greyed
    (2-D); `highlights` are drawn last, on top. `window` ((x0, x1), (y0, y1)) sets the initial view (2-D).
    """
    import plotly.graph_objects as go

    coords = np.ascontiguousarray(coords, dtype=np.float32)
    n, dims = coords.shape
    if dims not in (2, 3):
        raise ValueError(f"a map has 2 or 3 columns, got {dims}")
    three_d = dims == 3
    use_hover = hover is not None and n <= hover_max_points
    sel_mask = None
    if selected is not None and len(selected) and not three_d:
        sel_mask = np.zeros(n, dtype=bool)
        sel_mask[np.asarray(selected, dtype=np.int64)] = True
    size = marker_size(n)

    if colour.kind == "numeric":
        values = np.asarray(colour.values, dtype=np.float32)
        finite = np.isfinite(values)
        lo = float(values[finite].min()) if finite.any() else 0.0
        hi = float(values[finite].max()) if finite.any() else 1.0
        values = np.where(finite, values, lo).astype(np.float32)
        if labels is not None:
            groups, group_names = fold_categories(labels)
        else:
            groups, group_names = np.full(n, colour.name, dtype=object), [colour.name]
        split = [(name, np.flatnonzero(groups == name)) for name in group_names]
    else:
        values, lo, hi = None, 0.0, 1.0
        split = [(name, np.flatnonzero(colour.values == name)) for name in colour.categories]
    colours = category_colours(colour.categories) if colour.kind == "categorical" else {}
    value_name = html.escape(colour.name)

    traces = []
    for name, rows in split:
        if rows.size == 0:
            continue
        rows32 = rows.astype(np.int32)
        marker: dict[str, Any] = {"size": size if not three_d else max(1.5, size - 3), "opacity": 0.85}
        if values is not None:
            marker.update(color=values[rows], coloraxis="coloraxis")
            value_part = f"<br>{value_name}: %{{marker.color:.4g}}"
        else:
            marker["color"] = colours[name]
            value_part = ""
        kwargs: dict[str, Any] = dict(name=html.escape(name, quote=True), customdata=rows32, marker=marker,
                                      mode="markers", showlegend=values is None,
                                      legendgroup=html.escape(name, quote=True))
        if use_hover:
            kwargs["hovertext"] = [hover[i] for i in rows]
            kwargs["hovertemplate"] = ("<b>#%{customdata}</b> · %{fullData.name}<br>%{hovertext}" + value_part
                                       + "<extra></extra>")
        else:
            kwargs["hovertemplate"] = "<b>#%{customdata}</b> · %{fullData.name}" + value_part + "<extra></extra>"
        if three_d:
            traces.append(go.Scatter3d(x=coords[rows, 0], y=coords[rows, 1], z=coords[rows, 2], **kwargs))
        else:
            if sel_mask is not None:
                kwargs["selectedpoints"] = np.flatnonzero(sel_mask[rows]).tolist()
                kwargs["unselected"] = {"marker": {"opacity": UNSELECTED_OPACITY, "color": UNSELECTED_COLOUR}}
            traces.append(go.Scattergl(x=coords[rows, 0], y=coords[rows, 1], **kwargs))

    extra = list(highlights)
    if three_d and selected is not None and len(selected):
        extra.insert(0, Highlight("selection", selected, symbol="circle", size=4, colour="#111111",
                                  line_colour="#111111"))
    for hl in extra:
        raw = np.asarray(list(hl.indices), dtype=np.int64)
        valid = (raw >= 0) & (raw < n)
        idx = raw[valid]
        if idx.size == 0:
            continue
        marker = {"size": hl.size if not three_d else max(3, hl.size - 5), "color": hl.colour,
                  "symbol": hl.symbol, "line": {"width": 1.5, "color": hl.line_colour}, "opacity": 1.0}
        kwargs = dict(name=html.escape(hl.name), customdata=idx.astype(np.int32), mode="markers", marker=marker,
                      showlegend=True, legendgroup=f"highlight-{hl.name}")
        head = f"<b>{html.escape(hl.name)}</b> #%{{customdata}}"
        texts = None
        if hl.hover is not None:
            texts = [t for t, ok in zip(hl.hover, valid) if ok]
        elif hover is not None:
            texts = [hover[i] for i in idx]
        if texts is not None:
            kwargs["hovertext"] = texts
            kwargs["hovertemplate"] = head + "<br>%{hovertext}<extra></extra>"
        else:
            kwargs["hovertemplate"] = head + "<extra></extra>"
        if three_d:
            if hl.symbol not in _SYMBOLS_3D:
                marker["symbol"] = "diamond"
            traces.append(go.Scatter3d(x=coords[idx, 0], y=coords[idx, 1], z=coords[idx, 2], **kwargs))
        else:
            if sel_mask is not None:
                kwargs["selectedpoints"] = list(range(idx.size))  # highlights never grey out
            traces.append(go.Scattergl(x=coords[idx, 0], y=coords[idx, 1], **kwargs))

    fig = go.Figure(traces)
    axis = dict(showticklabels=False, showgrid=three_d, zeroline=False, title=dict(text=""), showline=False)
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=32, b=0), hovermode="closest",
                      legend=dict(itemsizing="constant", title=dict(text=value_name), bgcolor="rgba(0,0,0,0)",
                                  font=dict(size=11)),
                      uirevision=uirevision or "map",
                      hoverlabel=dict(align="left", namelength=-1))
    if three_d:
        fig.update_layout(scene=dict(xaxis=axis, yaxis=axis, zaxis=axis, aspectmode="data",
                                     uirevision=uirevision or "map"))
    else:
        fig.update_xaxes(**axis)
        fig.update_yaxes(**axis, scaleanchor="x", scaleratio=1)  # one unit is as long across as up
        if window is not None:
            fig.update_xaxes(range=list(window[0]))
            fig.update_yaxes(range=list(window[1]))
    if values is not None:
        fig.update_layout(coloraxis=dict(colorscale="Viridis", cmin=lo, cmax=hi,
                                         colorbar=dict(title=dict(text=value_name), thickness=12, len=0.8)))
    return fig


_SYMBOLS_3D = {"circle", "circle-open", "cross", "diamond", "diamond-open", "square", "square-open", "x"}


def map_payload_bytes(fig) -> int:
    """Bytes of the figure's JSON: what Streamlit sends to the browser for it."""
    import plotly.io

    return len(plotly.io.to_json(fig, validate=False).encode())


def payload_caption(n: int, n_bytes: int, *, hover: bool) -> str:
    mb = n_bytes / 1e6
    note = "hover snippets" if hover else f"hover shows index and group (snippets only up to " \
                                          f"{HOVER_TEXT_MAX_POINTS:,} documents)"
    return f"map: {n:,} points, {mb:.2f} MB sent · {note}"


# --- selection ----------------------------------------------------------------------------------


def selection_indices(event: Any) -> np.ndarray:
    """Document indices of a plotly selection event (the chart's return value, its `selection`, or the
    list of points), read from each point's customdata; sorted, unique, int64."""
    if event is None:
        return np.zeros(0, dtype=np.int64)
    selection = _get(event, "selection", event)
    points = _get(selection, "points", selection)
    out: list[int] = []
    for point in points or []:
        value = _get(point, "customdata", None)
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is None:
            continue
        try:
            out.append(int(value))
        except (TypeError, ValueError):
            continue
    return np.unique(np.asarray(out, dtype=np.int64))


def interpret_selection(event: Any) -> tuple[str, np.ndarray] | None:
    """What a plotly selection event asks for: ("click", [idx]) for a single clicked point, ("select", indices)
    for a box or lasso (or several points), None for an empty event.

    An empty event is ignored rather than read as "deselect": Streamlit reports an empty selection for a
    chart that was redrawn with a new figure, which happens after every change of focus or selection.
    """
    selection = _get(event, "selection", event)
    indices = selection_indices(selection)
    if indices.size == 0:
        return None
    dragged = bool(_get(selection, "box", None) or _get(selection, "lasso", None))
    if not dragged and indices.size == 1:
        return "click", indices
    return "select", indices


def _get(obj: Any, key: str, default: Any) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    if isinstance(obj, (list, tuple)):
        return default
    return getattr(obj, key, default)


# --- neighbours, search, quality ----------------------------------------------------------------


def neighbour_rows(X: np.ndarray, coords: np.ndarray | None, focus: int, *, k: int = 10,
                   labels: Sequence[Any] | None = None, texts: Sequence[str] | None = None,
                   quantile: float = 0.9) -> list[dict]:
    """The k nearest documents to `focus` in the original space (cosine), best first, with a flag for
    those the map puts far away (see `embedlab.neighbours.far_on_map`)."""
    from embedlab.neighbours import far_on_map, top_k

    idx, scores = top_k(X, int(focus), k=int(k))
    far = far_on_map(coords, int(focus), idx, quantile=quantile) if coords is not None else \
        np.zeros(len(idx), dtype=bool)
    rows = []
    for rank, (i, s, f) in enumerate(zip(idx.tolist(), scores.tolist(), far.tolist()), start=1):
        rows.append({"rank": rank, "idx": int(i), "cosine": round(float(s), 4),
                     "label": None if labels is None else labels[i],
                     "far on map": bool(f),
                     "text": "" if texts is None else short_text(texts[i], 160)})
    return rows


def semantic_hits(X: np.ndarray, query_vector: np.ndarray, *, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine scores of the k documents nearest to a query vector, best first."""
    from embedlab.neighbours import l2_normalise, top_k

    q = l2_normalise(np.asarray(query_vector, dtype=np.float32).reshape(1, -1))[0]
    return top_k(X, q, k=int(k))


MARK_OPEN, MARK_CLOSE = "\x02", "\x03"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=\"'^%@])")


def escape_markdown(text: str) -> str:
    """Text that Streamlit's markdown shows literally: every markdown-significant character backslash-escaped
    (links, images, LaTeX `$`, `:colour[...]` directives, HTML), newlines flattened."""
    return _MD_SPECIAL.sub(r"\\\1", _SPACE.sub(" ", text))


def marked_to_markdown(snippet_text: str) -> str:
    """An FTS5 snippet with \\x02…\\x03 marks as markdown: marked words bold, everything escaped."""
    out, bold = [], False
    for part in re.split(r"([\x02\x03])", snippet_text or ""):
        if part == MARK_OPEN:
            bold = True
        elif part == MARK_CLOSE:
            bold = False
        elif part:
            escaped = escape_markdown(part)
            out.append(f"**{escaped.strip()}**" if bold and escaped.strip() else escaped)
    return "".join(out)


def marked_to_plain(snippet_text: str) -> str:
    """An FTS5 snippet with its marks shown as « » (for dataframes, which show text literally)."""
    return _SPACE.sub(" ", (snippet_text or "").replace(MARK_OPEN, "«").replace(MARK_CLOSE, "»")).strip()


def quality_verdict(trust: float, overlap: float, *, k: int = 10) -> str:
    """One line telling a user how far to trust distances on the map."""
    if not (np.isfinite(trust) and np.isfinite(overlap)):
        return "Too few documents to judge the map."
    share = f"{overlap:.0%} of each document's {k} true neighbours are among its {k} nearest on the map"
    if trust >= 0.95 and overlap >= 0.5:
        head = "Local neighbourhoods on this map are faithful"
    elif trust >= 0.9:
        head = "Clusters on this map are real, but their fine structure is approximate"
    elif trust >= 0.8:
        head = "Read this map loosely: nearby points are often, not always, similar"
    else:
        head = "This map distorts neighbourhoods a lot"
    return (f"{head}: {share}. Distances between far-apart groups mean little on any map; use the "
            f"neighbour panel (original space) for exact neighbours.")


# --- bookmarks ----------------------------------------------------------------------------------


def add_bookmarks(db: sqlite_utils.Database, session_id: int, corpus_id: int, idxs: Iterable[int], *,
                  tag: str = "", note: str = "") -> int:
    """Bookmark documents under a tag (one transaction); an existing (document, tag) gets the new note."""
    from storage.db import transaction

    rows = [(int(session_id), int(corpus_id), int(i), tag.strip(), note) for i in idxs]
    with transaction(db) as conn:
        conn.executemany("INSERT INTO bookmarks (session_id, corpus_id, idx, tag, note) VALUES (?,?,?,?,?) "
                         "ON CONFLICT (session_id, corpus_id, idx, tag) DO UPDATE SET note = excluded.note", rows)
    return len(rows)


def list_bookmarks(db: sqlite_utils.Database, session_id: int, corpus_id: int, *,
                   tag: str | None = None) -> list[dict]:
    """Bookmarks of a corpus in this session (optionally one tag): idx, tag, note; by tag then index."""
    sql = "SELECT idx, tag, note FROM bookmarks WHERE session_id = ? AND corpus_id = ?"
    args: list[Any] = [session_id, corpus_id]
    if tag is not None:
        sql += " AND tag = ?"
        args.append(tag)
    return [{"idx": r[0], "tag": r[1], "note": r[2]} for r in db.execute(sql + " ORDER BY tag, idx", args)]


def bookmark_tags(db: sqlite_utils.Database, session_id: int, corpus_id: int) -> list[str]:
    return [r[0] for r in db.execute("SELECT DISTINCT tag FROM bookmarks WHERE session_id = ? AND corpus_id = ? "
                                     "ORDER BY tag", [session_id, corpus_id])]


def delete_bookmark(db: sqlite_utils.Database, session_id: int, corpus_id: int, idx: int, tag: str) -> None:
    from storage.db import transaction

    with transaction(db) as conn:
        conn.execute("DELETE FROM bookmarks WHERE session_id = ? AND corpus_id = ? AND idx = ? AND tag = ?",
                     [session_id, corpus_id, int(idx), tag])


# --- selection exports --------------------------------------------------------------------------


def selection_frame(docs: Sequence[Mapping[str, Any]]):
    """Documents (as from `storage.corpora.load_documents`) as a DataFrame: idx, doc_id, label, text and one
    column per metadata key (prefixed `meta.` where a key clashes with those)."""
    import pandas as pd

    base = ("idx", "doc_id", "label", "text")
    rows = []
    for d in docs:
        row = {k: d.get(k) for k in base}
        for key, value in (d.get("meta") or {}).items():
            row[f"meta.{key}" if key in base else key] = value
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else list(base))


def to_csv_bytes(docs: Sequence[Mapping[str, Any]]) -> bytes:
    buf = io.StringIO()
    selection_frame(docs).to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


def to_jsonl_bytes(docs: Sequence[Mapping[str, Any]]) -> bytes:
    lines = [json.dumps({"idx": d.get("idx"), "doc_id": d.get("doc_id"), "label": d.get("label"),
                         "text": d.get("text"), "meta": d.get("meta") or {}}, ensure_ascii=False, default=str)
             for d in docs]
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")
