"""Text from data never becomes markup (issue 20, item 3): `display_text` (Streamlit Markdown) and `html_text`
(HTML and Plotly) on a list of payloads, then the same payloads in every place that shows data: a session whose
name, notes, corpus, labels, texts, ids, metadata, bookmarks, retrieval run (BEIR-like, with warnings), OOD run
and failed jobs carry them, every page and Atlas tab run under AppTest, the report's HTML, and a session file
imported under a hostile file name."""
from __future__ import annotations

import base64
import copy
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from map_support import maps

from embedlab.scatter_payload import decode_map

from embedlab.text_display import WORD_JOINER, display_text, hover_texts, html_text, marked_to_markdown, snippet
from tests.builders import open_page, use_copy_of, write_beir, zip_folder

IMAGE = "![p](http://127.0.0.1:9/p.png)"
LINK = "[x](javascript:alert(1))"
RAW_HTML = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"
LATEX = "$\\href{http://x}{y}$"
COLOUR = ":red[boom]"
ICON = ":material/home:"
BOLD = "**bold**"
CODE = "`code`"
HEADING = "x\n# heading"
QUOTES = "\"a\" 'b'"
ENTITY = "&amp;"
ICON_AFTER_ESCAPES = ":material_home:"      # Streamlit replaces it in text, after escapes are resolved
BARE_URL = "http://127.0.0.1:9/auto"        # GFM autolinks it in text, after escapes are resolved
PAYLOADS = [IMAGE, LINK, RAW_HTML, SCRIPT, LATEX, COLOUR, ICON, BOLD, CODE, HEADING, QUOTES, ENTITY,
            ICON_AFTER_ESCAPES, BARE_URL]
# The payloads of the issue on one line, within the 200 characters of a session or corpus name.
NAME = " ".join(p.replace("\n", " ") for p in PAYLOADS[:12])
FILE_STEM = "![f](x.png) <img src=x onerror=alert(1)> :red[f]"   # no "/" in a file name
METHOD = "![m](http://127.0.0.1:9/m.png) <img src=x onerror=alert(1)> :red[m] \"q\""
META_COLUMN = "<img src=x onerror=alert(1)> ![c](http://127.0.0.1:9/c.png)"

# --- what Markdown and Plotly would still read as markup ---------------------------------------------------------

_ESCAPED = re.compile(r"\\[!-/:-@\[-`{-~]")
# Unescaped in the Markdown source: a payload's markup is live.
LIVE_IN_MARKDOWN = [re.escape(s) for s in ("![", "](", "<img", "<script", "$\\href", ":red[", "**bold**", "`code`",
                                           ":material/", "&amp;")] + [r"(^|\n)[ \t]*#+ heading"]
# In the text once escapes are resolved (Streamlit's icon, logo and emoji replacements and GFM's autolinks run there).
LIVE_IN_TEXT = [":material_home:", ":streamlit:", "http://127.0.0.1:9"]


def live(markdown: str) -> str:
    """The Markdown source with every backslash-escaped character blanked: what is left is read as markup."""
    return _ESCAPED.sub("\x00", markdown)


def resolved(markdown: str) -> str:
    """The text Markdown shows for plain escaped text (escapes resolved), with the word joiners still in it."""
    return _ESCAPED.sub(lambda m: m.group(0)[1], markdown)


def live_markup(markdown: str) -> list[str]:
    found = [p for p in LIVE_IN_MARKDOWN if re.search(p, live(markdown))]
    return found + [p for p in LIVE_IN_TEXT if p in resolved(markdown)]


_PLOTLY_ENTITIES = {"mu": "μ", "amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0", "times": "×", "plusmn": "±",
                    "deg": "°"}


