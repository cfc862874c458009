"""Refuse a model script that trains while it is imported (issue #15).

tunekit imports the user's script to find its classes. A script that calls ``Trainer.fit`` (or
``validate``/``test``/``predict``, or builds a ``LightningCLI``) at module level, outside
``if __name__ == "__main__":``, would train for minutes before tunekit said anything. While the
script is imported, those entry points raise ``RanAtImport`` at their first call instead.

Why patch the entry points rather than scan the source (``ast``) for ``.fit(`` calls: the patch
sees every way of getting there (an unguarded ``main()``, an alias of ``Trainer``, a helper module
the script imports), and raises no false alarm on other libraries' ``.fit`` (scikit-learn's
scalers at module level are legitimate), which a scan of names cannot tell apart.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENTRY_POINTS = ("fit", "validate", "test", "predict")


class RanAtImport(Exception):
    """A Lightning entry point was called while the script was being imported."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def _refuse(what: str) -> Any:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise RanAtImport(what)

    return refused


def _targets(source: str) -> list[tuple[Any, str, str]]:
    """(class, attribute, name shown) for each entry point the script can reach."""
    packages = ["lightning.pytorch"]
    if "pytorch_lightning" in source and importlib.util.find_spec("pytorch_lightning") is not None:
        packages.append("pytorch_lightning")  # the older package name: its own Trainer class
    targets = []
    for package in packages:
        trainer = importlib.import_module(package).Trainer
        targets += [(trainer, name, f"Trainer.{name}") for name in ENTRY_POINTS]
        if "LightningCLI" in source:
            cli = importlib.import_module(f"{package}.cli").LightningCLI
            targets.append((cli, "__init__", "LightningCLI(...)"))
    return targets


@contextmanager
def no_training_at_import(source: str) -> Iterator[None]:
    """While inside, Lightning's training entry points raise ``RanAtImport`` (``source``: the script's text)."""
    saved = []
    for cls, attr, shown in _targets(source):
        saved.append((cls, attr, cls.__dict__[attr]))
        setattr(cls, attr, _refuse(shown))
    try:
        yield
    finally:
        for cls, attr, original in saved:
            setattr(cls, attr, original)
