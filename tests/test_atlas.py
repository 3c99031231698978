"""Atlas: category folding, escaped hover text, selection events, the map's payload at 100k points, 3-D maps,
neighbour rows, search marks and exports; and the Atlas page through AppTest."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pytest

from embedlab.compare import neighbour_disagreement
from embedlab.document_export import bookmark_documents, to_csv_bytes, to_jsonl_bytes
from embedlab.embedding.space import EmbeddingSpace
from embedlab.map_colours import (MAX_CATEGORIES, MISSING, OTHER, categorical_colour, document_lengths,
                                  fold_categories, numeric_colour)
from embedlab.map_figure import Highlight, build_map_figure, focus_window, map_payload_bytes
from embedlab.map_quality import quality_verdict
from embedlab.nearest_documents import neighbour_rows
from embedlab.selection import interpret_selection, selection_indices
from embedlab.tasks import find_projection
from embedlab.text_display import display_text, hover_texts, marked_to_markdown, marked_to_plain, snippet
from storage import connect
from storage.corpora import load_labels, load_texts
from storage.matrices import load_matrix
from tests.builders import open_page, stored_corpus, use_copy_of
from tests.map_support import assert_numeric, click, colours_by_label, drawn_at, legend, maps, ringed, select

XSS = ["<script>alert(1)</script> hello", "<img src=x onerror=alert(2)> world", "plain & simple"]


def all_strings(obj):
    """Every string inside a parsed JSON value."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from all_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from all_strings(v)


# --- categories ------------------------------------------------------------------------------------


def test_more_than_30_categories_fold_into_top_29_and_other():
    # category c appears 100 - c times: frequency order is c0, c1, ...
    values = [f"c{c}" for c in range(40) for _ in range(100 - c)]
    folded, categories = fold_categories(values)
    assert len(categories) == MAX_CATEGORIES
    assert categories[:29] == [f"c{c}" for c in range(29)] and categories[-1] == OTHER
    assert set(folded) == set(categories)
    assert (folded == OTHER).sum() == sum(100 - c for c in range(29, 40))


def test_few_categories_are_kept_and_missing_values_named():
    folded, categories = fold_categories(["b", None, "a", "b", "", float("nan")])
    assert categories == [MISSING, "b", "a"]
    assert folded.tolist() == ["b", MISSING, "a", "b", MISSING, MISSING]


def test_exactly_30_categories_are_not_folded():
    _, categories = fold_categories([f"c{c}" for c in range(30)])
    assert len(categories) == 30 and OTHER not in categories


# --- escaping --------------------------------------------------------------------------------------


def test_snippet_is_cut_then_escaped():
    text = "<script>" + "x" * 200
    out = snippet(text, 100)
    assert out.startswith("&lt;script&gt;") and "<" not in out and out.endswith("…")
    assert len(html.unescape(out)) == 100  # cut on the text, so no entity is cut in half
    assert snippet("a  \n\t b") == "a b"


def test_hover_text_and_legend_never_carry_raw_html():
    coords = np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32)
    labels = ["<b onmouseover=alert(3)>bad</b>", "ok", "ok"]
    fig = build_map_figure(coords, categorical_colour("label", labels), hover=hover_texts(XSS, labels),
                           labels=labels, highlights=[Highlight("focus", [0], hover=[snippet(XSS[0])])])
    raw = fig.to_json()
    assert "<script" not in raw and "<img" not in raw
    strings = list(all_strings(json.loads(raw)))
    assert not any("<script" in s or "<img" in s or "<b onmouseover" in s for s in strings)
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in s for s in strings)
    assert any("&lt;img src=x onerror=alert(2)&gt;" in s for s in strings)
    names = {t.name for t in fig.data}
    assert "&lt;b onmouseover=alert(3)&gt;bad&lt;/b&gt;" in names


def test_markdown_escaping_neutralises_links_images_html_and_latex():
    text = "![x](http://evil/p.png) [a](javascript:1) <b>hi</b> $x^2$ :red[alarm] *b*"
    out = display_text(text)
    for ch in "![]()<>$:*":
        assert all(out[i - 1] == "\\" for i, c in enumerate(out) if c == ch)
    marked = marked_to_markdown("the \x02oil\x03 price [link](http://x)\nnext")
    assert marked.startswith("the **oil** price \\[link\\]\\(http\\:")
    assert "\n" not in marked
    assert marked_to_plain("a \x02b\x03 c") == "a «b» c"


# --- selection -------------------------------------------------------------------------------------


def test_selection_event_maps_to_document_indices_through_customdata():
    event = {"selection": {"points": [{"curve_number": 1, "point_index": 0, "customdata": 42},
                                      {"curve_number": 0, "point_index": 3, "customdata": [7]},
                                      {"curve_number": 2, "point_index": 1, "customdata": 42}],
                           "box": [{"x": [0, 1], "y": [0, 1]}], "lasso": []}}
    assert selection_indices(event).tolist() == [7, 42]
    assert selection_indices(event["selection"]["points"]).tolist() == [7, 42]
    kind, idx = interpret_selection(event)
    assert kind == "select" and idx.tolist() == [7, 42]


