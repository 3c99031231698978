#!/usr/bin/env bash
# Re-create embedlab/assets/vendor/regl-scatterplot.iife.js (and its licences) from the npm registry:
# regl-scatterplot and its dependencies bundled by esbuild into one script that defines `ReglScatterplot`.
# Pinned versions; run from the repository root: bash scripts/vendor_regl_scatterplot.sh
set -euo pipefail
VERSION=1.16.0
ESBUILD=0.28.2
out="$(pwd)/embedlab/assets/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "regl-scatterplot@$VERSION" "esbuild@$ESBUILD" >/dev/null
echo 'export { default as createScatterplot } from "regl-scatterplot";' > entry.js
npx esbuild entry.js --bundle --format=iife --global-name=ReglScatterplot --minify --legal-comments=none \
  --outfile="$out/regl-scatterplot.iife.js"
{
  echo "regl-scatterplot $VERSION bundled with its dependencies (esbuild $ESBUILD, scripts/vendor_regl_scatterplot.sh)."
  for pkg in regl-scatterplot regl pub-sub-es gl-matrix dom-2d-camera camera-2d-simple earcut regl-line @flekschas/utils; do
    meta=$(node -e "const j=require('./node_modules/$pkg/package.json'); console.log(j.name + ' ' + j.version + ' (' + j.license + ')')")
    echo; echo "================================================================ $meta"
    cat node_modules/$pkg/LICENSE* 
  done
} > "$out/regl-scatterplot.LICENSES.txt"
echo "wrote $out/regl-scatterplot.iife.js ($(wc -c < "$out/regl-scatterplot.iife.js") bytes)"
