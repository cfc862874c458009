"""The ranks of a multi-device (DDP) trial, launched by tunekit itself: ``RankGroup`` on rank 0, ``follow`` elsewhere.

The process that runs the trial loop is rank 0. For ``--devices N`` it starts ranks 1..N-1 once,
as ``python -m tunekit.training.ranks REQUEST`` in their own session (a Ctrl-C in the terminal
reaches rank 0 alone, which decides for all), with ``MASTER_ADDR``/``MASTER_PORT``/``WORLD_SIZE``/
``RANK``/``LOCAL_RANK`` set, and every rank starts the default process group itself. Lightning then
sees an external environment (``creates_processes_externally``) and neither re-runs the command
per rank (each rank would ask the study for its own trial, with its own parameters) nor pickles
the user's module into spawned processes (which cannot import tunekit's synthetic script module):
so ``ddp_spawn``, ``ddp_fork`` and ``ddp_notebook`` are refused (``RunOptions.parse``): use ``ddp``.

Per trial rank 0 broadcasts the sampled recipe over a second, gloo, control group; the ranks
train it and wait for the next. The control group has a day-long timeout because rank 0 may
spend long between trials (sampling, study I/O, waiting for a place); the training group's
timeout only bounds a hung peer, a dead one closes its sockets and fails the collective at once.
Any failure that did not stop every rank together ends the group (``os.killpg`` of each rank's
session); the next trial starts a fresh one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from tunekit.recipes import Recipe
from tunekit.training.fit import FitResult, RunOptions, run_fit
from tunekit.training.script import LoadedScript, ScriptSpec, load_script

TRAIN_TIMEOUT = timedelta(minutes=10)  # a collective inside a trial: only a hung (not dead) peer waits this long
CONTROL_TIMEOUT = timedelta(days=1)  # between trials: rank 0 may wait long for a free place in the study
_control: Any = None  # this process's control group, while its rank group is up


class RankDied(Exception):
    """A rank other than 0 failed or was killed during the trial; the trial fails with this sentence."""


@dataclass(frozen=True)
class RankRequest:
    """What a rank > 0 needs: the script, the metric, the Trainer options, its threads, its error file."""

    script: dict
    metric: str
    options: dict
    threads: int
    error_file: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> RankRequest:
        return cls(**json.loads(text))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _backend(options: RunOptions) -> str:
    import torch

    gpu = options.accelerator in ("gpu", "cuda") or (options.accelerator == "auto" and torch.cuda.is_available())
    return "nccl" if gpu else "gloo"


def _join(backend: str) -> None:
    """Start this rank's default process group (Lightning reuses it) and the control group."""
    import torch.distributed as dist

    global _control
    dist.init_process_group(backend, timeout=TRAIN_TIMEOUT)
    _control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)


def _leave() -> None:
    import torch.distributed as dist

    global _control
    _control = None
    if dist.is_initialized():
        dist.destroy_process_group()


def _send(message: dict) -> dict:
    import torch.distributed as dist

    box = [message]
    dist.broadcast_object_list(box, src=0, group=_control)
    return box[0]


