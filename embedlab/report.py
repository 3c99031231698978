"""One self-contained HTML report of a session, to hand out: it opens from disk with no network.

Each corpus's 2-D map is drawn by the app's own WebGL map (regl-scatterplot and the map's code inlined once at the
end of the page, the points and colours as base64 payloads), so a 100k-point corpus stays usable; Plotly's
JavaScript is inlined once, before the first Plotly figure (3-D maps, ROC curves, histograms). Each corpus's map
(the latest stored projection of each of its embeddings, hover text and label colours as on the Atlas),
bookmarked documents with their nearest neighbours (cosine, in the embedding space), the relevance judgments (counts
per judge, the agreement of every two judges), and every retrieval and OOD run with its metric table and plots (a
run on the user's judgments with its condensed-list scores too). All text from the session, in the page and in the figures (Plotly renders
HTML tags and entities in its text), goes through `embedlab.text_display.html_text`; hover text through
`hover_texts`.
"""
from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from embedlab.embedding.embedders import DEFAULT_MODEL
from embedlab.errors import UserError
from embedlab.formatting import as_number
from embedlab.judgments import agreement
from embedlab.map_colours import document_lengths, label_colour, numeric_colour
from embedlab.map_figure import HOVER_TEXT_MAX_POINTS, build_map_figure
from embedlab.neighbours import l2_normalise, top_k
from embedlab.run_tables import BEST, MetricTable, build_time_note, legend, ood_table, retrieval_table
from embedlab.runs import OODRun, RetrievalRun, Run, list_runs, load_run
from embedlab.scatter_layer import ScatterLayer, layer_of
from embedlab.scatter_payload import (LEGEND_CSS, LEGEND_HTML, MAP_CSS, MAP_HTML, layer_js, pack_layer, pack_points,
                                      points_js)
from embedlab.text_display import hover_texts, html_text
from storage.bookmarks import list_bookmarks
from storage.corpora import list_corpora, load_documents
from storage.judgments import judgment_counts
from storage.label_names import get_label_names
from storage.matrices import list_matrices, load_matrix
from storage.output_files import atomic_output, check_output_path
from storage.sessions import get_session_id

NEIGHBOURS = 5
BOOKMARK_TEXT_CHARS = 1_000
NEIGHBOUR_TEXT_CHARS = 300
MAP_HEIGHT = 560


class ReportError(UserError):
    """A report that cannot be written (no such session, an output path that is a folder)."""


@dataclass
class _Doc:
    """The HTML being assembled, with the one-time inclusion of Plotly's JavaScript."""
    parts: list[str] = field(default_factory=list)
    toc: list[tuple[str, str, int]] = field(default_factory=list)
    plotly_included: bool = False
    figures: int = 0
    maps: int = 0

    def add(self, text: str) -> None:
        self.parts.append(text)

    def heading(self, level: int, text: str) -> None:
        anchor = f"s{len(self.toc) + 1}"
        self.toc.append((anchor, text, level))
        self.add(f'<h{level} id="{anchor}">{html_text(text)}</h{level}>')

    def scatter(self, coords: np.ndarray, layer: ScatterLayer, texts: Sequence[str] | None, key: str) -> None:
        """A 2-D map drawn by the app's WebGL map (regl-scatterplot, inlined once by `_page`): its two payloads as
        base64 in the page, read by the same JavaScript as the app's."""
        points = pack_points(coords, key=key, height=MAP_HEIGHT, hover=texts)
        layer_bytes = pack_layer(layer, key=key, n=len(coords), coords=coords)
        self.add(f'<div class="embedlab-map-host">{MAP_HTML}{LEGEND_HTML}'
                 f'<script type="application/octet-stream" class="points">{base64.b64encode(points).decode()}</script>'
                 f'<script type="application/octet-stream" class="layer">{base64.b64encode(layer_bytes).decode()}'
                 '</script></div>')
        self.maps += 1

    def figure(self, fig) -> None:
        import plotly.io

        fig.update_layout(template="plotly_white")
        self.add(plotly.io.to_html(fig, include_plotlyjs=not self.plotly_included, full_html=False,
                                   config={"displaylogo": False, "responsive": True},
                                   div_id=f"fig{self.figures + 1}", validate=False))
        self.plotly_included = True
        self.figures += 1


