"""The kinds of background job: embedding a stored corpus (sentence or token embeddings), and mapping it ("Embed and
map": embedding first when needed, then the projection). Results are stored matrices."""
from __future__ import annotations

import sqlite_utils

from embedlab.embedding.cache import cache_key
from embedlab.embedding.embedders import DEFAULT_MODEL
from embedlab.embedding.imported import embedder_for
from embedlab.embedding.space import EmbeddingSpace, embed_corpus
from embedlab.jobs import JobContext, job_kind
from embedlab.progress import StageProgress
from embedlab.projection import UMAP_FIT_ROWS, project, projection_params
from storage.cache_keys import corpus_key, projection_cache_key
from storage.corpora import get_corpus
from storage.matrices import MatrixMeta, find_matrix, save_matrix

EMBED_SHARE = 0.8   # of the progress bar, when "Embed and map" must embed first


@job_kind("embed")
def embed_task(db: sqlite_utils.Database, params: dict, ctx: JobContext) -> str:
    """params: corpus_id, model."""
    corpus_id = int(params["corpus_id"])
    progress = StageProgress(ctx.progress, "embedding", total=get_corpus(db, corpus_id).n_docs)
    meta = embed_corpus(db, corpus_id, params.get("model") or DEFAULT_MODEL, progress=progress,
                        should_stop=ctx.should_stop)
    return f"matrix:{meta.id}"


@job_kind("tokens")
def tokens_task(db: sqlite_utils.Database, params: dict, ctx: JobContext) -> str:
    """params: corpus_id, model. A corpus's token embeddings (MaxSim, MUVERA, the Atlas's Compression view), with
    its sentence embeddings from the same model pass; a cache hit when stored."""
    corpus_id = int(params["corpus_id"])
    progress = StageProgress(ctx.progress, "token embeddings", total=get_corpus(db, corpus_id).n_docs)
    data, _ = EmbeddingSpace.for_corpus(db, corpus_id, params.get("model") or DEFAULT_MODEL).tokens(progress=progress)
    return f"tokens:{len(data)}"


def projection_key(db: sqlite_utils.Database, corpus_id: int, model: str, params: dict) -> str:
    """The key of the projection (`params`) of a corpus's embedding under `model`: derived from the embedding's
    shared key, and private to the corpus when its embedding (or this projection) is (see `corpus_key`)."""
    info = get_corpus(db, corpus_id)
    content_hash = info.content_hash
    emb_key = cache_key(embedder_for(db, model, content_hash, corpus_id), content_hash)
    return corpus_key(db, projection_cache_key(emb_key, with_fit_rows(params, info.n_docs)), corpus_id,
                      derived_from=emb_key)


def with_fit_rows(params: dict, n_docs: int) -> dict:
    """Projection params as keyed and stored for a corpus of `n_docs` documents: a UMAP of more than UMAP_FIT_ROWS
    documents is fitted on a sample of that many (`embedlab.projection`), and its params say so ("fit_rows"), so
    that its key differs from a full fit's; smaller corpora keep the params (and the keys) they always had."""
    if params.get("method") == "umap" and "fit_rows" not in params and n_docs > UMAP_FIT_ROWS:
        return {**params, "fit_rows": UMAP_FIT_ROWS}
    return params


def map_params(corpus_id: int, model: str) -> dict:
    """The params of "Embed and map": the Atlas's default map (UMAP 2-D) of a corpus under a model."""
    return {"corpus_id": int(corpus_id), "model": model, "method": "umap"}


def find_projection(db: sqlite_utils.Database, corpus_id: int, model: str, **kwargs) -> MatrixMeta | None:
    return find_matrix(db, projection_key(db, corpus_id, model, projection_params(**kwargs)))


@job_kind("project")
def project_task(db: sqlite_utils.Database, params: dict, ctx: JobContext) -> str:
    """params: corpus_id, model, and the keyword arguments of `embedlab.projection.projection_params`."""
    corpus_id, model = int(params["corpus_id"]), params.get("model") or DEFAULT_MODEL
    options = {k: v for k, v in params.items() if k not in ("corpus_id", "model")}
    info = get_corpus(db, corpus_id)
    pparams = with_fit_rows(projection_params(**options), info.n_docs)
    if "fit_rows" in pparams:
        options["fit_rows"] = pparams["fit_rows"]
    key = projection_key(db, corpus_id, model, pparams)
    hit = find_matrix(db, key)
    if hit is not None:
        ctx.progress(1.0, "cached: already projected")
        return f"matrix:{hit.id}"
    space = EmbeddingSpace.for_corpus(db, corpus_id, model)
    # Embedding dominates a fresh corpus's time to map (AG News 7,600: ~80 %); a stored one costs nothing.
    share = 0.0 if space.stored() is not None else EMBED_SHARE
    X = space.documents(progress=StageProgress(ctx.progress, "embedding", end=share, total=info.n_docs),
                        should_stop=ctx.should_stop)
    coords = project(X, **options, progress=StageProgress(ctx.progress, "map", start=share))
    meta = save_matrix(db, coords, cache_key=key, kind="projection", model=model, params=pparams,
                       corpus_id=corpus_id, content_hash=info.content_hash)
    return f"matrix:{meta.id}"
