"""``search --jobs N``: N worker processes on one study, on this machine.

The parent has already validated everything, created the study (and so the schema: two processes
creating a fresh SQLite file at once crash on ``alembic_version``) and queued its first trial.
Then it starts N workers (``python -m tunekit.service.worker_process REQUEST``, a JSON ``WorkerRequest``),
each the same prepared trial loop as a lone search in its own process, working toward the study's
shared target (see ``tunekit.study.coordination``). Processes, not
Optuna's ``n_jobs`` threads: training holds the GIL for much of each step.

Threads: each worker gets ``cores // N`` torch threads (``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` in
its environment before torch is imported, then ``torch.set_num_threads``); by default every worker
would start one thread per core and they would oversubscribe the machine (8-10x slower on 2 cores).

GPUs (issue #11): on a GPU accelerator each worker sees only its own ``--devices`` GPUs: the visible
ones (``CUDA_VISIBLE_DEVICES``, else all of ``torch.cuda.device_count()``) cut into consecutive
slices, passed as its ``CUDA_VISIBLE_DEVICES`` (``partition_devices``). Written from the CUDA
documentation; not yet run on a GPU.

Signals: the workers run in their own session, so a Ctrl-C in the terminal reaches only the parent,
which passes each Ctrl-C on once. A worker whose parent is gone (kill -9) stops at its next batch
as if interrupted. A worker that dies leaves its trial RUNNING; the others fail and retry it once
its heartbeat is overdue.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tunekit.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILURE,
    BadInput,
    RunFailure,
)
from tunekit.interrupts import ForcedStop, InterruptFlag
from tunekit.study.storage import STORAGE_ENV
from tunekit.training.fit import RunOptions

POLL = 1.0  # seconds between the parent's looks at the study and the workers
FORCED_GRACE = 10.0  # after a second Ctrl-C, seconds the workers get to record their trials before SIGKILL


def available_cores() -> int:
    """CPU cores this process may use: its affinity mask (taskset, cpusets), capped by a cgroup CPU quota
    (``docker --cpus``), which leaves every host core visible to the affinity mask."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or None when unlimited."""
    for quota_file, period_file in (
        ("/sys/fs/cgroup/cpu.max", None),
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    ):
        try:
            fields = Path(quota_file).read_text().split()
            if period_file is not None:
                fields.append(Path(period_file).read_text().strip())
            if fields[0] in ("max", "-1"):
                return None
            quota, period = float(fields[0]), float(fields[1])
        except (OSError, IndexError, ValueError):
            continue
        return quota / period if quota > 0 and period > 0 else None
    return None