def test_single_click_focuses_and_empty_event_is_ignored():
    click = {"selection": {"points": [{"customdata": 5}], "box": [], "lasso": []}}
    kind, idx = interpret_selection(click)
    assert kind == "click" and idx.tolist() == [5]
    assert interpret_selection({"selection": {"points": [], "box": [], "lasso": []}}) is None
    assert interpret_selection(None) is None


def test_selected_points_keep_colour_and_the_rest_grey():
    coords = np.arange(20, dtype=np.float32).reshape(10, 2)
    labels = ["a"] * 5 + ["b"] * 5
    fig = build_map_figure(coords, categorical_colour("label", labels), selected=[1, 6, 7])
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["a"].selectedpoints) == [1] and list(by_name["b"].selectedpoints) == [1, 2]
    assert by_name["a"].unselected.marker.opacity < 0.5
    assert by_name["a"].unselected.marker.color is not None


# --- scale -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_map():
    rng = np.random.default_rng(0)
    n = 100_000
    coords = rng.normal(size=(n, 2)).astype(np.float32)
    labels = [f"topic{int(t)}" for t in rng.integers(0, 40, n)]
    return coords, labels


def test_100k_point_map_sends_typed_arrays_and_stays_small(big_map):
    coords, labels = big_map
    fig = build_map_figure(coords, categorical_colour("label", labels), labels=labels,
                           highlights=[Highlight("focus", [3], symbol="star")])
    spec = json.loads(fig.to_json())
    points = [t for t in spec["data"] if t["name"] != "focus"]
    assert len(points) == 30  # 29 topics and "other"
    for trace in points:
        assert trace["type"] == "scattergl"
        assert trace["x"]["dtype"] == "f4" and "bdata" in trace["x"] and trace["y"]["dtype"] == "f4"
        assert trace["customdata"]["dtype"] == "i4"
        assert "hovertext" not in trace and "text" not in trace
    assert sum(len(np.frombuffer(__import__("base64").b64decode(t["customdata"]["bdata"]), "<i4"))
               for t in points) == 100_000
    size = map_payload_bytes(fig)
    assert size < 2_500_000, size  # measured 1.69 MB


def test_100k_point_numeric_colour_uses_a_colour_bar(big_map):
    coords, labels = big_map
    fig = build_map_figure(coords, numeric_colour("length", np.arange(len(coords))), labels=labels)
    assert fig.layout.coloraxis.colorbar.title.text == "length"
    assert map_payload_bytes(fig) < 3_000_000  # measured 2.47 MB (colours are float32 too)


def test_documents_without_a_numeric_value_are_grey_not_the_lowest_colour():
    """An OOD score for tested documents only, a metadata column with blanks: NaN rows go to one grey trace in the
    legend, and the colour scale spans the real values only (NaN used to be drawn as the minimum)."""
    coords = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    values = [0.5, None, 2.0, float("nan"), 1.0, None]
    fig = build_map_figure(coords, numeric_colour("OOD score", values), labels=["a", "b", "a", "b", "a", "b"])
    by_name = {t.name: t for t in fig.data}
    grey = by_name["no OOD score"]
    assert sorted(np.asarray(grey.customdata).tolist()) == [1, 3, 5]
    assert grey.marker.color == "#D0D0D0" and grey.showlegend
    coloured = [t for t in fig.data if t.name in ("a", "b")]
    assert sorted(len(t.x) for t in coloured) == [3]               # label "b" has no value: no coloured trace
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.5, 2.0)


def test_hover_snippets_only_up_to_20k_points():
    rng = np.random.default_rng(0)
    texts = ["some words"] * 20_001
    coords = rng.normal(size=(20_001, 2)).astype(np.float32)
    colour = categorical_colour("label", ["a"] * 20_001)
    hover = hover_texts(texts)
    assert build_map_figure(coords, colour, hover=hover).data[0].hovertext is None
    assert build_map_figure(coords[:20_000], colour.__class__("label", "categorical", colour.values[:20_000],
                                                             colour.categories),
                            hover=hover[:20_000]).data[0].hovertext is not None


def test_three_columns_give_a_3d_scatter():
    coords = np.random.default_rng(0).normal(size=(50, 3))
    fig = build_map_figure(coords, categorical_colour("label", ["a", "b"] * 25), selected=[1, 2],
                           highlights=[Highlight("focus", [0], symbol="star")])
    assert {t.type for t in fig.data} == {"scatter3d"}
    assert "selection" in {t.name for t in fig.data}  # 3-D has no selectedpoints: drawn as a highlight


def test_focus_window_frames_the_neighbourhood():
    coords = np.array([[0, 0], [100, 100], [10, 10], [12, 11], [11, 14]], dtype=np.float32)
    (x0, x1), (y0, y1) = focus_window(coords, [2, 3, 4])
    assert x0 < 10 and x1 > 12 and y0 < 10 and y1 > 14
    assert x1 - x0 == pytest.approx(y1 - y0)  # square: the map keeps its aspect
    assert x1 - x0 < 30  # a close-up, not the whole map
    (x0, x1), _ = focus_window(coords, [2])  # one point: at least min_span of the map
    assert x1 - x0 == pytest.approx(0.12 * 100)
    assert focus_window(np.zeros((5, 3)), [1]) is None and focus_window(coords, []) is None
    fig = build_map_figure(coords, categorical_colour("l", ["a"] * 5), window=((1, 2), (3, 4)))
    assert tuple(fig.layout.xaxis.range) == (1, 2) and tuple(fig.layout.yaxis.range) == (3, 4)


