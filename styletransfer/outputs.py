"""Output files of the command lines: refused before any work if they cannot be written, never lost after it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["check_output", "save_or_keep"]


def check_output(path: Path, suffixes: tuple[str, ...], option: str = "--output") -> None:
    """Raise before any work if ``path`` does not end in one of ``suffixes``, has no folder, or cannot be written.

    Raises:
        ValueError: another ending.
        FileNotFoundError: the folder does not exist.
        PermissionError: the file or its folder cannot be written.
    """
    if path.suffix.lower() not in suffixes:
        named = suffixes[0] if len(suffixes) == 1 else f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"
        raise ValueError(f"{option} {path}: this file is written as {named}; name it so")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{option} {path}: there is no folder {path.parent}")
    if path.is_dir() or not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PermissionError(f"{option} {path}: this file cannot be written")


def save_or_keep(save: Callable[[Path], Any], path: Path) -> None:
    """``save(path)``; where that fails (a full disk, a folder removed meanwhile), ``save`` into a new temp
    folder instead and raise an ``OSError`` that says where the result was kept."""
    try:
        save(path)
    except OSError as e:
        kept = Path(tempfile.mkdtemp(prefix="styletransfer-")) / path.name
        save(kept)
        raise OSError(f"could not write {path} ({e.strerror or e}); the result is saved as {kept}") from None
