"""`embed --map`: the CLI's one-command path from a corpus to its map, as the page's "Embed and map"."""
from __future__ import annotations

from embedlab.cli import main
from embedlab.tasks import find_projection
from storage import connect
from storage.corpora import find_corpus
from storage.sessions import ensure_session


def test_embed_then_map_stores_both_and_a_second_call_is_a_cache_hit(tmp_path, capsys):
    db_file = tmp_path / "e.sqlite"
    src = tmp_path / "notes.csv"
    topics = ["cats purr and sleep", "stocks fell on monday", "the striker scored a goal"]
    src.write_text("text\n" + "\n".join(f"{topics[i % 3]} note {i}" for i in range(45)) + "\n")
    assert main(["--db", str(db_file), "ingest", str(src), "--session", "s"]) == 0
    assert main(["--db", str(db_file), "embed", "--session", "s", "--corpus", "notes", "--model", "tfidf-svd",
                 "--map"]) == 0
    out = capsys.readouterr().out
    assert "embedded corpus 'notes': 45 x" in out and "mapped corpus 'notes' with umap: 45 x 2" in out
    db = connect(db_file)
    info = find_corpus(db, ensure_session(db, "s"), "notes")
    assert find_projection(db, info.id, "tfidf-svd", method="umap").rows == 45
    assert main(["--db", str(db_file), "embed", "--session", "s", "--corpus", "notes", "--model", "tfidf-svd",
                 "--map"]) == 0
    err = capsys.readouterr().err
    assert "cached: already embedded" in err and "cached: already projected" in err
