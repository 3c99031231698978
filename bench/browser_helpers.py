"""The test suite's server and browser helpers for the browser benches (tests/ is not an installed package; a bench
run as `python bench/NAME.py` has bench/ on its path, so `from browser_helpers import web` works)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("browser_support", ROOT / "tests" / "browser_support.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


web = _load()


def emit(result: dict, out: str | None) -> None:
    """Print a bench's JSON, and write it to `out` when given."""
    import json

    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