def test_document_lengths_are_float32():
    lengths = document_lengths(["ab", "", "abcd"])
    assert lengths.dtype == np.float32 and lengths.tolist() == [2, 0, 4]


# --- neighbours and quality -----------------------------------------------------------------------


def test_neighbour_rows_flag_neighbours_far_on_the_map():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 16)).astype(np.float32)
    X[1] = X[0] + 0.01  # the nearest neighbour of 0 in the original space
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    coords = rng.normal(size=(200, 2))
    coords[0], coords[1] = (0, 0), (100, 100)  # ... but far away on the map
    rows = neighbour_rows(X, coords, 0, k=5, labels=["x"] * 200, texts=["t"] * 200)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["idx"] == 1 and rows[0]["far on map"] and rows[0]["cosine"] > 0.99
    assert rows[0]["cosine"] >= rows[1]["cosine"]


def test_neighbour_rows_carry_enough_text_to_read():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 8)).astype(np.float32)
    texts = [f"document {i} " + "with a long and winding sentence about it " * 20 for i in range(30)]
    texts[5] = "short one"
    rows = neighbour_rows(X, None, 0, k=29, texts=texts)
    long_rows = [r for r in rows if r["idx"] != 5]
    assert all(len(r["text"]) >= 150 and r["cut"] for r in long_rows)
    assert all(texts[r["idx"]].startswith(r["text"][:100]) for r in long_rows)
    short = next(r for r in rows if r["idx"] == 5)
    assert short["text"] == "short one" and not short["cut"]


def test_quality_verdict_reads_as_one_line():
    good = quality_verdict(0.97, 0.6)
    poor = quality_verdict(0.7, 0.05)
    assert "faithful" in good and "60%" in good and "\n" not in good
    assert "distorts" in poor


# --- exports (bookmarks themselves are tested in test_storage.py) ----------------------------------


def test_selection_exports_keep_text_and_metadata():
    import io

    import pandas as pd

    docs = [{"idx": 3, "doc_id": "d3", "text": XSS[0], "label": "x", "meta": {"source": "web", "text": "clash"}},
            {"idx": 5, "doc_id": "d5", "text": "a,b\n\"c\"", "label": None, "meta": {}}]
    frame = pd.read_csv(io.BytesIO(to_csv_bytes(docs)))
    assert frame["text"].tolist() == [XSS[0], "a,b\n\"c\""]
    assert frame["meta.text"].tolist()[0] == "clash" and frame["source"].tolist()[0] == "web"
    lines = to_jsonl_bytes(docs).decode().splitlines()
    assert [json.loads(line) for line in lines][0] == {"idx": 3, "doc_id": "d3", "label": "x", "text": XSS[0],
                                                       "meta": {"source": "web", "text": "clash"}}


def test_bookmark_export_carries_full_text_tag_and_note():
    marks = [{"idx": 1, "tag": "check", "note": "why?"}, {"idx": 9, "tag": "gone", "note": ""}]
    docs = bookmark_documents(marks, ["zero", "one " * 100], ["a", "b"])
    assert docs == [{"idx": 1, "label": "b", "text": "one " * 100, "meta": {"tag": "check", "note": "why?"}}]
    assert json.loads(to_jsonl_bytes(docs))["doc_id"] is None
    assert bookmark_documents(marks[:1], ["zero", "one"])[0]["label"] is None


# --- the page (AppTest) ---------------------------------------------------------------------------

PAGE = "pages/atlas.py"


@pytest.fixture(scope="module")
def atlas_db(tmp_path_factory) -> Path:
    """A session `s` with a 60-document corpus, its tfidf-svd embedding with 2-D and 3-D PCA maps, and a second
    embedding ("fake-model") with a 2-D map (built once, copied per test)."""
    import embedlab.tasks  # noqa: F401 - registers the job kinds
    from embedlab.embedding.cache import cache_key, compute_embedding
    from embedlab.embedding.embedders import get_embedder
    from embedlab.jobs import run_job
    from storage import connect
    from storage.matrices import save_matrix

    path = tmp_path_factory.mktemp("atlas") / "template.sqlite"
    db = connect(path)
    topics = {"sport": "match team goal player season coach", "money": "bank market stock price trade profit",
              "space": "rocket orbit nasa launch planet moon"}
    texts, labels = [], []
    for t, (label, words) in enumerate(topics.items()):
        for i in range(20):
            w = words.split()
            texts.append(f"{w[i % 6]} {w[(i + 1) % 6]} {w[(i + 2) % 6]} story {i} about {label}")
            labels.append(label)
    texts[0] = "<script>alert('x')</script> match team goal"
    sid, info = stored_corpus(db, texts, labels, name="news", doc_ids=[f"d{i}" for i in range(len(texts))],
                              metas=[{"source": "wire" if i % 2 else "web"} for i in range(len(texts))])
    compute_embedding(db, texts, "tfidf-svd", content_hash=info.content_hash, corpus_id=info.id)
    # A second "model" (random vectors stored under its cache key) to compare with; no weights are loaded.
    fake = get_embedder("fake-model")
    vectors = np.random.default_rng(0).normal(size=(len(texts), 8)).astype(np.float32)
    save_matrix(db, vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
                cache_key=cache_key(fake, info.content_hash), kind="embedding", model="fake-model",
                params=fake.identity(), corpus_id=info.id, content_hash=info.content_hash)
    pca = {"corpus_id": info.id, "method": "pca", "n_neighbors": 15, "min_dist": 0.1, "seed": 42}
    run_job(db, "project", {**pca, "model": "fake-model", "n_components": 2}, session_id=sid)
    run_job(db, "project", {**pca, "model": "tfidf-svd", "n_components": 3}, session_id=sid)
    run_job(db, "project", {**pca, "model": "tfidf-svd", "n_components": 2}, session_id=sid)  # the latest: shown
    db.close()
    return path


