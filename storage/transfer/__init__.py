"""Moving one session between databases: export to a standalone `.sqlite` file, import such a file.
Export writes a fresh file with our own schema (rows copied, ids renumbered), leaves it as one self-contained
file (journal mode DELETE, no `-wal`) and moves it into place atomically.
Import is a trust boundary: the file may come from anyone. Before a single row is copied the file is checked
(size, header, `PRAGMA integrity_check`, schema version, tables, columns and their types, and every row's
shape and references). It is opened read-only and immutable with `sqlite3` directly, with `trusted_schema`
off; only plain row values are read from it and inserted with parameters into our database, in one transaction:
no SQL text, trigger or view of the file is ever executed or copied, and any failure leaves our database as it was.
Cached matrices are shared across sessions by cache key, so an imported matrix must never answer a lookup for data
it was not computed from. By construction:
* every corpus's content hash is recomputed from its documents (once to check the file, and again over the very
  rows inserted); a file whose stored hash differs is refused, and only the recomputed hash is stored;
* every matrix belongs to a corpus of the file with that same content, and its shape fits it (an embedding or a
  projection has exactly one row per document; token offsets one more, rising from 0 to the token count);
* the cache key of every embedding, token and projection matrix is recomputed from what the file brings: the
  matrix's own `params_json` (the embedder identity, or the projection parameters together with the recomputed key
  of an embedding of the same content) and the recomputed content hash. A key in those namespaces that differs is
  refused; a matrix is only ever stored under the recomputed key. So a lookup (`cache_key(embedder, content_hash)`)
  can only find an imported matrix for the same identity and the same texts, with the right shape. Keys in no
  lookup namespace are kept as they are: no lookup computes them;
* where the target already holds a complete matrix under a key, that one is kept and the file's is not copied.
Values are checked too, in every chunk, before anything is written and again as the bytes are copied: no NaN or
±inf in an embedding, token or projection matrix, and every embedding row of unit length (or all zero), as stored
embeddings are L2-normalised; a matrix that fails refuses the whole import.
And a file may still claim vectors for its texts that the model would not give. So an embedding enters the shared
cache only when it verifies (the caller's `MatrixVerifier`, the engine's `embedlab.embedding.verify`: a random sample
of its documents re-encoded with the claimed model, cosine >= 0.999 on every sampled row); token embeddings
likewise, and a projection only with the embedding of the file it was derived from. Everything else (unverified,
unverifiable here, or under a key no lookup computes) is kept private to the imported corpus
(`storage.cache_keys.private_key`, "imported, not verified"): that corpus uses it, and no other corpus's lookup ever
finds it. An export writes a corpus's private matrices under their shared keys, so the next import checks them
again.
The steps, one module each: `file_format` (the tables and limits), `export`, `file_checks` (kind, size, header,
integrity, schema), `validation` (rows, references, recomputed hashes and keys, values), `verification` (which
matrices may be shared), `import_copy` (one transaction) and `importer` (`import_session`, which runs them).
"""
from __future__ import annotations

from storage.transfer.export import export_session, export_target
from storage.transfer.file_format import IMPORTABLE_VERSIONS, MAX_IMPORT_BYTES, ImportRefused
from storage.transfer.importer import import_session
from storage.transfer.verification import MatrixVerifier, Verdict

__all__ = ["IMPORTABLE_VERSIONS", "MAX_IMPORT_BYTES", "ImportRefused", "MatrixVerifier", "Verdict", "export_session",
           "export_target", "import_session"]
