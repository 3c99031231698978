"""Every cache-key formula: the key under which a matrix lives in the `matrices` table.

A matrix computed here is stored under its shared key, found by every corpus of the same texts, in any session:
* an embedding or token embeddings: `identity_cache_key(identity, content hash, kind)`, a hash of the embedder's
  identity (model, weights' hash, normalisation, max length, backend) and of the content hash
  (`storage.content.content_hash`); token offsets live beside their tokens (`offsets_key`);
* a projection: `projection_cache_key(embedding key, projection parameters)`;
* vectors a user brought with a corpus (`ingest --vectors`): `imported_cache_key(name, vectors digest, content hash)`,
  in a namespace of its own, so never the key of an embedding EmbedLab computed.
A matrix imported from a file that did not verify (`storage.transfer`) is private to the corpus it came with:
stored under `private_key(shared key, corpus id)`, a key no other corpus's lookup computes. `corpus_key` is the one
place that says which key a corpus's matrix lives under, and `sharing_scope` what an in-process cache of a corpus's
derived data may be keyed by.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import sqlite_utils

PRIVATE_PREFIX = "private:"
IMPORTED_PREFIX = "imported:"
OFFSETS_SUFFIX = ":offsets"
# The key namespaces that lookups compute (a private key too: an imported file's key there is refused, never kept).
# Imported vectors are found by their name among a corpus's matrices, never computed from a model's identity: a
# session file's "imported:" matrix stays private to the corpus it came with.
LOOKUP_PREFIXES = ("embedding:", "tokens:", "projection:", PRIVATE_PREFIX)


def identity_cache_key(identity: Mapping[str, Any], content_hash: str, kind: str = "embedding") -> str:
    """The shared key of the `kind` ("embedding" or "tokens") matrix that an embedder of this identity gives for the
    texts of this content hash."""
    payload = json.dumps({"identity": identity, "content": content_hash, "kind": kind}, sort_keys=True)
    return f"{kind}:{hashlib.sha256(payload.encode()).hexdigest()}"


def imported_cache_key(name: str, vectors_digest: str, content_hash: str) -> str:
    """The shared key of vectors a user imported for the texts of this content hash under the model name `name`
    (free text): a hash of the name, of the vectors' stored bytes (`vectors_digest`, the sha256 of the L2-normalised
    little-endian float32 rows) and of the content hash. Its namespace ("imported:") is no embedder's: imported
    vectors are never taken for an embedding EmbedLab computed, nor the other way round."""
    payload = json.dumps({"imported": name, "vectors": vectors_digest, "content": content_hash}, sort_keys=True)
    return IMPORTED_PREFIX + hashlib.sha256(payload.encode()).hexdigest()


def offsets_key(tokens_key: str) -> str:
    """The key of the token offsets stored beside the token matrix under `tokens_key`."""
    return tokens_key + OFFSETS_SUFFIX


def projection_cache_key(embedding_key: str, params: Mapping[str, Any]) -> str:
    """The shared key of a projection (`params`) of the embedding whose shared key is `embedding_key`."""
    payload = json.dumps({"embedding": embedding_key, "projection": params}, sort_keys=True)
    return "projection:" + hashlib.sha256(payload.encode()).hexdigest()


def private_key(shared_key: str, corpus_id: int) -> str:
    """The key of corpus `corpus_id`'s private copy of the matrix whose shared key is `shared_key`."""
    return f"{PRIVATE_PREFIX}{int(corpus_id)}:{shared_key}"


def is_private(key: str) -> bool:
    return key.startswith(PRIVATE_PREFIX)


def shared_key_of(key: str) -> str:
    """The shared key a (private or shared) key stands for."""
    if not is_private(key):
        return key
    return key[len(PRIVATE_PREFIX):].split(":", 1)[1]


def corpus_key(db: sqlite_utils.Database, shared_key: str, corpus_id: int | None, *,
               derived_from: str | None = None) -> str:
    """The key under which corpus `corpus_id` finds (and stores) the matrix whose shared key is `shared_key`: its
    private key when the corpus holds a private copy of that matrix, or of the embedding it is derived from
    (`derived_from`: the embedding's shared key, for a projection or token matrix); else the shared key. Without a
    corpus (texts that are no stored corpus) always the shared key."""
    if corpus_id is None:
        return shared_key
    own = private_key(shared_key, corpus_id)
    keys = [own] + ([private_key(derived_from, corpus_id)] if derived_from else [])
    hit = db.execute(f"SELECT 1 FROM matrices WHERE corpus_id = ? AND cache_key IN ({', '.join('?' * len(keys))}) "
                     "LIMIT 1", [corpus_id, *keys]).fetchone()
    return own if hit else shared_key


def sharing_scope(db: sqlite_utils.Database, corpus_id: int, content_hash: str) -> str:
    """What an in-process cache of a corpus's derived data (a search index) may be keyed by: its content hash, shared
    with every corpus of the same texts; or, for a corpus holding private matrices, a scope of its own."""
    own = db.execute("SELECT 1 FROM matrices WHERE corpus_id = ? AND cache_key LIKE ? LIMIT 1",
                     [corpus_id, private_key("", corpus_id) + "%"]).fetchone()
    return private_key(content_hash, corpus_id) if own else content_hash
