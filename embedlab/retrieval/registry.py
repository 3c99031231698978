"""The registry of retrieval methods that the page, the CLI and the benchmark all read.

Methods are found by discovery: every module of `embedlab.retrieval.methods` is imported on first use, and each
class it decorates with `@register` is a method (display order: `methods.DISPLAY_ORDER`, then by name). A family
with a number in its name (`matryoshka-N`) sets a `pattern` on its class. `create_method("matryoshka-128")` gives
a ready-to-build instance with checked parameters (the front end is `embedlab.registry.Registry`'s, shared with the
OOD detectors).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from embedlab.registry import Param, Registry
from embedlab.retrieval.base import RetrievalMethod

DEFAULT_METHODS = ("bm25", "dense", "hnsw", "int8-rescore", "binary-rescore", "matryoshka-128", "hybrid-rrf",
                   "maxsim", "muvera", "invgc")

METHODS = Registry("retrieval method", "embedlab.retrieval.methods")
register = METHODS.register


@dataclass(frozen=True)
class MethodInfo:
    """What the UI and CLI show about a method: name (or pattern), one-line description, declared parameters."""
    name: str
    description: str
    params: tuple[Param, ...]
    needs: frozenset[str]
    cls: type[RetrievalMethod]
    pattern: str | None = None       # e.g. r"matryoshka-(\d+)" for parametrised names

    @classmethod
    def of(cls, method: type[RetrievalMethod]) -> "MethodInfo":
        return cls(method.name, method.description, tuple(method.param_specs), frozenset(method.needs), method,
                   method.pattern)

    def param(self, name: str) -> Param:
        """The declared parameter called `name`."""
        return next(p for p in self.params if p.name == name)


def list_methods() -> list[MethodInfo]:
    """Every registered method family, in display order (DESIGN §3's first, then the rest by name)."""
    return [MethodInfo.of(METHODS[name]) for name in METHODS.names()]


def method_names() -> list[str]:
    """Names as the CLI accepts them (`matryoshka-N` stands for any N)."""
    return METHODS.names()


def method_info(name: str) -> MethodInfo:
    """The registry entry for a concrete name such as `dense` or `matryoshka-64`."""
    cls, _ = METHODS.resolve(name)
    return MethodInfo.of(cls)


def create_method(name: str, **params: Any) -> RetrievalMethod:
    """An unbuilt method instance for a concrete name, with parameters over its defaults (InputError if bad)."""
    return METHODS.create(name, **params)


def parse_method_list(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """'a,b' or a list -> validated concrete names (duplicates dropped, order kept); None -> DEFAULT_METHODS."""
    return METHODS.parse(spec, default=DEFAULT_METHODS)
