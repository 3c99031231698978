"""Embedding: embedders (the bundled all-MiniLM-L6-v2, any sentence-transformers model, TF-IDF + SVD), the content
cache in SQLite, `EmbeddingSpace` (one per corpus and model: documents and new texts in one space) and the Ray engine.

`DEFAULT_MODEL` is named here, where reading it costs nothing (the CLI's parser shows it); `embedders` uses it."""

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Static embeddings distilled from DEFAULT_MODEL with Model2Vec (`embedlab.embedding.static`).
STATIC_MODEL = "minilm-static"
# Vectors a user brought with a corpus are listed as "NAME (imported)" (`embedlab.embedding.imported`): no
# sentence-transformers name or path ends so, and `get_embedder` refuses such a name (it needs the corpus).
IMPORTED_SUFFIX = " (imported)"
