"""`minilm-static`: static embeddings distilled from the bundled all-MiniLM-L6-v2 with Model2Vec (Tulkens and van
Dongen, 2024). One vector per token of the teacher's vocabulary (the teacher's output for the token alone, reduced by
PCA to 256 dimensions and weighted by SIF from the token's Zipf rank); a text is the mean of its tokens' vectors. No
transformer runs at encode time: `embed --model minilm-static` of the 7,600 AG News test texts takes 1.2 s (2-core
machine, `bench/static_quality.py`), against minutes for MiniLM; its SciFact nDCG@10 is 0.396 (MiniLM: 0.647) and
its neighbours share 27 % of MiniLM's (overlap@10 on AG News): a fast first look, not a substitute.

Distilled once per installation, offline, on first use (not at set-up: it costs ~20 s and loads transformers, which
only those who pick the model should pay), into `.cache/model2vec/minilm-static-<hash>` beside the package
(`EMBEDLAB_MODEL_CACHE` overrides the folder), as the numba kernels are cached (`embedlab.numba_cache`). The hash is
that of the embedder's identity: the teacher's weights, the distillation settings and model2vec's version, so a
change of any of them distils a new model and gives its vectors new cache keys; `identity()` and `dimension()` need
no distillation (a cache hit never distils). Concurrent first uses (threads of a server, processes) distil once:
they queue on a file lock, and the model is written under a temporary name and renamed when complete, so nobody reads
a half-written folder. `encode`'s progress hears the distillation's messages (at fraction 0: no text is embedded yet).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from embedlab.embedding import DEFAULT_MODEL, STATIC_MODEL
from embedlab.embedding.weights import ModelError, bundled_model_path, weights_hash
from embedlab.neighbours import l2_normalise
from embedlab.progress import Report

if TYPE_CHECKING:   # model2vec is imported when the model is first loaded: ~0.2 s that a cache hit never pays
    from model2vec import StaticModel

STATIC_VERSION = 1
# model2vec's defaults, named so that the identity says what the model is (256 PCA dimensions, as its authors ship).
DISTILL_SETTINGS: dict[str, Any] = {"pca_dims": 256, "sif_coefficient": 1e-4,
                                    "token_remove_pattern": r"\[unused\d+\]", "quantize_to": "float16",
                                    "pooling": "mean"}
MAX_LENGTH = 512          # tokens read per text (model2vec's default; MiniLM reads 256)
ENCODE_BLOCK = 4096       # texts per model2vec call: progress is reported after each
IDENTITY_FILE = "embedlab-identity.json"
try:
    MODEL2VEC_VERSION: str | None = importlib.metadata.version("model2vec")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - installed by requirements
    MODEL2VEC_VERSION = None   # listed all the same; using it says what to install

Distiller = Callable[[str, Mapping[str, Any], "Report | None"], "StaticModel"]


def cache_dir() -> Path:
    """Where distilled models are kept: `EMBEDLAB_MODEL_CACHE`, else `.cache/model2vec` beside the package."""
    default = Path(__file__).resolve().parents[2] / ".cache" / "model2vec"
    return Path(os.environ.get("EMBEDLAB_MODEL_CACHE") or default)


def distill_with_model2vec(teacher: str, settings: Mapping[str, Any],
                           progress: Report | None = None) -> "StaticModel":
    """Model2Vec's `distill` of the sentence-transformers model in folder `teacher`, offline (a local folder; the hub
    is never asked), with its per-token progress reported to `progress` instead of a bar on stderr."""
    if not os.path.isdir(teacher):
        raise ModelError(f"cannot distill {STATIC_MODEL}: no teacher model folder at {teacher!r}")
    os.environ["HF_HUB_OFFLINE"] = "1"           # read when huggingface_hub is first imported
    import huggingface_hub.constants as hub_constants

    hub_constants.HF_HUB_OFFLINE = True          # and now, in case it was imported before
    # model2vec.distill imports transformers and skeletoken: 3.7 s measured, paid only by the one-time distillation.
    from model2vec.distill import distill, inference
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()       # no "Loading weights" bar on stderr
    for name in ("model2vec", "transformers", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with _reporting_bar(inference, progress):
        return distill(model_name=teacher, device="cpu", **settings)


@contextlib.contextmanager
def _reporting_bar(module: Any, progress: Report | None) -> Iterator[None]:
    """While inside, `module.tqdm` is a silent bar that reports its count to `progress` (model2vec encodes the
    vocabulary's tokens under a tqdm bar and takes no progress callback)."""
    original = module.tqdm

    class ReportingBar(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "disable": True})
            self.goal, self.count = int(kwargs.get("total") or 0), 0

        def update(self, n: float | None = 1) -> bool | None:
            self.count += int(n or 0)
            if progress:
                progress(min(1.0, self.count / max(1, self.goal)), f"{self.count:,}/{self.goal:,} tokens")
            return None

    module.tqdm = ReportingBar
    try:
        yield
    finally:
        module.tqdm = original


