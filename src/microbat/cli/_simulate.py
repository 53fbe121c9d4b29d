"""CLI verbs (placeholder module: verbs are added by the feature that owns them)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Register this module's verbs on ``app``."""
