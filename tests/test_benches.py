"""Every bench under bench/ runs from the repository root as README shows it (`.venv/bin/python bench/NAME.py`, the
project installed by `make setup`, no PYTHONPATH): each answers --help, every option README and its own docstring
give exists, and the cheap ones run end to end on a tiny input and print figures that hold."""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import embedlab.tasks  # noqa: F401 - registers the job kinds
from embedlab.compression_neighbours import layer_methods
from embedlab.embedding.space import EmbeddingSpace
from storage import connect
from tests.browser_support import require_chromium
from tests.builders import stored_corpus

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


def runs_as_a_script(path: Path) -> bool:
    """A bench ends with `if __name__ == "__main__":`; the modules beside it (shared helpers, a demo app) do not."""
    return any(isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"
               for node in ast.parse(path.read_text()).body)


BENCHES = sorted(p.name for p in BENCH.glob("*.py") if runs_as_a_script(p))
HELPERS = sorted(p.name for p in BENCH.glob("*.py") if not runs_as_a_script(p))
DIAGNOSTICS_KEYS = {"model", "n_docs", "dim", "rankme", "hubness_skew@10", "anti_hub_fraction@10",
                    "max_k_occurrence@10", "mean_cosine", "pca_dims_90"}          # DESIGN §3


def run_bench(name: str, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python bench/NAME ARGS` from the repository root in a shell's environment: nothing on PYTHONPATH, so the
    project must come from its installation and the bench's own folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EMBEDLAB_DB", "EMBEDLAB_DEMO")}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run([sys.executable, f"bench/{name}", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


COMMAND = re.compile(r"bench/(\w+\.py)([ \t][^`|\n(]*)?")    # a command ends at a backtick, a cell, a line, a "("


def commands_in(text: str) -> list[tuple[str, list[str]]]:
    """(bench, the options it is given) of every `bench/NAME.py …` command in `text`."""
    return [(name, re.findall(r"--[\w-]+", rest)) for name, rest in COMMAND.findall(text)]


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """(where, bench, options) of every command in README and in the benches' docstrings."""
    sources = {"README.md": (ROOT / "README.md").read_text()}
    sources.update({f"bench/{name}": (BENCH / name).read_text().split('"""')[1] for name in BENCHES})
    return [(where, name, options) for where, text in sources.items() for name, options in commands_in(text)]


def test_commands_are_read_up_to_their_end():
    text = ("see `bench/scale.py --n 100000 --parts load` | and bench/idle_cpu.py --json OUT (smoke: --tabs 2)\n"
            "bench/x.py")
    assert commands_in(text) == [("scale.py", ["--n", "--parts"]), ("idle_cpu.py", ["--json"]), ("x.py", [])]


def test_the_benches_and_their_helpers_are_told_apart():
    assert {"scale.py", "projection_scale.py", "time_to_map.py"} <= set(BENCHES)
    assert {"browser_helpers.py", "synthetic.py"} <= set(HELPERS)


@pytest.mark.parametrize("name", BENCHES)
def test_bench_answers_help_with_the_options_it_is_documented_with(name):
    usage = run_bench(name, "--help", timeout=120).stdout
    assert usage.startswith(f"usage: {name} ")
    documented = [(where, options) for where, bench, options in documented_commands() if bench == name]
    assert any(where == f"bench/{name}" for where, _ in documented), f"bench/{name}'s docstring shows no command"
    for where, options in documented:
        for option in options:
            assert re.search(rf"(^|[\s\[]){re.escape(option)}\b", usage), f"{where}: {name} has no {option}"


@pytest.mark.parametrize("name", [*BENCHES, *HELPERS])
def test_no_bench_edits_its_import_path_or_imports_the_tests(name):
    """The project comes from its installation and the helpers from bench/ itself (a bench run as a script has its
    folder on the path): `sys.path` edits came back twice, and tests/ is no package of the installation."""
    tree = ast.parse((BENCH / name).read_text())
    path_edits = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "path"
                  and isinstance(n.value, ast.Name) and n.value.id == "sys"]
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert path_edits == [], f"bench/{name} uses sys.path at lines {path_edits}"
    assert not {m for m in imported if m.split(".")[0] == "tests"}, imported


