"""Embedding: embedders (the bundled all-MiniLM-L6-v2, any sentence-transformers model, TF-IDF + SVD), the content
cache in SQLite, `EmbeddingSpace` (one per corpus and model: documents and new texts in one space) and the Ray engine."""
