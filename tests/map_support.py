"""Reading the WebGL maps a page drew under AppTest (each map's points and layer, decoded), and acting on them as
the browser does: a click or a box/lasso selection is the points element's trigger ("click": an index, "select":
indices), sent with the next run's widget states exactly as the frontend sends it."""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.proto.WidgetStates_pb2 import WidgetState

from embedlab.scatter_payload import DecodedMap, decode_map, normalised, unpack_layer, unpack_points
from embedlab.scatter_layer import N_BINS

GREY = "#D0D0D0"            # "no value", on every map

POINTS, LAYER = "embedlab_map_points", "embedlab_map_layer"


def _elements(at, component: str) -> dict[str, Any]:
    """The page's elements of one of the map's two components, by their map's key."""
    found = {}
    for element in at.get("bidi_component"):
        proto = element.proto
        if proto.component_name == POINTS == component:
            found[unpack_points(proto.bytes)[0]["key"]] = element
        elif proto.component_name == LAYER == component:
            found[unpack_layer(proto.bytes)[0]["key"]] = element
    return found


def maps(at) -> dict[str, DecodedMap]:
    """Every WebGL map of the page's last run, by its key (e.g. "atlas_map")."""
    points, layers = _elements(at, POINTS), _elements(at, LAYER)
    return {key: decode_map(points[key].proto.bytes, layers[key].proto.bytes) for key in points if key in layers}


def legend_names(m: DecodedMap) -> list[str]:
    return [name for name, _ in m.layer["legend"]]


def legend(m: DecodedMap) -> dict[str, str]:
    """The legend as {name: colour}."""
    return {name: colour for name, colour in m.layer["legend"]}


def colours_by_label(m: DecodedMap, labels: Sequence[str]) -> dict[str, str]:
    """{label: colour} of the map's documents, checking that every document of a label has the same colour."""
    out: dict[str, str] = {}
    for i, label in enumerate(labels):
        assert out.setdefault(label, m.colour_of(i)) == m.colour_of(i), (label, i)
    return out


def rings(m: DecodedMap) -> dict[str, list[dict]]:
    """The map's marks by the legend entry that names them: "◯ name (count)" names the next `count` rings around
    documents, "◇ name" the next placed mark (a position that is not a document); each is checked to be drawn in
    its entry's colour, and every mark to be named."""
    documents = [mk for mk in m.layer["marks"] if mk["index"] >= 0]
    placed = [mk for mk in m.layer["marks"] if mk["index"] < 0]
    out: dict[str, list[dict]] = {}
    for entry, colour in m.layer["legend"]:
        counted = re.fullmatch(r"◯ (.*) \(([\d,]+)\)", entry)
        if counted:
            name, count = counted.group(1), int(counted.group(2).replace(",", ""))
            out[name], documents = documents[:count], documents[count:]
        elif entry.startswith("◇ "):
            name = entry.removeprefix("◇ ")
            out[name], placed = placed[:1], placed[1:]
        else:
            continue
        assert out[name] and all(mk["colour"] == colour for mk in out[name]), (entry, out[name])
    assert not documents and not placed, f"marks no legend entry names: {documents + placed}"
    return out


def ringed(m: DecodedMap) -> dict[str, list[int]]:
    """The documents ringed under each legend name, in the order drawn: {"search hits": [40, 44, …], …}."""
    return {name: [mk["index"] for mk in group] for name, group in rings(m).items() if group[0]["index"] >= 0}


def colour_bins(values: Sequence[float], lo: float | None = None, hi: float | None = None, *,
                diverging: bool = False) -> np.ndarray:
    """The colour code of each value on a numeric map: `N_BINS` equal bins from `lo` to `hi` (the finite values'
    min and max unless given; ±the larger magnitude when `diverging`), `N_BINS` (grey) for a missing value. Values
    are float32, as a `ColourSpec` holds them."""
    v = np.asarray([np.nan if x is None else x for x in values], dtype=np.float32).astype(np.float64)
    finite = np.isfinite(v)
    lo = float(v[finite].min()) if lo is None else lo
    hi = float(v[finite].max()) if hi is None else hi
    if diverging:
        lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
    span = hi - lo if hi > lo else 1.0
    bins = np.floor((np.where(finite, v, lo) - lo) / span * N_BINS).clip(0, N_BINS - 1)
    return np.where(finite, bins, N_BINS).astype(np.uint8)


def assert_numeric(m: DecodedMap, title: str, values: Sequence[float], lo: float | None = None,
                   hi: float | None = None, *, diverging: bool = False) -> None:
    """Map `m` is coloured by `values` (named `title`): each document in its bin of the scale, a missing value
    grey."""
    assert m.layer["title"] == title
    assert len(m.layer["palette"]) == N_BINS + 1 and m.layer["palette"][N_BINS] == GREY
    want = colour_bins(values, lo, hi, diverging=diverging)
    assert np.array_equal(m.codes, want), np.flatnonzero(m.codes != want)


def drawn_at(m: DecodedMap, coords) -> bool:
    """Whether the map's points are `coords` (scaled into the map's [-1, 1] square)."""
    return m.coords.shape == (len(coords), 2) and np.allclose(m.coords, normalised(np.asarray(coords)), atol=1e-6)


def trigger(at, key: str, event: str, value: Any):
    """Run the page once more as after the user's `event` on map `key`'s points ("click" with an index, "select"
    with indices): the trigger's payload goes with the widget states of the tree on screen. AppTest has no public
    way to set a custom component's trigger, so this is the call its own `run` makes (`AppTest._run`) with the
    trigger's widget state added."""
    points = _elements(at, POINTS)[key]
    states = points.root.get_widget_states()
    states.widgets.append(WidgetState(id=_make_trigger_id(points.proto.id, "events"),
                                      json_trigger_value=json.dumps([{"event": event, "value": value}])))
    return at._run(states)


def click(at, key: str, index: int):
    """The user clicks document `index` on map `key`."""
    return trigger(at, key, "click", int(index))


def select(at, key: str, indices: Sequence[int]):
    """The user selects `indices` with a box or lasso on map `key`."""
    return trigger(at, key, "select", [int(i) for i in indices])
