// The WebGL map's points (regl-scatterplot, vendored above this code by components/scatter_map.py).
//
// Streamlit calls this function whenever the element's data changes: the coordinates arrive once per map as
// bytes (see `pack_points` in components/scatter_map.py) and colours, highlights and focus come separately through
// the small "layer" element (scatter_layer.js), which finds this map in `window.__embedlabMaps` by its key. The
// scatterplot draws only when something changed (no animation loop does any drawing work), so a software-rendered
// frame is paid once per change.
const MAPS = (window.__embedlabMaps = window.__embedlabMaps || {});
// How long new points wait for their layer before they are drawn plain (the layer, when it comes, draws them).
const LAYER_WAIT_MS = 300;

function readPoints(bytes) {
  const copy = bytes.slice();                      // the message's bytes are not 4-byte aligned
  const view = new DataView(copy.buffer);
  const magic = String.fromCharCode(copy[0], copy[1], copy[2], copy[3]);
  if (magic !== "ELP1") throw new Error("not a points payload");
  const headerLength = view.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(copy.subarray(8, 8 + headerLength)));
  let offset = 8 + headerLength;
  const n = header.n;
  const x = new Float32Array(copy.buffer, offset, n); offset += 4 * n;
  const y = new Float32Array(copy.buffer, offset, n); offset += 4 * n;
  const packedTexts = header.texts_bytes ? copy.subarray(offset, offset + header.texts_bytes) : null;
  return { header, x, y, packedTexts };
}

async function inflateTexts(packed) {
  // The hover snippets, zlib-deflated by pack_points: inflated off the draw's path (they are needed on hover only).
  const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("deflate"));
  return (await new Response(stream).text()).split("\u001e");
}

function webglAvailable() {
  try {
    const probe = document.createElement("canvas");
    return !!(probe.getContext("webgl2") || probe.getContext("webgl"));
  } catch (e) {
    return false;
  }
}

function showMessage(root, text) {
  const box = root.querySelector(".embedlab-map-message");
  box.textContent = text;
  box.style.display = "block";
  root.querySelector(".embedlab-map-canvas").style.display = "none";
}

function tooltipText(map, index) {
  // "#i · group · colour — snippet": the group (tags) and the colour's name come with the layer, the snippet with
  // the points (up to their text limit), so a new colour or run never re-sends the texts.
  const layer = map.layer;
  const h = layer ? layer.header : null;
  const parts = [`#${index}`];
  if (layer && layer.tags && h.tag_names[layer.tags[index]]) parts.push(h.tag_names[layer.tags[index]]);
  const category = layer && layer.codes && h.categories ? h.categories[layer.codes[index]] : undefined;
  if (category) parts.push(category);
  const text = map.texts ? map.texts[index] : undefined;
  return parts.join(" · ") + (text ? ` — ${text}` : "");
}

function drawFinished(map) {
  // regl-scatterplot ignores a draw called while another is in flight (the points' first draw and the layer
  // arrive together, e.g. in the offline report): a layer that came meanwhile is drawn now.
  map.drawing = false;
  if (map.layerWaiting) {
    map.layerWaiting = false;
    applyLayer(map);
  }
}

