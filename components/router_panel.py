"""The router of a retrieval run (`embedlab.retrieval.methods.router`): how often each expert answered, and the
router's nDCG@10 beside each expert's (when the run has it) and the oracle's (the best expert per query)."""
from __future__ import annotations

import math
from typing import Any, Mapping

import plotly.graph_objects as go
import streamlit as st

from components.metric_table import method_colours
from embedlab.text_display import display_text, html_text

ORACLE_COLOUR = "#BAB0AC"
PANEL_HEIGHT = 300


def router_names(metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The methods of a run that routed queries (their entry carries a `routed` mapping)."""
    return [m for m, v in metrics.items() if isinstance(v, Mapping) and isinstance(v.get("routed"), Mapping)]


def _ndcg(entry: Mapping[str, Any] | None) -> float | None:
    value = (entry or {}).get("ndcg@10")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def router_summary(metrics: Mapping[str, Mapping[str, Any]], name: str) -> dict[str, Any]:
    """What the panel shows of one router: its routing counts and shares, and nDCG@10 of the experts present in
    the run, the router and the oracle (the bars, in that order), and the experts the run lacks."""
    entry = metrics[name]
    routed = {str(e): int(n) for e, n in entry["routed"].items()}
    total = sum(routed.values())
    bars = [(e, _ndcg(metrics.get(e))) for e in routed if e != name]
    missing = [e for e, v in bars if v is None]
    bars = [(e, v) for e, v in bars if v is not None]
    router = _ndcg(entry)
    oracle = entry.get("oracle_ndcg@10")
    oracle = float(oracle) if isinstance(oracle, (int, float)) and math.isfinite(oracle) else None
    best = max(bars, key=lambda ev: ev[1]) if bars else None
    return {"routed": routed, "total": total,
            "shares": {e: (n / total if total else 0.0) for e, n in routed.items()},
            "bars": [*bars, (name, router), ("oracle", oracle)], "missing": missing, "best": best,
            "router": router, "oracle": oracle}


def routed_figure(summary: dict, colours: Mapping[str, str]) -> go.Figure:
    experts = list(summary["routed"])
    counts = [summary["routed"][e] for e in experts]
    fig = go.Figure(go.Bar(
        x=counts, y=[html_text(e) for e in experts], orientation="h",
        marker_color=[colours.get(e, "#4E79A7") for e in experts],
        text=[f"{n:,} ({summary['shares'][e]:.0%})" for e, n in zip(experts, counts)], textposition="auto",
        hovertemplate="%{y}: %{x:,} queries<extra></extra>"))
    fig.update_layout(height=PANEL_HEIGHT, margin=dict(l=0, r=10, t=40, b=0), showlegend=False,
                      title=f"Queries routed to each expert ({summary['total']:,})",
                      xaxis=dict(title="queries"), yaxis=dict(autorange="reversed"))
    return fig


def quality_figure(summary: dict, name: str, colours: Mapping[str, str]) -> go.Figure:
    bars = [(label, v) for label, v in summary["bars"] if v is not None]
    labels = [label for label, _ in bars]
    values = [v for _, v in bars]
    fill = [ORACLE_COLOUR if label == "oracle" else colours.get(label, "#4E79A7") for label in labels]
    fig = go.Figure(go.Bar(
        x=[html_text(label) for label in labels], y=values, marker_color=fill, text=[f"{v:.3f}" for v in values],
        textposition="outside",
        marker_pattern_shape=["/" if label == "oracle" else "" for label in labels],
        marker_line=dict(width=[2 if label == name else 0 for label in labels], color="#31333F"),
        hovertemplate="%{x}: nDCG@10 %{y:.4f}<extra></extra>", cliponaxis=False))
    top = max(values) if values else 1.0
    fig.update_layout(height=PANEL_HEIGHT, margin=dict(l=0, r=10, t=40, b=0), showlegend=False,
                      title="nDCG@10: the experts, the router, the oracle",
                      yaxis=dict(title="nDCG@10", range=[0, top * 1.18 if top > 0 else 1]))
    return fig


def verdict(summary: dict, name: str) -> str:
    """One line of Markdown: the router against its best expert in the run, and how much of the gap to the oracle it
    closed."""
    router, oracle, best = summary["router"], summary["oracle"], summary["best"]
    parts = []
    if router is not None and best is not None:
        parts.append(f"{display_text(name)} {router:.3f} against the best expert in this run, {display_text(best[0])} "
                     f"{best[1]:.3f} "
                     f"({router - best[1]:+.3f})")
    if router is not None and oracle is not None:
        parts.append(f"oracle {oracle:.3f} (each query answered by its best expert)")
        if best is not None and oracle > best[1] + 1e-9:
            parts.append(f"the router closes {(router - best[1]) / (oracle - best[1]):.0%} of the gap from the best "
                         "expert to the oracle")
    return " · ".join(parts)


def router_panel(metrics: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any] | None = None, *,
                 key: str) -> None:
    """For each router of a run: a bar of queries per expert and nDCG@10 of experts, router and oracle."""
    colours = method_colours(metrics)
    for name in router_names(metrics):
        summary = router_summary(metrics, name)
        st.markdown(f"##### Routing · {display_text(name)}")
        left, right = st.columns(2)
        left.plotly_chart(routed_figure(summary, colours), width="stretch", key=f"{key}-{name}-routed")
        right.plotly_chart(quality_figure(summary, name, colours), width="stretch", key=f"{key}-{name}-quality")
        line = verdict(summary, name)
        if line:
            st.caption(line)
        if summary["missing"]:
            st.caption(f"Not in this run, so not drawn: {display_text(', '.join(summary['missing']))} (routed to, "
                       "but not compared on its own; add it to the methods to see its nDCG@10).")
        tuned = [e for e in summary["routed"] if e in ((params or {}).get("params") or {})]
        if tuned:
            st.caption(f"{display_text(', '.join(tuned))} ran in this comparison with changed parameters; the "
                       "router's experts use each method's defaults.")
