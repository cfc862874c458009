"""Ctrl-C handling for a running search.

The first Ctrl-C (or SIGTERM) only raises a flag; training checks it at the next batch boundary, so
the running trial is recorded as failed with reason "interrupted" and the database stays
consistent. Lightning's own handler would call ``sys.exit(1)`` in the middle of ``fit`` and leave
the trial RUNNING.

A second Ctrl-C stops at once: the handler raises ``ForcedStop`` wherever the program is (in the
middle of a batch, a sleep, a validation). ``ForcedStop`` is not a ``KeyboardInterrupt`` on
purpose: Lightning turns a KeyboardInterrupt inside ``fit`` into ``sys.exit(1)`` and ignores every
further Ctrl-C (``lightning/pytorch/trainer/call.py``), while any other exception passes through
after its teardown. The search turns it into a KeyboardInterrupt outside Lightning, which Optuna
records as FAIL, so even then no trial is left RUNNING. A third Ctrl-C kills the process outright
(its trial is then failed and retried by the heartbeat check, like after kill -9).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from tunekit.errors import EXIT_INTERRUPTED, EXIT_RUN_FAILURE


class ForcedStop(BaseException):
    """The second Ctrl-C: stop now, without waiting for the batch to end."""


class InterruptFlag:
    """Context manager installing the two-stage handler; ``requested()`` tells whether to stop.

    Args:
        on_first: called on the first Ctrl-C (prints how the search will stop).
        parent_pid: for a worker process: stop as if interrupted when this process is gone.
    """

    def __init__(self, on_first: Callable[[], None] | None = None, parent_pid: int | None = None):
        self._set = False
        self._forced = False
        self._on_first = on_first
        self._parent_pid = parent_pid
        self._previous: dict[int, object] = {}

    def requested(self) -> bool:
        if not self._set and self._parent_pid is not None and os.getppid() != self._parent_pid:
            self._set = True  # the parent died (kill -9): no one will collect our work
        return self._set

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._forced:  # a third Ctrl-C while the second is recording the trial: die now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        if self._set:
            self._forced = True
            raise ForcedStop()
        self._set = True
        if self._on_first is not None:
            self._on_first()

    def __enter__(self) -> InterruptFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave the handlers alone
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]
        self._previous.clear()


def exit_code_for_interrupt() -> int:
    """128 + SIGINT, the shell convention for a run stopped by Ctrl-C (1 on Windows)."""
    return EXIT_INTERRUPTED if sys.platform != "win32" else EXIT_RUN_FAILURE
