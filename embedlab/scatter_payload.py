"""What the WebGL map sends to the browser, and the page pieces that draw it, shared by the app's map
(`components/scatter_map.py`) and the offline report (`embedlab/report.py`).

* points: "ELP1", header length, JSON header (key, n, revision, height, …), float32 x[n], float32 y[n] normalised to
  [-1, 1] with the aspect ratio kept, then up to `TEXTS_UP_TO` points the hover snippets (UTF-8, separated by
  U+001E);
* layer: "ELL1", header length, JSON header (palette, legend, categories, tag names, focus, marks, zoom, where each
  array starts), then uint8 colour codes, uint8 emphasis or sizes, uint16 tags, uint32 selected indices.
The JavaScript that reads them (`assets/scatter_points.js`, `assets/scatter_layer.js`) draws with regl-scatterplot,
vendored in `assets/vendor` (re-created by scripts/vendor_regl_scatterplot.sh). Both files set their text with
`textContent`: nothing from data becomes markup.
"""
from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from embedlab.scatter_layer import ScatterLayer
from embedlab.text_display import short_text

ASSETS = Path(__file__).resolve().parent / "assets"
TEXTS_UP_TO = 100_000      # above this, hover says "#i · category" instead of a snippet
SNIPPET = 90

MAP_CSS = """
.embedlab-map { position: relative; font-family: var(--st-font, sans-serif); }
.embedlab-map-canvas { width: 100%; height: 100%; display: block; border: 1px solid #e6e6e6; border-radius: 6px; }
.embedlab-map-tip { position: absolute; left: 8px; bottom: 8px; max-width: 70%; display: none; pointer-events: none;
  background: rgba(255,255,255,0.95); border: 1px solid #ccc; border-radius: 4px; padding: 4px 8px; font-size: 13px; }
.embedlab-map-message { display: none; padding: 24px; border: 1px solid #f0b400; border-radius: 6px;
  background: #fff8e1; font-size: 14px; }
.embedlab-map-tools { position: absolute; right: 8px; top: 8px; display: flex; gap: 4px; }
.embedlab-map-tool { font-size: 12px; padding: 2px 8px; border: 1px solid #ccc; border-radius: 4px; background: #fff;
  cursor: pointer; }
.embedlab-map-tool.on { border-color: #1f77b4; color: #1f77b4; }
.embedlab-map-help { position: absolute; left: 8px; top: 8px; font-size: 11px; color: #777; pointer-events: none; }
"""
MAP_HTML = """<div class="embedlab-map"><canvas class="embedlab-map-canvas"></canvas>
<div class="embedlab-map-help">scroll: zoom · drag: pan · click: focus · shift + drag: select</div>
<div class="embedlab-map-tools"><button class="embedlab-map-tool on" data-lasso="rectangle" title="Select with a
box (shift + drag)">▭ box</button><button class="embedlab-map-tool" data-lasso="freeform" title="Select with a
lasso (shift + drag)">◌ lasso</button></div>
<div class="embedlab-map-tip"></div><div class="embedlab-map-message"></div></div>"""
LEGEND_CSS = """
.embedlab-legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 13px; padding: 2px 0; }
.embedlab-legend-title { font-weight: 600; margin-right: 4px; }
.embedlab-legend-item { display: inline-flex; align-items: center; gap: 5px; }
.embedlab-legend-swatch { width: 11px; height: 11px; border-radius: 50%; display: inline-block; }
.embedlab-legend-note { color: #777; }
"""

LEGEND_HTML = '<div class="embedlab-legend"></div>'


def points_js() -> str:
    """The points element's module: regl-scatterplot (vendored) and the map's own code."""
    return (ASSETS / "vendor" / "regl-scatterplot.iife.js").read_text(encoding="utf-8") + "\n" + \
        (ASSETS / "scatter_points.js").read_text(encoding="utf-8")


