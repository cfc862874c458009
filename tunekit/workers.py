"""``search --jobs N``: N worker processes on one study, on this machine.

The parent has already validated everything, created the study (and so the schema: two processes
creating a fresh SQLite file at once crash on ``alembic_version``) and queued its first trial.
Then it starts N workers (``python -m tunekit.workers``), each a plain ``run_search`` loop in its
own process, working toward the study's shared target (see ``tunekit.search``). Processes, not
Optuna's ``n_jobs`` threads: training holds the GIL for much of each step.

Threads: each worker gets ``cores // N`` torch threads (``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` in
its environment before torch is imported, then ``torch.set_num_threads``); by default every worker
would start one thread per core and they would oversubscribe the machine (literature.md,
"Practice": 8-10x slower on 2 cores).

Signals: the workers run in their own session, so a Ctrl-C in the terminal reaches only the parent,
which passes each Ctrl-C on once. A worker whose parent is gone (kill -9) stops at its next batch
as if interrupted. A worker that dies leaves its trial RUNNING; the others fail and retry it once
its heartbeat is overdue.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput, RunFailure, TunekitError
from tunekit.interrupts import ForcedStop, InterruptFlag
from tunekit.storage import STORAGE_ENV

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


@dataclass
class WorkersOutcome:
    interrupted: bool
    forced: bool = False


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


def run_workers(url: str, study: Any, jobs: int, timeout: float | None, accelerator: str, view: Any) -> WorkersOutcome:
    """Run ``jobs`` worker processes on ``study`` until they stop; ``view`` is a ``WorkersView``.

    Raises:
        BadInput, RunFailure: a worker stopped with one (the others are stopped first).
    """
    threads = threads_per_worker(jobs)
    env = {**os.environ, STORAGE_ENV: url, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
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
                log, result = folder / f"worker-{index}.log", folder / f"worker-{index}.json"
                command = [sys.executable, "-m", "tunekit.workers", study.study_name, str(index), str(threads)]
                command += [str(os.getpid()), str(result), accelerator, str(timeout or 0)]
                with log.open("w") as out:
                    proc = subprocess.Popen(
                        command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )  # fmt: skip
                workers.append(_Worker(index, proc, log, result))
            try:
                while any(w.proc.poll() is None for w in workers):
                    view.poll()
                    for w in workers:
                        if failure is None and w.proc.poll() is not None and w.outcome()[0] in (1, 2):
                            failure = w.outcome()
                            stop_all()  # a broken script or bad input: the others would only repeat it
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
            failure = next(((c, m) for c, m in outcomes if c in (1, 2)), None)
        if failure is not None:
            code, message = failure
            raise (BadInput if code == 2 else RunFailure)(message)
        crashed = [m for c, m in outcomes if c not in (0, 130)]
        if crashed and not (flag.requested() or forced):
            if len(crashed) == len(workers):
                raise RunFailure(crashed[0])
            view.console.print(f"[red]{crashed[0]}[/]", highlight=False)
        interrupted = forced or flag.requested() or any(c == 130 for c, _ in outcomes)
        return WorkersOutcome(interrupted, forced)
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def worker_main(argv: list[str] | None = None) -> int:
    """One worker process: run the study's trials until its target is reached; write the outcome."""
    parser = argparse.ArgumentParser(prog="python -m tunekit.workers", description="A tunekit --jobs worker.")
    for name in ("study", "index", "threads", "parent", "result", "accelerator", "timeout"):
        parser.add_argument(name)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(args.threads))
    from tunekit.progress import QuietView
    from tunekit.search import run_search
    from tunekit.storage import open_storage, resolve_url
    from tunekit.study import open_study
    from tunekit.training.script import load_script

    code, message = 0, ""
    try:
        store = open_storage(resolve_url(None))
        study, settings = open_study(store, args.study)
        outcome = run_search(
            store,
            study,
            settings,
            load_script(settings.script),
            timeout=float(args.timeout) or None,
            view=QuietView(),
            accelerator=args.accelerator,
            worker=int(args.index),
            parent_pid=int(args.parent),
        )
        code = 130 if outcome.interrupted else 0
    except TunekitError as exc:
        code, message = exc.exit_code, str(exc)
    except KeyboardInterrupt:
        code = 130
    Path(args.result).write_text(json.dumps({"code": code, "message": message}))
    print(f"worker {args.index}: exit {code} {message}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(worker_main())
