"""Retrieval methods, one module each, found by discovery (`embedlab.retrieval.registry.METHODS`).

A new method is one new module here with a class decorated by `@register` (from `embedlab.retrieval.registry`);
nothing else lists it. Shared machinery lives outside this package (dense, lexical, quantized, multivector,
fusion, hubness), so that every module here is a method.
"""

# DESIGN §3's order, shown first; a method not named here follows, by name.
DISPLAY_ORDER = ("bm25", "dense", "hnsw", "int8-rescore", "binary-rescore", "matryoshka-N", "hybrid-rrf", "maxsim",
                 "muvera", "invgc")
