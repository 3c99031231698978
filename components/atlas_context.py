"""What the Atlas page hands to each of its tab views (compare, retrieval on the map, failure regions, compression,
OOD explanation, diagnostics): the workspace, the corpus, the model's embedding, the map, the user's focus and
selection, and the callbacks that change them. Views read it and draw inside their tab; they never change the
page's own state except through the callbacks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from embedlab.map_colours import ColourSpec
from embedlab.map_figure import Highlight, map_revision
from embedlab.workspace import CorpusInfo, Workspace


@dataclass
class AtlasContext:
    ws: Workspace                         # this browser session's workspace
    session_id: int
    corpus: CorpusInfo
    model: str                            # the model of the map on screen
    emb_id: int                           # matrix id of the corpus's embedding under `model`
    X: np.ndarray                         # that embedding (n x d, L2-normalised rows), read-only
    coords: np.ndarray | None             # the map on screen (n x 2 or n x 3); None until computed
    proj_id: int | None
    proj_params: dict | None              # the parameters of the map on screen (None until computed)
    map_params: dict                      # the Map settings (the map asked for: `projection_kwargs`)
    texts: Sequence[str]
    doc_ids: Sequence[str]
    labels: Sequence[Any] | None          # raw label values (None: corpus without labels)
    shown_labels: Sequence[Any] | None    # labels as the user named them
    label_names: Mapping[str, str]        # raw label -> the user's name for it
    hover: Sequence[str] | None           # escaped hover text per document (None above HOVER_TEXT_MAX_POINTS)
    models: Sequence[str]                 # every model with a finished embedding of this corpus
    focus: int | None                     # the focused document (row), if any
    selected: Sequence[int]               # the selected documents (rows)
    colour: ColourSpec                    # the main map's colours ("Colour by")
    set_focus: Callable[[int | None], None]
    set_selection: Callable[[Sequence[int]], None]
    clusters: Callable[[], tuple[np.ndarray, dict[int, str]]]   # (cluster id per row, -1 noise; keywords by id)
    encode: Callable[[Sequence[str]], np.ndarray]  # texts -> rows in this corpus's space under `model` (queries)
    highlights: Callable[[Sequence[int]], list[Highlight]]     # the main map's marks (hits, focus) + neighbours

    @property
    def n(self) -> int:
        return len(self.texts)

    @property
    def names_key(self) -> tuple[tuple[str, str], ...]:
        """The label names as a hashable cache key."""
        return tuple(sorted(self.label_names.items()))

    def revision(self, view: str) -> str:
        """Plotly `uirevision` for a view's own map (constant per corpus, model and map)."""
        return map_revision(view, self.corpus.id, self.model, self.proj_id)
