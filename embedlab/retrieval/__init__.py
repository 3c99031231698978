"""Retrieval lab: methods side by side (registry), BEIR and label-based query sources, ranx evaluation.

The page, the CLI and the benchmark read the registry: `list_methods()` for names, descriptions and declared
parameters, `create_method(name, **params)` for an instance, `.build(corpus)` then `.search(queries, k)`. The
methods are found by discovery in `embedlab.retrieval.methods` (one module each).
"""
from embedlab.retrieval.base import RetrievalMethod, TextSet, TokenMatrix
from embedlab.retrieval.registry import (DEFAULT_METHODS, METHODS, MethodInfo, create_method, list_methods,
                                         method_info, method_names, parse_method_list, register)

__all__ = ["DEFAULT_METHODS", "METHODS", "MethodInfo", "RetrievalMethod", "TextSet", "TokenMatrix", "create_method",
           "list_methods", "method_info", "method_names", "parse_method_list", "register"]
