"""Retrieval lab: methods side by side (registry), BEIR and label-based query sources, ranx evaluation.

The page, the CLI and the benchmark read the registry: `list_methods()` for names, descriptions and parameter
defaults, `create_method(name, **params)` for an instance, `.build(corpus)` then `.search(queries, k)`.
"""
from embedlab.retrieval.base import RetrievalMethod, TextSet, TokenMatrix
from embedlab.retrieval.registry import (DEFAULT_METHODS, MethodInfo, create_method, list_methods, method_info,
                                         method_names, parse_method_list)

__all__ = ["DEFAULT_METHODS", "MethodInfo", "RetrievalMethod", "TextSet", "TokenMatrix", "create_method",
           "list_methods", "method_info", "method_names", "parse_method_list"]
