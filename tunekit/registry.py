"""The registry mechanism shared by optimizer families, LR schedules and scaling laws."""

from __future__ import annotations

import fnmatch
from typing import Generic, TypeVar

from tunekit.errors import unknown_name

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """Entries by ``entry.name``, in registration order.

    An unknown name is ``BadInput`` suggesting the closest valid one and listing them all (timm's
    factory returns None instead); registering a name twice is a programming error.
    """

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def add(self, entry: T, *, replace: bool = False) -> T:
        if entry.name in self and not replace:
            raise ValueError(f"{self.kind} {entry.name!r} is already registered")
        self[entry.name] = entry
        return entry

    def lookup(self, name: object) -> T:
        """The entry called ``name``; raises BadInput for an unknown one."""
        try:
            return self[name]
        except (KeyError, TypeError):
            raise unknown_name(self.kind, name, list(self)) from None

    def matching(self, pattern: str = "*") -> list[T]:
        """Entries whose name matches the glob ``pattern``, in registration order."""
        return [entry for name, entry in self.items() if fnmatch.fnmatchcase(name, pattern)]

    def copy(self) -> Registry[T]:
        clone: Registry[T] = Registry(self.kind)
        clone.update(self)
        return clone
