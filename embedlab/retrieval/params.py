"""The parameters of a retrieval comparison, checked and normalised before anything runs: the page checks them
before it submits a job (so the user sees a mistake at once), the CLI and the job check them again.

A comparison (JSON):
  {"source": "beir", "beir_dir": PATH (folder or .zip), "split": "test", "max_docs": N | None,
   "max_queries": N | None, ...}
  {"source": "labels", "corpus_id": ID, "n_queries": 200, "seed": 0, "max_relevant": N | None, ...}
     (max_relevant: at most N relevant documents per query, a seeded sample of its label, the rest of the label
     unjudged; None: every other document of its label; see `embedlab.retrieval.beir.queries_from_labels`)
  {"source": "judgments", "corpus_id": ID, "judges": [names] | None, ...}
     ("My judgments": the corpus's judged queries with a relevant document, graded by those judges (None: every
     judge of the corpus's session; several judges' grades of a pair combine to their lower median); the corpus
     names the session whose judgments count; see `embedlab.retrieval.judged`)
  ... with "model", "methods": [names] (None: every method the model can serve), "params": {method: {param: value}},
  "baseline": name, "dataset": label.
A job's params add "session_id" (the session that keeps the run).
"""
from __future__ import annotations

from typing import Any

from embedlab.embedding.embedders import DEFAULT_MODEL, get_embedder
from embedlab.embedding.imported import is_imported
from embedlab.errors import InputError
from embedlab.judgments import clean_judge
from embedlab.retrieval.beir import dataset_label
from embedlab.retrieval.registry import create_method, method_info, parse_method_list

SOURCES = ("beir", "labels", "judgments")


def validate_params(params: dict) -> dict:
    """A checked, normalised copy of a retrieval job's params (a comparison plus the session that keeps the run);
    InputError names what is wrong."""
    p = validate_comparison(params)
    p["session_id"] = positive_int(params.get("session_id"), "session_id")
    return p


def method_needs(name: str, params: dict[str, dict] | None = None) -> frozenset[str]:
    """What a method reads with its chosen parameters (a router's needs follow its experts)."""
    return create_method(name, **(params or {}).get(name, {})).needs


def validate_comparison(params: dict) -> dict:
    """A checked, normalised copy of a comparison's params (see the module docstring); InputError names what is
    wrong."""
    if not isinstance(params, dict):
        raise InputError("the comparison's parameters must be a mapping")
    p = dict(params)
    source = p.get("source")
    if source not in SOURCES:
        raise InputError(f"unknown query source {source!r}; expected one of {', '.join(SOURCES)}")
    p["model"] = str(p.get("model") or DEFAULT_MODEL).strip()
    has_tokens = model_has_tokens(p["model"])
    if p.get("methods") is None:
        # every method the model can serve (a model without token embeddings leaves out the token methods)
        p["methods"] = [n for n in parse_method_list(None) if has_tokens or "tokens" not in method_info(n).needs]
    elif not p["methods"]:
        raise InputError("pick at least one retrieval method")
    p["methods"] = parse_method_list(p["methods"])
    method_params = p.get("params") or {}
    if not isinstance(method_params, dict):
        raise InputError("params must map method names to their parameters")
    extra = sorted(set(method_params) - set(p["methods"]))
    if extra:
        raise InputError(f"parameters given for method(s) not chosen: {', '.join(map(str, extra))}")
    for name, values in method_params.items():
        if values is not None and not isinstance(values, dict):
            raise InputError(f"the parameters of {name} must map parameter names to values")
        create_method(name, **(values or {}))       # raises InputError on unknown or mistyped parameters
    p["params"] = {n: dict(v) for n, v in method_params.items() if v}
    baseline = p.get("baseline") or ("bm25" if "bm25" in p["methods"] else p["methods"][0])
    if baseline not in p["methods"]:
        raise InputError(f"the baseline {baseline!r} is not among the chosen methods")
    p["baseline"] = baseline
    if not has_tokens:
        token_methods = [n for n in p["methods"] if "tokens" in method_needs(n, p["params"])]
        if token_methods:
            raise InputError(f"{', '.join(token_methods)} need token embeddings, which {p['model']} has not: "
                             "pick a sentence-transformers model")
    if source == "beir":
        if not p.get("beir_dir"):
            raise InputError("no BEIR folder or ZIP given")
        p["beir_dir"] = str(p["beir_dir"])
        p["split"] = str(p.get("split") or "test").strip() or "test"
        p["max_docs"] = positive_int(p.get("max_docs"), "max docs", allow_none=True)
        p["max_queries"] = positive_int(p.get("max_queries"), "max queries", allow_none=True)
        p["dataset"] = str(p.get("dataset") or dataset_label(p["beir_dir"]))
    elif source == "judgments":
        p["corpus_id"] = positive_int(p.get("corpus_id"), "corpus_id")
        p["judges"] = judge_list(p.get("judges"))
    else:
        p["corpus_id"] = positive_int(p.get("corpus_id"), "corpus_id")
        p["n_queries"] = positive_int(p.get("n_queries", 200), "number of queries")
        try:
            p["seed"] = int(p.get("seed") or 0)
        except (TypeError, ValueError):
            raise InputError(f"seed must be a whole number, got {p.get('seed')!r}") from None
        p["max_relevant"] = positive_int(p.get("max_relevant"), "relevant documents per query", allow_none=True)
    return p


def judge_list(value: Any) -> list[str] | None:
    """Judges whose grades count: None (every judge), or names ("a,b" or a list), cleaned, duplicates dropped."""
    if value is None or value == "" or value == []:
        return None
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)):
        raise InputError("judges must be a list of names")
    cleaned = [clean_judge(n) for n in names if not (isinstance(n, str) and not n.strip())]
    return list(dict.fromkeys(cleaned)) or None


def model_has_tokens(model: str) -> bool:
    """Whether the model gives token embeddings (read from the embedder's flag; loads no weights)."""
    return not is_imported(model) and bool(get_embedder(model).has_tokens)   # imported vectors have no tokens


def positive_int(value: Any, what: str, *, allow_none: bool = False) -> int | None:
    """A positive whole number; with `allow_none`, None, "" and 0 mean "no limit" (None)."""
    if value is None or value == "" or (allow_none and value == 0):
        if allow_none:
            return None
        raise InputError(f"{what} is missing")
    if isinstance(value, bool):
        raise InputError(f"{what} must be a whole number, got {value!r}")
    try:
        number = int(value)
        whole = number == float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what} must be a whole number, got {value!r}") from None
    if number < 1 or not whole:
        raise InputError(f"{what} must be a positive whole number, got {value!r}")
    return number
