"""The OOD task of the page's "ood" job, built from the job's params and the session's stored corpora.

params (JSON): session_id; model; id_corpus_id; id_labels (optional: only these labels are in-distribution);
ood_labels and near_ood_labels (documents with these labels leave training and are tested as OOD); test, one of
  "holdout"  ID test = a held-out `fraction` of the in-distribution documents (seeded by `seed`);
  "corpus"   the same, plus every document of test_corpus_id as OOD;
  "corpora"  nothing held out: every in-distribution document trains, every document of id_test_corpus_id is the
             ID test, every document of test_corpus_id (optional when labels are marked OOD) is OOD. This is
             `bench-ood --train A --test B --ood C` on three stored corpora;
methods; params ({method: {name: value}}).

The in-distribution corpus's stored embedding (shared with the Atlas) is the space: training and held-out
documents are rows of it; another corpus's documents are encoded in it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

from embedlab.embedding.embedders import DEFAULT_MODEL
from embedlab.embedding.space import EmbeddingSpace
from embedlab.errors import InputError, UserError
from embedlab.ood import parse_methods
from embedlab.ood.comparison import OODTask, TestPart
from embedlab.ood.split import DEFAULT_FRACTION, OODSplit, split_corpus
from storage.corpora import get_corpus, load_labels, load_texts

TEST_SOURCES = ("holdout", "corpus", "corpora")


@dataclass
class CorpusTask:
    """A task from stored corpora, with what the job keeps in its run."""

    task: OODTask
    session_id: int
    model: str
    methods: list[str]
    method_params: dict[str, dict[str, Any]]
    split: OODSplit
    corpora: dict[str, Any]          # role ("in-distribution", "id test", "ood") → CorpusInfo
    choices: dict[str, Any]          # the page's choices, checked: labels, test source, hold-out, corpus ids

    @property
    def test_idx(self) -> list[list[int]]:
        return [list(r) for r in self.task.test_refs]  # every part of a stored task has refs

    def run_params(self) -> dict[str, Any]:
        """The params a run of this task keeps (`embedlab.runs.OODRun`): the comparison as validated, the corpora
        named as well as numbered."""
        params = {"source": "session", "model": self.model, "methods": list(self.methods),
                  "params": self.method_params, **self.choices, "corpus": self.corpora["in-distribution"].name,
                  "dataset": self.task.dataset}
        for role, key in (("id test", "id_test_corpus"), ("ood", "test_corpus")):
            if role in self.corpora:
                params[key] = self.corpora[role].name
        return params


def task_from_corpora(db: sqlite_utils.Database, params: dict) -> CorpusTask:
    """Validate the job's params and build its task; InputError (one clear line) for anything a user can get
    wrong. Reads labels and texts, embeds nothing."""
    if not isinstance(params, dict):
        raise InputError("OOD job parameters must be a JSON object")
    model = params.get("model") or DEFAULT_MODEL
    info = _corpus(db, params, "id_corpus_id", "the in-distribution corpus")
    session_id = _int(params.get("session_id") or info.session_id, "session_id")
    if info.session_id != session_id:
        raise InputError("the in-distribution corpus belongs to another session")
    test = params.get("test", "holdout")
    if test not in TEST_SOURCES:
        raise InputError(f"unknown test source {test!r} (valid: {', '.join(TEST_SOURCES)})")
    methods = parse_methods(params.get("methods") or None)
    raw_params = params.get("params") or {}
    if not isinstance(raw_params, dict) or not all(isinstance(v, dict) for v in raw_params.values()):
        raise InputError("method parameters must be {method: {parameter: value}}")
    method_params = {m: dict(v) for m, v in raw_params.items() if m in methods}
    ood_labels = list(dict.fromkeys([*_strings(params.get("ood_labels"), "ood_labels"),
                                     *_strings(params.get("near_ood_labels"), "near_ood_labels")]))

    id_test_info = test_info = None
    if test == "corpora":
        id_test_info = _corpus(db, params, "id_test_corpus_id", "the in-distribution test corpus")
    if test in ("corpus", "corpora") and (test == "corpus" or params.get("test_corpus_id") is not None):
        test_info = _corpus(db, params, "test_corpus_id", "the corpus to test on")
    seen = {info.id: "in-distribution"}
    for other, role in ((id_test_info, "in-distribution test"), (test_info, "test")):
        if other is None:
            continue
        if other.id in seen:
            raise InputError(f"the {role} corpus must be another corpus than the {seen[other.id]} one")
        if other.session_id != session_id:
            raise InputError(f"the {role} corpus belongs to another session")
        seen[other.id] = role

    labels = load_labels(db, info.id)
    fraction = 0.0 if test == "corpora" else _float(params.get("fraction", DEFAULT_FRACTION), "fraction")
    split = split_corpus(labels, id_labels=_strings(params.get("id_labels"), "id_labels") or None,
                         ood_labels=ood_labels, fraction=fraction, seed=_int(params.get("seed", 0), "seed"))

    def rows_part(name: str, is_ood: bool, rows) -> TestPart:
        return TestPart(name, is_ood, rows=rows, labels=[None if split.labels is None else split.labels[i]
                                                         for i in rows], refs=[[info.id, int(i)] for i in rows])

    def corpus_part(corpus, is_ood: bool) -> TestPart:
        texts = load_texts(db, corpus.id)
        return TestPart(corpus.name, is_ood, texts=texts, labels=load_labels(db, corpus.id),
                        refs=[[corpus.id, i] for i in range(len(texts))])

    tests = [corpus_part(id_test_info, False) if id_test_info is not None
             else rows_part("held-out documents", False, split.id_test)]
    if len(split.ood):
        tests.append(rows_part("documents marked OOD", True, split.ood))
    if test_info is not None:
        tests.append(corpus_part(test_info, True))
    space = EmbeddingSpace.for_corpus(db, info.id, model)
    task = OODTask(dataset=info.name, space=space, train_labels=split.train_labels, tests=tests,
                   train_rows=split.train)
    corpora = {"in-distribution": info, "id test": id_test_info, "ood": test_info}
    choices = {"id_corpus_id": info.id, "id_labels": _strings(params.get("id_labels"), "id_labels"),
               "ood_labels": _strings(params.get("ood_labels"), "ood_labels"),
               "near_ood_labels": _strings(params.get("near_ood_labels"), "near_ood_labels"), "test": test,
               "fraction": fraction, "seed": _int(params.get("seed", 0), "seed")}
    choices.update({key: other.id for key, other in (("id_test_corpus_id", id_test_info), ("test_corpus_id", test_info))
                    if other is not None})
    return CorpusTask(task=task, session_id=session_id, model=model, methods=methods,
                      method_params=method_params, split=split,
                      corpora={k: v for k, v in corpora.items() if v is not None}, choices=choices)


def _corpus(db: sqlite_utils.Database, params: dict, key: str, what: str):
    if params.get(key) is None:
        raise InputError(f"pick {what}")
    try:
        return get_corpus(db, _int(params[key], key))
    except InputError:
        raise
    except UserError:
        raise InputError(f"{what} (corpus {params[key]}) no longer exists") from None


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a whole number, got {value!r}") from None


def _float(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}") from None


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise InputError(f"{what} must be a list of labels, got {value!r}")
    return [str(v) for v in value]
