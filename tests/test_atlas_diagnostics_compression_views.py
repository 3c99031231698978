"""The Atlas's Compression and Diagnostics tabs through AppTest: the numbers they show are the engine's."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlab.tasks import find_projection
from storage import connect
from storage.corpora import list_corpora
from storage.matrices import load_matrix
from storage.sessions import get_session_id
from tests.builders import open_page, stored_corpus, use_copy_of, use_database
from tests.map_support import assert_numeric, click, drawn_at, legend, maps

PAGE = "pages/atlas.py"
COMPRESSION, DIAGNOSTICS = "🗜️ Compression", "🩺 Diagnostics"


@pytest.fixture(scope="module")
def views_db(tmp_path_factory) -> Path:
    """Session `s`: a 90-document corpus embedded by tfidf-svd (2-D PCA map, the one shown) and by "fake-model"
    (random vectors stored under its cache key, 2-D map, and stored token embeddings, so MaxSim can run without
    weights)."""
    import embedlab.tasks  # noqa: F401 - registers the job kinds
    from embedlab.embedding.cache import cache_key, compute_embedding
    from embedlab.embedding.embedders import get_embedder
    from embedlab.jobs import run_job
    from storage import connect
    from storage.matrices import save_matrix

    path = tmp_path_factory.mktemp("views") / "template.sqlite"
    db = connect(path)
    topics = {"sport": "match team goal player season coach", "money": "bank market stock price trade profit",
              "space": "rocket orbit nasa launch planet moon"}
    texts, labels = [], []
    for label, words in topics.items():
        w = words.split()
        for i in range(30):
            texts.append(f"{w[i % 6]} {w[(i + 1) % 6]} {w[(i + 3) % 6]} story {i} about {label}")
            labels.append(label)
    sid, info = stored_corpus(db, texts, labels, name="news", doc_ids=[f"d{i}" for i in range(len(texts))])
    compute_embedding(db, texts, "tfidf-svd", content_hash=info.content_hash, corpus_id=info.id)
    fake = get_embedder("fake-model")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(texts), 16)).astype(np.float32)
    save_matrix(db, vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
                cache_key=cache_key(fake, info.content_hash), kind="embedding", model="fake-model",
                params=fake.identity(), corpus_id=info.id, content_hash=info.content_hash)
    lengths = rng.integers(2, 5, size=len(texts))
    tokens = rng.normal(size=(int(lengths.sum()), 16)).astype(np.float32)
    tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    key = cache_key(fake, info.content_hash, kind="tokens")
    save_matrix(db, tokens, cache_key=key, kind="tokens", dtype="float16", model="fake-model",
                params=fake.identity(), corpus_id=info.id, content_hash=info.content_hash)
    save_matrix(db, offsets.reshape(-1, 1), cache_key=key + ":offsets", kind="token_offsets", dtype="int64",
                model="fake-model", params=fake.identity(), corpus_id=info.id, content_hash=info.content_hash)
    pca = {"corpus_id": info.id, "method": "pca", "n_neighbors": 15, "min_dist": 0.1, "seed": 42}
    run_job(db, "project", {**pca, "model": "fake-model", "n_components": 2}, session_id=sid)
    run_job(db, "project", {**pca, "model": "tfidf-svd", "n_components": 2}, session_id=sid)  # the latest: shown
    db.close()
    return path


@pytest.fixture
def views_env(views_db, tmp_path, monkeypatch) -> Path:
    return use_copy_of(views_db, tmp_path, monkeypatch)


def open_tab(tab: str, **state):
    at = open_page(PAGE, session="s", state={"atlas_tab": tab, **state})
    assert not at.exception, at.exception
    return at


def matrix(path: Path, model: str) -> np.ndarray:
    from embedlab.embedding.cache import find_embedding
    from storage import connect
    from storage.corpora import list_corpora
    from storage.matrices import load_matrix
    from storage.sessions import get_session_id

    db = connect(path)
    try:
        info = list_corpora(db, get_session_id(db, "s"))[0]
        return load_matrix(db, find_embedding(db, info.content_hash, model))
    finally:
        db.close()


def map_coords(path: Path) -> np.ndarray:
    """The stored 2-D map of tfidf-svd (the one the tabs draw on)."""
    db = connect(path)
    try:
        info = list_corpora(db, get_session_id(db, "s"))[0]
        proj = find_projection(db, info.id, "tfidf-svd", method="pca", n_components=2, n_neighbors=15,
                               min_dist=0.1, seed=42)
        return load_matrix(db, proj.id)
    finally:
        db.close()


def tokens_of(path: Path):
    from embedlab.embedding.cache import cache_key
    from embedlab.embedding.embedders import get_embedder
    from embedlab.retrieval.base import TokenMatrix
    from storage import connect
    from storage.corpora import list_corpora
    from storage.matrices import find_matrix, load_matrix
    from storage.sessions import get_session_id

    db = connect(path)
    try:
        info = list_corpora(db, get_session_id(db, "s"))[0]
        key = cache_key(get_embedder("fake-model"), info.content_hash, kind="tokens")
        return TokenMatrix(load_matrix(db, find_matrix(db, key)).astype(np.float32),
                           load_matrix(db, find_matrix(db, key + ":offsets"))[:, 0].astype(np.int64))
    finally:
        db.close()


def metric_values(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def frame_with(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


# --- Compression ------------------------------------------------------------------------------------------------


def test_compression_without_focus_shows_the_corpus_layers_and_offers_the_worst(views_env):
    from embedlab.compression_neighbours import corpus_overlaps, worst_documents

    at = open_tab(COMPRESSION)
    X = matrix(views_env, "tfidf-svd")
    d = X.shape[1]
    names = ["int8-rescore", "binary-rescore", f"matryoshka-{d // 2}"]
    assert at.number_input(key=f"atlas_comp_dims_{d}").value == d // 2
    layers = corpus_overlaps(X, names)
    means = frame_with(at, "mean overlap@10")
    assert means["method"].tolist() == names
    assert np.allclose(means["mean overlap@10"].to_numpy(), [layers[m].mean() for m in names])
    worst = int(worst_documents(layers["binary-rescore"], 1)[0])
    assert frame_with(at, "overlap@10")["doc"].tolist()[0] == worst
    layer = maps(at)["atlas_comp_map"]
    assert drawn_at(layer, map_coords(views_env))             # every document: no sample below the threshold
    assert_numeric(layer, "overlap@10 binary-rescore", layers["binary-rescore"], 0.0, 1.0)  # one scale, 0 to 1
    assert layer.layer["focus"] is None
    button = at.button(key="atlas_comp_worst_focus")
    assert f"#{worst}" in button.label
    button.click().run()
    assert not at.exception and at.session_state["atlas_focus"] == worst
    assert maps(at)["atlas_comp_map"].layer["focus"] == worst        # starred on the layer
    click(at, "atlas_comp_map", 7)                                   # a click on the layer focuses that document
    assert not at.exception and at.session_state["atlas_focus"] == 7
    assert maps(at)["atlas_comp_map"].layer["focus"] == 7


def test_compression_of_a_focused_document_equals_the_engine(views_env):
    from embedlab.compression_neighbours import build_method, focus_neighbours

    at = open_tab(COMPRESSION, atlas_focus=4)
    X = matrix(views_env, "tfidf-svd")
    names = ["int8-rescore", "binary-rescore", f"matryoshka-{X.shape[1] // 2}"]
    want = focus_neighbours(X, 4, {m: build_method(m, X) for m in names})
    shown = metric_values(at)
    for name, res in want.items():
        assert shown[name] == f"{res['overlap']:.2f}"
    table = frame_with(at, "binary-rescore")
    assert list(table.columns) == ["dense", *names]     # tfidf-svd has no tokens: no MaxSim column
    exact = set(want["dense"]["ids"].tolist())
    for name in names:
        cells = table[name].tolist()
        ids = [int(c.split("#", 1)[1].split(" ", 1)[0]) for c in cells]
        assert ids == want[name]["ids"].tolist() and 4 not in ids
        assert [c.startswith("✓") for c in cells] == [i in exact for i in ids]
    assert any("has no token embeddings" in c.value or "MaxSim needs token" in c.value for c in at.caption)


def test_compression_changes_n_and_shows_maxsim_when_tokens_are_stored(views_env):
    from embedlab.compression_neighbours import build_method, focus_neighbours

    at = open_tab(COMPRESSION, atlas_focus=10, atlas_model="fake-model", atlas_comp_dims_16=4)
    assert at.number_input(key="atlas_comp_dims_16").value == 4
    X = matrix(views_env, "fake-model")
    tokens = tokens_of(views_env)
    methods = {m: build_method(m, X) for m in ["int8-rescore", "binary-rescore", "matryoshka-4"]}
    methods["maxsim"] = build_method("maxsim", X, tokens=tokens)
    want = focus_neighbours(X, 10, methods, tokens=tokens)
    shown = metric_values(at)
    for name, res in want.items():
        assert shown[name] == f"{res['overlap']:.2f}"
    table = frame_with(at, "maxsim")
    ids = [int(c.split("#", 1)[1].split(" ", 1)[0]) for c in table["maxsim"]]
    assert ids == want["maxsim"]["ids"].tolist() and 10 not in ids
    assert frame_with(at, "mean overlap@10")["method"].tolist() == ["int8-rescore", "binary-rescore",
                                                                     "matryoshka-4"]


# --- Diagnostics ------------------------------------------------------------------------------------------------


def test_diagnostics_show_every_model_as_the_engine_computes_it(views_env):
    from embedlab.diagnostics import diagnose, k_occurrence

    at = open_tab(DIAGNOSTICS)
    table = frame_with(at, "rankme")
    assert sorted(table["model"]) == ["fake-model", "tfidf-svd"]
    for model in ("tfidf-svd", "fake-model"):
        want = diagnose(matrix(views_env, model), model=model)
        row = table[table["model"] == model].iloc[0].to_dict()
        for key, value in want.items():
            assert row[key] == (pytest.approx(value) if isinstance(value, float) else value), (model, key)
    counts = k_occurrence(matrix(views_env, "tfidf-svd"))
    hubs = frame_with(at, "N_10")
    order = np.lexsort((np.arange(len(counts)), -counts))[:20]
    assert hubs["doc"].tolist() == order.tolist() and hubs["N_10"].tolist() == counts[order].tolist()
    assert metric_values(at)["anti-hubs (N_10 = 0)"] == f"{int((counts == 0).sum()):,}"
    hubs_map = maps(at)["atlas_diag_map"]
    assert_numeric(hubs_map, "N_10", counts)                  # coloured by N_10 ...
    sizes = hubs_map.sizes.astype(int)                          # ... and sized by it: bigger N_10, never smaller
    order = np.argsort(counts, kind="stable")
    assert (np.diff(sizes[order]) >= 0).all() and (np.diff(counts[order]) >= 0).all()
    assert sizes[counts.argmax()] == len(hubs_map.layer["size_levels"]) - 1 and sizes[counts == 0].max(initial=0) == 0


def test_diagnostics_hub_click_focuses_and_the_focus_is_starred(views_env):
    at = open_tab(DIAGNOSTICS, atlas_focus=2)
    hubs_map = maps(at)["atlas_diag_map"]
    assert hubs_map.layer["focus"] == 2 and "★ focus" in legend(hubs_map)
    hub = int(frame_with(at, "N_10")["doc"].iloc[0])
    click(at, "atlas_diag_map", hub)                            # a click on the biggest hub focuses it
    assert not at.exception, at.exception
    assert at.session_state["atlas_focus"] == hub and maps(at)["atlas_diag_map"].layer["focus"] == hub


# --- large corpora: on request ----------------------------------------------------------------------------------


def test_large_corpora_wait_for_a_button_then_sample_or_compute_all(views_env, monkeypatch):
    import components.compression_view as cv
    import components.diagnostics_view as dv
    from embedlab.compression_neighbours import corpus_overlaps, sample_rows

    monkeypatch.setattr(cv, "AUTO_LAYER_MAX_DOCS", 50)
    monkeypatch.setattr(cv, "SAMPLE_SIZE", 30)
    monkeypatch.setattr(dv, "AUTO_MAX_DOCS", 50)
    at = open_tab(COMPRESSION)
    assert not any("mean overlap@10" in d.value.columns for d in at.dataframe)
    assert list(maps(at)) == ["atlas_map"]            # only the main map: no layer drawn yet
    at.button(key="atlas_comp_sample").click().run()
    assert not at.exception, at.exception
    X = matrix(views_env, "tfidf-svd")
    names = ["int8-rescore", "binary-rescore", f"matryoshka-{X.shape[1] // 2}"]
    rows = sample_rows(len(X), 30)
    sampled = corpus_overlaps(X, names, rows)
    means = frame_with(at, "mean overlap@10")
    assert np.allclose(means["mean overlap@10"].to_numpy(), [sampled[m].mean() for m in names])
    assert any("seeded sample of 30 documents" in c.value for c in at.caption)
    layer = maps(at)["atlas_comp_map"]                 # only the sampled documents, where the map has them
    assert drawn_at(layer, map_coords(views_env)[rows])
    assert_numeric(layer, f"overlap@10 {names[1]}", sampled[names[1]], 0.0, 1.0)
    click(at, "atlas_comp_map", 3)                     # the 4th point drawn is the 4th sampled document
    assert not at.exception and at.session_state["atlas_focus"] == int(rows[3])
    assert maps(at)["atlas_comp_map"].layer["focus"] == 3
    at.button(key="atlas_comp_all").click().run()
    assert not at.exception, at.exception
    full = corpus_overlaps(X, names)
    means = frame_with(at, "mean overlap@10")
    assert np.allclose(means["mean overlap@10"].to_numpy(), [full[m].mean() for m in names])
    assert drawn_at(maps(at)["atlas_comp_map"], map_coords(views_env))       # now every document

    at.session_state["atlas_tab"] = DIAGNOSTICS
    at.run()
    assert not at.exception and not any("rankme" in d.value.columns for d in at.dataframe)
    at.button(key="atlas_diag_compute").click().run()
    assert not at.exception, at.exception
    assert sorted(frame_with(at, "rankme")["model"]) == ["fake-model", "tfidf-svd"]


def test_the_tokens_job_stores_the_token_embeddings_the_compression_view_reads(tmp_path):
    """The Compression tab's "Compute token embeddings" button submits a `tokens` job: it stores the corpus's token
    embeddings (one row of offsets per document, plus one) where the view looks for them."""
    import embedlab.tasks  # noqa: F401 - registers the job kinds
    from components.compression_view import TOKEN_JOB_KIND, token_status
    from embedlab.workspace import Workspace
    from embedlab.jobs import run_job
    from storage import connect
    from storage.matrices import load_matrix

    db = connect(tmp_path / "tokens.sqlite")
    texts = ["the match ended in a draw", "stocks fell on monday", "the rocket reached orbit",
             "a late goal won it", "the bank raised rates"]
    sid, info = stored_corpus(db, texts, name="few")
    model = "all-MiniLM-L6-v2"
    ws = Workspace(tmp_path / "tokens.sqlite", db=db)
    assert token_status(ws, info, model)[0] == "missing"
    assert token_status(ws, info, "tfidf-svd")[0] == "none"
    assert run_job(db, TOKEN_JOB_KIND, {"corpus_id": info.id, "model": model}, session_id=sid).startswith("tokens:")
    status, tokens, offsets = token_status(ws, info, model)
    offsets = load_matrix(db, offsets.id).ravel()
    assert status == "stored" and len(offsets) == len(texts) + 1 and offsets[-1] == tokens.rows
    assert all(b - a >= 4 for a, b in zip(offsets[:-1], offsets[1:]))     # [CLS], words, [SEP]


def test_the_main_map_can_be_coloured_by_hubness(views_env):
    """"Colour by" offers N_10 of the map's model: each point's colour is its k-occurrence."""
    from embedlab.diagnostics import k_occurrence

    at = open_page(PAGE, session="s")
    choice = next(o for o in at.selectbox(key="atlas_colour").options if o.startswith("hubness"))
    at.selectbox(key="atlas_colour").select(choice).run()
    assert not at.exception
    counts = k_occurrence(matrix(views_env, "tfidf-svd"))
    main = maps(at)["atlas_map"]
    assert_numeric(main, "N_10", counts)                       # every document in the bin of its N_10
    assert len(set(main.codes.tolist())) > 3                   # a scale of colours, not one


def test_compression_offers_to_compute_missing_token_embeddings_as_a_job(tmp_path, monkeypatch):
    """A model with token embeddings whose tokens are not stored: the focused document's table says so and the
    button submits the `tokens` job for this corpus and model (the job itself: the test above)."""
    from embedlab.embedding.cache import compute_embedding
    from storage import connect

    path = use_database(tmp_path / "embedlab.sqlite", monkeypatch)
    db = connect(path)
    texts = [f"{w} story number {i}" for i, w in enumerate(["match", "stocks", "rocket", "goal", "bank"] * 4)]
    sid, info = stored_corpus(db, texts, name="few")
    compute_embedding(db, texts, "all-MiniLM-L6-v2", content_hash=info.content_hash, corpus_id=info.id)
    db.close()
    submitted = []
    monkeypatch.setattr("embedlab.jobs.submit_job", lambda path, kind, params, session_id=None:
                        submitted.append((kind, params, session_id)) or 1)
    at = open_page(PAGE, session="s", state={"atlas_tab": COMPRESSION, "atlas_focus": 3,
                                             "atlas_model": "all-MiniLM-L6-v2"})
    assert not at.exception, at.exception
    assert any("not stored yet" in c.value for c in at.caption)
    at.button(key="atlas_comp_tokens").click().run()
    assert submitted == [("tokens", {"corpus_id": info.id, "model": "all-MiniLM-L6-v2"}, sid)]
