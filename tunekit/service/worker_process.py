"""One ``--jobs`` worker process: ``python -m tunekit.service.worker_process REQUEST``.

It opens the same prepared run as ``resume`` (``open_run``: script, space and study loaded once)
and runs the trial loop with no view of its own, then writes its exit code and error sentence to
the request's result file for the parent (``tunekit.service.workers``).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from tunekit.errors import EXIT_INTERRUPTED, EXIT_OK, TunekitError
from tunekit.service.events import QuietView
from tunekit.service.search import open_run
from tunekit.service.workers import WorkerRequest
from tunekit.study.storage import resolve_url
from tunekit.training.fit import RunOptions


def worker_main(request: WorkerRequest) -> int:
    """One worker process: run the study's trials until its target is reached; write the outcome."""
    # A Ray task's process blocks SIGINT in its main thread and the mask is inherited across exec
    # (measured: SigBlk 0x2 in /proc/self/status), so the parent's Ctrl-C never reached a worker
    # started from a Ray task (issue #11). Unblocked here, whoever started this process.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    import torch

    torch.set_num_threads(request.threads)
    code, message = EXIT_OK, ""
    try:
        prepared = open_run(resolve_url(None), request.study, RunOptions.from_dict(request.options), request.timeout)
        outcome = prepared.run_here(QuietView(), worker=request.index, parent_pid=request.parent)
        code = EXIT_INTERRUPTED if outcome.interrupted else EXIT_OK
    except TunekitError as exc:
        code, message = exc.exit_code, str(exc)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    Path(request.result).write_text(json.dumps({"code": code, "message": message}))
    print(f"worker {request.index}: exit {code} {message}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(worker_main(WorkerRequest.from_json(sys.argv[1])))
