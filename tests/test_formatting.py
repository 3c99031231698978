"""One formatter for numbers and sizes (`embedlab.formatting`) and one owner of metric directions
(`embedlab.metric_directions`), read by the pages and the report alike."""
from __future__ import annotations

import math

from embedlab.formatting import format_interval, format_metric, format_ms, format_seconds, format_size
from embedlab.metric_directions import OOD, RETRIEVAL, arrow, higher_is_better
from embedlab.run_tables import best_marks


def test_sizes_are_decimal_everywhere():
    assert [format_size(n) for n in (0, 552, 999, 1_000, 1_912, 5_600, 4_200_000, 1.3e9)] == \
        ["0 B", "552 B", "999 B", "1.0 kB", "1.9 kB", "5.6 kB", "4.2 MB", "1.3 GB"]
    assert format_size(None) == format_size(float("nan")) == "—"


def test_durations_never_read_as_zero_or_in_exponent_notation():
    assert [format_seconds(s) for s in (8e-06, 0.004, 0.005, 0.033367, 9.996, 370.24)] == \
        ["<0.01", "<0.01", "0.01", "0.03", "10.00", "370.2"]
    assert [format_ms(v) for v in (0.071909, 9.9994, 97.75)] == ["0.072", "9.999", "97.8"]


def test_a_metric_is_formatted_by_its_kind():
    assert format_metric("index_bytes", 4_200_000) == "4.2 MB"
    assert format_metric("rescore_bytes", 512) == "512 B"
    assert format_metric("ms_per_query", 0.8) == "0.800"
    assert format_metric("build_s", 8e-06) == "<0.01"
    assert format_metric("ndcg@10", 0.5) == format_metric("auroc", 0.5) == "0.5000"
    assert format_metric("dims", 384) == "384" and format_metric("ndcg@10", 1) == "1.0000"
    assert format_metric("auroc", math.inf) == "—"
    assert format_interval([0.85, 0.95]) == "0.850–0.950" and format_interval([0.8]) == "—"


def test_every_ranked_metric_has_one_direction_and_recall_is_starred():
    assert set(RETRIEVAL) & set(OOD) == set()
    assert all(higher_is_better(m) is True for m in ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100",
                                                     "auroc", "aupr_in", "aupr_out"))
    assert all(higher_is_better(m) is False for m in ("ms_per_query", "index_bytes", "fpr95", "fpr95_openood"))
    assert higher_is_better("build_s") is None and arrow("build_s") == "" and arrow("fpr95") == "↓"
    marks = best_marks({"a": {"recall@10": 0.5, "build_s": 0.0}, "b": {"recall@10": 0.6, "build_s": 3.0}}, RETRIEVAL)
    assert marks == {"recall@10": {"b"}}                     # build_s is shown, never starred
