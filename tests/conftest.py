"""Shared fixtures: a fresh database per test, the shared data folder."""
from __future__ import annotations

import os
import sys
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


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} is missing")
    return SHARED_DATA


@pytest.fixture
def app_env(db_path: Path, monkeypatch) -> Path:
    """An empty database for Streamlit AppTest runs of app.py (no demo set-up)."""
    monkeypatch.setenv("EMBEDLAB_DB", str(db_path))
    monkeypatch.delenv("EMBEDLAB_DEMO", raising=False)
    monkeypatch.chdir(ROOT)
    return db_path