def build_report(db: sqlite_utils.Database, session: str, *, neighbours: int = NEIGHBOURS) -> str:
    """The report of session `session` as one HTML document (a string)."""
    sid = get_session_id(db, session)
    if sid is None:
        raise ReportError(f"no session named {session!r}")
    row = db.execute("SELECT name, created_at, updated_at, notes FROM sessions WHERE id = ?", [sid]).fetchone()
    doc = _Doc()
    corpora = list_corpora(db, sid)
    runs = sorted(list_runs(db, sid), key=lambda r: r.id)

    doc.add(f"<p class='meta'>Session created {html_text(row[1])} · last changed {html_text(row[2])} · "
            f"{len(corpora)} corpora · {len(runs)} runs · report written "
            f"{html_text(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))} by EmbedLab</p>")
    if row[3].strip():
        doc.heading(2, "Notes")
        doc.add(f"<pre class='notes'>{html_text(row[3])}</pre>")

    doc.heading(2, "Maps")
    if not corpora:
        doc.add("<p>This session has no corpus.</p>")
    for corpus in corpora:
        _corpus_maps(doc, db, corpus)

    doc.heading(2, "Bookmarks")
    marked = False
    for corpus in corpora:
        marked |= _bookmarks(doc, db, sid, corpus, k=neighbours)
    if not marked:
        doc.add("<p>No bookmarked documents.</p>")

    doc.heading(2, "Judgments")
    _judgments(doc, db, sid)

    doc.heading(2, "Runs")
    if not runs:
        doc.add("<p>No retrieval or OOD run.</p>")
    for r in runs:
        _run_section(doc, load_run(db, r.id))
    return _page(row[0], doc)


def write_report(db: sqlite_utils.Database, session: str, out_path: str | os.PathLike, *,
                 neighbours: int = NEIGHBOURS) -> Path:
    """Write the report of `session` to `out_path` (replaced whole, never half-written); return the path.
    Nothing is written when the session does not exist or `out_path` is a folder."""
    out = Path(out_path)
    if out.is_dir():
        raise ReportError(f"{out} is a folder: give a file name for the report")
    if not out.parent.is_dir():
        raise ReportError(f"{out.parent} is not a folder: create it first or give another path")
    database = db.conn.execute("PRAGMA database_list").fetchone()[2]
    if database:
        check_output_path(out, flag="--out", database=database)
    text = build_report(db, session, neighbours=neighbours)
    try:
        with atomic_output(out) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return out


# ------------------------------------------------------------------------------------------------ maps

def _embedded_models(db, content_hash: str, corpus_id: int) -> list[str]:
    models: list[str] = []
    for m in list_matrices(db, content_hash, kind="embedding", corpus_id=corpus_id):
        if m.model not in models:
            models.append(m.model)
    return models


def _latest_embedding(db, content_hash: str, model: str, corpus_id: int):
    found = [m for m in list_matrices(db, content_hash, kind="embedding", corpus_id=corpus_id) if m.model == model]
    return found[-1] if found else None


def _describe_projection(params: Mapping[str, Any]) -> str:
    text = f"{params.get('method', '?')} {params.get('n_components', 2)}-D"
    if params.get("method") == "umap":
        text += f", n_neighbors {params.get('n_neighbors')}, min_dist {params.get('min_dist')}"
    return text


def _corpus_maps(doc: _Doc, db, corpus) -> None:
    doc.heading(3, f"Corpus “{corpus.name}”")
    doc.add(f"<p class='meta'>{corpus.n_docs:,} documents · label column "
            f"{html_text(corpus.label_col or '—')} · source {html_text(corpus.source or '—')}</p>")
    models = _embedded_models(db, corpus.content_hash, corpus.id)
    if not models:
        doc.add("<p>Not embedded yet: no map.</p>")
        return
    projections = list_matrices(db, corpus.content_hash, kind="projection", corpus_id=corpus.id)
    docs = None
    for model in models:
        mine = [p for p in projections if p.model == model and p.cols in (2, 3)]
        if not mine:
            doc.add(f"<p>{html_text(model)}: embedded, no map stored yet (compute it on the Atlas).</p>")
            continue
        proj = mine[-1]
        if docs is None:
            docs = load_documents(db, corpus.id)
        texts = [d["text"] for d in docs]
        labels = [d["label"] for d in docs]
        has_labels = any(lab is not None for lab in labels)
        coords = load_matrix(db, proj)
        if len(coords) != len(texts):
            doc.add(f"<p>{html_text(model)}: the stored map does not match the documents; skipped.</p>")
            continue
        # as on the Atlas: one stable colour per label value, labels shown by the names given to them
        colour = label_colour(labels, names=_label_names(db, corpus.id)) if has_labels else \
            numeric_colour("length (characters)", document_lengths(texts))
        doc.add(f"<p class='meta'>Map of {html_text(model)} ({html_text(_describe_projection(proj.params))}), "
                f"{len(coords):,} points, coloured by {'label' if has_labels else 'length'}. Hover a point for its "
                "text; scroll to zoom, drag to pan.</p>")
        if coords.shape[1] == 2:
            hover = texts if len(texts) <= HOVER_TEXT_MAX_POINTS else None   # the file stays small; "#i · label"
            doc.scatter(coords, layer_of(colour), hover, key=f"report-{corpus.id}-{model}")
            continue
        fig = build_map_figure(coords, colour, hover=hover_texts(texts), height=MAP_HEIGHT,
                               uirevision=f"report-{corpus.id}-{model}")
        fig.update_layout(title=dict(text=html_text(f"{corpus.name} · {model} · "
                                                      f"{_describe_projection(proj.params)}"), font=dict(size=14)))
        doc.figure(fig)


