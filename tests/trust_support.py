"""What the trust tests share: run a CLI command in-process or as a module, and check that a refusal was one line,
exit 2, and left the database exactly as it was (a dump compared before and after)."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from embedlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def db_state(path: Path) -> dict:
    """What must not change: integrity, every table's row count and a hash of a full dump (read-only)."""
    if not path.exists():
        return {"exists": False}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        counts = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
        dump = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
        return {"exists": True, "integrity": conn.execute("PRAGMA integrity_check").fetchall(), "counts": counts,
                "dump": dump}
    finally:
        conn.close()


def cli(capsys, *args: str) -> tuple[int, list[str], str, float]:
    """`python -m embedlab ARGS` in-process: (exit code, stderr lines, stdout, seconds)."""
    capsys.readouterr()
    t0 = time.monotonic()
    rc = main([str(a) for a in args])
    elapsed = time.monotonic() - t0
    out, err = capsys.readouterr()
    return rc, err.splitlines(), out, elapsed


def assert_one_line(lines: list[str], rc: int, *, expect_rc: int = 2, contains: tuple[str, ...] = ()) -> str:
    assert rc == expect_rc, lines
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in line, line
    for part in contains:
        assert part in line, (part, line)
    return line


def refused(capsys, db: Path, *args: str, contains: tuple[str, ...] = ()) -> str:
    """Run a command that must be refused: exit 2, one line, database intact and unchanged."""
    before = db_state(db)
    rc, lines, _, _ = cli(capsys, "--db", db, *args)
    line = assert_one_line(lines, rc, contains=contains)
    after = db_state(db)
    assert after == before
    if after["exists"]:
        assert after["integrity"] == [("ok",)]
    return line


def clean_env(**extra: str) -> dict:
    """A user's shell as `env -i` leaves it: PATH and HOME only (no HF_HUB_OFFLINE from the test runner)."""
    home = extra.pop("HOME")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home}
    env.update(extra)
    return env


def run_module(args: list[str], env: dict, timeout: float = 60) -> tuple[int, list[str], float]:
    t0 = time.monotonic()
    proc = subprocess.run([PYTHON, "-m", "embedlab", *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stderr.splitlines(), time.monotonic() - t0