def plotly_shows(text: str) -> str:
    """What Plotly draws for a text without tags: its entities decoded as plotly.js's `convertEntities` does
    (numeric ones, and only the eight named ones above; any other stays as written)."""
    assert not re.search(r"<\w", text), text

    def one(m: re.Match) -> str:
        name = m.group(1)
        if name.startswith("#"):
            return chr(int(name[2:], 16) if name[1] in "xX" else int(name[1:]))
        return _PLOTLY_ENTITIES.get(name, m.group(0))

    return re.sub(r"&(#\d+|#x[\da-fA-F]+|[a-z]+);", one, text)


# --- the two functions ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
def test_display_text_leaves_no_punctuation_live_and_shows_the_payload(payload):
    out = display_text(payload)
    assert not re.search(r"[!#-&(-/:-@\[-`{-~]", live(out)), out  # no punctuation but quotes is left to Markdown
    assert "\n" not in out and not live_markup(out)
    assert resolved(out).replace(WORD_JOINER, "") == " ".join(payload.split())   # and shows it as written


def test_display_text_breaks_what_streamlit_replaces_after_escapes():
    out = resolved(display_text("see :material_home: :streamlit: :smile: http://h.io www.h.io a@h.io"))
    for pattern in (":material_", ":streamlit:", ":smile:", "http://", "www.", "a@h"):
        assert pattern not in out
    assert out.replace(WORD_JOINER, "") == "see :material_home: :streamlit: :smile: http://h.io www.h.io a@h.io"
    assert display_text("Note: nDCG@10 at 10:30") == "Note\\: nDCG\\@10 at 10\\:30"      # nothing there to break
    assert display_text(None) == "" and display_text(12.5) == "12\\.5"


def test_display_text_keeps_lines_apart_without_markup():
    out = display_text("first line\n# heading\n\n- item\n1. one\n| a | b |", keep_lines=True)
    assert out.split("  \n") == ["first line", "\\# heading", "", "\\- item", "1\\. one", "\\| a \\| b \\|"]
    assert not live_markup(out)


def test_marked_snippets_bold_only_the_matched_words():
    out = marked_to_markdown(f"the \x02oil\x03 price {IMAGE}\nnext {COLOUR}")
    assert out.startswith("the **oil** price ") and "\n" not in out
    assert not live_markup(out.replace("**oil**", ""))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_html_text_is_text_in_html_and_in_plotly(payload):
    out = html_text(payload)
    parsed = _Tags()
    parsed.feed(f"<p title='{out}' data-x=\"{out}\">{out}</p>")
    assert parsed.tags == ["p"] and "".join(parsed.text) == payload    # no tag, and the browser shows it as written
    assert html.unescape(out) == payload
    assert plotly_shows(out) == payload                                 # and so does Plotly
    assert "&quot;" not in out


