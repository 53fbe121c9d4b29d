"""Atomic file output: write to a temporary name beside the target, then rename.

A crash, a full disk or Ctrl-C never leaves a half-written file under the final
name; the temporary file is removed on failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path; on success it is renamed to ``path``.

    Parameters
    ----------
    path : path-like
        Final destination (file, or folder when ``directory`` is true, e.g. Zarr).
    directory : bool, default False
        Create a temporary folder instead of a file name.

    Yields
    ------
    Path
        The temporary path to write to. It lies in the same folder as ``path`` so
        the final rename is atomic on POSIX file systems.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(final.suffixes)
    if directory:
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{final.stem}.", suffix=".tmp" + suffix, dir=final.parent)
        )
    else:
        fd, name = tempfile.mkstemp(
            prefix=f".{final.stem}.", suffix=".tmp" + suffix, dir=final.parent
        )
        os.close(fd)
        tmp = Path(name)
        tmp.unlink()  # let the writer create it (some libraries refuse existing files)
    try:
        yield tmp
        if directory and final.exists():
            old = final.with_name(f".{final.name}.old")
            if old.exists():
                shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)
