"""UMAP without the compile tax: umap-learn's numba kernels compiled once per installation, not once per process.

Most of umap-learn's `@numba.njit` kernels are declared without `cache=True`, so every new process (each CLI call,
each server start) spent ~20-40 s compiling them again. `import_umap()` turns numba's on-disk cache on for the
kernels umap-learn and pynndescent declare while they are imported, in a writable folder of the project
(`EMBEDLAB_NUMBA_CACHE`, default `.cache/numba` beside the package, else numba's own `NUMBA_CACHE_DIR`).
"""
from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

_lock = threading.Lock()


def cache_dir() -> Path:
    """Where compiled kernels are kept."""
    default = Path(__file__).resolve().parents[1] / ".cache" / "numba"
    return Path(os.environ.get("EMBEDLAB_NUMBA_CACHE") or os.environ.get("NUMBA_CACHE_DIR") or default)


def import_umap():
    """Import umap-learn with numba's on-disk cache on for its kernels; returns the `umap` module."""
    with _lock:
        import sys

        if "umap" in sys.modules:
            return sys.modules["umap"]
        import numba

        folder = cache_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            numba.config.CACHE_DIR = str(folder)
            os.environ.setdefault("NUMBA_CACHE_DIR", str(folder))
        except OSError:
            pass  # not writable: numba falls back to __pycache__ beside the sources, or compiles as before
        originals = numba.njit, numba.jit
        numba.njit, numba.jit = _caching(numba.njit), _caching(numba.jit)
        try:
            import umap
        finally:
            numba.njit, numba.jit = originals
        return umap


def _caching(decorator):
    """`decorator` with cache=True unless the caller says otherwise (works bare and with arguments)."""
    @functools.wraps(decorator)
    def wrapped(*args, **kwargs):
        kwargs.setdefault("cache", True)
        if len(args) == 1 and callable(args[0]) and not kwargs.keys() - {"cache"}:
            return decorator(args[0], cache=True)
        return decorator(*args, **kwargs)
    return wrapped
