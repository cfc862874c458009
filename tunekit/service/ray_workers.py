"""``search --ray ADDRESS --jobs N``: the N workers as Ray tasks on an existing Ray cluster, on one study.

Each task starts the same worker process as ``--jobs`` (``tunekit.service.worker_process``) on
whatever node Ray places it, reserving ``num_gpus=--devices`` (on a GPU accelerator) and its share
of the cluster's CPUs. All of them reach the study through its server URL, so SQLite is refused.
Ray is an optional extra (``pip install "tunekit[ray]"``), imported only here, only with ``--ray``.

A lost worker (its node gone, kill -9) is not re-run by Ray (``max_retries=0``): its trial stays
RUNNING until its heartbeat is overdue, then the next worker that asks fails it and runs it again
with the same parameters (``tunekit.study.storage``), as for ``--jobs`` on one machine. The
storage URL and the ``TUNEKIT_*`` variables of this process (the heartbeat interval) go to each
worker's environment. The study's script must be at the same path on every node.

Ctrl-C cancels the tasks (``ray.cancel``), which Ray delivers as a KeyboardInterrupt in the task's
main thread (``_thread.interrupt_main``). Two things kept it from the running trials before (the
workers finished them): it only takes effect between Python bytecodes, so a task blocked in
``waitpid`` on its worker never saw it (each task now polls its worker instead), and Ray's task
processes block SIGINT, a mask the worker inherited, so the SIGINT passed on never arrived (the
worker unblocks it, ``worker_process``). Now the worker fails its trial "interrupted" and queues
it again, as a ``--jobs`` worker does.
"""

from __future__ import annotations

import os
from typing import Any

from tunekit.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILURE, BadInput, RunFailure
from tunekit.interrupts import ForcedStop, InterruptFlag
from tunekit.study.storage import STORAGE_ENV, is_sqlite
from tunekit.training.fit import RunOptions

POLL = 1.0  # seconds between looks at the study (the view) and the tasks
TASK_POLL = 0.2  # seconds between a task's looks at its worker process: how soon a cancel reaches it
STOP_GRACE = 5.0  # seconds a cancelled task's worker has to stop after its batch before a second Ctrl-C
STOPS_ALL = (EXIT_RUN_FAILURE, EXIT_BAD_INPUT)  # a broken script or bad input: the others would only repeat it


def check_ray(address: str | None, url: str) -> None:
    """Refuse a Ray run on a storage the cluster's nodes cannot share.

    Raises:
        BadInput: ``--ray`` without Ray installed, or with a SQLite URL.
    """
    import importlib.util

    if address is None:
        return
    if importlib.util.find_spec("ray") is None:
        raise BadInput('--ray needs Ray, which is not installed; pip install "tunekit[ray]".')
    if is_sqlite(url):
        raise BadInput(
            "--ray runs the workers on the Ray cluster's machines, which cannot share a SQLite file; give a "
            "server URL with --storage postgresql://USER:PASS@HOST/DB (on one machine, use --jobs instead)."
        )


def ray_worker(study: str, index: int, threads: int, options: dict, timeout: float | None, env: dict) -> tuple:
    """One Ray task: the same worker process as ``--jobs`` (``tunekit.service.worker_process``), on
    this node, in its own session; returns its (exit code, sentence).

    The worker process stops as if interrupted when this task's process dies (``ray.cancel(force=True)``
    on a second Ctrl-C, a lost node); a KeyboardInterrupt here (``ray.cancel``) is passed on to it as
    a Ctrl-C, and the task waits for it to record its trial.
    """
    import shutil
    import signal
    import tempfile
    import time
    from pathlib import Path

    from tunekit.service.workers import WorkerRequest, start_worker

    folder = Path(tempfile.mkdtemp(prefix="tunekit-ray-"))
    threads_env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    request = WorkerRequest(study, index, threads, os.getpid(), "", options, timeout)
    worker = start_worker(request, {**os.environ, **env, **threads_env}, folder)
    try:
        while worker.proc.poll() is None:  # not proc.wait(): Ray's cancel cannot interrupt a blocking waitpid
            time.sleep(TASK_POLL)
    except KeyboardInterrupt:
        worker.signal(signal.SIGINT)
        # A worker still training STOP_GRACE seconds after its Ctrl-C gets a second one (stop at once,
        # the trial still FAIL "interrupted" and queued again): once, on a loaded machine, the first
        # was never seen and both trials of the Ctrl-C test ran to the end.
        deadline = time.monotonic() + STOP_GRACE
        while worker.proc.poll() is None:
            try:
                time.sleep(TASK_POLL)
                if deadline is not None and time.monotonic() >= deadline:
                    worker.signal(signal.SIGINT)
                    deadline = None
            except KeyboardInterrupt:  # Ray's cancel again: the same request
                pass
    outcome = worker.outcome()
    shutil.rmtree(folder, ignore_errors=True)
    return outcome