@contextlib.contextmanager
def _folder_lock(root: Path, name: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """An exclusive lock on `root/.name.lock` (any process or thread that opens it waits; `on_wait` is called
    first when it has to)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = open(root / f".{name}.lock", "a")  # noqa: SIM115 - closed below, after the lock is released
    except OSError as exc:
        raise ModelError(f"cannot write the static model's folder {root} ({exc.strerror}): set "
                         "EMBEDLAB_MODEL_CACHE to a writable folder") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class StaticEmbedder:
    """`minilm-static`. The distilled model is loaded once per process, on the first `encode` (or `prepare`);
    `identity()` only reads the teacher's weight files (memoised).

    `teacher`, `settings`, `cache_root` and `distiller` default to the bundled model, DISTILL_SETTINGS, `cache_dir()`
    and Model2Vec; tests give a fake teacher folder and distiller."""

    name = STATIC_MODEL
    fitted_on_corpus = False
    has_tokens = False
    _models: dict[str, "StaticModel"] = {}   # folder -> loaded model, shared by every user of this process
    _lock = threading.Lock()

    def __init__(self, *, teacher: str | os.PathLike | None = None, settings: Mapping[str, Any] | None = None,
                 cache_root: str | os.PathLike | None = None, distiller: Distiller | None = None) -> None:
        self.teacher = str(teacher) if teacher is not None else bundled_model_path()
        self.settings = {**DISTILL_SETTINGS, **(settings or {})}
        self.cache_root = Path(cache_root) if cache_root is not None else cache_dir()
        self.distiller = distiller or distill_with_model2vec

    def identity(self) -> dict:
        """What the vectors depend on: the teacher's weights, the distillation settings, model2vec's version."""
        return {"embedder": "model2vec", "version": STATIC_VERSION, "model": self.name, "teacher": DEFAULT_MODEL,
                "teacher_weights": weights_hash(self.teacher), "distill": dict(self.settings),
                "model2vec": MODEL2VEC_VERSION, "normalize": True, "max_length": MAX_LENGTH}

    def folder(self) -> Path:
        """The distilled model's folder for this identity (it may not exist yet)."""
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]
        return self.cache_root / f"{self.name}-{digest}"

    def distilled(self) -> bool:
        """Whether this installation holds the distilled model (encoding then starts at once)."""
        return self.folder().is_dir()

    def prepare(self, progress: Report | None = None) -> Path:
        """The distilled model's folder, distilling it first (once per installation; `progress` hears how far)."""
        folder = self.folder()
        if folder.is_dir():
            return folder
        waiting = (lambda: progress(0.0, f"waiting for another process distilling {self.name}")) if progress else None
        with self._lock, _folder_lock(self.cache_root, folder.name, on_wait=waiting):
            if not folder.is_dir():       # another process may have finished it while this one waited
                self._distill_into(folder, progress)
        return folder

    def _distill_into(self, folder: Path, progress: Report | None) -> None:
        for stale in folder.parent.glob(f".{folder.name}.partial-*"):   # left by a killed process (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
        prefix = f"distilling {self.name}, once per installation"

        def report(fraction: float, message: str) -> None:
            if progress:
                progress(fraction, f"{prefix}: {message}")
        try:
            if progress:
                progress(0.0, prefix)
            started = time.perf_counter()
            model = self.distiller(self.teacher, self.settings, report)
            model.save_pretrained(str(partial))
            (partial / IDENTITY_FILE).write_text(json.dumps(self.identity(), indent=2, sort_keys=True))
            for path in partial.iterdir():      # readable by every user of the installation, as pip's files are
                path.chmod(0o644)
            partial.chmod(0o755)
            os.rename(partial, folder)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        if progress:
            progress(1.0, f"distilled {self.name} in {time.perf_counter() - started:.1f} s, kept in {folder}")

    @property
    def model(self) -> "StaticModel":
        """The distilled model, distilled and loaded on first use."""
        return self._load()

    def _load(self, progress: Report | None = None) -> "StaticModel":
        if MODEL2VEC_VERSION is None:
            raise ModelError(f"{self.name} needs the model2vec package: pip install -r requirements.txt")
        folder = str(self.prepare(progress))
        with self._lock:
            if folder not in self._models:
                from model2vec import StaticModel

                # float32 token vectors: means of float16 rows would be rounded to float16 (about 1e-3)
                model = StaticModel.from_pretrained(folder, quantize_to="float32", max_length=MAX_LENGTH)
                if model.dim != self.dimension():
                    raise ModelError(f"{self.name} in {folder} has {model.dim} dimensions, not the "
                                     f"{self.dimension()} its settings give: delete that folder to distil it again")
                self._models[folder] = model
            return self._models[folder]

    def dimension(self) -> int:
        """The vectors' dimension, known without distilling: the PCA's, at most the teacher's (model2vec keeps all
        of the teacher's dimensions when asked for more)."""
        pca = self.settings.get("pca_dims")
        try:
            with open(os.path.join(self.teacher, "config.json")) as fh:
                hidden = int(json.load(fh)["hidden_size"])
        except (OSError, ValueError, KeyError, TypeError):
            return int(self.model.dim)  # an unusual teacher folder: ask the model itself
        return hidden if not isinstance(pca, int) or isinstance(pca, bool) else min(pca, hidden)

    def fit(self, corpus: Sequence[str]) -> "StaticEmbedder":
        """Pretrained: nothing to learn from the corpus."""
        return self

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None,
               progress: Report | None = None) -> np.ndarray:
        """Mean token vectors, L2-normalised (a text with no known token is a zero row), `ENCODE_BLOCK` texts (or
        `batch_size`) between progress reports."""
        texts = list(texts)
        model = self._load(_distilling(progress))
        out = np.zeros((len(texts), model.dim), dtype=np.float32)
        step = max(1, int(batch_size or ENCODE_BLOCK))
        for start in range(0, len(texts), step):
            block = texts[start:start + step]
            out[start:start + len(block)] = model.encode(block, use_multiprocessing=False)
            if progress:
                done = start + len(block)
                progress(done / len(texts), f"embedded {done}/{len(texts)}")
        return l2_normalise(out)

    def encode_with_tokens(self, texts: Sequence[str], *, batch_size: int = 32,
                           progress: Report | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        raise ModelError(f"{self.name} has no token embeddings (a static model has one vector per vocabulary token, "
                         "not per token of a text): pick a sentence-transformers model")


def _distilling(progress: Report | None) -> Report | None:
    """`encode`'s progress while the one-time distillation runs: the fraction stays 0 (no text is embedded yet, and a
    caller that counts rows from it must not count any), the message says how far the distillation is."""
    if progress is None:
        return None

    def report(_fraction: float, message: str) -> None:
        progress(0.0, message)
    return report
