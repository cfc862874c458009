"""What a running search tells its view: the protocol, and the view that shows nothing.

The CLI's live views (``tunekit.cli.views``) implement ``SearchEvents``; a ``--jobs`` worker
process runs with ``QuietView`` (its parent's view reads the study instead).
"""

from __future__ import annotations

from typing import Any, Protocol


class SearchEvents(Protocol):
    """Events of a search in this process, in order: enter, (trial_started, step*, evaluated*,
    trial_finished)*, waiting* while the last trials run elsewhere, exit; interrupt_requested on
    the first Ctrl-C."""

    def __enter__(self) -> SearchEvents: ...

    def __exit__(self, *exc: object) -> None: ...

    def trial_started(self, number: int, recipe: Any) -> None: ...

    def step(self, step: int, total: int) -> None: ...

    def evaluated(self, step: int, value: float) -> None: ...

    def trial_finished(self, study: Any, trial: Any) -> None: ...

    def waiting(self, running: list[int]) -> None: ...

    def interrupt_requested(self) -> None: ...

    def notice(self, text: str) -> None:
        """A decision of the search the user should see (a family dropped by the allocation, issue #14)."""


class QuietView:
    """The view of a ``--jobs`` worker: it shows nothing (the parent's view does)."""

    def __enter__(self) -> QuietView:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def trial_started(self, number: int, recipe: Any) -> None:
        pass

    def step(self, step: int, total: int) -> None:
        pass

    def evaluated(self, step: int, value: float) -> None:
        pass

    def trial_finished(self, study: Any, trial: Any) -> None:
        pass

    def waiting(self, running: list[int]) -> None:
        pass

    def interrupt_requested(self) -> None:
        pass

    def notice(self, text: str) -> None:
        pass