def threads_per_worker(jobs: int) -> int:
    return max(1, available_cores() // jobs)


def partition_devices(visible: list[str], jobs: int, devices: int) -> list[str]:
    """Each worker's ``CUDA_VISIBLE_DEVICES``: consecutive slices of ``devices`` of the ``visible`` ids.

    The ids are kept as given (indices, ``GPU-<uuid>`` or MIG ids), and a worker's own ranks
    number its slice from 0.

    Raises:
        BadInput: ``jobs * devices`` is more than ``len(visible)``.
    """
    if jobs * devices > len(visible):
        raise BadInput(
            f"--jobs {jobs} --devices {devices} needs {jobs * devices} GPUs, but {len(visible)} are visible; "
            "lower --jobs or --devices."
        )
    return [",".join(visible[i * devices : (i + 1) * devices]) for i in range(jobs)]


def worker_gpus(jobs: int, options: RunOptions) -> list[str] | None:
    """The workers' ``CUDA_VISIBLE_DEVICES`` when the trials run on GPUs, else None (CPU: threads only).

    Raises:
        BadInput: too few visible GPUs for ``jobs`` workers of ``options.devices`` each.
    """
    if options.accelerator not in ("gpu", "cuda", "auto"):
        return None
    import torch

    if not torch.cuda.is_available():
        if options.accelerator == "auto":
            return None
        visible: list[str] = []
    else:
        listed = os.environ.get("CUDA_VISIBLE_DEVICES")
        visible = listed.split(",") if listed else [str(i) for i in range(torch.cuda.device_count())]
    return partition_devices(visible, jobs, options.devices)


@dataclass
class WorkersOutcome:
    interrupted: bool
    forced: bool = False


@dataclass(frozen=True)
class WorkerRequest:
    """What one worker process is told, as JSON on its command line (the storage URL, which may hold
    a password, travels in its environment instead: ``$TUNEKIT_STORAGE``)."""

    study: str
    index: int
    threads: int
    parent: int
    result: str
    options: dict  # RunOptions.to_dict()
    timeout: float | None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerRequest:
        return cls(**json.loads(text))


_STOPS_ALL = (EXIT_RUN_FAILURE, EXIT_BAD_INPUT)  # a broken script or bad input: the others would only repeat it


class _Worker:
    def __init__(self, index: int, proc: subprocess.Popen, log: Path, result: Path):
        self.index, self.proc, self.log, self.result = index, proc, log, result

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def outcome(self) -> tuple[int, str]:
        """Exit code and error sentence (from the worker's result file, else the end of its log)."""
        code = self.proc.returncode
        if self.result.exists():
            data = json.loads(self.result.read_text())
            return data["code"], data.get("message", "")
        tail = self.log.read_text(errors="replace").strip().splitlines()[-15:] if self.log.exists() else []
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return code, f"worker {self.index} {how} without a result; its last output:\n" + "\n".join(tail)


def start_worker(request: WorkerRequest, env: dict[str, str], folder: Path) -> _Worker:
    """Start one worker process (in its own session) with ``env``; its log and result go in ``folder``."""
    log, result = folder / f"worker-{request.index}.log", folder / f"worker-{request.index}.json"
    request = replace(request, result=str(result))
    command = [sys.executable, "-m", "tunekit.service.worker_process", request.to_json()]
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return _Worker(request.index, proc, log, result)


def run_workers(
    url: str, study: Any, jobs: int, timeout: float | None, options: RunOptions, view: Any
) -> WorkersOutcome:
    """Run ``jobs`` worker processes on ``study`` until they stop; ``view`` is a ``WorkersView``.

    Raises:
        BadInput, RunFailure: a worker stopped with one (the others are stopped first).
    """
    threads = threads_per_worker(jobs)
    env = {**os.environ, STORAGE_ENV: url, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    gpus = worker_gpus(jobs, options)
    folder = Path(tempfile.mkdtemp(prefix="tunekit-workers-"))
    workers: list[_Worker] = []
    failure: tuple[int, str] | None = None
    forced = False

    def stop_all() -> None:
        for w in workers:
            w.signal(signal.SIGINT)

    flag = InterruptFlag(on_first=lambda: (view.interrupt_requested(), stop_all()))
    try:
        with flag, view:
            for index in range(1, jobs + 1):
                own = {"CUDA_VISIBLE_DEVICES": gpus[index - 1]} if gpus else {}  # same CUDA_DEVICE_ORDER as here
                request = WorkerRequest(study.study_name, index, threads, os.getpid(), "", options.to_dict(), timeout)
                workers.append(start_worker(request, {**env, **own}, folder))
            try:
                while any(w.proc.poll() is None for w in workers):
                    view.poll()
                    for w in workers:
                        if failure is None and w.proc.poll() is not None and w.outcome()[0] in _STOPS_ALL:
                            failure = w.outcome()
                            stop_all()
                    time.sleep(POLL)
            except ForcedStop:
                forced = True
                stop_all()  # their second Ctrl-C: each records its trial and exits at once
                deadline = time.monotonic() + FORCED_GRACE
                while any(w.proc.poll() is None for w in workers) and time.monotonic() < deadline:
                    time.sleep(0.1)
                for w in workers:
                    if w.proc.poll() is None:
                        w.proc.kill()  # its trial stays RUNNING until the heartbeat check retries it
                        w.proc.wait()
            view.poll()
        outcomes = [w.outcome() for w in workers]
        if failure is None:
            failure = next(((c, m) for c, m in outcomes if c in _STOPS_ALL), None)
        if failure is not None:
            code, message = failure
            raise (BadInput if code == EXIT_BAD_INPUT else RunFailure)(message)
        crashed = [m for c, m in outcomes if c not in (EXIT_OK, EXIT_INTERRUPTED)]
        if crashed and not (flag.requested() or forced):
            if len(crashed) == len(workers):
                raise RunFailure(crashed[0])
            view.console.print(f"[red]{crashed[0]}[/]", highlight=False)
        interrupted = forced or flag.requested() or any(c == EXIT_INTERRUPTED for c, _ in outcomes)
        return WorkersOutcome(interrupted, forced)
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        shutil.rmtree(folder, ignore_errors=True)
