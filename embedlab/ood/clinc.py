"""CLINC150 (Larson et al., 2019), its standard OOD task (and that task as three CSV files), and the ways to carve
an in-distribution set and a test set out of labelled texts."""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedlab.errors import InputError

CLINC_SPLITS = ("train", "val", "test", "oos_train", "oos_val", "oos_test")
REQUIRED_SPLITS = ("train", "test", "oos_test")
OOS_LABEL = "oos"


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.texts)


def load_clinc(path: str | Path) -> dict[str, LabelledTexts]:
    """Read CLINC150's data_full.json (or data_small/data_imbalanced): split name → texts and intents.

    The splits train, test and oos_test are required; val, oos_train and oos_val are read when present."""
    path = Path(path)
    name = path.name
    if path.is_dir():
        path = path / "data_full.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", file=str(path)) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text ({e.reason})", file=name) from None
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}", file=name) from None
    if not isinstance(raw, dict):
        raise InputError("expected a JSON object of CLINC150 splits (train, test, oos_test, …)", file=name)
    missing = [s for s in REQUIRED_SPLITS if s not in raw]
    if missing:
        raise InputError(f"not a CLINC150 file: missing split(s) {', '.join(missing)}", file=name)
    out: dict[str, LabelledTexts] = {}
    for split in CLINC_SPLITS:
        if split not in raw:
            continue
        rows = raw[split]
        if not isinstance(rows, list):
            raise InputError(f"split {split!r} must be a list of [text, intent] pairs", file=name)
        texts, labels = [], []
        for i, pair in enumerate(rows):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair)):
                raise InputError(f"split {split!r}, item {i + 1}: expected [text, intent] (two strings), "
                                 f"got {json.dumps(pair)[:60]}", file=name)
            texts.append(pair[0])
            labels.append(pair[1])
        out[split] = LabelledTexts(texts, labels)
    return out


def split_by_labels(texts: Sequence[str], labels: Sequence[str | None], ood_labels: Iterable[str]
                    ) -> tuple[LabelledTexts, LabelledTexts]:
    """(in-distribution, out-of-distribution): documents whose label is in ood_labels go to the second part.

    Use it for labels marked as OOD (CLINC's 'oos') and for held-out labels as near-OOD."""
    if len(texts) != len(labels):
        raise InputError(f"{len(texts)} texts for {len(labels)} labels")
    ood = set(ood_labels)
    unknown = ood - set(labels)
    if unknown:
        raise InputError(f"label(s) {', '.join(sorted(map(str, unknown)))} do not occur in the corpus")
    is_ood = [label in ood for label in labels]
    if all(is_ood):
        raise InputError("every document has an OOD label: nothing is left in distribution")
    pick = lambda flag: LabelledTexts([t for t, o in zip(texts, is_ood) if o == flag],
                                      [y for y, o in zip(labels, is_ood) if o == flag])
    return pick(False), pick(True)


def holdout(texts: Sequence[str], labels: Sequence[str | None] | None = None, *, fraction: float = 0.2,
            seed: int = 0) -> tuple[LabelledTexts, LabelledTexts]:
    """(kept, held out): a seeded random fraction of the corpus, stratified by label when there are labels.

    The held-out part is the in-distribution half of a test set."""
    if not 0 < fraction < 1:
        raise InputError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    n = len(texts)
    if labels is not None and len(labels) != n:
        raise InputError(f"{n} texts for {len(labels)} labels")
    rng = np.random.default_rng(seed)
    held = np.zeros(n, dtype=bool)
    groups = [np.arange(n)] if labels is None else \
        [np.flatnonzero(np.asarray([str(y) for y in labels]) == g) for g in sorted({str(y) for y in labels})]
    for members in groups:
        k = int(round(fraction * len(members)))
        held[rng.choice(members, size=min(k, len(members) - 1) if len(members) > 1 else 0, replace=False)] = True
    if not held.any() or held.all():
        raise InputError(f"a {fraction:.0%} hold-out of {n} documents leaves one side empty")
    pick = lambda flag: LabelledTexts([texts[i] for i in np.flatnonzero(held == flag)],
                                      None if labels is None else [labels[i] for i in np.flatnonzero(held == flag)])
    return pick(False), pick(True)


def clinc_task(path: str | Path) -> tuple[LabelledTexts, LabelledTexts, LabelledTexts]:
    """CLINC150's standard OOD task: (ID train = train less 'oos', ID test = test less 'oos', OOD = oos_test and
    the test split's 'oos' rows, without labels)."""
    data = load_clinc(path)
    id_train, _ = _drop_oos(data["train"])
    id_test, test_oos = _drop_oos(data["test"])
    ood = LabelledTexts(data["oos_test"].texts + test_oos.texts, None)
    return id_train, id_test, ood


def _drop_oos(split: LabelledTexts) -> tuple[LabelledTexts, LabelledTexts]:
    if OOS_LABEL not in (split.labels or []):
        return split, LabelledTexts([], [])
    return split_by_labels(split.texts, split.labels, [OOS_LABEL])


def export_clinc_csvs(clinc_path: str | Path, out_dir: str | Path) -> tuple[Path, Path, Path]:
    """Write CLINC150's OOD task as train.csv, test.csv and ood.csv (columns text,label), so that
    `bench-ood --train/--test/--ood` on them reproduces `bench-ood --clinc`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    id_train, id_test, ood = clinc_task(clinc_path)
    paths = []
    for name, part, label in (("train", id_train, None), ("test", id_test, None), ("ood", ood, OOS_LABEL)):
        path = out_dir / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(zip(part.texts, part.labels or [label] * len(part)))
        paths.append(path)
    return paths[0], paths[1], paths[2]