function applyLayer(map) {
  // Colour codes (z), emphasis (w), selection outline and focus cross: one upload, one draw.
  const layer = map.layer;
  if (!map.sp || !map.points || !layer || layer.header.n !== map.points.header.n) return;
  if (map.pointsPending) {                         // this draw draws the waiting points too: one draw, not two
    map.pointsPending = false;
    map.drawing = false;
  }
  if (map.drawing) {
    map.layerWaiting = true;
    return;
  }
  const h = layer.header;
  const sp = map.sp;
  const props = {
    pointColor: h.palette.length ? h.palette : ["#4c78a8"],
    colorBy: "z",
    opacityBy: layer.emphasis ? "w" : null,
    opacity: layer.emphasis ? h.emphasis_opacity : h.opacity,
    pointSize: h.point_size,
    sizeBy: null,
  };
  if (layer.sizes) {
    props.sizeBy = "w";
    props.pointSize = h.size_levels;
    props.opacityBy = null;
    props.opacity = h.opacity;
  }
  sp.set(props);
  const w = layer.sizes || layer.emphasis;
  const points = { x: map.points.x, y: map.points.y, z: layer.codes };
  if (w) points.w = w;
  map.drawing = true;
  const options = { preventFilterReset: true, zDataType: "categorical", wDataType: "categorical" };
  // The same coordinates as the last draw: reuse its spatial index (building it for 1M points costs ~1 s).
  if (map.indexedRevision === map.revision && sp.get("spatialIndex")) options.spatialIndex = sp.get("spatialIndex");
  const t0 = performance.now();
  sp.draw(points, options).then(() => {
    if (map.sp !== sp) return;                     // a remount replaced this scatterplot meanwhile
    map.indexedRevision = map.revision;
    map.lastDrawMs = performance.now() - t0;
    if (layer.selected && layer.selected.length) sp.select(Array.from(layer.selected), { preventEvent: true });
    else sp.deselect({ preventEvent: true });
    const marks = [];
    if (h.focus !== null && h.focus !== undefined && h.focus < map.points.header.n) {
      const fx = map.points.x[h.focus], fy = map.points.y[h.focus], r = 0.06;
      marks.push({ x1: fx - r, y1: fy, x2: fx + r, y2: fy, lineColor: h.focus_colour, lineWidth: 2 });
      marks.push({ x1: fx, y1: fy - r, x2: fx, y2: fy + r, lineColor: h.focus_colour, lineWidth: 2 });
    }
    for (const m of h.marks || []) {
      const [mx, my] = m.at || [map.points.x[m.index], map.points.y[m.index]];
      const r = m.radius || 0.025;
      const vertices = [];
      const sides = m.shape === "diamond" ? 4 : m.shape === "square" ? 4 : 16;
      const turn = m.shape === "square" ? Math.PI / 4 : 0;
      for (let i = 0; i <= sides; i++) {
        const a = turn + (2 * Math.PI * i) / sides;
        vertices.push([mx + r * Math.cos(a), my + r * Math.sin(a)]);
      }
      marks.push({ vertices, lineColor: m.colour, lineWidth: m.width || 2 });
    }
    sp.drawAnnotations(marks);
    const zoomToken = h.zoom_to ? h.zoom_to.join(",") : null;
    if (zoomToken && zoomToken !== map.zoomToken) {
      sp.zoomToPoints(h.zoom_to, { padding: 0.6, transition: false });   // once per new focus, never on a recolour
    }
    map.zoomToken = zoomToken;
    map.layersDrawn = (map.layersDrawn || 0) + 1;
    map.lastDrawnAt = performance.now();
    drawFinished(map);
  });
}

MAPS.__applyLayer = applyLayer;   // the layer element (another module) calls it when colours or focus change
MAPS.__mountPoints = mountPoints; // the offline report mounts its maps without Streamlit

