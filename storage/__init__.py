"""SQLite storage for EmbedLab: schema and migrations, sessions, corpora, matrices."""
from storage.db import StorageError, connect, default_db_path, transaction

__all__ = ["StorageError", "connect", "default_db_path", "transaction"]