def layer_js() -> str:
    """The layer element's module (colours, marks, legend)."""
    return (ASSETS / "scatter_layer.js").read_text(encoding="utf-8")


def _frame(xy: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, half size) of the square that holds every finite point."""
    finite = np.isfinite(xy).all(axis=1)
    lo = xy[finite].min(axis=0) if finite.any() else np.zeros(2)
    hi = xy[finite].max(axis=0) if finite.any() else np.ones(2)
    return (lo + hi) / 2, float(max((hi - lo).max() / 2, 1e-12))


def normalised(coords: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """2-D coordinates scaled into [-1, 1] on both axes with their aspect ratio kept (regl-scatterplot's space);
    `extra` positions (not points of the map) are scaled the same way and returned instead."""
    xy = np.asarray(coords, dtype=np.float64)[:, :2]
    if not len(xy):
        return np.zeros((0, 2), np.float32)
    centre, half = _frame(xy)
    target = xy if extra is None else np.asarray(extra, dtype=np.float64).reshape(-1, 2)
    finite = np.isfinite(target).all(axis=1)
    out = np.where(finite[:, None], (target - centre) / half * 0.95, 0.0)
    return out.astype(np.float32)


def _header(magic: bytes, header: dict) -> bytes:
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 4)                  # the arrays after it start 4-byte aligned
    return magic + struct.pack("<I", len(raw)) + raw


def pack_points(coords: np.ndarray, *, key: str, height: int, hover: Sequence[str] | None = None,
                point_size: float = 3.0) -> bytes:
    """The points element's bytes: "ELP1", header length, JSON header, float32 x[n], float32 y[n], and up to
    `TEXTS_UP_TO` points the hover snippets (UTF-8, separated by U+001E, zlib-deflated)."""
    xy = normalised(coords)
    n = len(xy)
    texts = b""
    if hover is not None and n <= TEXTS_UP_TO:
        # deflated (zlib level 1: ~0.1 s for 9 MB of snippets, half their size); the browser inflates them after
        # the first frame is drawn, so the snippets never delay it
        texts = zlib.compress("\x1e".join(short_text(t, SNIPPET).replace("\x1e", " ") for t in hover)
                              .encode("utf-8"), 1)
    body = np.ascontiguousarray(xy[:, 0]).tobytes() + np.ascontiguousarray(xy[:, 1]).tobytes()
    revision = hashlib.sha1(body).hexdigest()[:16]
    header = {"key": key, "n": n, "revision": revision, "height": int(height), "texts_bytes": len(texts),
              "texts_encoding": "deflate", "point_size": point_size}
    return _header(b"ELP1", header) + body + texts


def pack_layer(layer: ScatterLayer, *, key: str, n: int, coords: np.ndarray | None = None) -> bytes:
    """The layer element's bytes: "ELL1", header length, JSON header (palette, legend, focus, marks, where each
    array starts), then uint8 codes, uint8 emphasis or sizes, uint32 selected indices."""
    arrays: list[tuple[str, np.ndarray, str]] = [("codes", np.asarray(layer.codes, dtype=np.uint8), "u1")]
    if layer.sizes is not None:
        arrays.append(("sizes", np.asarray(layer.sizes, dtype=np.uint8), "u1"))
    elif layer.emphasis is not None:
        arrays.append(("emphasis", np.asarray(layer.emphasis, dtype=np.uint8), "u1"))
    if layer.tags is not None:
        arrays.append(("tags", np.asarray(layer.tags, dtype=np.uint16), "u2"))
    selected = np.asarray([i for i in layer.selected if 0 <= int(i) < n], dtype=np.uint32)
    if len(selected):
        arrays.append(("selected", selected, "u4"))
    table, blobs, offset = {}, [], 0
    for name, array, kind in arrays:
        pad = -offset % 4
        blobs.append(b"\0" * pad)
        offset += pad
        table[name] = [offset, kind, int(len(array))]
        blob = array.tobytes()
        blobs.append(blob)
        offset += len(blob)
    focus = layer.focus if layer.focus is not None and 0 <= layer.focus < n else None
    header = {"key": key, "n": n, "palette": layer.palette, "legend": [list(e) for e in layer.legend],
              "categories": layer.categories, "tag_names": layer.tag_names, "title": layer.title, "note": layer.note,
              "focus": focus,
              "focus_colour": layer.focus_colour, "point_size": layer.point_size, "opacity": layer.opacity,
              "emphasis_opacity": [0.12, min(1.0, layer.opacity + 0.1)], "size_levels": layer.size_levels,
              "marks": [_mark(m, coords) for m in layer.marks if m.position is not None or 0 <= m.index < n],
              "zoom_to": [int(i) for i in layer.zoom_to if 0 <= int(i) < n] if layer.zoom_to else None,
              "arrays": table}
    return _header(b"ELL1", header) + b"".join(blobs)


def _mark(mark, coords: np.ndarray | None) -> dict:
    out = {"index": mark.index, "colour": mark.colour, "shape": mark.shape, "radius": mark.radius,
           "width": mark.width}
    if mark.position is not None and coords is not None:
        out["at"] = [float(v) for v in normalised(coords, np.array(mark.position))[0]]
    return out


@dataclass
class DecodedMap:
    """A map as the browser receives it (for tests and benches): normalised coordinates, hover texts, and the
    layer's header (palette, legend, focus, marks, …) with its arrays."""
    coords: np.ndarray
    texts: list[str] | None
    layer: dict
    codes: np.ndarray
    emphasis: np.ndarray | None
    sizes: np.ndarray | None
    selected: list[int]
    tags: np.ndarray | None = None

    def tag_of(self, index: int) -> str | None:
        """The group named in point `index`'s hover text (None without tags)."""
        return None if self.tags is None else self.layer["tag_names"][int(self.tags[index])]

    def colour_of(self, index: int) -> str:
        return self.layer["palette"][int(self.codes[index])]

    def marked(self, colour: str | None = None) -> list[int]:
        """Indices of the ringed documents (of one colour)."""
        return [m["index"] for m in self.layer["marks"] if m["index"] >= 0 and colour in (None, m["colour"])]


