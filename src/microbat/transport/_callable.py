"""Let a module be called like the function it is named after.

``microbat.transport`` re-exports names lazily, but a submodule named like its
main function (``transport.tortuosity``) shadows that function as soon as it is
imported: Python binds the submodule as an attribute of the package. Making the
module object callable keeps ``microbat.transport.tortuosity(ms)`` working while
``from microbat.transport.tortuosity import tortuosity`` still gives the function.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable
from typing import Any


def make_module_callable(module_name: str, func: Callable[..., Any]) -> None:
    """Turn ``sys.modules[module_name]`` into a module that calls ``func``."""

    class _CallableModule(types.ModuleType):
        __doc__ = func.__doc__

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

    module = sys.modules[module_name]
    module.__class__ = _CallableModule
    # inspect.signature(module) then reports the function's parameters
    module.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
