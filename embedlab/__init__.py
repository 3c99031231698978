"""EmbedLab engine: ingestion, embedding, projection, retrieval, OOD detection. No Streamlit here."""

__version__ = "0.1.0"
