"""Colour by: the choices a corpus offers on the Atlas's map (label, cluster, length, metadata columns, OOD scores
of the session's runs, hubness) and the colours of each choice."""
from __future__ import annotations

from typing import Callable

import numpy as np

from components.data import (corpus_view, k_occurrence_for, label_colour_for, ood_colour_layers,
                             ood_colour_values)
from embedlab.map_colours import (NOISE, ColourSpec, categorical_colour, colour_spec, document_lengths,
                                  metadata_columns, numeric_colour)
from embedlab.workspace import CorpusInfo

LABEL, CLUSTER, LENGTH, META = "label", "cluster", "length (characters)", "meta: "
HUBNESS = "hubness (N_10: in how many top-10 lists)"
META_SAMPLE = 2000     # documents whose metadata names the columns offered


def colour_choices(session_id: int, corpus: CorpusInfo) -> list[str]:
    """What the map of `corpus` can be coloured by, in the order the "Colour by" box lists them."""
    view = corpus_view(corpus)
    options = ([LABEL] if view.labels is not None else []) + [CLUSTER, LENGTH]
    options += [f"{META}{c}" for c in metadata_columns(view.metas[:META_SAMPLE])]
    return options + [*ood_colour_layers(session_id, corpus), HUBNESS]


def colour_of(choice: str, *, session_id: int, corpus: CorpusInfo, emb_id: int,
              names: tuple[tuple[str, str], ...],
              clusters: Callable[[], tuple[np.ndarray, dict[int, str]]]) -> ColourSpec:
    """The colours of `choice` (one of `colour_choices`); `clusters` gives the clusters on screen."""
    if choice == LABEL:
        return label_colour_for(corpus, names)
    if choice == CLUSTER:
        ids, keywords = clusters()
        return categorical_colour("cluster", [f"{c}: {keywords.get(int(c), '')}" if c >= 0 else NOISE for c in ids])
    if choice == LENGTH:
        return numeric_colour("length (characters)", document_lengths(corpus_view(corpus).texts))
    if choice == HUBNESS:
        return numeric_colour("N_10", k_occurrence_for(emb_id))
    layers = ood_colour_layers(session_id, corpus)
    if choice in layers:    # untested documents have no score: grey
        run, detector = layers[choice]
        return numeric_colour(f"{detector} OOD score", ood_colour_values(run, detector, corpus))
    column = choice.removeprefix(META)
    return colour_spec(column, [m.get(column) for m in corpus_view(corpus).metas])
