"""The content hash of a corpus: what its cached matrices are computed from."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable


def content_hash(texts: Iterable[str]) -> str:
    """sha256 over the texts in order, each prefixed by its UTF-8 length (so no two lists of texts collide by
    concatenation). Raises UnicodeEncodeError for a text holding a lone surrogate."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()
