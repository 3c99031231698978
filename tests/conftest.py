"""Shared fixtures: a fresh database per test (and its session "s"), the shared data folder, an app pointed at
the fresh database. Plain builders are in tests/builders.py."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "embedlab.sqlite"


@pytest.fixture
def db(db_path: Path):
    from storage import connect

    database = connect(db_path)
    yield database
    database.close()


@pytest.fixture
def session_id(db) -> int:
    """The id of session "s" in the fresh database."""
    from storage.sessions import ensure_session

    return ensure_session(db, "s")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} is missing")
    return SHARED_DATA


@pytest.fixture
def app_env(db_path: Path, monkeypatch) -> Path:
    """An empty database for Streamlit AppTest runs of app.py (no demo set-up); the `db` fixture opens the same
    file, to put data in before the page runs."""
    from tests.builders import use_database

    return use_database(db_path, monkeypatch)
