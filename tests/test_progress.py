"""Progress lines carry the stage, the items done, the rate and the time left."""
from __future__ import annotations

from embedlab.progress import StageProgress, duration


def test_a_stage_maps_its_fraction_and_adds_rate_and_time_left_counted_after_the_model_loaded():
    now = [100.0]
    seen = []
    stage = StageProgress(lambda f, m: seen.append((f, m)), "embedding", start=0.0, end=0.8, total=7600,
                          clock=lambda: now[0])
    stage(0.0, "loading all-MiniLM-L6-v2")
    now[0] += 30.0                                    # the model loads: no rate from this
    stage(0.25, "embedded 1900/7600")
    assert seen[-1] == (0.2, "embedding: embedded 1900/7600")
    now[0] += 20.0
    stage(0.5, "embedded 3800/7600")
    assert seen[-1][0] == 0.4
    assert seen[-1][1] == "embedding: embedded 3800/7600 · 95 docs/s · about 40 s left"
    stage(1.0, "embedded 7600/7600")
    assert seen[-1] == (0.8, "embedding: embedded 7600/7600")        # done: no estimate


def test_a_quick_first_block_counts_from_the_start():
    now = [0.0]
    seen = []
    stage = StageProgress(lambda f, m: seen.append(m), "map", total=100, clock=lambda: now[0])
    now[0] += 0.5
    stage(0.1, "kNN graph")
    now[0] += 4.5
    stage(0.5, "epochs")
    assert seen[-1] == "map: epochs · 10 docs/s · about 5 s left"


def test_a_cached_stage_reports_no_rate_and_a_later_stage_starts_where_it_ends():
    seen = []
    StageProgress(lambda f, m: seen.append((f, m)), "embedding", end=0.0)(1.0, "cached: already embedded")
    StageProgress(lambda f, m: seen.append((f, m)), "map", start=0.0)(0.5, "UMAP epochs")
    assert seen == [(0.0, "embedding: cached: already embedded"), (0.5, "map: UMAP epochs")]


def test_durations_read_as_a_person_says_them():
    assert [duration(s) for s in (4.4, 200, 3725)] == ["4 s", "3 min 20 s", "1 h 02 min"]