def test_plotly_legend_and_hover_keep_quotes_readable():
    from embedlab.map_colours import categorical_colour
    from embedlab.map_figure import build_map_figure

    labels = [QUOTES, f"{SCRIPT} & more", "100%{x}"]
    coords = np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32)
    fig = build_map_figure(coords, categorical_colour("label", labels), hover=hover_texts(labels, labels),
                           labels=labels)
    assert sorted(plotly_shows(t.name) for t in fig.data) == sorted(labels)   # the legend reads the raw labels
    assert not any("&quot;" in t.name for t in fig.data)
    assert plotly_shows(html.escape(QUOTES, quote=True)) == "&quot;a&quot; 'b'"   # what html.escape showed before
    hover = [h for t in fig.data for h in t.hovertext]
    assert "<i>&#x22;a&#x22; &#x27;b&#x27;</i><br>&#x22;a&#x22; &#x27;b&#x27;" in hover
    assert "100&#x25;{x}" in {t.name for t in fig.data}        # "%{x}" from data names no template variable
    assert snippet(SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"


# --- every place that shows data ------------------------------------------------------------------------------------

TOPICS = ["apple banana fruit orchard", "car engine wheel garage", "ocean wave beach surf", "guitar music song chord",
          "planet star orbit telescope", "bread flour oven bakery", "river lake boat fishing"]
DOCS_PER_LABEL = 8
LABELS = [QUOTES, IMAGE, RAW_HTML, SCRIPT, COLOUR, HEADING, ENTITY]   # one payload per label value (and topic)
OOD_LABEL = LABELS[-1]
ONE_LINE = [p.replace("\n", " ") for p in PAYLOADS]   # ids: no newline (BEIR's qrels are lines)


def hostile_documents() -> tuple[list[str], list[str], list[str], list[dict]]:
    """(texts, labels, doc ids, metadata) of a corpus whose every field carries payloads."""
    texts, labels, ids, metas = [], [], [], []
    for t, (topic, label) in enumerate(zip(TOPICS, LABELS)):
        words = topic.split()
        for i in range(DOCS_PER_LABEL):
            n = len(texts)
            texts.append(f"{words[i % 4]} {words[(i + 1) % 4]} {words[(i + 2) % 4]} {PAYLOADS[n % len(PAYLOADS)]} "
                         f"{PAYLOADS[(n + 5) % len(PAYLOADS)]} document {n}")
            labels.append(label)
            ids.append(f"{ONE_LINE[n % len(ONE_LINE)]} #{n}")
            metas.append({META_COLUMN: PAYLOADS[n % 4], "source": ONE_LINE[(n + 3) % len(ONE_LINE)]})
    return texts, labels, ids, metas


def crafted_retrieval_run(run: dict) -> tuple[dict, dict, dict]:
    """A copy of a stored run as a crafted session file could carry it: method "dense" renamed to a payload, which is
    also the baseline, and a router that routes to it (params, metrics, details)."""
    def rename(value):
        if isinstance(value, dict):
            return {(METHOD if k == "dense" else k): rename(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rename(v) for v in value]
        return METHOD if value == "dense" else value

    params, metrics, details = (rename(copy.deepcopy(run[k])) for k in ("params", "metrics", "details"))
    params["baseline"] = details["baseline"] = METHOD
    metrics["router"] = {"ndcg@10": 0.5, "oracle_ndcg@10": 0.7, "routed": {"bm25": 2, METHOD: 3}}
    details["warnings"] = [*details.get("warnings", []), f"query {IMAGE} {RAW_HTML} was odd"]
    return params, metrics, details


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> Path:
    """Session NAME with corpus NAME (payload labels, texts, ids, metadata; tfidf-svd embedding, 2-D PCA map),
    bookmarks, notes, a BEIR run on the same documents (ids, queries and dataset name from the payloads; qrels
    naming unknown ids, so the run warns), a crafted copy of it, an OOD run holding out a payload label, and failed
    jobs whose messages carry payloads."""
    import embedlab.tasks  # noqa: F401 - registers the job kinds
    from embedlab.corpus import Corpus
    from embedlab.jobs import run_job
    from storage import connect
    from storage.bookmarks import add_bookmarks
    from storage.corpora import save_corpus
    from storage.sessions import ensure_session, load_run, save_run, set_notes

    root = tmp_path_factory.mktemp("hostile")
    path = root / "template.sqlite"
    texts, labels, ids, metas = hostile_documents()
    db = connect(path)
    sid = ensure_session(db, NAME)
    set_notes(db, NAME, "\n".join(PAYLOADS))
    info = save_corpus(db, sid, Corpus(name=NAME, source=FILE_STEM, texts=texts, doc_ids=ids, labels=labels,
                                       metas=metas, text_col="text", label_col=LABELS[0]))
    add_bookmarks(db, sid, info.id, [0, 1], tag=NAME, note="\n".join(PAYLOADS))
    run_job(db, "project", {"corpus_id": info.id, "model": "tfidf-svd", "method": "pca", "n_components": 2,
                            "n_neighbors": 15, "min_dist": 0.1, "seed": 42}, session_id=sid)

    queries = [{"_id": f"{ONE_LINE[j]} q{j}", "text": f"{TOPICS[j]} {PAYLOADS[j]}"} for j in range(len(TOPICS))]
    qrels = [(q["_id"], ids[i], 1) for j, q in enumerate(queries) for i in range(len(ids))
             if labels[i] == LABELS[j]]
    qrels += [(queries[0]["_id"], f"{IMAGE} missing", 1), (f"{RAW_HTML} no such query", ids[0], 1)]
    beir = write_beir(root / "beir", [{"_id": d, "title": "", "text": t} for d, t in zip(ids, texts)], queries, qrels)
    ref = run_job(db, "retrieval", {"session_id": sid, "source": "beir", "beir_dir": str(beir), "model": "tfidf-svd",
                                    "methods": ["bm25", "dense"], "dataset": NAME}, session_id=sid)
    run = load_run(db, int(ref.split(":")[1]))
    assert any(IMAGE in w for w in run["details"]["warnings"])          # the loader echoes the ids it dropped
    save_run(db, sid, "retrieval", *crafted_retrieval_run(run))
    run_job(db, "ood", {"session_id": sid, "model": "tfidf-svd", "id_corpus_id": info.id, "test": "holdout",
                        "fraction": 0.3, "seed": 0, "ood_labels": [OOD_LABEL], "methods": ["knn", "msp"]},
            session_id=sid)
    for kind in ("retrieval", "ood"):
        db["jobs"].insert({"session_id": sid, "kind": kind, "params_json": "{}", "status": "failed",
                           "message": f"could not read {NAME}"})
    db.close()
    return path


@pytest.fixture
def hostile_env(hostile_db, tmp_path, monkeypatch) -> Path:
    return use_copy_of(hostile_db, tmp_path, monkeypatch)


# Elements whose text Streamlit shows literally, and the proto fields of the others that it renders as Markdown.
LITERAL_ELEMENTS = {"text", "code", "json", "arrow_data_frame", "dataframe", "plotly_chart", "exception"}
MARKDOWN_FIELDS = {"body", "label", "help", "delta", "text"}
MARKDOWN_OPTIONS = {"radio": "options", "button_group": "content"}    # option labels rendered as Markdown


def _strings(message, fields: set[str]):
    for field, value in message.ListFields():
        values = value if field.is_repeated else [value]
        for v in values:
            if isinstance(v, str) and field.name in fields:
                yield v
            elif hasattr(v, "ListFields"):
                yield from _strings(v, fields)


def _nodes(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _nodes(child)


def shown_markdown(at) -> list[str]:
    """Every string of the app's last run that Streamlit renders as Markdown: bodies of markdown, captions,
    headings, alerts and toasts; labels and help of widgets, metrics, expanders, tabs and popovers; progress
    text; radio and segmented-control options."""
    out = []
    for node in _nodes(at._tree):
        proto = getattr(node, "proto", None)
        kind = getattr(node, "type", None)
        if proto is None or kind in LITERAL_ELEMENTS:
            continue
        fields = MARKDOWN_FIELDS | ({MARKDOWN_OPTIONS[kind]} if kind in MARKDOWN_OPTIONS else set())
        out.extend(_strings(proto, fields))
    return out


def figure_strings_of(value) -> list[str]:
    """Every string of a parsed Plotly figure (names, hover text, titles, tick labels…) but legend group ids, which
    Plotly never draws."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() if k != "legendgroup" for s in figure_strings_of(v)]
    if isinstance(value, list):
        return [s for v in value for s in figure_strings_of(v)]
    return []


def figure_strings(at) -> list[str]:
    """Every string of every Plotly figure of the app's last run."""
    return [s for chart in at.get("plotly_chart") for s in figure_strings_of(json.loads(chart.proto.spec))]


def map_strings(at) -> list[str]:
    """Every string a WebGL map shows (legend, title, hover snippets, category names): the browser sets them as
    text (`textContent`), never as markup, so they are carried as they are."""
    out: list[str] = []
    for m in maps(at).values():
        out += [m.layer.get("title") or "", *(name for name, _ in m.layer["legend"]), *m.layer["categories"]]
        out += m.texts or []
    return out


class Seen:
    """What the pages showed over several runs: Markdown strings, Plotly strings and WebGL map strings."""

    def __init__(self) -> None:
        self.markdown: list[str] = []
        self.figures: list[str] = []
        self.maps: list[str] = []

    def add(self, at) -> None:
        assert not at.exception, at.exception
        self.markdown += shown_markdown(at)
        self.figures += figure_strings(at)
        self.maps += map_strings(at)

    def check(self, *, escaped: list[str], in_figures: list[str] = ()) -> None:
        """No payload is live anywhere; each of `escaped` reached some Markdown (escaped, so it reached it as
        data) and each of `in_figures` some figure (escaped for Plotly)."""
        live_found = {s[:120]: live_markup(s) for s in self.markdown if live_markup(s)}
        assert not live_found, live_found
        for s in self.figures:
            assert not re.search(r"<(img|script|a[\s>])", s, re.IGNORECASE) and "&quot;" not in s, s[:200]
        text = "\n".join(self.markdown)
        missing = [e for e in escaped if display_text(e) not in text]
        assert not missing, missing
        shown, on_maps = "\n".join(self.figures), "\n".join(self.maps)
        assert not [e for e in in_figures if html_text(e) not in shown and e not in on_maps]


def test_corpora_page_shows_data_inertly(hostile_env):
    seen = Seen()
    at = open_page("pages/corpora.py", session=NAME)
    seen.add(at)
    at.file_uploader(key="corpora_upload").upload(f"{FILE_STEM}.csv", b"\xff\xfe\x00", "text/csv").run()
    seen.add(at)
    assert at.error                                       # the error names the uploaded file
    seen.check(escaped=[NAME, FILE_STEM], in_figures=[QUOTES, SCRIPT])


ATLAS_TABS = ["🔎 Search hits", "☑️ Selection", "🧩 Clusters", "🔖 Bookmarks", "✍️ Judgments", "📏 Quality",
              "⚖️ Compare", "🎯 Retrieval", "🗺️ Failure regions", "🗜️ Compression", "🚨 Why OOD", "🩺 Diagnostics"]


def test_atlas_page_and_its_tabs_show_data_inertly(hostile_env):
    from components.atlas_state import ATLAS_TABS as tabs

    assert tabs == ATLAS_TABS
    seen = Seen()
    at = open_page("pages/atlas.py", session=NAME, state={"atlas_focus": 3})
    seen.add(at)
    at.session_state["atlas_colour"] = f"meta: {META_COLUMN}"
    at.session_state["atlas_search_mode"] = "Keyword"
    at.text_input(key="atlas_query").input("document").run()
    seen.add(at)
    for tab in ATLAS_TABS:
        at.session_state["atlas_tab"] = tab
        if tab == "☑️ Selection":
            at.session_state["atlas_selection"] = [0, 1, 2]
        at.run()
        seen.add(at)
    ood_test_doc = next(i for i, lab in enumerate(hostile_documents()[1]) if lab == OOD_LABEL)
    at.session_state["atlas_focus"] = ood_test_doc        # "Why OOD" explains a test document of the run
    at.session_state["atlas_tab"] = "🚨 Why OOD"
    at.run()
    seen.add(at)
    seen.check(escaped=[LABELS[1], ONE_LINE[3], IMAGE, METHOD, NAME, f"{SCRIPT} {CODE} document 3"],
               in_figures=[QUOTES, META_COLUMN, METHOD])
    queries = [m for m in seen.markdown if m.startswith("**Query ")]      # the Retrieval tab's query, by its id
    assert queries and any(display_text(f"{p} q") in queries[0] for p in ONE_LINE)


def test_retrieval_page_shows_data_inertly(hostile_db, hostile_env):
    seen = Seen()
    at = open_page("pages/retrieval.py", session=NAME)
    seen.add(at)
    at.radio(key="retr_source").set_value("zip").run()          # the same BEIR folder uploaded as a ZIP
    at.file_uploader(key="retr_zip").upload(f"{FILE_STEM}.zip", zip_folder(hostile_db.parent / "beir"),
                                            "application/zip").run()
    seen.add(at)
    assert any(display_text(IMAGE) in w.value for w in at.warning)   # the loader's warnings echo the dropped ids
    seen.check(escaped=[NAME, METHOD, f"query {IMAGE} {RAW_HTML} was odd", f"could not read {NAME}"],
               in_figures=[METHOD])


def test_ood_page_shows_data_inertly(hostile_env):
    seen = Seen()
    at = open_page("pages/ood.py", session=NAME)
    seen.add(at)
    seen.check(escaped=[f"could not read {NAME}", NAME])


def test_sessions_page_and_an_imported_session_show_data_inertly(hostile_env):
    from storage.export_options import export_bytes

    seen = Seen()
    at = open_page("pages/sessions.py", session=NAME)
    seen.add(at)
    at.file_uploader(key="import-upload").upload(f"{FILE_STEM}.sqlite", export_bytes(hostile_env, NAME),
                                                 "application/octet-stream").run()
    at.button(key="import-go").click().run()
    seen.add(at)
    assert at.success                                       # imported under a new name, and now the one on screen
    seen.check(escaped=[NAME, FILE_STEM, *PAYLOADS[:9]])


class _Report(HTMLParser):
    """The report's tags, the text a browser shows (outside scripts and styles) and its figures' JSON."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else self._in

    def handle_endtag(self, tag):
        self._in = None if tag == self._in else self._in

    def handle_data(self, data):
        (self.scripts if self._in == "script" else self.text if self._in is None else []).append(data)

    def figures(self) -> list[tuple[list, dict]]:
        """(data, layout) of every `Plotly.newPlot(id, data, layout, config)` call."""
        decoder, out = json.JSONDecoder(), []
        for script in self.scripts:
            for m in re.finditer(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*", script):
                data, end = decoder.raw_decode(script, m.end())
                layout, _ = decoder.raw_decode(script, re.match(r"\s*,\s*", script[end:]).end() + end)
                out.append((data, layout))
        return out


def test_report_holds_no_live_payload(hostile_env):
    from embedlab.report import build_report
    from storage import connect

    db = connect(hostile_env)
    try:
        text = build_report(db, NAME)
    finally:
        db.close()
    page = _Report()
    page.feed(text)
    tags = {tag for tag, _ in page.tags}
    assert tags <= {"html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "h3", "nav", "ul", "li", "a",
                    "p", "pre", "div", "table", "thead", "tbody", "tr", "th", "td", "blockquote", "b", "script",
                    "canvas", "button"}, tags                                    # the WebGL map's canvas and tools
    assert all(a.get("href", "").startswith("#") for tag, a in page.tags if tag == "a")
    assert not [a for tag, a in page.tags if tag == "script" and a.get("src")]
    shown = "".join(page.text)
    for payload in (NAME, RAW_HTML, SCRIPT, QUOTES, IMAGE, ENTITY, HEADING):     # every payload shown as written
        assert payload in shown, payload
    figures = page.figures()
    assert figures
    strings = [s for data, layout in figures for s in figure_strings_of([data, layout])]
    assert not [s for s in strings if re.search(r"<(img|script|a[\s>])", s, re.IGNORECASE) or "&quot;" in s]
    buttons = [a for tag, a in page.tags if tag == "button"]
    assert len(buttons) == 2 * text.count('class="embedlab-map-host"')    # only the map's own box/lasso tools
    maps = [decode_map(base64.b64decode(p), base64.b64decode(lay)) for p, lay in re.findall(
        r'class="points">([^<]*)</script><script type="application/octet-stream" class="layer">([^<]*)</script>', text)]
    legends = [name for m in maps for name, _ in m.layer["legend"]]
    assert QUOTES in legends                    # the map's legend reads the raw label (set as text by the page)
    assert html_text(METHOD) in strings                                     # a method named by a crafted run
