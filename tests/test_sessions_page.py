"""Sessions in the app (AppTest): "New session" switches to it, an import refreshes the table and the sidebar at
once and says how runs were renumbered, the export says what is inside; share links round-trip and restore."""
from __future__ import annotations

import pytest

from embedlab.text_display import display_text
from storage.sessions import ensure_session, save_run
from tests.builders import open_page, stored_corpus


def picker(at):
    return at.sidebar.selectbox(key="session_select")


def test_new_session_switches_picker_and_page(app_env, db):
    ensure_session(db, "alpha")
    at = open_page(session="alpha")
    at.sidebar.text_input[0].input("zeta")
    at.sidebar.button[0].click().run()          # the form's Create button
    assert not at.exception
    assert picker(at).value == "zeta" and "zeta" in picker(at).options
    assert at.query_params["session"] == ["zeta"] or at.query_params["session"] == "zeta"
    assert any("“zeta”" in h.value for h in at.subheader)      # the Corpora page follows
    at.run()                                                    # and it stays there
    assert picker(at).value == "zeta"


def test_picking_in_the_sidebar_switches_the_page(app_env, db):
    ensure_session(db, "alpha")
    ensure_session(db, "beta")
    at = open_page(session="alpha")
    picker(at).select("beta").run()
    assert not at.exception
    assert picker(at).value == "beta" and any("“beta”" in h.value for h in at.subheader)


def test_sessions_page_rename_and_delete_switch_the_picker(app_env, db):
    ensure_session(db, "alpha")
    at = open_page("pages/sessions.py", session="alpha")
    rename = next(t for t in at.text_input if t.label == "Rename to")
    rename.input("omega")
    next(b for b in at.button if b.label == "Rename").click().run()
    assert not at.exception
    assert picker(at).value == "omega" and picker(at).options == ["omega"]
    at.text_input(key="delete-confirm").input("omega").run()
    next(b for b in at.button if b.label == "Delete session").click().run()
    assert not at.exception
    assert not at.sidebar.selectbox or picker(at).options == []


def exported_file(tmp_path, *, runs: int = 2):
    """A session file whose session 'demo' has runs numbered 2.. (run 1 belongs to another session)."""
    from storage import connect
    from storage.export_options import export_session_with_options

    src = connect(tmp_path / "src.sqlite")
    save_run(src, ensure_session(src, "other"), "ood", {}, {})
    sid, _ = stored_corpus(src, ["one text", "another text"], session="demo")
    for _ in range(runs):
        save_run(src, sid, "retrieval", {"source": "labels"}, {"bm25": {"ndcg@10": 0.5}})
    path = export_session_with_options(src, "demo", tmp_path / "demo.sqlite")
    src.close()
    return path


def test_import_refreshes_table_and_picker_at_once_and_names_renumbered_runs(app_env, db, tmp_path):
    path = exported_file(tmp_path)
    sid = ensure_session(db, "demo")
    for _ in range(3):
        save_run(db, sid, "ood", {}, {})        # runs 1-3 here: the imported #2, #3 become #4, #5
    at = open_page("pages/sessions.py", session="demo")
    at.file_uploader(key="import-upload").upload("demo.sqlite", path.read_bytes(), "application/octet-stream").run()
    at.button(key="import-go").click().run()
    assert not at.exception
    assert picker(at).value == "demo (2)" and picker(at).options == ["demo", "demo (2)"]
    table = at.dataframe[0].value
    assert list(table["session"]) == ["demo", "demo (2)"]
    (message,) = [s.value for s in at.success]
    assert display_text("as session 'demo (2)'") in message and "#2 → #4, #3 → #5" in message
    assert any(display_text("“demo (2)”") in h.value for h in at.subheader)


def test_export_section_says_what_is_inside(app_env, db):
    import numpy as np

    from storage.matrices import save_matrix

    _, corpus = stored_corpus(db, ["a", "b", "c"], session="s")
    save_matrix(db, np.ones((30, 8)), cache_key="t", kind="tokens", dtype="float16", content_hash=corpus.content_hash)
    at = open_page("pages/sessions.py", session="s")
    assert not at.exception
    contents = at.dataframe[1].value
    assert list(contents["content"])[:3] == ["documents", "embeddings", "token embeddings"]
    assert "480 B" in list(contents["size"])
    assert at.multiselect(key="export-without").options == ["token embeddings", "projections"]


# --------------------------------------------------------------------------------------------- share links

@pytest.mark.parametrize("state", [
    dict(session="demo", page="atlas", corpus="ag news", model="all-MiniLM-L6-v2", colour="meta: a&b=c",
         focus=7, selection=(1, 2, 3, 9, 40, 41)),
    dict(session="demo", page="atlas", corpus="c", focus=3, tab="Failure regions"),
    dict(session="naïve / ?&#", page="", corpus=None),
    dict(session="s", page="retrieval", model="tfidf-svd", run=12),
    dict(session="s+t%20u", page="ood", corpus="c", run=3),
])
def test_share_link_round_trips(state):
    from components.share_link import ShareState, build_link, parse_link

    original = ShareState(**state)
    link = build_link("http://example.org:8501/base", original)
    base, parsed = parse_link(link)
    assert base == "http://example.org:8501/base" and parsed == original
    assert build_link(base, parsed) == link