export default function mountPoints(args) {
  const { data, parentElement, setTriggerValue } = args;
  const root = parentElement.querySelector(".embedlab-map");
  const payload = readPoints(data);
  const key = payload.header.key;
  let map = MAPS[key];
  if (!map) map = MAPS[key] = { key };
  if (!webglAvailable()) {
    showMessage(root, "This map needs WebGL, which this browser has turned off or does not offer. Turn on hardware "
      + "acceleration (or WebGL) in the browser's settings and reload; the tables and the neighbour panel work "
      + "without it.");
    map.unavailable = true;
    return;
  }
  const canvas = root.querySelector(".embedlab-map-canvas");
  root.style.height = `${payload.header.height}px`;
  map.setTriggerValue = setTriggerValue;
  if (!map.sp || map.canvas !== canvas) {
    const keptView = map.sp && map.revision === payload.header.revision ? map.sp.get("cameraView") : null;
    if (map.sp) map.sp.destroy();
    map.canvas = canvas;
    map.sp = ReglScatterplot.createScatterplot({
      canvas,
      width: "auto",
      height: "auto",
      pointSize: payload.header.point_size,
      pointSizeSelected: 2,
      pointOutlineWidth: 2,
      lassoType: "rectangle",
      lassoColor: "#1f77b4",
      keyMap: { shift: "lasso", alt: "rotate", cmd: "merge", ctrl: "merge", meta: "merge" },
      lassoOnLongPress: false,
      deselectOnDblClick: false,
      deselectOnEscape: true,
      backgroundColor: "#ffffff",
      showReticle: false,
      opacityInactiveMax: 1,
      opacityInactiveScale: 1,
    });
    map.drawing = false;                           // nothing is drawing on the new scatterplot yet
    map.pointsPending = false;
    if (keptView) map.sp.set({ cameraView: keptView });
    const tip = root.querySelector(".embedlab-map-tip");
    // A lasso publishes "lassoStart", then "select" (or "deselect" when it caught nothing), then "lassoEnd".
    map.sp.subscribe("lassoStart", () => { map.lassoing = true; });
    map.sp.subscribe("lassoEnd", () => { map.lassoing = false; });
    map.sp.subscribe("select", ({ points }) => {
      const picked = Array.from(points);
      if (map.lassoing) { map.selectSentAt = performance.now(); map.setTriggerValue("select", picked); }
      else if (picked.length === 1) map.setTriggerValue("click", picked[0]);
    });
    map.sp.subscribe("deselect", () => { if (map.lassoing) map.setTriggerValue("select", []); });
    map.sp.subscribe("pointover", (index) => {
      tip.textContent = tooltipText(map, index);
      tip.style.display = "block";
    });
    map.sp.subscribe("pointout", () => { tip.style.display = "none"; });
    map.sp.subscribe("view", () => { map.viewChanges = (map.viewChanges || 0) + 1; });
    const tools = root.querySelectorAll(".embedlab-map-tool");
    tools.forEach((button) => {
      button.onclick = () => {
        tools.forEach((b) => b.classList.remove("on"));
        button.classList.add("on");
        map.sp.set({ lassoType: button.dataset.lasso });
      };
    });
    map.points = null;
  }
  if (map.revision !== payload.header.revision || !map.points) {
    const fresh = map.revision !== payload.header.revision;
    map.revision = payload.header.revision;
    map.points = payload;
    map.texts = null;
    if (payload.packedTexts) {
      inflateTexts(payload.packedTexts).then((texts) => { if (map.points === payload) map.texts = texts; },
                                             () => {});   // without snippets the hover still names the document
    }
    map.firstDrawStarted = performance.now();
    if (map.layer && map.layer.header.n === payload.header.n) applyLayer(map);
    else {
      // The layer (colours) usually arrives a moment after the points: wait for it briefly, so that a software-
      // rendered frame (about 0.2 s per 100k points without a GPU) is drawn once, not once plain and once coloured.
      map.drawing = true;
      map.pointsPending = true;
      const sp = map.sp;
      setTimeout(() => {
        if (map.sp !== sp || !map.pointsPending) return;      // the layer came and drew them, or a remount
        map.pointsPending = false;
        sp.draw({ x: payload.x, y: payload.y }).then(() => {
          if (map.sp !== sp) return;
          map.lastDrawnAt = performance.now();
          drawFinished(map);
        });
      }, LAYER_WAIT_MS);
    }
    if (fresh && map.shownRevision !== undefined) map.sp.reset();   // another map: start from the whole of it
    map.shownRevision = map.revision;
  }
  return undefined;   // nothing to clean up: the map's state outlives a remount (zoom and pan are kept)
}
