"""Streamlit AppTest: the app and its pages render, the session picker works, an upload becomes a corpus."""
from __future__ import annotations

import pytest

from embedlab.text_display import display_text
from storage.corpora import list_corpora, load_documents
from storage.sessions import ensure_session
from tests.builders import open_page


def test_app_starts_with_empty_database(app_env):
    at = open_page()
    assert not at.exception
    assert any("Pick or create a session" in i.value for i in at.info)


def test_query_param_selects_session(app_env, db):
    ensure_session(db, "alpha")
    ensure_session(db, "beta")
    at = open_page(session="beta")
    assert not at.exception
    assert at.sidebar.selectbox[0].value == "beta"
    assert at.title[0].value.endswith("Corpora")


NO_CORPUS = "No corpus in this session yet: add one on the Corpora page."
EMPTY_SESSION_SAYS = {
    "pages/corpora.py": ("Corpora", ["No corpus yet: upload a file or load a bundled sample.", "**ag-news-sample**",
                                     "**clinc150-sample**"]),
    "pages/atlas.py": ("Atlas", [NO_CORPUS]),
    "pages/retrieval.py": ("Retrieval", ["Runs of session “s”", "No runs yet."]),
    "pages/ood.py": ("OOD", [NO_CORPUS, "No OOD run in this session yet: set one up above and press Run comparison."]),
    "pages/sessions.py": ("Sessions", ["“s”", "No cached matrices: embed a corpus to store one.", "No runs yet."]),
}


def shown_texts(at) -> list[str]:
    """The text a user reads on the page: subheaders, notices, Markdown and captions, main area and sidebar."""
    return [str(e.value) for kind in ("subheader", "info", "warning", "success", "markdown", "caption")
            for e in getattr(at, kind)]


@pytest.mark.parametrize("page", sorted(EMPTY_SESSION_SAYS))
def test_every_page_of_an_empty_session_says_what_is_missing(app_env, session_id, page):
    at = open_page(page, session="s")
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    title, says = EMPTY_SESSION_SAYS[page]
    assert [t.value for t in at.title] == [title]
    assert at.sidebar.selectbox[0].value == "s"
    texts = shown_texts(at)
    for text in says:
        assert any(t.startswith(text) for t in texts), (text, texts)


def test_loading_a_sample_adds_the_corpus(app_env, db, session_id):
    at = open_page(session="s")
    at.button(key="sample-clinc150-sample").click().run()
    assert not at.exception
    corpora = list_corpora(db, session_id)
    assert [c.name for c in corpora] == ["clinc150-sample"] and corpora[0].n_docs == 1100
    assert any("clinc150-sample" in str(df.value) for df in at.dataframe)


def test_uploading_a_file_shows_preview_then_ingests(app_env, db, session_id):
    at = open_page(session="s")
    content = b"id,text,topic\n1,<script>alert(1)</script> first,a\n2,second document,b\n3,   ,c\n"
    at.file_uploader[0].upload("notes.csv", content, "text/csv").run()
    assert not at.exception
    assert [s.value for s in at.selectbox if s.label == "Text column"] == ["text"]
    at.checkbox(key="ingest_then_map").uncheck().run()
    at.button[[b.label for b in at.button].index("Ingest")].click().run()
    assert not at.exception
    assert any("Ingested 2 documents" in s.value for s in at.success)
    assert any("Skipped 1" in w.value for w in at.warning)
    (corpus,) = list_corpora(db, session_id)
    assert corpus.name == "notes" and corpus.n_docs == 2
    assert load_documents(db, corpus.id)[0]["text"] == "<script>alert(1)</script> first"


