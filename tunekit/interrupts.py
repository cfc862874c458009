"""Ctrl-C handling for a running search.

The first Ctrl-C (or SIGTERM) only raises a flag; training checks it at the next batch boundary, so
the running trial is recorded as failed with reason "interrupted" and the database stays
consistent. A second Ctrl-C exits at once. Lightning's own handler would call ``sys.exit(1)`` in the
middle of ``fit`` and leave the trial RUNNING.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType


class InterruptFlag:
    """Context manager installing the two-stage handler; ``requested()`` tells whether to stop."""

    def __init__(self, on_first: Callable[[], None] | None = None):
        self._set = False
        self._on_first = on_first
        self._previous: dict[int, object] = {}

    def requested(self) -> bool:
        return self._set

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._set:
            raise KeyboardInterrupt
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
    """128 + SIGINT, the shell convention for a run stopped by Ctrl-C."""
    return 128 + signal.SIGINT if sys.platform != "win32" else 1