def _label_names(db, corpus_id: int) -> dict[str, str]:
    return get_label_names(db, corpus_id)


# ------------------------------------------------------------------------------------------------ bookmarks

def _bookmarks(doc: _Doc, db, session_id: int, corpus, *, k: int) -> bool:
    marks = list_bookmarks(db, session_id, corpus.id)
    if not marks:
        return False
    doc.heading(3, f"Bookmarks of “{corpus.name}”")
    models = _embedded_models(db, corpus.content_hash, corpus.id)
    model = DEFAULT_MODEL if DEFAULT_MODEL in models else (models[0] if models else None)
    X = None
    if model is not None:
        X = l2_normalise(np.asarray(load_matrix(db, _latest_embedding(db, corpus.content_hash, model, corpus.id)),
                                    dtype=np.float32))
        doc.add(f"<p class='meta'>Neighbours: the {k} nearest documents by cosine in the {html_text(model)} "
                "embedding (the original space, not the map).</p>")
    else:
        doc.add("<p class='meta'>This corpus is not embedded: no neighbours.</p>")
    names = _label_names(db, corpus.id)
    wanted = sorted({m["idx"] for m in marks})
    by_idx = {d["idx"]: d for d in load_documents(db, corpus.id, wanted)}
    for mark in marks:
        d = by_idx.get(mark["idx"])
        if d is None:
            continue
        tag = f" · tag {html_text(mark['tag'])}" if mark["tag"] else ""
        label = f" · label {html_text(names.get(str(d['label']), str(d['label'])))}" \
            if d.get("label") is not None else ""
        doc.add(f"<div class='bookmark'><p><b>Document #{d['idx']}</b>{label}{tag}</p>"
                f"<blockquote>{html_text(_cut(d['text'], BOOKMARK_TEXT_CHARS))}</blockquote>")
        if mark["note"]:
            doc.add(f"<p class='note'>Note: {html_text(mark['note'])}</p>")
        if X is not None and 0 <= d["idx"] < len(X):
            idx, scores = top_k(X, int(d["idx"]), k=k)
            near = {n["idx"]: n for n in load_documents(db, corpus.id, [int(i) for i in idx])}
            rows = [[str(rank), f"#{int(i)}", f"{float(s):.4f}",
                     "" if near.get(int(i), {}).get("label") is None else
                     names.get(str(near[int(i)]["label"]), str(near[int(i)]["label"])),
                     _cut(near.get(int(i), {}).get("text", ""), NEIGHBOUR_TEXT_CHARS)]
                    for rank, (i, s) in enumerate(zip(idx.tolist(), scores.tolist()), start=1)]
            doc.add(_table(["rank", "document", "cosine", "label", "text"], rows, cls="neighbours"))
        doc.add("</div>")
    return True