def test_readme_names_only_benches_that_exist():
    named = {bench for where, bench, _ in documented_commands() if where == "README.md"} - {"NAME.py"}
    assert named and named <= set(BENCHES), named - set(BENCHES)
    assert ".venv/bin/python bench/NAME.py" in (ROOT / "README.md").read_text()     # how to run them


def test_diagnostics_scale_runs_on_a_tiny_corpus(tmp_path):
    out = tmp_path / "diagnostics.json"
    run_bench("diagnostics_scale.py", "--n", "300", "--json", out)
    result = json.loads(out.read_text())
    assert DIAGNOSTICS_KEYS <= set(result) and result["n_docs"] == 300 and result["dim"] == 384
    assert result["model"] == "synthetic-300" and result["seconds"] >= 0


def test_scale_measures_load_and_neighbours_on_a_tiny_matrix(tmp_path):
    out = tmp_path / "scale.json"
    printed = json.loads(run_bench("scale.py", "--n", "3000", "--parts", "load,neighbours", "--json", out).stdout)
    result = json.loads(out.read_text())
    assert printed == result
    assert result["n"] == 3000 and result["load_exact"] is True
    assert all(result[key] >= 0 for key in ("load_s", "load_npy_s", "neighbours_ms", "neighbours_plain_ms"))
    assert "umap_s" not in result and "cold_start_s" not in result          # only the parts asked for


def test_scale_refuses_a_part_it_does_not_know():
    proc = subprocess.run([sys.executable, "bench/scale.py", "--parts", "load,bogus"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2 and "--parts: choose from load, neighbours, umap, browser" in proc.stderr


def test_projection_scale_times_top_k_and_overlap_on_a_tiny_matrix(tmp_path):
    out = tmp_path / "projection.json"
    run_bench("projection_scale.py", "--n", "600", "--queries", "5", "--parts", "topk,overlap", "--json", out)
    result = json.loads(out.read_text())
    assert result["n"] == 600 and "ours" not in result and "plain_umap" not in result
    assert result["top_k"]["k"] == 10 and result["top_k"]["ms_median"] > 0
    assert result["neighbour_overlap"]["mode"] == "full" and 0 < result["neighbour_overlap"]["mean"] <= 1


def test_compression_overlap_on_a_stored_corpus_agrees_with_plain_numpy(tmp_path):
    db_path = tmp_path / "bench.sqlite"
    db = connect(db_path)
    topics = ["apples pears fruit orchard", "rivers seas water boats", "stars moons planets sky"]
    texts = [f"{topics[i % 3]} note {i} {'extra ' * (i % 5)}" for i in range(40)]
    _, info = stored_corpus(db, texts, [f"t{i % 3}" for i in range(40)], session="b", name="tiny")
    EmbeddingSpace.for_corpus(db, info.id, "tfidf-svd").ensure()
    db.close()
    out = tmp_path / "compression.json"
    run_bench("compression_overlap.py", "--db", db_path, "--session", "b", "--corpus", "tiny", "--model", "tfidf-svd",
              "--dims", "8", "--json", out)
    result = json.loads(out.read_text())
    assert result["n_docs"] == 40 and result["model"] == "tfidf-svd"
    assert result["exact_vs_numpy_overlap@10"] == 1.0                 # our exact top-10 is numpy's
    assert list(result["mean_overlap@10"]) == layer_methods(8)         # int8, binary, Matryoshka-8
    assert all(0 <= v <= 1 for v in result["mean_overlap@10"].values())


@pytest.mark.slow
def test_embed_throughput_on_eight_documents(shared_data, tmp_path):
    out = tmp_path / "throughput.json"
    run_bench("embed_throughput.py", "--n", "8", "--repeats", "1", "--json", out)
    result = json.loads(out.read_text())
    assert result["n_docs"] == 8 and result["corpus"] == "scifact"
    assert result["min_cosine_vs_bare"] > 0.999 and result["ours_docs_per_s"] > 0


@pytest.mark.slow
@pytest.mark.browser
def test_scale_draws_the_map_in_chromium(tmp_path):
    require_chromium()
    out = tmp_path / "scale.json"
    run_bench("scale.py", "--n", "1000", "--baseline-n", "0", "--parts", "umap,browser", "--json", out, timeout=600)
    result = json.loads(out.read_text())
    assert result["map_points_first"] == result["map_points_cached"] == 1000
    assert result["cold_start_s"] > 0 and result["ws_bytes_first"] > 0
