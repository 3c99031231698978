"""No command can destroy the database or an input (issue 20, class 1): every command that writes a file refuses an
output path that is the database, one of its side files or one of the command's inputs (exit 2, one line, the
database's dump unchanged, no stray file); outputs appear whole or not at all, and the temporary file of an earlier
interrupted write is removed by the next write."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from trust_support import cli, db_state, refused

from storage.output_files import atomic_output, remove_stale_temps, temp_sibling
from tests.builders import write_beir


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """A database with session 'keep': a 15-document corpus 'three' (three topics) and its tfidf-svd embedding."""
    from embedlab.embedding.space import EmbeddingSpace
    from storage import connect
    from tests.builders import stored_corpus

    path = tmp_path / "lab" / "lab.sqlite"
    path.parent.mkdir()
    db = connect(path)
    texts = [f"{t} number {i}" for i in range(5) for t in ("apples and pears grow on trees",
                                                            "the river flows to the sea",
                                                            "stars shine over the mountains")]
    _, info = stored_corpus(db, texts, ["a", "b", "c"] * 5, session="keep", name="three")
    EmbeddingSpace.for_corpus(db, info.id, "tfidf-svd").ensure()
    db.close()
    return path


def _folder(path: Path) -> list[str]:
    """The folder's files, less SQLite's own side files (a read-only check of the dump may leave them)."""
    return sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(("-wal", "-shm")))


def _outputs(lab: Path) -> list[str]:
    """Ways to name the database or one of its side files."""
    link = lab.parent / "hard.sqlite"
    os.link(lab, link)
    sym = lab.parent / "sym.sqlite"
    sym.symlink_to(lab)
    relative = os.path.relpath(lab)
    return [str(lab), f"{lab}-wal", f"{lab}-shm", f"{lab}-journal", str(link), str(sym), relative,
            str(lab.parent / "sub" / ".." / lab.name)]


COMMANDS = {
    "report": lambda out: ["report", "--session", "keep", "--out", out],
    "diagnostics": lambda out: ["diagnostics", "--session", "keep", "--corpus", "three", "--model", "tfidf-svd",
                                "--json", out],
    "sessions export": lambda out: ["sessions", "export", "keep", out, "--force"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_output_that_is_the_database_is_refused(capsys, lab: Path, command: str) -> None:
    (lab.parent / "sub").mkdir()
    for out in _outputs(lab):
        before = _folder(lab)
        line = refused(capsys, lab, *COMMANDS[command](out), contains=("database",))
        assert "nothing was written" in line
        assert _folder(lab) == before, out


def test_bench_outputs_that_are_the_database_or_an_input_are_refused(capsys, lab: Path, tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    write_beir(beir, [{"_id": "d1", "title": "", "text": "apples"}, {"_id": "d2", "title": "", "text": "rivers"}],
               [{"_id": "q1", "text": "apples"}], [("q1", "d1", 1)])
    refused(capsys, lab, "bench-retrieval", "--beir", beir, "--model", "tfidf-svd", "--json", lab,
            contains=("database",))
    for target in (beir / "corpus.jsonl", beir / "queries.jsonl", beir / "qrels" / "test.tsv"):
        before = target.read_bytes()
        refused(capsys, lab, "bench-retrieval", "--beir", beir, "--model", "tfidf-svd", "--json", target,
                contains=("input",))
        assert target.read_bytes() == before
    sets = {}
    for name in ("train", "test", "ood"):
        sets[name] = tmp_path / f"{name}.csv"
        sets[name].write_text("text,label\nhello there,a\nhow are you,b\n")
    for target in sets.values():
        before = target.read_bytes()
        refused(capsys, lab, "bench-ood", "--train", sets["train"], "--test", sets["test"], "--ood", sets["ood"],
                "--model", "tfidf-svd", "--json", target, contains=("input",))
        assert target.read_bytes() == before
    refused(capsys, lab, "bench-ood", "--train", sets["train"], "--test", sets["test"], "--ood", sets["ood"],
            "--model", "tfidf-svd", "--json", f"{lab}-wal", contains=("database",))


def test_an_input_that_is_the_database_is_refused(capsys, lab: Path) -> None:
    refused(capsys, lab, "sessions", "import", lab, contains=("database",))
    refused(capsys, lab, "ingest", lab, "--session", "keep", contains=("database",))
    refused(capsys, lab, "sessions", "import", lab.parent / "sub" / ".." / lab.name, contains=("database",))


def test_a_stale_temporary_file_of_a_killed_write_is_removed_by_the_next_write(capsys, lab: Path) -> None:
    out = lab.parent / "report.html"
    dead_pid = 2**22 + 12345          # above Linux's pid_max default: no such process
    host = socket.gethostname().replace(".", "_")
    stale = out.with_name(f".{out.name}.{host}-{dead_pid}-0badf00d.tmp")
    stale.write_text("half a report")
    other_host = out.with_name(f".{out.name}.elsewhere-{dead_pid}-0badf00d.tmp")
    other_host.write_text("another machine's write in progress")
    alive = out.with_name(f".{out.name}.{host}-{os.getpid()}-0badf00d.tmp")
    alive.write_text("a write of a live process")
    rc, lines, _, _ = cli(capsys, "--db", lab, "report", "--session", "keep", "--out", out)
    assert rc == 0, lines
    assert not stale.exists()
    assert other_host.exists() and alive.exists()      # only a dead writer of this host is cleaned up
    assert out.read_text().lstrip().lower().startswith("<!doctype html")


def test_json_outputs_are_written_whole_through_a_temporary_file(capsys, lab: Path) -> None:
    out = lab.parent / "diag.json"
    out.write_text("old")
    before = db_state(lab)
    rc, lines, _, _ = cli(capsys, "--db", lab, "diagnostics", "--session", "keep", "--corpus", "three", "--model",
                          "tfidf-svd", "--json", out)
    assert rc == 0, lines
    assert json.loads(out.read_text())["n_docs"] == 15
    assert db_state(lab) == before
    assert not [p for p in lab.parent.iterdir() if p.name.endswith(".tmp")]


def test_atomic_output_keeps_the_old_file_when_the_write_fails(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    assert remove_stale_temps(out) == []
    assert temp_sibling(out).parent == tmp_path