class RankGroup:
    """Rank 0's side: start the other ranks on first use, hand each trial to them, end them.

    ``run_fit`` takes ``tunekit.training.fit.run_fit``'s callbacks; only rank 0 calls them.
    Use as a context manager: leaving it stops the ranks (``close``).
    """

    def __init__(self, script: LoadedScript, metric: str, options: RunOptions):
        self.script, self.metric, self.options = script, metric, options
        self._ranks: list[subprocess.Popen] = []
        self._folder = Path(tempfile.mkdtemp(prefix="tunekit-ranks-"))
        self._threads: int | None = None
        self._environ: dict[str, str | None] = {}  # rank 0's own values of the rank variables, restored by kill

    def __enter__(self) -> RankGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_fit(self, recipe: Recipe, **callbacks: Any) -> FitResult:
        """Train ``recipe`` on every rank; raises what ``run_fit`` raises, or ``RankDied``."""
        try:
            if not self._ranks:
                self._start()
            _send({"kind": "trial", "recipe": recipe.to_dict()})  # inside the try: a dead rank fails this trial
            return run_fit(recipe, self.script, self.metric, options=self.options, **callbacks)
        except BaseException as exc:
            from tunekit.training.distributed import group_intact

            if group_intact(exc):
                raise
            died = self._died()
            self.kill()
            if died and isinstance(exc, Exception):
                raise RankDied(died) from exc
            raise

    def _start(self) -> None:
        import torch

        world = self.options.devices
        port = _free_port()
        backend = _backend(self.options)
        if backend == "gloo":  # CPU ranks share this process's threads
            self._threads = torch.get_num_threads()
            torch.set_num_threads(max(1, self._threads // world))
        threads = torch.get_num_threads()
        for rank in range(1, world):
            request = RankRequest(
                self.script.spec.to_dict(),
                self.metric,
                self.options.to_dict(),
                threads,
                str(self._folder / f"rank-{rank}.error"),
            )
            env = {**os.environ, **_rank_env(rank, world, port), "OMP_NUM_THREADS": str(threads)}
            command = [sys.executable, "-m", "tunekit.training.ranks", request.to_json()]
            self._ranks.append(subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, start_new_session=True))
        own = _rank_env(0, world, port)
        self._environ = {name: os.environ.get(name) for name in own}
        os.environ.update(own)
        _join(backend)

    def _died(self) -> str:
        """The sentence for the ranks that exited during the trial, or "" if none did."""
        import time

        deadline = time.monotonic() + 2.0  # a rank that raised is still writing its error and exiting
        while time.monotonic() < deadline and all(p.poll() is None for p in self._ranks):
            time.sleep(0.05)
        parts = []
        for rank, proc in enumerate(self._ranks, start=1):
            if proc.poll() is None:
                continue
            error = self._folder / f"rank-{rank}.error"
            why = error.read_text().strip() if error.is_file() else f"exit code {proc.returncode}"
            parts.append(f"rank {rank} of {self.options.devices} failed ({why})")
        return "; ".join(parts)

    def kill(self) -> None:
        """End every rank now (their sessions) and this process's group; the next trial starts afresh."""
        import torch

        for proc in self._ranks:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()
        self._ranks = []
        _leave()
        for name, value in self._environ.items():  # else a later one-process run would look like a rank
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._environ = {}
        if self._threads is not None:
            torch.set_num_threads(self._threads)
            self._threads = None

    def close(self) -> None:
        """Tell the ranks to exit and wait for them (killing those that do not within 30 s)."""
        if self._ranks:
            try:
                _send({"kind": "stop"})
                for proc in self._ranks:
                    proc.wait(timeout=30)
            except Exception:  # noqa: BLE001 - a rank already gone: nothing to wait for
                pass
        self.kill()


def fit_once(recipe: Recipe, script: LoadedScript, metric: str, options: RunOptions) -> FitResult:
    """One run of ``recipe`` (``tunekit train``): here, or over ``options.devices`` ranks started for it."""
    if options.devices == 1:
        return run_fit(recipe, script, metric, options=options)
    with RankGroup(script, metric, options) as group:
        return group.run_fit(recipe)


def _rank_env(rank: int, world: int, port: int) -> dict[str, str]:
    return {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": str(world),
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),  # indexes this worker's CUDA_VISIBLE_DEVICES on a GPU machine
        "NODE_RANK": "0",
    }


def follow(request: RankRequest) -> int:
    """A rank > 0: train each recipe rank 0 sends, until it says stop. Returns the exit code.

    A failure that rank 0 did not share ends this process after writing one sentence to the
    request's error file; rank 0's collective then fails and it fails the trial with that sentence.
    """
    import torch

    from tunekit.training.distributed import group_intact

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # rank 0 decides about Ctrl-C for every rank
    torch.set_num_threads(request.threads)
    options = RunOptions.from_dict(request.options)
    script = load_script(ScriptSpec(**request.script))
    _join(_backend(options))
    while True:
        message = _send({})
        if message["kind"] == "stop":
            break
        try:
            run_fit(Recipe.from_dict(message["recipe"]), script, request.metric, options=options)
        except Exception as exc:  # noqa: BLE001 - the user's code on this rank
            if group_intact(exc):
                continue
            Path(request.error_file).write_text(f"{type(exc).__name__}: {exc}"[:500])
            return 1
    _leave()
    return 0


if __name__ == "__main__":
    sys.exit(follow(RankRequest.from_json(sys.argv[1])))
