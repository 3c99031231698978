"""Rebuild the bundled demo samples (small slices, with attribution) from ../shared/data.

Run from the repository root: `.venv/bin/python scripts/make_samples.py`.
"""
from __future__ import annotations

import csv
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "data" / "samples"
AG_CLASSES = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}


def ag_news(per_class: int = 250) -> None:
    rows = list(csv.reader(open(SHARED / "ag-news-test" / "test.csv", encoding="utf-8")))
    rng = random.Random(0)
    picked = []
    for cls in sorted(AG_CLASSES):
        members = [r for r in rows if r[0] == cls]
        picked += rng.sample(members, per_class)
    rng.shuffle(picked)
    with open(OUT / "ag_news_sample.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "label", "headline"])
        for i, (cls, title, desc) in enumerate(picked):
            title, desc = (_unescape(title), _unescape(desc))
            w.writerow([f"ag-{i}", f"{title}. {desc}", AG_CLASSES[cls], title])


def _unescape(text: str) -> str:
    """Undo the corpus's escapes (` #39;` for an apostrophe, `#36;` for a dollar, `\\n`)."""
    for old, new in ((" #39;", "'"), ("#39;", "'"), ("#36;", "$"), ("\\n", " "), ("\\", " ")):
        text = text.replace(old, new)
    return text


def clinc(n_intents: int = 30, per_intent: int = 30, n_oos: int = 200) -> None:
    data = json.load(open(SHARED / "clinc150" / "data_full.json", encoding="utf-8"))
    domains = json.load(open(SHARED / "clinc150" / "domains.json", encoding="utf-8"))
    chosen_domains = ["banking", "travel", "kitchen_and_dining"]
    intents = [i for d in chosen_domains for i in domains[d]][:n_intents]
    domain_of = {i: d for d, ints in domains.items() for i in ints}
    rows = []
    for intent in intents:
        texts = [t for t, lab in data["train"] if lab == intent][:per_intent]
        rows += [(t, intent, domain_of[intent]) for t in texts]
    rows += [(t, "oos", "out_of_scope") for t, _ in data["oos_test"][:n_oos]]
    random.Random(0).shuffle(rows)
    with open(OUT / "clinc150_sample.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label", "domain"])
        w.writerows(rows)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    ag_news()
    clinc()
    print(sorted(p.name for p in OUT.iterdir()))