@pytest.fixture
def atlas_env(atlas_db, tmp_path, monkeypatch) -> Path:
    return use_copy_of(atlas_db, tmp_path, monkeypatch)


def open_atlas(session: str = "s", state: dict | None = None):
    at = open_page(PAGE, session=session, state=state)
    assert not at.exception, at.exception
    return at


def stored_map(path: Path, model: str = "tfidf-svd", dims: int = 2) -> tuple[list[str], np.ndarray, list[str]]:
    """(labels, the stored PCA map's coordinates, texts) of corpus "news"."""
    db = connect(path)
    try:
        cid = db.execute("SELECT id FROM corpora WHERE name = 'news'").fetchone()[0]
        proj = find_projection(db, cid, model, method="pca", n_components=dims, n_neighbors=15, min_dist=0.1,
                               seed=42)
        return load_labels(db, cid), load_matrix(db, proj.id), load_texts(db, cid)
    finally:
        db.close()


def embedding(path: Path, model: str) -> np.ndarray:
    """Corpus "news"'s stored embedding by `model`."""
    db = connect(path)
    try:
        cid = db.execute("SELECT id FROM corpora WHERE name = 'news'").fetchone()[0]
        return EmbeddingSpace.for_corpus(db, cid, model).documents()
    finally:
        db.close()


def test_atlas_page_draws_the_stored_map(atlas_env):
    at = open_atlas()
    assert not at.get("plotly_chart")                       # a 2-D map is the WebGL map, not Plotly
    shown = maps(at)
    assert list(shown) == ["atlas_map"]
    main = shown["atlas_map"]
    labels, coords, texts = stored_map(atlas_env)
    assert drawn_at(main, coords)                           # the stored map's 60 points, every one of them
    colours = colours_by_label(main, labels)                # one colour per label ...
    assert legend(main) == colours and len(set(colours.values())) == 3     # ... named in the legend
    assert main.layer["title"] == "label" and main.layer["focus"] is None and not main.layer["marks"]
    # hover text goes to the browser as the text itself (the page shows it with textContent, never as markup)
    assert main.texts[0] == texts[0] == "<script>alert('x')</script> match team goal"
    # (the Plotly path's "map: N points · MB sent" caption is gone: bench/map_scale.py measures the bytes sent)


def test_atlas_page_offers_to_embed_a_corpus_without_embedding(atlas_env):
    from storage import connect

    stored_corpus(connect(atlas_env), ["a b", "c d"], session="fresh", name="raw", doc_ids=["1", "2"])
    at = open_atlas("fresh")
    assert [b.label for b in at.button if b.key == "atlas_embed"] == ["Embed and map"]
    assert not at.get("plotly_chart") and not maps(at)


def test_focusing_a_document_shows_it_literally_and_its_neighbours(atlas_env):
    import re

    at = open_atlas(state={"atlas_focus": 0})
    assert any("<script>alert('x')</script>" in t.value for t in at.text)  # st.text: shown, never rendered
    focus_buttons = [b for b in at.button if b.label == "Focus"]
    assert len(focus_buttons) == 10
    lines = [m.value for m in at.markdown if re.match(r"\*\*\d+\.\*\* cosine", m.value)]
    cosines = [float(re.search(r"cosine \*\*([-0-9.]+)\*\*", line).group(1)) for line in lines]
    assert len(cosines) == 10 and cosines == sorted(cosines, reverse=True)
    assert not any(line.endswith("· #0") for line in lines)  # the focus is not its own neighbour
    listed = [int(re.search(r"#(\d+)$", line).group(1)) for line in lines]
    main = maps(at)["atlas_map"]
    assert main.layer["focus"] == 0 and ("★ focus", main.layer["focus_colour"]) in map(tuple, main.layer["legend"])
    assert ringed(main) == {"neighbours": listed}          # the ten neighbours listed, ringed on the map
    assert main.layer["zoom_to"][0] == 0 and set(main.layer["zoom_to"][1:]) <= set(listed)   # "Zoom to focus"
    focus_buttons[0].click().run()
    assert not at.exception and at.session_state["atlas_focus"] == listed[0]
    assert maps(at)["atlas_map"].layer["focus"] == listed[0]
    click(at, "atlas_map", 45)                               # a click on a point focuses it
    assert not at.exception, at.exception
    assert at.session_state["atlas_focus"] == 45 and maps(at)["atlas_map"].layer["focus"] == 45
    assert any(t.value == stored_map(atlas_env)[2][45] for t in at.text)    # and shows it