def _judgments(doc: _Doc, db, session_id: int) -> None:
    """Per corpus with judgments: counts per judge, and the agreement of every two judges on their shared pairs."""
    counts = judgment_counts(db, session_id)
    if not counts:
        doc.add("<p>No relevance judgments.</p>")
        return
    by_corpus: dict[int, list[dict]] = {}
    for row in counts:
        by_corpus.setdefault(row["corpus_id"], []).append(row)
    for corpus_id, rows in by_corpus.items():
        doc.heading(3, f"Judgments of “{rows[0]['corpus']}”")
        doc.add(_table(["judge", "judgments", "queries", "relevant (grade > 0)", "last judged"],
                       [[r["judge"], f"{r['judgments']:,}", f"{r['queries']:,}", f"{r['relevant']:,}", r["last"]]
                        for r in rows], cls="metrics"))
        judges = [r["judge"] for r in rows]
        pairs = [(a, b) for i, a in enumerate(judges) for b in judges[i + 1:]]
        if not pairs:
            continue
        table = []
        for a, b in pairs:
            found = agreement(db, session_id, corpus_id, a, b)
            table.append([a, b, f"{found.pairs:,}", "—" if found.agreement is None else f"{found.agreement:.3f}",
                          "—" if found.kappa is None else f"{found.kappa:.3f}", f"{len(found.disagreements):,}"])
        doc.add(_table(["judge A", "judge B", "shared pairs", "raw agreement", "Cohen's kappa", "disagreements"],
                       table, cls="metrics"))
        doc.add("<p class='meta'>Agreement on the pairs both judges graded; kappa is “—” where undefined (no shared "
                "pair, or one grade everywhere).</p>")


# ------------------------------------------------------------------------------------------------ runs

def _run_section(doc: _Doc, run: Run) -> None:
    doc.heading(3, f"Run #{run.id} · {run.kind} · {run.created_at}")
    params = {k: v for k, v in run.params.items() if not isinstance(v, (dict, list))}
    if params:
        doc.add("<p class='meta'>" + " · ".join(f"{html_text(str(k))}: {html_text(_short(v))}"
                                                for k, v in params.items()) + "</p>")
    metrics = run.metrics
    if not metrics:
        doc.add("<p>This run has no metrics.</p>")
        return
    if isinstance(run, RetrievalRun):
        doc.add(_metric_table(retrieval_table(metrics, significance=run.significance, baseline=run.baseline)))
        note = build_time_note(run.embed_s) if any("build_s" in v for v in metrics.values()) else ""
        doc.add(f"<p class='meta'>{html_text(legend(significance=bool(run.significance), baseline=run.baseline))}. "
                f"{html_text(note)}</p>")
        if run.condensed:
            shown = ("ndcg@10", "recall@10", "mrr@10", "map@100")
            doc.add("<p class='meta'>Condensed lists (Sakai 2007): every document nobody judged removed from each "
                    "ranking before scoring; beside the scores above, where unjudged documents count as not "
                    "relevant.</p>")
            doc.add(_table(["method", *shown], [[m, *("—" if v.get(k) is None else f"{float(v[k]):.4f}"
                                                      for k in shown)] for m, v in run.condensed.items()],
                           cls="metrics"))
        for x, title in (("ms_per_query", "ms per query"), ("index_bytes", "index size (bytes)")):
            fig = _tradeoff_figure(metrics, x=x, x_title=title)
            if fig is not None:
                doc.figure(fig)
    elif isinstance(run, OODRun):
        doc.add(_metric_table(ood_table(metrics)))
        doc.add(f"<p class='meta'>{BEST} best in its column.</p>")
        roc = run.details.get("roc") or {}
        if roc:
            doc.figure(_roc_figure(roc, metrics))
        scores, is_ood = run.scores, run.is_ood
        best = max(metrics, key=lambda m: as_number(metrics[m].get("auroc")) or 0)
        if best in scores and is_ood and len(scores[best]) == len(is_ood):
            doc.figure(_histogram_figure(best, scores[best], is_ood))


def _metric_table(table: MetricTable) -> str:
    """A run's metric table (the page's cells, `embedlab.run_tables`), its best cells bold."""
    head = "".join(f"<th>{html_text(h)}</th>" for h in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{'<b>' if (r, c) in table.best else ''}{html_text(cell)}"
                                    f"{'</b>' if (r, c) in table.best else ''}</td>" for c, cell in enumerate(row))
                   + "</tr>" for r, row in enumerate(table.rows))
    return f"<table class='metrics'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tradeoff_figure(metrics, *, x: str, x_title: str, y: str = "ndcg@10"):
    import plotly.graph_objects as go

    points = [(m, as_number(v.get(x)), as_number(v.get(y))) for m, v in metrics.items()]
    points = [(m, a, b) for m, a, b in points if a is not None and b is not None and a > 0]
    if len(points) < 2:
        return None
    fig = go.Figure(go.Scatter(x=[p[1] for p in points], y=[p[2] for p in points],
                               text=[html_text(p[0]) for p in points], mode="markers+text",
                               textposition="top center", marker=dict(size=11), cliponaxis=False,
                               hovertemplate="%{text}<br>" + html_text(x_title) + ": %{x:.4g}<br>" + y
                               + ": %{y:.4f}<extra></extra>"))
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10), showlegend=False,
                      title=html_text(f"{y} vs {x_title}"), xaxis=dict(title=html_text(x_title), type="log"),
                      yaxis=dict(title=y))
    return fig


