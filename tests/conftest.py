"""Shared fixtures: every test runs in its own folder with its own SQLite storage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).parent / "scripts"
TINY = SCRIPTS / "tiny_regression.py"
REPO = Path(__file__).resolve().parents[1]
# How close a re-run of a trial (tunekit train, an exported LightningCLI config) must come to the
# trial's value: same seed, same validation points, CPU; only float summation order may differ.
REPRODUCE_REL_TOL = 1e-5

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


# --- reliability fixtures: a model with fault knobs, the installed command, a PostgreSQL server ---

FAULTY_SOURCE = '''\
"""A tiny model whose faults are chosen with --model-arg (written by tests/conftest.py)."""

import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Faulty(pl.LightningModule):
    def __init__(self, step_sleep: float = 0.0, marker: str = "", oom_at_step: int = -1, oom: str = "torch"):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
        self.step_sleep, self.marker, self.oom_at_step, self.oom = step_sleep, marker, oom_at_step, oom

    def training_step(self, batch, batch_idx):
        if self.global_step == self.oom_at_step:
            if self.oom == "torch":  # what CUDA raises
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
            torch.empty(2**52, dtype=torch.uint8)  # a real CPU allocation failure (4 PiB)
        if self.global_step >= 1 and self.step_sleep:  # step 0 is the pre-study check: keep it fast
            if self.marker:
                Path(self.marker).touch()
            time.sleep(self.step_sleep)
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):  # replaced by each trial's recipe
        return torch.optim.SGD(self.parameters(), lr=0.01)


class FaultyData(pl.LightningDataModule):
    def __init__(self, batch_size: int = 16):
        super().__init__()
        self.batch_size = batch_size
        g = torch.Generator().manual_seed(0)
        x = torch.randn(512, 8, generator=g)
        y = torch.tanh(x @ torch.randn(8, 1, generator=g))
        self.train_set, self.val_set = TensorDataset(x[:448], y[:448]), TensorDataset(x[448:], y[448:])

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=64)
'''


@pytest.fixture
def faulty_script(tmp_path: Path) -> Path:
    """A model script (study name ``faulty``) with knobs: step_sleep, marker, oom_at_step, oom=torch|cpu."""
    path = tmp_path / "faulty.py"
    path.write_text(FAULTY_SOURCE)
    return path


def tunekit_command() -> list[str]:
    """The installed ``tunekit`` command next to this Python (end-to-end tests run it as users do)."""
    import shutil
    import sys

    installed = Path(sys.executable).parent / "tunekit"
    return [str(installed)] if installed.exists() else [shutil.which("tunekit") or "tunekit"]


def _postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (Debian keeps them off PATH)."""
    import shutil

    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return candidates[-1].parent if candidates else None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster on loopback for the session; yields its base URL (no database).

    As root (CI), the server runs as the ``postgres`` user (PostgreSQL refuses to run as root) via
    ``runuser``. Skipped only when the server programs are not installed (``.ci/run`` installs them).
    """
    import shutil
    import subprocess
    import tempfile

    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server programs not found (apt-get install postgresql); .ci/run installs them")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="tunekit-pg-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, user="postgres")
    data, port = folder / "data", _free_port()
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    for command in (
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "--auth=trust",
            "-U",
            "postgres",
            "--locale=C",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
    ):
        done = subprocess.run([*as_user, *command], capture_output=True, text=True)
        if done.returncode != 0:
            log = (folder / "log").read_text() if (folder / "log").exists() else ""
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"{command[0]} failed:\n{done.stdout}{done.stderr}{log}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str, tmp_path: Path) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    import uuid

    import psycopg2

    name = f"tunekit_{uuid.uuid4().hex[:12]}"
    host_port = postgres_server.rsplit("@", 1)[1]
    host, port = host_port.split(":")
    conn = psycopg2.connect(host=host, port=int(port), user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    return f"{postgres_server}/{name}"