def test_keyword_search_lists_and_highlights_hits(atlas_env):
    at = open_atlas(state={"atlas_search_mode": "Keyword"})
    at.text_input(key="atlas_query").input("rocket").run()
    assert not at.exception
    hits = next(d.value for d in at.dataframe if "score" in d.value.columns)
    assert len(hits) > 0 and all("«rocket»" in t for t in hits["text"])
    main = maps(at)["atlas_map"]
    assert ringed(main) == {"search hits": hits["idx"].tolist()}     # every hit listed is ringed, nothing else
    assert main.emphasis is None and main.selected == []             # the hits are marked, not selected


def test_semantic_search_with_the_tfidf_baseline(atlas_env):
    at = open_atlas()
    at.text_input(key="atlas_query").input("stock market").run()
    assert not at.exception
    hits = next(d.value for d in at.dataframe if "score" in d.value.columns)
    assert (hits["label"].head(5) == "money").all()


def test_selection_tab_lists_the_selected_documents_with_downloads(atlas_env):
    at = open_atlas(state={"atlas_selection": [1, 2, 30], "atlas_tab": "☑️ Selection"})
    table = next(d.value for d in at.dataframe if "doc_id" in d.value.columns)
    assert table["idx"].tolist() == [1, 2, 30] and "source" in table.columns
    assert {b.label for b in at.get("download_button")} >= {"⬇ CSV", "⬇ JSONL"}
    main = maps(at)["atlas_map"]
    assert main.selected == [1, 2, 30]                                 # outlined
    assert np.flatnonzero(main.emphasis).tolist() == [1, 2, 30]        # in full colour, the rest faded
    select(at, "atlas_map", [7, 8, 50])                                # a box or lasso on the map
    assert not at.exception, at.exception
    assert at.session_state["atlas_selection"] == [7, 8, 50]
    table = next(d.value for d in at.dataframe if "doc_id" in d.value.columns)
    assert table["idx"].tolist() == [7, 8, 50] and maps(at)["atlas_map"].selected == [7, 8, 50]


@pytest.mark.parametrize("tab", ["🧩 Clusters", "🔖 Bookmarks", "📏 Quality"])
def test_every_tab_renders(atlas_env, tab):
    at = open_atlas(state={"atlas_tab": tab})
    if tab == "📏 Quality":
        assert len(at.metric) == 2 and any("neighbours" in i.value for i in at.info)
    if tab == "🧩 Clusters":
        assert any("keywords" in d.value.columns for d in at.dataframe)


def test_missing_map_offers_to_compute_it(atlas_env):
    at = open_atlas(state={"atlas_method": "umap"})
    assert [b.label for b in at.button if b.key == "atlas_compute"] == ["Compute map"]
    assert not at.get("plotly_chart") and not maps(at)


def test_bookmarking_the_focused_document_lists_it_under_its_tag(atlas_env):
    from storage import connect
    from storage.bookmarks import list_bookmarks

    at = open_atlas(state={"atlas_focus": 4})
    tag = next(t for t in at.text_input if t.label == "Tag")
    tag.input("to check")
    next(b for b in at.button if b.label == "Save bookmark").click().run()
    assert not at.exception
    db = connect(atlas_env)
    sid = db.execute("SELECT id FROM sessions WHERE name = 's'").fetchone()[0]
    cid = db.execute("SELECT id FROM corpora WHERE session_id = ?", [sid]).fetchone()[0]
    assert list_bookmarks(db, sid, cid) == [{"idx": 4, "tag": "to check", "note": ""}]
    at.session_state["atlas_tab"] = "🔖 Bookmarks"
    at.run()
    table = next(d.value for d in at.dataframe if "tag" in d.value.columns)
    assert table["idx"].tolist() == [4] and table["tag"].tolist() == ["to check"]


def test_search_hits_can_become_the_selection(atlas_env):
    at = open_atlas(state={"atlas_search_mode": "Keyword"})
    at.text_input(key="atlas_query").input("orbit").run()
    at.button(key="atlas_hits_select").click().run()
    assert not at.exception
    selected = at.session_state["atlas_selection"]
    assert selected and all("orbit" in t for t in _texts(atlas_env, selected))
    at.button(key="atlas_clear_sel").click().run()
    assert at.session_state["atlas_selection"] == []


def _texts(path, idxs):
    from storage import connect

    db = connect(path)
    return [r[0] for r in db.execute(f"SELECT text FROM documents WHERE idx IN ({','.join('?' * len(idxs))})",
                                     list(idxs))]


