"""Registries filled by discovery, declared parameters (types, bounds, choices) and the form widgets they map to."""
from __future__ import annotations

import importlib
import pkgutil
import sys
import textwrap

import numpy as np
import pytest

from components.param_form import widget_spec
from embedlab.errors import InputError
from embedlab.ood import REGISTRY, get_detector, method_names as ood_method_names, parse_methods
from embedlab.registry import Param, Registry, resolve_params
from embedlab.retrieval import (DEFAULT_METHODS, METHODS, TextSet, create_method, list_methods, method_names,
                                parse_method_list)

DESIGN_RETRIEVAL = {"bm25", "dense", "hnsw", "int8-rescore", "binary-rescore", "matryoshka-N", "hybrid-rrf",
                    "maxsim", "muvera", "invgc"}
DESIGN_OOD = {"knn", "mahalanobis", "rmd", "msp", "energy", "mcm", "vim", "lof", "iforest", "prototypes"}


def test_design_names_are_registered_and_listed_first():
    assert DESIGN_RETRIEVAL <= set(method_names())
    assert DESIGN_OOD <= set(ood_method_names())
    # DESIGN §3's order first (whatever else gets registered later follows)
    assert method_names()[:10] == ["bm25", "dense", "hnsw", "int8-rescore", "binary-rescore", "matryoshka-N",
                                   "hybrid-rrf", "maxsim", "muvera", "invgc"]
    assert ood_method_names()[:3] == ["knn", "mahalanobis", "rmd"]


@pytest.mark.parametrize("registry", [METHODS, REGISTRY], ids=["retrieval", "ood"])
def test_every_module_of_a_family_package_registers_a_class(registry):
    """Helpers live outside methods/ and detectors/: each module there is one (or more) registered class."""
    package = importlib.import_module(registry.package)
    modules = {m.name for m in pkgutil.iter_modules(package.__path__, prefix=f"{registry.package}.")}
    owners = {registry[name].__module__ for name in registry}
    assert modules and modules <= owners


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder added to a family package's path; the registry's entries are restored afterwards."""
    added: list[str] = []

    def add(registry: Registry, module: str, source: str) -> None:
        package = importlib.import_module(registry.package)
        folder = tmp_path / registry.package.replace(".", "_")
        folder.mkdir(exist_ok=True)
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
        monkeypatch.setattr(package, "__path__", [*package.__path__, str(folder)])
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
        added.append(f"{registry.package}.{module}")
        importlib.invalidate_caches()

    yield add
    for name in added:
        sys.modules.pop(name, None)


RETRIEVAL_PLUGIN = """
    import numpy as np

    from embedlab.neighbours import top_k_of_scores
    from embedlab.registry import Param
    from embedlab.retrieval.base import RetrievalMethod
    from embedlab.retrieval.registry import register


    @register
    class FirstDocs(RetrievalMethod):
        name = "zz-first-docs"
        description = "Ranks documents by their row number (a test plug-in)"
        param_specs = (Param("offset", int, 0, min=0, max=10),)
        needs = frozenset({"text"})

        def build(self, corpus):
            self.n_docs = len(corpus)
            return self

        def search(self, queries, k):
            scores = -np.arange(self.n_docs, dtype=np.float32) - self.params["offset"]
            return top_k_of_scores(np.tile(scores, (len(queries), 1)), k)

        @property
        def index_bytes(self):
            return 0
"""

OOD_PLUGIN = """
    import numpy as np

    from embedlab.ood.base import Detector, register
    from embedlab.registry import Param


    @register
    class NormDetector(Detector):
        name = "zz-norm"
        description = "The embedding's norm (a test plug-in)."
        param_specs = (Param("power", float, 1.0, min=0.5, max=4.0),)

        def _fit(self, X, labels, label_names, embed_fn):
            pass

        def _score(self, X):
            return np.linalg.norm(X, axis=1) ** self.config["power"]
