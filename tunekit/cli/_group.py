"""The lazy Click group and the mapping of tunekit's errors to exit codes (Click ``docs/complex.md``)."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import click

from tunekit.errors import TunekitError


class _Failure(click.ClickException):
    """A TunekitError shown as ``Error: <sentence>`` with its own exit code (2 bad input, 1 runtime)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class LazyGroup(click.Group):
    """A group whose commands are imported only when invoked (their help text is in the table)."""

    def __init__(self, *args: Any, commands_table: dict[str, tuple[str, str]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.commands_table = commands_table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands_table)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands_table:
            return None
        target, _ = self.commands_table[name]
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_, short) in self.commands_table.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        # tunekit chooses Optuna's heartbeat and grouped-TPE features deliberately; their
        # "experimental" notices would only alarm users.
        warnings.filterwarnings("ignore", message=r".*(is experimental|experimental feature).*")
        try:
            return super().invoke(ctx)
        except TunekitError as exc:
            raise _Failure(str(exc), exc.exit_code) from None