def test_compare_two_models_side_by_side(atlas_env):
    at = open_atlas(state={"atlas_tab": "⚖️ Compare", "atlas_selection": [3, 4]})
    assert at.selectbox(key="atlas_cmp_with").value == "model: fake-model"
    assert [m.label for m in at.metric] == ["Linear CKA", "Neighbour overlap@10"]
    shown = maps(at)
    assert list(shown) == ["atlas_map", "atlas_cmp_a", "atlas_cmp_b"]  # the main map, then the two compared maps
    labels, coords, _ = stored_map(atlas_env)
    assert drawn_at(shown["atlas_cmp_a"], coords)
    assert drawn_at(shown["atlas_cmp_b"], stored_map(atlas_env, "fake-model")[1])
    main = colours_by_label(shown["atlas_map"], labels)
    for side in ("atlas_cmp_a", "atlas_cmp_b"):  # coloured by label by default: the same colour per label
        assert colours_by_label(shown[side], labels) == main and legend(shown[side]) == main
        assert shown[side].selected == [3, 4]                           # linked selection: outlined in both
        assert np.flatnonzero(shown[side].emphasis).tolist() == [3, 4]  # and the rest faded in both
    at.selectbox(key="atlas_cmp_colour").select("neighbour overlap").run()
    assert not at.exception
    overlap = neighbour_disagreement(embedding(atlas_env, "tfidf-svd"), embedding(atlas_env, "fake-model"), k=10,
                                     depth=50)["overlap"]
    for side in ("atlas_cmp_a", "atlas_cmp_b"):   # each document in the colour of its overlap, named by the title
        assert_numeric(maps(at)[side], "neighbour overlap@10", overlap)
    # (Plotly's colour bar and horizontal legend are gone: the WebGL map's legend is one row under the map)
    select(at, "atlas_cmp_b", [10, 11, 12])        # a selection in either map is the selection of both
    assert not at.exception and at.session_state["atlas_selection"] == [10, 11, 12]
    assert [maps(at)[k].selected for k in ("atlas_map", "atlas_cmp_a", "atlas_cmp_b")] == [[10, 11, 12]] * 3
    low = next(d.value for d in at.dataframe if "displacement" in d.value.columns)
    assert low["displacement"].is_monotonic_decreasing
    sides = [d.value for d in at.dataframe if "both" in d.value.columns]
    assert len(sides) == 2 and all(len(t) == 10 for t in sides)  # the two neighbour lists of the top document
    assert sides[0]["doc"].tolist() != sides[1]["doc"].tolist()


def test_compare_with_another_stored_map(atlas_env):
    at = open_atlas(state={"atlas_tab": "⚖️ Compare"})
    other = next(o for o in at.selectbox(key="atlas_cmp_with").options if o.startswith("map: pca 3-D"))
    at.selectbox(key="atlas_cmp_with").select(other).run()
    assert not at.exception
    assert list(maps(at)) == ["atlas_map", "atlas_cmp_a"]          # 2-D: WebGL; the 3-D map stays Plotly
    assert [{t["type"] for t in json.loads(c.proto.spec)["data"]} for c in at.get("plotly_chart")] == [{"scatter3d"}]
    assert any("3-D maps are drawn with Plotly" in c.value for c in at.caption)


# --- labels: names and one colour per label (issue 12) ---------------------------------------------------------


def test_a_label_keeps_its_colour_and_legend_place_in_every_figure():
    from embedlab.map_colours import PALETTE, label_colour, label_palette

    labels = ["3", "1", "4", "1", "2", "10"] * 5 + ["4"] * 20   # frequencies differ from the sorted order
    palette = label_palette(labels)
    assert [palette[v] for v in ["1", "2", "3", "4", "10"]] == PALETTE[:5]  # natural order: "10" last
    full = label_colour(labels, palette=palette)
    subset = label_colour(["4", "2", "4"], palette=palette)  # a map of a few documents (OOD test set, say)
    assert full.categories == ["1", "2", "3", "4", "10"] and subset.categories == ["2", "4"]
    assert subset.colour_of() == {c: full.colour_of()[c] for c in ["2", "4"]}
    coords = np.random.default_rng(0).normal(size=(len(labels), 2))
    fig_a = build_map_figure(coords, full)
    fig_b = build_map_figure(coords[::-1], label_colour(labels[::-1], palette=label_palette(labels[::-1])))
    assert [(t.name, t.marker.color) for t in fig_a.data] == [(t.name, t.marker.color) for t in fig_b.data]


def test_named_labels_show_their_names_in_the_colour_of_their_value():
    from embedlab.map_colours import MISSING, label_colour, label_palette

    labels = ["1", "2", "3", "4", None, "2"]
    names = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}
    named, plain = label_colour(labels, names=names), label_colour(labels)
    assert named.categories == ["World", "Sports", "Business", "Sci/Tech", MISSING]
    assert [named.colour_of()[c] for c in named.categories] == [plain.colour_of()[c] for c in plain.categories]
    assert named.values.tolist()[:2] == ["World", "Sports"]
    assert label_palette(labels) == label_palette(list(reversed(labels)))


