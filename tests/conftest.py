"""Shared fixtures: every test runs in its own folder with its own SQLite storage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).parent / "scripts"
TINY = SCRIPTS / "tiny_regression.py"
REPO = Path(__file__).resolve().parents[1]

# Two cores: tests train on one thread each so parallel helpers/subprocesses do not oversubscribe.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path with TUNEKIT_STORAGE pointing at a fresh SQLite file there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUNEKIT_STORAGE", f"sqlite:///{tmp_path / 'tunekit.db'}")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


@pytest.fixture
def storage_url(tmp_path: Path) -> str:
    return os.environ["TUNEKIT_STORAGE"]


@pytest.fixture
def write_script(tmp_path: Path):
    """Write a model script with the given source into tmp_path and return its path."""

    def write(source: str, name: str = "model.py") -> Path:
        path = tmp_path / name
        path.write_text(source)
        return path

    return write
