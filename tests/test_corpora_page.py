"""The Corpora page reads through the workspace: its table says which models embedded and mapped each corpus,
its label chart counts labels most common first, and a mapped corpus opens on the Atlas."""
from __future__ import annotations

import numpy as np

from embedlab.embedding.space import embed_corpus
from embedlab.projection import projection_params
from embedlab.tasks import projection_key
from embedlab.text_display import display_text
from storage.matrices import save_matrix
from tests.builders import open_page, stored_corpus

MODEL = "tfidf-svd"
TEXTS = [f"note {i} on {('cats', 'dogs', 'birds')[i % 3]} in the {('rain', 'sun')[i % 2]}" for i in range(30)]
LABELS = ["cats", "dogs", "birds"] * 6 + ["dogs"] * 7 + ["fish"] * 5


def _mapped(db, name: str) -> None:
    """Corpus `name` in session "s", embedded with tfidf-svd and with a stand-in default (UMAP) map."""
    _, corpus = stored_corpus(db, TEXTS, LABELS, session="s", name=name)
    embed_corpus(db, corpus.id, MODEL)
    params = projection_params(method="umap")
    save_matrix(db, np.zeros((len(TEXTS), 2), np.float32), cache_key=projection_key(db, corpus.id, MODEL, params),
                kind="projection", model=MODEL, params=params, corpus_id=corpus.id, content_hash=corpus.content_hash)


def test_table_and_label_chart(app_env, db, session_id):
    _mapped(db, "notes")
    at = open_page(session="s")
    assert not at.exception
    (table,) = [df.value for df in at.dataframe if "embedded with" in df.value.columns]
    row = table.iloc[0]
    assert (row["corpus"], row["documents"], row["embedded with"], row["UMAP map"]) == ("notes", 30, MODEL, MODEL)
    (chart,) = at.get("plotly_chart")
    bar = chart.proto.spec
    assert '"y":["dogs","cats","birds","fish"]' in bar.replace(" ", "") and '"x":[13,6,6,5]' in bar.replace(" ", "")
    assert '"4 labels"' in bar


def test_a_mapped_corpus_opens_on_the_atlas(app_env, db, session_id):
    _mapped(db, "first")
    _mapped(db, "second")
    at = open_page(session="s")
    at.selectbox(key="corpora_chosen").select("second").run()
    at.selectbox[[s.label for s in at.selectbox].index("Model")].select(MODEL).run()
    assert not at.exception
    assert [s.value for s in at.success] == [f"Embedded with {display_text(MODEL)}."]
    at.button[[b.label for b in at.button].index("Open the map on the Atlas")].click().run()
    assert not at.exception
    assert at.session_state["atlas_corpus"] == "second"
    assert [t.value for t in at.title] == ["Atlas"]
