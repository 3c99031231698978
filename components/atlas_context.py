"""What the Atlas page hands to each of its evaluation views (retrieval on the map, failure regions, compression,
OOD explanation, diagnostics): the corpus, the model's embedding, the map, the user's focus and the callbacks that
change it. Views read it and draw inside their tab; they never change the page's own state except through the
callbacks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

# The Atlas's tabs (labels as shown); a share link names one by its words, without the emoji (`tab_name`).
ATLAS_TABS = ["🔎 Search hits", "☑️ Selection", "🧩 Clusters", "🔖 Bookmarks", "📏 Quality", "⚖️ Compare",
              "🎯 Retrieval", "🗺️ Failure regions", "🗜️ Compression", "🚨 Why OOD", "🩺 Diagnostics"]
ATLAS_TAB_KEY = "atlas_tab"


def tab_name(label: str) -> str:
    """A tab's words without its emoji: "🗺️ Failure regions" -> "Failure regions"."""
    return label.split(" ", 1)[1] if " " in label else label


def tab_label(name: str | None) -> str | None:
    """The tab whose words are `name` (case-insensitive), or None."""
    wanted = (name or "").strip().casefold()
    return next((t for t in ATLAS_TABS if tab_name(t).casefold() == wanted), None)


@dataclass
class AtlasContext:
    db: Any                               # sqlite_utils.Database of this server thread
    db_path: str                          # key for st.cache_data / st.cache_resource
    session_id: int
    corpus: Any                           # storage.corpora.CorpusInfo (id, name, content_hash, n_docs, ...)
    model: str                            # the model of the map on screen
    emb_id: int                           # matrix id of the corpus's embedding under `model`
    X: np.ndarray                         # that embedding (n x d, L2-normalised rows), read-only
    coords: np.ndarray | None             # the map on screen (n x 2 or n x 3); None until computed
    proj_id: int | None
    texts: Sequence[str]
    doc_ids: Sequence[str]
    labels: Sequence[Any] | None          # raw label values (None: corpus without labels)
    shown_labels: Sequence[Any] | None    # labels as the user named them
    hover: Sequence[str] | None           # escaped hover text per document (None above HOVER_TEXT_MAX_POINTS)
    models: Sequence[str]                 # every model with a finished embedding of this corpus
    focus: int | None                     # the focused document (row), if any
    set_focus: Callable[[int | None], None]
    set_selection: Callable[[Sequence[int]], None]
    clusters: Callable[[], tuple[np.ndarray, dict[int, str]]]   # (cluster id per row, -1 noise; keywords by id)
    encode: Callable[[Sequence[str]], np.ndarray]  # texts -> rows in this corpus's space under `model` (queries)

    @property
    def n(self) -> int:
        return len(self.texts)

    def revision(self, view: str) -> str:
        """Plotly `uirevision` for a view's own map (constant per corpus, model and map)."""
        from embedlab.map_figure import map_revision

        return map_revision(view, self.corpus.id, self.model, self.proj_id)