def run_ray_workers(
    url: str, study: Any, jobs: int, timeout: float | None, options: RunOptions, address: str, view: Any
) -> Any:
    """Run ``jobs`` Ray tasks on ``study`` on the cluster at ``address`` until they stop.

    Ctrl-C cancels the tasks: each worker stops after its current batch, fails its trial
    "interrupted" and queues it again, and this returns once every task has ended. A lost task is
    reported and its trial retried by the others' heartbeat check.

    Raises:
        BadInput, RunFailure: a task stopped with one, or every task was lost.
    """
    import ray

    from tunekit.service.workers import WorkersOutcome

    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    cpus = max(1, int(ray.cluster_resources().get("CPU", jobs)) // jobs)
    gpus = options.devices if options.accelerator in ("gpu", "cuda") else 0
    # The storage URL (which may hold a password) and the heartbeat interval travel as the worker's environment.
    env = {**{k: v for k, v in os.environ.items() if k.startswith("TUNEKIT_")}, STORAGE_ENV: url}
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(ray_worker)
    refs = [task.remote(study.study_name, i, cpus, options.to_dict(), timeout, env) for i in range(1, jobs + 1)]
    # Ctrl-C cancels the tasks (their workers stop after the current batch); a second one ends the
    # tasks' processes at once, and their workers stop when they see their parent gone.
    flag = InterruptFlag(on_first=lambda: (view.interrupt_requested(), [ray.cancel(r) for r in refs]))
    outcomes: list[tuple[int | None, str]] = []
    forced = False
    with flag, view:
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, timeout=POLL)
                outcomes += [_outcome(ray, ref) for ref in done]
                if any(c in STOPS_ALL for c, _ in outcomes):
                    for ref in pending:
                        ray.cancel(ref)
                view.poll()
        except ForcedStop:
            forced = True
            for ref in pending:
                ray.cancel(ref, force=True)  # Ray kills their workers too: trials retried by the heartbeat check
        view.poll()
    failure = next(((c, m) for c, m in outcomes if c in STOPS_ALL), None)
    if failure is not None:
        raise (BadInput if failure[0] == EXIT_BAD_INPUT else RunFailure)(failure[1])
    lost = [m for c, m in outcomes if c not in (EXIT_OK, EXIT_INTERRUPTED)]
    if lost and len(lost) == len(outcomes) and not flag.requested():
        raise RunFailure(lost[0])
    if lost:
        view.console.print(f"[red]{lost[0]}[/]", highlight=False)
    interrupted = forced or flag.requested() or any(c == EXIT_INTERRUPTED for c, _ in outcomes)
    return WorkersOutcome(interrupted, forced)


def _outcome(ray: Any, ref: Any) -> tuple[int | None, str]:
    """A finished task's (exit code, sentence); (None, why) for a task Ray lost or cancelled."""
    try:
        return tuple(ray.get(ref))
    except ray.exceptions.TaskCancelledError:
        return EXIT_INTERRUPTED, ""
    except ray.exceptions.RayError as exc:
        return None, f"a Ray worker was lost ({type(exc).__name__}); its trial is run again by the others"
