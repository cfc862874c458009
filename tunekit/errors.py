"""The two kinds of error tunekit reports to a user.

The CLI turns ``BadInput`` into exit code 2 and ``RunFailure`` into exit code 1, each printed as the
one sentence it carries. Messages name the problem and the fix.
"""

from __future__ import annotations

# Exit codes, named once (the CLI, the --jobs workers and their parent all use these).
EXIT_OK = 0
EXIT_RUN_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell convention for a run stopped by Ctrl-C


class TunekitError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_RUN_FAILURE


class BadInput(TunekitError):
    """The user's input (script, option, file, URL, study name) cannot be used."""

    exit_code = EXIT_BAD_INPUT


class RunFailure(TunekitError):
    """Something failed while running (for example every trial failed the same way)."""

    exit_code = EXIT_RUN_FAILURE


def unknown_name(kind: str, name: object, valid: list[str]) -> BadInput:
    """``unknown optimizer 'adamx' (did you mean 'adamw'?); choose from: ...`` for any registry."""
    import difflib

    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return BadInput(f"unknown {kind} {str(name)!r}{hint}; choose from: {', '.join(valid)}.")