def test_more_labels_than_colours_fold_the_rarest_into_other_everywhere():
    from embedlab.map_colours import OTHER, OTHER_COLOUR, label_colour, label_palette

    labels = [f"intent{c}" for c in range(40) for _ in range(50 - c)]
    palette = label_palette(labels)
    assert palette[OTHER] == OTHER_COLOUR and "intent39" not in palette
    spec = label_colour(["intent39", "intent0"], palette=palette)
    assert spec.categories == ["intent0", OTHER] and spec.colour_of()[OTHER] == OTHER_COLOUR


def test_label_names_are_stored_per_corpus_and_survive_a_migration(tmp_path):
    import sqlite3

    from embedlab.errors import InputError
    from storage import connect
    from storage.label_names import get_label_names, parse_label_names, set_label_names
    from storage.schema import SCHEMA_VERSION, user_version

    # a database of schema version 1 (before label names) opens, migrates and keeps its rows
    old = tmp_path / "old.sqlite"
    raw = sqlite3.connect(old)
    from storage.schema import MIGRATIONS, _split_statements
    for statement in _split_statements(MIGRATIONS[0]):
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.execute("INSERT INTO sessions (name, created_at, updated_at) VALUES ('s', 't', 't')")
    raw.commit()
    raw.close()
    db = connect(old)
    assert user_version(db) == SCHEMA_VERSION >= 2
    _, info = stored_corpus(db, ["a", "b", "c"], ["1", "2", "2"], name="ag")
    _, other = stored_corpus(db, ["x"], ["1"], name="other")
    assert set_label_names(db, info.id, {"1": " World ", "2": "Sports", "3": ""}) == {"1": "World", "2": "Sports"}
    assert get_label_names(db, info.id) == {"1": "World", "2": "Sports"} and get_label_names(db, other.id) == {}
    set_label_names(db, info.id, {"1": "World", "2": "2"})  # a name equal to its label is no name
    assert get_label_names(db, info.id) == {"1": "World"}
    with pytest.raises(InputError):
        set_label_names(db, info.id, {"1": "x" * 101})
    assert get_label_names(db, info.id) == {"1": "World"}  # nothing changed
    db.execute("DELETE FROM corpora WHERE id = ?", [info.id])
    assert db.execute("SELECT COUNT(*) FROM label_names").fetchone()[0] == 0
    # AG News' classes.txt: one name per line, in label order; or label,name rows
    labels = ["1", "2", "3", "4", "10"]
    assert parse_label_names("World\nSports\nBusiness\nSci/Tech\nOther\n", labels)["10"] == "Other"
    assert parse_label_names("label,name\n2,Sports\n4,Sci/Tech\n", labels) == {"2": "Sports", "4": "Sci/Tech"}
    with pytest.raises(InputError, match="5 labels"):
        parse_label_names("World\nSports\n", labels)


def test_naming_labels_on_the_atlas_renames_the_legend_and_keeps_the_colours(atlas_env):
    from storage import connect
    from storage.label_names import get_label_names

    at = open_atlas()
    before = legend(maps(at)["atlas_map"])
    codes_before = [maps(at)["atlas_map"].colour_of(i) for i in range(60)]
    assert any(getattr(p.proto.popover, "label", "") == "🏷️ Label names" for p in at.get("popover"))
    db = connect(atlas_env)
    cid = db.execute("SELECT id FROM corpora WHERE name = 'news'").fetchone()[0]
    # AppTest cannot type into a data editor: store the names as its Save button does
    from storage.label_names import set_label_names
    set_label_names(db, cid, {"money": "Business", "space": "Sci/Tech"})
    at.run()
    assert not at.exception
    after = legend(maps(at)["atlas_map"])
    assert after == {"sport": before["sport"], "Business": before["money"], "Sci/Tech": before["space"]}
    assert [maps(at)["atlas_map"].colour_of(i) for i in range(60)] == codes_before   # every document keeps its colour
    assert get_label_names(db, cid) == {"money": "Business", "space": "Sci/Tech"}
    at.session_state["atlas_focus"] = 25
    at.run()
    assert any("label *Business*" in m.value or "label *Sci/Tech*" in m.value for m in at.markdown)


def test_map_keeps_one_uirevision_across_colour_changes_and_a_new_one_per_map():
    from embedlab.map_figure import map_revision

    coords = np.random.default_rng(0).normal(size=(40, 2))
    rev = map_revision(1, "all-MiniLM-L6-v2", 7)
    by_label = build_map_figure(coords, categorical_colour("label", ["a", "b"] * 20), uirevision=rev)
    by_length = build_map_figure(coords, numeric_colour("length", np.arange(40)), uirevision=rev,
                                 highlights=[Highlight("focus", [3])], selected=[1, 2])
    assert by_label.layout.uirevision == by_length.layout.uirevision == rev
    assert len({rev, map_revision(2, "all-MiniLM-L6-v2", 7), map_revision(1, "tfidf-svd", 7),
                map_revision(1, "all-MiniLM-L6-v2", 8)}) == 4
    # the same inputs give the same figure, byte for byte: Streamlit then keeps the chart (and the user's zoom)
    assert by_label.to_json() == build_map_figure(coords, categorical_colour("label", ["a", "b"] * 20),
                                                  uirevision=rev).to_json()