def _roc_figure(roc: Mapping[str, Mapping[str, Sequence[float]]], metrics):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#AAAAAA", width=1),
                               hoverinfo="skip", showlegend=False))
    for method, curve in roc.items():
        auroc = as_number((metrics.get(method) or {}).get("auroc"))
        name = html_text(method) + (f" ({auroc:.3f})" if auroc is not None else "")
        fig.add_trace(go.Scatter(x=list(curve.get("fpr", [])), y=list(curve.get("tpr", [])), mode="lines",
                                 name=name))
    fig.update_layout(height=400, margin=dict(l=10, r=10, t=40, b=10), title="ROC curves (OOD positive)",
                      xaxis=dict(title="false positive rate (ID flagged)", range=[0, 1]),
                      yaxis=dict(title="true positive rate (OOD caught)", range=[0, 1]))
    return fig


def _histogram_figure(method: str, scores: Sequence[float], is_ood: Sequence[Any]):
    import plotly.graph_objects as go

    s = np.asarray(scores, dtype=np.float64)
    ood = np.asarray(is_ood, dtype=bool)
    fig = go.Figure()
    for mask, name, colour in ((~ood, "in-distribution", "#4E79A7"), (ood, "OOD", "#E15759")):
        fig.add_trace(go.Histogram(x=s[mask & np.isfinite(s)], name=name, opacity=0.6, marker_color=colour,
                                   nbinsx=50))
    fig.update_layout(barmode="overlay", height=340, margin=dict(l=10, r=10, t=40, b=10),
                      title=html_text(f"Scores of {method} (higher = more OOD)"),
                      xaxis=dict(title="score"), yaxis=dict(title="documents"))
    return fig


# ------------------------------------------------------------------------------------------------ HTML

def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str) -> str:
    head = "".join(f"<th>{html_text(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html_text(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _short(value: Any, limit: int = 120) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _cut(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#262730}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:2rem;margin:.2em 0}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
h3{margin-top:1.6em}.meta{color:#666;font-size:.9rem}nav ul{columns:2;font-size:.9rem}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:.85rem;width:100%}
th,td{border:1px solid #e3e3e3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f6f8}table.metrics td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}
blockquote{margin:.4em 0 .6em;padding:.4em .8em;border-left:3px solid #4E79A7;background:#f8f9fb}
pre.notes{white-space:pre-wrap;background:#f8f9fb;padding:.8em}.bookmark{margin-bottom:1.6em}.note{font-style:italic}
"""


def _page(session_name: str, doc: _Doc) -> str:
    toc = "".join(f"<li style='margin-left:{(level - 2) * 1.2}em'><a href='#{a}'>{html_text(t)}</a></li>"
                  for a, t, level in doc.toc)
    title = html_text(f"EmbedLab report · {session_name}")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{title}</title><style>{_CSS}{MAP_CSS}{LEGEND_CSS}</style></head><body><main>"
            f"<h1>Session “{html_text(session_name)}”</h1><nav><ul>{toc}</ul></nav>"
            + "\n".join(doc.parts) + "</main>" + (_map_scripts() if doc.maps else "") + "</body></html>\n")


def _map_scripts() -> str:
    """The WebGL map's JavaScript (regl-scatterplot and the app's own map code, inlined), then one module that
    mounts every map of the page from its base64 payloads. `</script` cannot occur in the inlined code."""
    boot = """const MAPS = window.__embedlabMaps;
const bytes = (text) => Uint8Array.from(atob(text.trim()), (c) => c.charCodeAt(0));
for (const host of document.querySelectorAll('.embedlab-map-host')) {
  MAPS.__mountPoints({data: bytes(host.querySelector('script.points').textContent), parentElement: host,
                      setTriggerValue: () => {}});
  MAPS.__mountLayer({data: bytes(host.querySelector('script.layer').textContent), parentElement: host});
}"""
    escaped = (code.replace("</script", "<\\/script") for code in (points_js(), layer_js(), boot))
    return "".join(f'<script type="module">{code}</script>' for code in escaped)
