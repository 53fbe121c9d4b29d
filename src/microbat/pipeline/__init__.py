"""Pipelines that chain the stages: the built-in demo (and, later, the twin)."""

from microbat.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, ("demo", "twin", "config", "report"))
