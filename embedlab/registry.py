"""Registries filled by discovery, and parameters declared once with their type, bounds and choices.

A family (retrieval methods, OOD detectors) owns one `Registry` bound to a package. On first use the registry
imports every module of that package (`pkgutil.iter_modules`), and each class a module decorates with
`registry.register` becomes an entry: a new method is one new module, listed nowhere else (the way Renumics
Spotlight's registries find their entries). The package may define `DISPLAY_ORDER`, a tuple of names shown first in
that order; every other entry follows by name.

Each registered class declares its parameters as a tuple of `Param`; `resolve_params` turns what a caller gave
(typed values, or strings from the CLI and forms) into checked values, or raises InputError naming the parameter.

The front end every family shares is the registry's own: `names()`, `resolve(name)` (an entry, or a family whose
`pattern` a concrete name like `matryoshka-128` matches), `parse("a,b")` (names as a user gives them, checked) and
`create(name, **params)` (a checked instance). The families (`embedlab.retrieval.registry`, `embedlab.ood`) expose
these under their own names and add only what is theirs.
"""
from __future__ import annotations

import importlib
import math
import numbers
import pkgutil
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from embedlab.errors import InputError

C = TypeVar("C", bound=type)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "text"}


@dataclass(frozen=True)
class Param:
    """One parameter of a method: its type (bool, int, float or str), default, inclusive bounds, allowed values,
    a one-line help and, for numbers, the step a form's +/- buttons take (None: a tenth of the default)."""
    name: str
    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    help: str = ""
    step: float | None = None

    def __post_init__(self) -> None:
        if self.type not in _KINDS:
            raise TypeError(f"parameter {self.name}: type must be one of bool, int, float, str, not {self.type!r}")
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
        try:
            self._checked(self.default)
        except ValueError as exc:
            raise ValueError(f"parameter {self.name}: the default {exc}") from None

    def cast(self, value: Any) -> Any:
        """value as the parameter's type ("0.5" -> 0.5, "true" -> True); ValueError says why it cannot be."""
        kind = self.type
        if kind is bool:
            if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                return value.strip().lower() in _TRUE
            if isinstance(value, (bool, np.bool_, numbers.Integral)) and value in (0, 1):
                return bool(value)
        elif kind is int:
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                return int(value)
            number = _number(value)
            if number is not None and number.is_integer():
                return int(number)
        elif kind is float:
            number = _number(value)
            if number is not None and not math.isnan(number):
                return number
        elif isinstance(value, str):
            return value
        elif isinstance(value, numbers.Number) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"must be {_KINDS[kind]}, got {value!r}")

    def validate(self, value: Any, owner: str) -> Any:
        """value cast and checked against bounds and choices; InputError names the owner and the parameter."""
        try:
            return self._checked(value)
        except ValueError as exc:
            raise InputError(f"{owner}: parameter {self.name} {exc}") from None

    def _checked(self, value: Any) -> Any:
        value = self.cast(value)
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(repr, self.choices))}; got {value!r}")
        low, high = self.min, self.max
        if self.type in (int, float) and ((low is not None and value < low) or (high is not None and value > high)):
            if low is not None and high is not None:
                raise ValueError(f"must be between {low:g} and {high:g}, got {value!r}")
            if low is not None:
                raise ValueError(f"must be at least {low:g}, got {value!r}")
            raise ValueError(f"must be at most {high:g}, got {value!r}")
        return value


def _number(value: Any) -> float | None:
    """A real number from a number or a numeric string (booleans are not numbers here), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def defaults(params: Sequence[Param]) -> dict[str, Any]:
    """{name: default} of declared parameters."""
    return {p.name: p.default for p in params}


def resolve_params(params: Sequence[Param], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Every declared parameter's value: the given one (cast and checked) or its default.

    An unknown name, a value of the wrong type, out of bounds or not among the choices raises InputError with one
    line that names `owner` (e.g. "retrieval method 'hnsw'") and the parameter."""
    declared = {p.name: p for p in params}
    unknown = [str(name) for name in given if name not in declared]
    if unknown:
        raise InputError(f"{owner}: unknown parameter(s) {', '.join(unknown)} "
                         f"(valid: {', '.join(declared) or 'none'})")
    return {name: p.validate(given[name], owner) if name in given else p.default for name, p in declared.items()}