def test_ingest_and_map_is_one_action_that_starts_the_chained_job(app_env, db, session_id, monkeypatch):
    from embedlab.embedding.embedders import DEFAULT_MODEL
    from embedlab.tasks import map_params

    submitted = []
    monkeypatch.setattr("embedlab.jobs.submit_job", lambda path, kind, params, session_id=None:
                        submitted.append((kind, params, session_id)) or 1)
    at = open_page(session="s")
    at.file_uploader[0].upload("notes.csv", b"text\nfirst document\nsecond document\n", "text/csv").run()
    assert at.checkbox(key="ingest_then_map").value is True        # the default flow maps right away
    at.button[[b.label for b in at.button].index("Ingest and map")].click().run()
    assert not at.exception
    (corpus,) = list_corpora(db, session_id)
    assert submitted == [("project", map_params(corpus.id, DEFAULT_MODEL), session_id)]
    assert any("Embedding and mapping it now" in s.value for s in at.success)
    assert at.selectbox(key="corpora_chosen").value == "notes"


def test_refused_upload_shows_one_clear_error_and_writes_nothing(app_env, db, session_id):
    at = open_page(session="s")
    at.file_uploader[0].upload("bad.txt", b"one\x00two\n", "text/plain").run()
    assert not at.exception
    assert any(display_text("bad.txt") in e.value for e in at.error)      # the file named, as text
    assert list_corpora(db, session_id) == []


def test_a_named_encoding_reads_a_legacy_file_that_detection_refuses(app_env, db, session_id):
    """Bytes that cp1251 and other legacy encodings read as different letters: refused until the user names the
    encoding on the page (as `ingest --encoding` does), then read and stored as the right characters."""
    content = "text,label\nПривет мир,a\nДа,b\n".encode("cp1251")
    at = open_page(session="s")
    at.file_uploader[0].upload("legacy.csv", content, "text/csv").run()
    assert not at.exception
    assert any(display_text("legacy.csv") in e.value and "encoding" in e.value for e in at.error)
    at.text_input(key="corpora_encoding").input("cp1251").run()
    assert not at.exception and not at.error
    at.checkbox(key="ingest_then_map").uncheck().run()
    at.button[[b.label for b in at.button].index("Ingest")].click().run()
    (corpus,) = list_corpora(db, session_id)
    assert [d["text"] for d in load_documents(db, corpus.id)] == ["Привет мир", "Да"]


def test_a_file_with_more_metadata_columns_than_allowed_preselects_the_first_50(app_env, db, session_id):
    header = ",".join(["text"] + [f"m{i}" for i in range(60)])
    rows = "\n".join(",".join([f"document {r}"] + [str(r * i) for i in range(60)]) for r in range(3))
    at = open_page(session="s")
    at.file_uploader[0].upload("wide.csv", f"{header}\n{rows}\n".encode(), "text/csv").run()
    assert at.multiselect[0].value == [f"m{i}" for i in range(50)]
    at.checkbox(key="ingest_then_map").uncheck().run()
    at.button[[b.label for b in at.button].index("Ingest")].click().run()
    assert not at.exception and not at.error
    (corpus,) = list_corpora(db, session_id)
    assert corpus.meta_cols == [f"m{i}" for i in range(50)]


def test_a_double_click_on_ingest_and_map_ingests_once(app_env, db, session_id, monkeypatch):
    """The second click's rerun finds the first one's corpus ("papers", not also "papers (2)"); the same file under
    another corpus name is a deliberate second ingestion."""
    submitted = []
    monkeypatch.setattr("embedlab.jobs.submit_job", lambda path, kind, params, session_id=None:
                        submitted.append((kind, params)) or 1)
    at = open_page(session="s")
    at.file_uploader[0].upload("papers.csv", b"text\nfirst paper\nsecond paper\n", "text/csv").run()
    ingest = [b.label for b in at.button].index("Ingest and map")
    at.button[ingest].click().run()
    at.button[ingest].click().run()
    assert not at.exception
    assert [c.name for c in list_corpora(db, session_id)] == ["papers"]
    assert len(submitted) == 1
    assert any("Already ingested as 'papers'" in i.value for i in at.info)
    [box] = [t for t in at.text_input if t.label == "Corpus name"]
    box.set_value("papers again").run()
    at.button[ingest].click().run()
    assert sorted(c.name for c in list_corpora(db, session_id)) == ["papers", "papers again"]
