"""Lexical analysis for BM25 (`methods/bm25.py`): the Snowball stemmer (PyStemmer) when installed."""
from __future__ import annotations

import warnings


def make_stemmer(name: str):
    """A PyStemmer stemmer ('english' = Snowball Porter2, 'porter' = Porter 1980), or None for 'none'."""
    if not name or name == "none":
        return None
    try:
        import Stemmer
    except ImportError:
        warnings.warn("PyStemmer is not installed: BM25 runs without stemming (install PyStemmer for BEIR parity)",
                      stacklevel=3)
        return None
    return Stemmer.Stemmer(name)