def test_robust_axes_frame_the_bulk_when_outliers_squeeze_the_map():
    from embedlab.map_figure import robust_ranges

    rng = np.random.default_rng(0)
    coords = rng.normal(size=(2000, 2))
    assert robust_ranges(coords) is None  # nothing to gain: the whole map is shown
    coords[:5] = [[400, 0], [0, -300], [250, 250], [-500, 10], [0, 900]]  # TF-IDF-like outliers
    (x0, x1), (y0, y1) = robust_ranges(coords)
    assert -6 < x0 < -2 and 2 < x1 < 6 and -6 < y0 < -2 and 2 < y1 < 6
    fig = build_map_figure(coords, categorical_colour("l", ["a"] * 2000))
    assert tuple(fig.layout.xaxis.range) == pytest.approx((x0, x1), rel=1e-5)
    assert build_map_figure(coords, categorical_colour("l", ["a"] * 2000), robust_axes=False).layout.xaxis.range is None


def test_map_settings_are_rebuilt_from_the_stored_map_when_the_browser_sends_defaults(atlas_env):
    # what a browser tab reloaded during a map job sent: no method, no dimensions, sliders at their minimums
    at = open_atlas()
    at.session_state["atlas_method"] = None
    at.session_state["atlas_dims"] = None
    at.run()
    assert not at.exception, at.exception  # was: TypeError 'NoneType' object is not subscriptable
    assert at.session_state["atlas_method"] == "pca" and at.session_state["atlas_dims"] == "2-D"
    at.session_state["atlas_method"] = "none"
    at.run()
    assert not at.exception  # was: ValueError unknown projection method 'none'
    assert at.segmented_control(key="atlas_method").value == "pca" and list(maps(at)) == ["atlas_map"]


def test_map_settings_follow_the_map_being_computed(atlas_env):
    from storage import connect

    db = connect(atlas_env)
    sid = db.execute("SELECT id FROM sessions WHERE name = 's'").fetchone()[0]
    cid = db.execute("SELECT id FROM corpora WHERE name = 'news'").fetchone()[0]
    params = {"corpus_id": cid, "model": "tfidf-svd", "method": "umap", "n_components": 2, "n_neighbors": 30,
              "min_dist": 0.25, "seed": 7}
    import json as _json
    import os
    import socket
    import time
    db.execute("INSERT INTO jobs (session_id, kind, params_json, status, owner, heartbeat_at) VALUES "
               "(?, 'project', ?, 'running', ?, ?)",
               [sid, _json.dumps(params, sort_keys=True), f"{socket.gethostname()}:{os.getpid()}", time.time()])
    db.conn.commit()
    at = open_atlas()  # a fresh browser session (a reload) while that job runs
    assert [at.session_state[k] for k in ("atlas_method", "atlas_dims", "atlas_nn", "atlas_md", "atlas_seed")] \
        == ["umap", "2-D", 30, 0.25, 7]
    assert any("Computing the map" in c.value for c in at.caption)


def test_the_url_leads_the_view_and_what_a_corpus_lacks_falls_back_with_a_toast(atlas_env):
    """Issue 21: the URL owns the Atlas's view. A link's colour that the corpus lacks ("label" on a corpus without
    labels) gives way to the first colour with a toast, and the URL names what is shown; a URL that changes under
    the app (Back, Forward) is put back on screen: corpus, colour, focus, tab."""
    from streamlit.testing.v1 import AppTest

    from embedlab.embedding.cache import compute_embedding
    from storage import connect
    from tests.builders import APP

    db = connect(atlas_env)
    texts = [f"plain text {i} about {'nothing' if i % 2 else 'anything'}" for i in range(12)]
    _, info = stored_corpus(db, texts, session="s", name="plain")
    compute_embedding(db, texts, "tfidf-svd", content_hash=info.content_hash, corpus_id=info.id)
    db.close()
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("pages/atlas.py")
    at.query_params.update(session="s", corpus="plain", colour="label", focus="3", tab="clusters")
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="atlas_colour").value == "cluster"
    assert [t.value for t in at.toast if "has no colour" in t.value] == [
        "“plain” has no colour “label”: colouring by “cluster”."]
    assert at.query_params["colour"] == "cluster" and at.query_params["focus"] == "3"
    assert at.query_params["tab"] == "Clusters" and "colour=cluster" in at.sidebar.code[0].value
    linked = dict(at.query_params)

    at.selectbox(key="atlas_corpus").select("news").run()          # the user leads: the URL follows
    at.selectbox(key="atlas_colour").select("label").run()
    assert not at.exception, at.exception
    assert (at.query_params["corpus"], at.query_params["colour"]) == ("news", "label")
    assert "focus" not in at.query_params and not [t for t in at.toast if "has no colour" in t.value]

    at.query_params.clear()                                       # Back: the browser sends the earlier URL
    at.query_params.update(linked)
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="atlas_corpus").value == "plain" and at.selectbox(key="atlas_colour").value == "cluster"
    assert at.session_state["atlas_focus"] == 3 and at.session_state["atlas_tab"] == "🧩 Clusters"
    assert dict(at.query_params) == {**linked, "model": "tfidf-svd"}    # the model box has drawn meanwhile