class Registry(Mapping[str, type]):
    """Name -> class for one family, filled by importing every module of `package` on first use.

    `register` is the class decorator the family's modules use; a name registered twice by different classes
    raises ValueError (re-importing the same module is fine). Iteration follows the display order."""

    def __init__(self, what: str, package: str) -> None:
        self.what = what              # e.g. "retrieval method", for messages
        self.package = package        # e.g. "embedlab.retrieval.methods"
        self._entries: dict[str, type] = {}
        self._order: tuple[str, ...] = ()
        self._discovered = False
        self._lock = threading.RLock()

    def register(self, cls: C) -> C:
        """Class decorator: make `cls` an entry under its `name` attribute."""
        name = getattr(cls, "name", "")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.what} {cls.__module__}.{cls.__qualname__} has no name")
        old = self._entries.get(name)
        if old is not None and _where(old) != _where(cls):
            raise ValueError(f"{self.what} {name!r} is registered twice: by {_where(old)} and {_where(cls)}")
        self._entries[name] = cls
        return cls

    def discover(self, *, refresh: bool = False) -> None:
        """Import every module of the package (once; `refresh` looks again, e.g. after a plug-in was added)."""
        if self._discovered and not refresh:
            return
        with self._lock:
            if self._discovered and not refresh:
                return
            package = importlib.import_module(self.package)
            for module in sorted(pkgutil.iter_modules(package.__path__, prefix=f"{self.package}."),
                                 key=lambda m: m.name):
                importlib.import_module(module.name)
            self._order = tuple(getattr(package, "DISPLAY_ORDER", ()))
            self._discovered = True

    def names(self) -> list[str]:
        """Every entry's name: the package's DISPLAY_ORDER first, then the rest by name."""
        self.discover()
        rank = {name: i for i, name in enumerate(self._order)}
        return sorted(self._entries, key=lambda n: (rank.get(n, len(rank)), n))

    def __getitem__(self, name: str) -> type:
        self.discover()
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.discover()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {self.package!r})"

    # --- the front end: names as a user gives them, checked --------------------------------------------------------

    def resolve(self, name: str) -> tuple[type, dict[str, Any]]:
        """(the entry, the parameters the name carries) for a concrete name: an entry's own name, or a name that a
        family's `pattern` matches (its `params_from_name`, checked: `matryoshka-0` is refused). InputError lists the
        valid names."""
        name = (name or "").strip()
        names = self.names()
        if name in names and getattr(self[name], "pattern", None) is None:
            return self[name], {}
        for family in names:
            cls = self[family]
            pattern = getattr(cls, "pattern", None)
            match = re.fullmatch(pattern, name) if pattern else None
            if match:
                from_name = cls.params_from_name(match)
                resolve_params(cls.param_specs, from_name, f"{self.what} {name!r}")
                return cls, from_name
        raise InputError(f"unknown {self.what} {name!r}; {self._valid()}")

    def parse(self, spec: str | Sequence[str] | None, *, default: Sequence[str] | None = None) -> list[str]:
        """'a,b' or a list -> checked concrete names, duplicates dropped, order kept; None -> `default` (every name
        when no default is given). Unknown names raise one InputError naming them all."""
        if spec is None:
            return list(default) if default is not None else self.names()
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        names = list(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
        if not names:
            raise InputError(f"no {self.what} given; {self._valid()}")
        unknown = []
        for name in names:
            try:
                self.resolve(name)
            except InputError:
                if not self._known_family(name):
                    unknown.append(name)
                    continue
                raise                      # a family's name with a bad number (matryoshka-0): its own message
        if unknown:
            listed = ", ".join(map(repr, unknown))
            raise InputError(f"unknown {self.what}{'s' if len(unknown) > 1 else ''} {listed}; {self._valid()}")
        return names

    def create(self, name: str, **params: Any) -> Any:
        """A new instance for a concrete name, its parameters (typed, or strings to cast) over its defaults and the
        name's own, checked (InputError names the entry and the parameter)."""
        cls, from_name = self.resolve(name)
        try:
            entry = cls(**{**from_name, **params})
        except ValueError as exc:
            raise InputError(f"{name}: {exc}") from exc
        if getattr(cls, "pattern", None):
            entry.name = name  # the instance's name is the concrete one, e.g. matryoshka-128
        return entry

    def _known_family(self, name: str) -> bool:
        return any(getattr(self[f], "pattern", None) and re.fullmatch(self[f].pattern, name) for f in self.names())

    def _valid(self) -> str:
        return f"valid {self.what.split()[-1]}s: {', '.join(self.names())}"


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
