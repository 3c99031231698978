"""The browser tests' helpers: the Streamlit server and Chromium helpers live in bench/browser_helpers.py (the
browser benches use the same ones), plus the skip when Chromium or Playwright is missing."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.browser_helpers import (CHROMIUM, CHROMIUM_ARGS, ROOT, SCREENSHOTS, browser, camera_view, choose,
                                   cpu_seconds, free_port, map_layer, maps_state, page_urls, process_tree, screenshot,
                                   server_pid, streamlit_server, wait_for_app, wait_for_map, wait_for_points)

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "ROOT", "SCREENSHOTS", "browser", "camera_view", "choose", "cpu_seconds",
           "free_port", "map_layer", "maps_state", "page_urls", "process_tree", "require_chromium", "screenshot",
           "server_pid", "streamlit_server", "wait_for_app", "wait_for_map", "wait_for_points"]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    pytest.importorskip("playwright")
