"""Embedding: embedders (the bundled all-MiniLM-L6-v2, any sentence-transformers model, TF-IDF + SVD), the content
cache in SQLite, `EmbeddingSpace` (one per corpus and model: documents and new texts in one space) and the Ray engine.

`DEFAULT_MODEL` is named here, where reading it costs nothing (the CLI's parser shows it); `embedders` uses it."""

DEFAULT_MODEL = "all-MiniLM-L6-v2"