"""


def test_a_new_retrieval_method_is_one_new_module(plugin_dir):
    assert "zz-first-docs" not in method_names()
    plugin_dir(METHODS, "zz_first_docs", RETRIEVAL_PLUGIN)
    METHODS.discover(refresh=True)
    assert method_names()[-1] == "zz-first-docs"           # not in DESIGN's order: after it, by name
    assert any(m.name == "zz-first-docs" and m.params[0].max == 10 for m in list_methods())
    assert parse_method_list("dense,zz-first-docs") == ["dense", "zz-first-docs"]
    method = create_method("zz-first-docs", offset="2").build(TextSet(["a", "b", "c"]))
    assert method.params == {"offset": 2}
    ids, _ = method.search(TextSet(["q"]), 2)
    assert ids.tolist() == [[0, 1]]
    with pytest.raises(InputError, match="zz-first-docs.*offset must be between 0 and 10"):
        create_method("zz-first-docs", offset=11)


def test_a_new_ood_detector_is_one_new_module(plugin_dir):
    plugin_dir(REGISTRY, "zz_norm", OOD_PLUGIN)
    REGISTRY.discover(refresh=True)
    assert ood_method_names()[-1] == "zz-norm" and "zz-norm" in REGISTRY
    scores = get_detector("zz-norm", power="2").fit(np.ones((3, 2))).score(np.array([[3.0, 4.0]]))
    assert scores.tolist() == [25.0]
    with pytest.raises(InputError, match="zz-norm.*power must be between 0.5 and 4, got 5.0"):
        get_detector("zz-norm", power=5)


def test_a_name_registered_twice_raises_and_order_comes_from_the_package(tmp_path, monkeypatch):
    package = tmp_path / "zz_family"
    package.mkdir()
    (package / "__init__.py").write_text("from embedlab.registry import Registry\n\n"
                                         "FAMILY = Registry('thing', __name__)\nDISPLAY_ORDER = ('b', 'a')\n")
    member = "from zz_family import FAMILY\n\n\n@FAMILY.register\nclass {cls}:\n    name = {name!r}\n"
    for module, cls, name in [("one", "A", "a"), ("two", "B", "b"), ("three", "C", "c0"), ("four", "Z", "aa")]:
        (package / f"{module}.py").write_text(member.format(cls=cls, name=name))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry = importlib.import_module("zz_family").FAMILY
        assert "zz_family.one" not in sys.modules                # nothing imported before first use
        assert registry.names() == ["b", "a", "aa", "c0"]
        assert registry["a"].__name__ == "A" and len(registry) == 4 and list(registry) == registry.names()
        (package / "five.py").write_text(member.format(cls="Other", name="a"))
        importlib.invalidate_caches()
        with pytest.raises(ValueError, match="'a' is registered twice: by zz_family.one.A and zz_family.five.Other"):
            registry.discover(refresh=True)
    finally:
        for name in [n for n in sys.modules if n == "zz_family" or n.startswith("zz_family.")]:
            del sys.modules[name]


@pytest.mark.parametrize("registry, parse, create", [
    (METHODS, parse_method_list, create_method),
    (REGISTRY, parse_methods, get_detector),
], ids=["retrieval", "ood"])
def test_both_families_use_the_registrys_one_front_end(registry, parse, create):
    """One front end: a family's parse and create are its registry's, so names are checked and refused alike."""
    first, second = registry.names()[:2]
    assert parse(f" {second},{first},{second} ") == registry.parse(f"{second},{first}") == [second, first]
    with pytest.raises(InputError) as err:
        parse(f"{first},nope-1,nope-2")
    assert str(err.value) == (f"unknown {registry.what}s 'nope-1', 'nope-2'; valid methods: "
                              f"{', '.join(registry.names())}")
    with pytest.raises(InputError, match=rf"^unknown {registry.what} 'nope'; valid methods: {first}, {second}"):
        create("nope")
    with pytest.raises(InputError, match=rf"^no {registry.what} given; valid methods: {first}"):
        parse(" , ")
    assert type(create(first)) is registry[first] and type(registry.create(first)) is registry[first]


def test_a_family_named_by_pattern_resolves_through_the_registry():
    cls, from_name = METHODS.resolve("matryoshka-64")
    assert cls is METHODS["matryoshka-N"] and from_name == {"dims": 64}
    assert create_method("matryoshka-64").name == "matryoshka-64"
    assert parse_method_list(None) == list(DEFAULT_METHODS) and parse_methods(None) == ood_method_names()
    with pytest.raises(InputError, match="retrieval method 'matryoshka-0': parameter dims must be at least 1"):
        METHODS.parse("dense,matryoshka-0")


def test_params_are_cast_from_strings():
    params = (Param("ratio", float, 0.5, min=0.0, max=1.0), Param("flag", bool, False), Param("n", int, 3, min=1),
              Param("mode", str, "a", choices=("a", "b")))
    got = resolve_params(params, {"ratio": "0.25", "flag": "true", "n": "64", "mode": "b"}, "method 'x'")
    assert got == {"ratio": 0.25, "flag": True, "n": 64, "mode": "b"}
    assert isinstance(got["n"], int) and isinstance(got["ratio"], float)
    assert resolve_params(params, {"flag": "off", "n": 5.0, "ratio": 1}, "x") == {"ratio": 1.0, "flag": False,
                                                                                   "n": 5, "mode": "a"}
    assert create_method("hnsw", ef="64").params["ef"] == 64
    assert create_method("invgc", local_adj="yes", r_query="0.5").params["local_adj"] is True
    assert get_detector("energy", temperature="0.5").config["temperature"] == 0.5


@pytest.mark.parametrize("make, message", [
    (lambda: create_method("hnsw", ef=0), r"retrieval method 'hnsw': parameter ef must be at least 1, got 0"),
    (lambda: create_method("hnsw", ef="many"), r"hnsw.*parameter ef must be an integer, got 'many'"),
    (lambda: create_method("hnsw", ef=2.5), r"hnsw.*parameter ef must be an integer"),
    (lambda: create_method("bm25", b=1.5), r"bm25.*parameter b must be between 0 and 1, got 1.5"),
    (lambda: create_method("bm25", method="okapi"), r"bm25.*parameter method must be one of 'lucene'"),
    (lambda: create_method("binary-rescore", rescore="int4"), r"binary-rescore.*parameter rescore must be one of"),
    (lambda: create_method("invgc", local_adj="maybe"), r"invgc.*parameter local_adj must be true or false"),
    (lambda: create_method("dense", nope=1), r"dense.*unknown parameter\(s\) nope \(valid: block\)"),
    (lambda: parse_method_list("matryoshka-0"), r"matryoshka-0.*parameter dims must be at least 1"),
    (lambda: get_detector("knn", k=0), r"OOD method 'knn': parameter k must be at least 1, got 0"),
    (lambda: get_detector("vim", centre="median"), r"vim.*parameter centre must be one of 'origin', 'mean'"),
    (lambda: get_detector("energy", temperature=0), r"energy.*parameter temperature must be at least"),
    (lambda: get_detector("lof", n_neighbors="twenty"), r"lof.*parameter n_neighbors must be an integer"),
])
def test_bad_values_raise_one_line_naming_method_and_parameter(make, message):
    with pytest.raises(InputError, match=message) as err:
        make()
    assert "\n" not in str(err.value)


def test_a_declaration_is_checked_when_the_module_loads():
    with pytest.raises(ValueError, match="default must be at most 1"):
        Param("p", float, 2.0, max=1.0)
    with pytest.raises(ValueError, match="default must be one of"):
        Param("p", str, "c", choices=("a", "b"))
    with pytest.raises(TypeError):
        Param("p", list, [])


def test_widget_spec_maps_type_bounds_and_choices():
    kind, kw = widget_spec(Param("ef", int, 128, min=1, max=4096, step=8, help="search breadth"))
    assert kind == "number_input" and kw == {"label": "ef", "help": "search breadth", "value": 128, "step": 8,
                                             "min_value": 1, "max_value": 4096}
    kind, kw = widget_spec(Param("b", float, 0.75, min=0.0, max=1.0))
    assert kind == "number_input" and kw["format"] == "%g" and kw["step"] == pytest.approx(0.075)
    assert (kw["value"], kw["min_value"], kw["max_value"]) == (0.75, 0.0, 1.0)
    assert all(isinstance(kw[k], float) for k in ("value", "step", "min_value", "max_value"))
    assert widget_spec(Param("r", float, 0.0))[1]["step"] == 0.1
    kind, kw = widget_spec(Param("centre", str, "mean", choices=("origin", "mean")))
    assert kind == "selectbox" and kw["options"] == ["origin", "mean"] and kw["index"] == 1
    assert widget_spec(Param("local_adj", bool, True)) == ("checkbox", {"label": "local_adj", "help": None,
                                                                        "value": True})
    kind, kw = widget_spec(Param("template", str, "{label}"), label="Prompt")
    assert kind == "text_input" and kw["value"] == "{label}" and kw["label"] == "Prompt"


def test_every_declared_parameter_has_a_widget():
    declared = [p for info in list_methods() for p in info.params]
    declared += [p for name in REGISTRY for p in REGISTRY[name].param_specs]
    assert declared
    for param in declared:
        kind, kw = widget_spec(param)
        assert kind in ("number_input", "selectbox", "checkbox", "text_input") and kw["label"] == param.name
        if kind == "number_input":
            assert type(kw["value"]) is type(kw["step"]) is param.type
