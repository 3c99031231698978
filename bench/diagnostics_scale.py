"""Space diagnostics at scale: `diagnose` on a synthetic n x 384 corpus (Gaussian clusters), exact, timed.

    .venv/bin/python bench/diagnostics_scale.py --n 100000 [--json OUT]

Prints the diagnostics JSON (DESIGN §3 keys) plus `seconds`; no plain library computes the same set, so no ratio.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from embedlab.diagnostics import diagnose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 384))
    X = (centres[rng.integers(0, 50, args.n)] + 0.8 * rng.normal(size=(args.n, 384))).astype(np.float32)
    start = time.perf_counter()
    out = diagnose(X, model=f"synthetic-{args.n}")
    out["seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(out, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
