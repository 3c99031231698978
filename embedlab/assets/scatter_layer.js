// The WebGL map's layer: colour codes, emphasis or sizes, the selection to outline, the focus and marks, and the
// legend. A small element of its own, so a colour change sends these few bytes per point and never the coordinates
// (see components/scatter_map.py). It hands the layer to the points element through `window.__embedlabMaps`.
const MAPS = (window.__embedlabMaps = window.__embedlabMaps || {});

function readLayer(bytes) {
  const copy = bytes.slice();
  const view = new DataView(copy.buffer);
  const magic = String.fromCharCode(copy[0], copy[1], copy[2], copy[3]);
  if (magic !== "ELL1") throw new Error("not a layer payload");
  const headerLength = view.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(copy.subarray(8, 8 + headerLength)));
  const arrays = {};
  for (const [name, [offset, type, length]] of Object.entries(header.arrays)) {
    const Type = { u1: Uint8Array, u2: Uint16Array, u4: Uint32Array, f4: Float32Array }[type];
    arrays[name] = new Type(copy.buffer, 8 + headerLength + offset, length);
  }
  return { header, codes: arrays.codes, emphasis: arrays.emphasis, sizes: arrays.sizes, selected: arrays.selected,
           tags: arrays.tags };
}

function drawLegend(root, header) {
  const legend = root.querySelector(".embedlab-legend");
  legend.replaceChildren();
  if (header.title) {
    const title = document.createElement("span");
    title.className = "embedlab-legend-title";
    title.textContent = header.title;       // text, never markup
    legend.appendChild(title);
  }
  for (const [label, colour] of header.legend || []) {
    const item = document.createElement("span");
    item.className = "embedlab-legend-item";
    const swatch = document.createElement("span");
    swatch.className = "embedlab-legend-swatch";
    swatch.style.background = colour;
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(label));
    legend.appendChild(item);
  }
  if (header.note) {
    const note = document.createElement("span");
    note.className = "embedlab-legend-note";
    note.textContent = header.note;
    legend.appendChild(note);
  }
}

export default function mountLayer(args) {
  const { data, parentElement } = args;
  const layer = readLayer(data);
  drawLegend(parentElement, layer.header);
  const map = (MAPS[layer.header.key] = MAPS[layer.header.key] || { key: layer.header.key });
  map.layer = layer;
  map.layerUpdates = (map.layerUpdates || 0) + 1;
  map.layerArrivedAt = performance.now();
  if (MAPS.__applyLayer) MAPS.__applyLayer(map);   // else the points element applies it when it draws
  return undefined;
}
MAPS.__mountLayer = mountLayer;   // the offline report mounts its maps without Streamlit
