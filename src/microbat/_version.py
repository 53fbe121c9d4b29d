"""The microbat version (a leaf module: imports nothing, so anything may import it)."""

__version__ = "0.1.0.dev0"
