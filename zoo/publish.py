"""Pull and push whole zoo entries: the weights file, and for a StyleBank its banks too.

One home for what the CLI (``python -m zoo pull|push``) and the app's Zoo tab do.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import hub
from .cards import model_card
from .manifest import ModelSpec
from .registry import get_spec
from .resolve import Resolved, bank_path_in_repo, resolve_bank, resolve_weights

__all__ = ["entry_files", "pull", "push"]


def entry_files(spec: ModelSpec, found: Resolved) -> dict[str, Path]:
    """Every file of an entry by its path in the Hub repo (the weights file, then any banks)."""
    files = {spec.filename: found.path}
    for style in spec.style_names:
        files[bank_path_in_repo(style)] = resolve_bank(spec, found, style)
    return files


def pull(name: str, path: str | os.PathLike | None = None) -> tuple[Resolved, dict[str, Path]]:
    """Resolve ``name`` through the weights chain (banks included); returns where it came from and its files.

    Raises:
        KeyError: unknown name.
        WeightsNotFoundError: a file could not be found.
    """
    spec = get_spec(name)
    found = resolve_weights(spec, path=path)
    return found, entry_files(spec, found)


def push(name: str, repo_id: str, *, token: str | None = None, path: str | os.PathLike | None = None) -> str:
    """Upload ``name``'s files and model card to ``repo_id`` in one commit; returns the commit sha.

    The token (argument or ``HF_TOKEN``) is used for this upload only and never printed.

    Raises:
        HubError: offline, no token, or the Hub refused the upload.
    """
    spec = get_spec(name)
    found, files = pull(name, path)
    main_file = files.pop(spec.filename)
    return hub.upload(main_file, repo_id, path_in_repo=spec.filename, readme=model_card(spec), token=token,
                      extra_files=files)