def test_share_link_parses_garbage_quietly():
    from components.share_link import decode_indices, encode_indices, from_query

    assert encode_indices([5, 1, 2, 3, 9, 3]) == "1-3,5,9"
    assert decode_indices("1-3,x,7-5,9,,-4") == (1, 2, 3, 9)
    assert len(decode_indices("0-999999999")) == 20_000
    state = from_query({"focus": "-3", "run": "abc", "sel": "2", "session": "  "}, "nowhere")
    assert state.focus is None and state.run is None and state.selection == (2,) and state.session is None
    assert state.page == ""


def test_a_share_link_restores_the_atlas_view(app_env, db):
    """The link's values reach the Atlas's widget keys before it draws."""
    from streamlit.testing.v1 import AppTest

    from tests.builders import APP

    ensure_session(db, "a-first")
    stored_corpus(db, [f"text {i}" for i in range(12)], [str(i % 3) for i in range(12)], session="demo",
                  name="corpus-b")
    stored_corpus(db, ["x", "y"], session="demo", name="corpus-a")
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("pages/atlas.py")
    for k, v in {"session": "demo", "corpus": "corpus-b", "focus": "4", "sel": "1-3"}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    assert picker(at).value == "demo"
    assert at.selectbox(key="atlas_corpus").value == "corpus-b"
    assert at.session_state["atlas_focus"] == 4 and at.session_state["atlas_selection"] == [1, 2, 3]
    code = [c.value for c in at.sidebar.code]
    assert code and "session=demo" in code[0] and "corpus=corpus-b" in code[0] and "/atlas?" in code[0]
    at.selectbox(key="atlas_corpus").select("corpus-a").run()      # the link applies once: the user leads
    at.run()
    assert at.selectbox(key="atlas_corpus").value == "corpus-a"
    assert "corpus=corpus-a" in at.sidebar.code[0].value and "focus" not in at.sidebar.code[0].value


def test_a_share_link_opens_the_atlas_tab_it_names(app_env, db):
    """`tab=` names an Atlas tab by its words (any case); the link on screen names the open tab again; a name no
    tab has is ignored."""
    from streamlit.testing.v1 import AppTest

    from components.atlas_state import tab_label
    from tests.builders import APP

    stored_corpus(db, [f"text {i}" for i in range(12)], session="demo", name="c")
    assert tab_label("why ood") == "🚨 Why OOD" and tab_label("nope") is None and tab_label(None) is None
    for asked, opened in (("failure REGIONS", "🗺️ Failure regions"), ("nope", None)):
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.switch_page("pages/atlas.py")
        for k, v in {"session": "demo", "corpus": "c", "tab": asked}.items():
            at.query_params[k] = v
        at.run()
        assert not at.exception
        assert at.session_state["atlas_tab"] == opened if opened else "atlas_tab" not in at.session_state
        assert ("tab=Failure%20regions" in at.sidebar.code[0].value) == bool(opened)


def test_a_share_link_picks_the_run_on_screen(app_env, db):
    from streamlit.testing.v1 import AppTest

    from tests.builders import APP

    sid = ensure_session(db, "demo")
    metrics = {m: {"ndcg@10": v, "recall@100": v, "mrr@10": v, "ms_per_query": 1.0 + v, "index_bytes": 1000}
               for m, v in (("bm25", 0.1), ("dense", 0.2))}
    ids = [save_run(db, sid, "retrieval", {"source": "labels", "baseline": "bm25"}, metrics) for _ in range(3)]
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("pages/retrieval.py")
    at.query_params["session"] = "demo"
    at.query_params["run"] = str(ids[0])
    at.run()
    assert not at.exception
    assert at.session_state["share_linked_run"] == {"retrieval": ids[0]}
    code = [c.value for c in at.sidebar.code]
    assert f"run={ids[0]}" in code[0]


def test_a_linked_run_is_the_one_on_screen(app_env, db):
    from streamlit.testing.v1 import AppTest

    from tests.builders import APP

    sid = ensure_session(db, "demo")
    metrics = {m: {"ndcg@10": v, "recall@100": v, "mrr@10": v, "ms_per_query": 1.0 + v, "index_bytes": 1000}
               for m, v in (("bm25", 0.1), ("dense", 0.2))}
    ids = [save_run(db, sid, "retrieval", {"source": "labels", "baseline": "bm25"}, metrics) for _ in range(3)]
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("pages/retrieval.py")
    at.query_params["session"], at.query_params["run"] = "demo", str(ids[0])
    at.run()
    assert not at.exception
    assert any(m.value.startswith(f"#### Run #{ids[0]} ") for m in at.markdown)
    ood = [save_run(db, sid, "ood", {"corpus": "c"}, {"knn": {"auroc": 0.9, "fpr95": 0.3}}, {}) for _ in range(2)]
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("pages/ood.py")
    at.query_params["session"], at.query_params["run"] = "demo", str(ood[0])
    at.run()
    assert not at.exception
    assert any(c.value.startswith(f"run #{ood[0]} ") for c in at.caption)


def test_a_link_to_a_missing_session_says_so_and_shows_another(app_env, db):
    ensure_session(db, "alpha")
    at = open_page(session="nope")
    assert not at.exception
    assert picker(at).value == "alpha"
    assert any("No session named 'nope'" in t.value for t in at.toast)


@pytest.mark.parametrize("name", ["x" * 3000, "   ", "a" * 501])
def test_a_link_to_a_session_name_that_cannot_exist_says_so(app_env, db, name):
    """A 3,000-character (or blank) session name in a share link: a message, never a silent switch."""
    ensure_session(db, "alpha")
    at = open_page(session=name)
    assert not at.exception
    assert picker(at).value == "alpha"
    assert any("cannot exist" in t.value or "No session named" in t.value for t in at.toast)
