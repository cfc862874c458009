"""The one registry mechanism: optimizer families, LR schedules, scaling laws, parameter-grouping rules.

Every registry is made the same way (issue #13): ``Registry(kind)`` plus a function that receives
it and registers the built-ins (``register_builtin_families(registry)``), called once by the module
that owns the registry. Nothing is registered as a side effect of importing a module, so a test can
build a registry of its own (``registry.copy()``) and help texts are derived from the entries.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Generic, TypeVar

from tunekit.errors import unknown_name

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """Entries by ``entry.name``, in registration order.

    An unknown name is ``BadInput`` suggesting the closest valid one and listing them all (timm's
    factory returns None instead); registering a name twice is a programming error. An entry
    validates itself at construction (frozen dataclasses with ``__post_init__``).
    """

    def __init__(self, kind: str, builtins: Callable[[Registry[T]], None] | None = None):
        super().__init__()
        self.kind = kind
        if builtins is not None:
            builtins(self)

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

    def names(self, where: Callable[[T], bool] | None = None) -> list[str]:
        """Registered names (those whose entry satisfies ``where``), in registration order."""
        return [name for name, entry in self.items() if where is None or where(entry)]

    def copy(self) -> Registry[T]:
        clone: Registry[T] = Registry(self.kind)
        clone.update(self)
        return clone
