"""Lazy attribute loading for subpackages (keeps ``import microbat`` fast)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any


def lazy_exports(
    package: str, modules: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``__getattr__`` and ``__dir__`` for a package re-exporting its modules.

    A name is looked up, on first access, in the ``__all__`` of each module listed
    in ``modules`` (in order); modules that do not exist yet are skipped.

    Parameters
    ----------
    package : str
        Dotted name of the package (``__name__``).
    modules : sequence of str
        Submodule names, searched in order.

    Returns
    -------
    tuple of callable
        ``(__getattr__, __dir__)`` to assign in the package namespace.
    """

    def _load(mod: str) -> Any:
        try:
            return importlib.import_module(f"{package}.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{package}.{mod}":
                return None
            raise

    def __getattr__(name: str) -> Any:
        if name in modules:
            return importlib.import_module(f"{package}.{name}")
        for mod in modules:
            m = _load(mod)
            if m is not None and name in getattr(m, "__all__", ()):
                return getattr(m, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        names: set[str] = set(modules)
        for mod in modules:
            m = _load(mod)
            if m is not None:
                names.update(getattr(m, "__all__", ()))
        return sorted(names)

    return __getattr__, __dir__