def _read(data: bytes, magic: bytes) -> tuple[dict, memoryview]:
    if data[:4] != magic:
        raise ValueError(f"not a {magic!r} payload")
    (length,) = struct.unpack("<I", data[4:8])
    return json.loads(data[8:8 + length]), memoryview(data)[8 + length:]


def unpack_points(data: bytes) -> tuple[dict, np.ndarray, list[str] | None]:
    """(header, n x 2 coordinates, texts or None) of `pack_points` bytes."""
    header, body = _read(data, b"ELP1")
    n = header["n"]
    xy = np.frombuffer(body[:8 * n], dtype="<f4").reshape(2, n).T
    texts = zlib.decompress(body[8 * n:8 * n + header["texts_bytes"]]).decode("utf-8").split("\x1e") \
        if header["texts_bytes"] else None
    return header, xy, texts


def unpack_layer(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays) of `pack_layer` bytes."""
    header, body = _read(data, b"ELL1")
    dtypes = {"u1": np.uint8, "u2": "<u2", "u4": "<u4", "f4": "<f4"}
    arrays = {name: np.frombuffer(body, dtype=dtypes[kind], count=length, offset=offset)
              for name, (offset, kind, length) in header["arrays"].items()}
    return header, arrays


def decode_map(points: bytes, layer: bytes) -> DecodedMap:
    """A `DecodedMap` of one map's two payloads."""
    _, xy, texts = unpack_points(points)
    header, arrays = unpack_layer(layer)
    return DecodedMap(coords=xy, texts=texts, layer=header, codes=arrays["codes"], emphasis=arrays.get("emphasis"),
                      sizes=arrays.get("sizes"), selected=[int(i) for i in arrays.get("selected", [])],
                      tags=arrays.get("tags"))
