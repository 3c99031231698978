"""Widgets for declared method parameters (`embedlab.registry.Param`): the retrieval and OOD pages build their
parameter forms with these, so a new parameter or a new method needs no page change.

`widget_spec` is the pure mapping (Param → Streamlit widget and its arguments): a selectbox for choices, a checkbox
for a bool, a number_input with the bounds and step for an int or a float, a text_input otherwise.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import streamlit as st

from embedlab.registry import Param


def widget_spec(param: Param, *, label: str | None = None) -> tuple[str, dict[str, Any]]:
    """The name of the Streamlit widget function that shows `param`, and its keyword arguments (no key)."""
    common: dict[str, Any] = {"label": label or param.name, "help": param.help or None}
    if param.choices:
        options = list(param.choices)
        return "selectbox", {**common, "options": options, "index": options.index(param.default)}
    if param.type is bool:
        return "checkbox", {**common, "value": bool(param.default)}
    if param.type is int:
        kwargs = {**common, "value": int(param.default), "step": max(1, int(param.step or 1))}
        if param.min is not None:
            kwargs["min_value"] = math.ceil(param.min)
        if param.max is not None:
            kwargs["max_value"] = math.floor(param.max)
        return "number_input", kwargs
    if param.type is float:
        step = param.step or (abs(param.default) / 10 if param.default else 0.1)
        kwargs = {**common, "value": float(param.default), "step": float(step), "format": "%g"}
        if param.min is not None:
            kwargs["min_value"] = float(param.min)
        if param.max is not None:
            kwargs["max_value"] = float(param.max)
        return "number_input", kwargs
    return "text_input", {**common, "value": "" if param.default is None else str(param.default)}


def param_widget(param: Param, *, key: str, disabled: bool = False, label: str | None = None) -> Any:
    """Show the widget of `param` under `key` and return its value (typed by the widget; text as typed, checked
    when the job validates its parameters)."""
    kind, kwargs = widget_spec(param, label=label)
    return getattr(st, kind)(key=key, disabled=disabled, **kwargs)


def changed_params(params: Sequence[Param], *, key_prefix: str, disabled: bool = False,
                   skip: Iterable[str] = ()) -> dict[str, Any]:
    """One widget per parameter (key `key_prefix + name`, e.g. "retr_p_hnsw_ef"); the values that differ from
    their defaults."""
    skipped = set(skip)
    changed = {}
    for param in params:
        if param.name in skipped:
            continue
        value = param_widget(param, key=f"{key_prefix}{param.name}", disabled=disabled)
        if value != param.default:
            changed[param.name] = value
    return changed
