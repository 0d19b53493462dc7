"""All Hugging Face Hub I/O of the project: pinned, checksummed, safetensors-only, offline-aware.

No other module calls ``hf_hub_download`` or the upload API. ``HF_HUB_OFFLINE`` is read at
call time (``huggingface_hub`` reads it once at import), so tests and users can switch it.
A token comes from the caller (the UI field) or the environment (``HF_TOKEN``), and is
never logged.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub import constants
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

__all__ = ["HubError", "is_offline", "hub_reachable", "download", "upload", "file_sha256"]

_REFUSED_SUFFIXES = (".bin", ".pth", ".pt", ".ckpt", ".pkl", ".pickle")


class HubError(RuntimeError):
    """A Hub download or upload that failed; the message says which repo/file and why."""


def is_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for cache-only access."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the Hub endpoint opens within ``timeout`` seconds (once per process).

    Without this probe a machine with no route to the Hub spends about 25 s in
    huggingface_hub's retries before falling back to the cache.
    """
    url = urlsplit(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_safetensors(filename: str) -> None:
    if filename.lower().endswith(_REFUSED_SUFFIXES) or not filename.endswith(".safetensors"):
        raise HubError(f"refusing '{filename}': only .safetensors files are loaded (pickles can run code).")


def download(
    repo_id: str,
    filename: str,
    revision: str,
    *,
    sha256: str | None = None,
    local_files_only: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Fetch one file from a Hub repo at a pinned revision (or find it in the cache).

    Args:
        repo_id: ``owner/name``.
        filename: a ``.safetensors`` file in the repo.
        revision: commit sha (or branch/tag) to fetch.
        sha256: expected digest; a mismatch is an error.
        local_files_only: use the cache only; defaults to ``HF_HUB_OFFLINE``.
        cache_dir: the Hub cache; defaults to huggingface_hub's (``HF_HUB_CACHE``).

    Returns:
        The path of the file in the Hub cache.

    Raises:
        HubError: not a safetensors file, repo/revision/file missing, not cached while
            offline, network failure, or checksum mismatch.
    """
    _check_safetensors(filename)
    if local_files_only is None:
        local_files_only = is_offline() or not hub_reachable()
    where = f"{repo_id}/{filename}@{revision[:12]}"
    try:
        path = Path(
            hf_hub_download(
                repo_id=repo_id,
                filename=filename,
                revision=revision,
                local_files_only=local_files_only,
                cache_dir=cache_dir,
            )
        )
    except RepositoryNotFoundError as e:
        raise HubError(f"{where}: the Hub repository '{repo_id}' does not exist or is private.") from e
    except RevisionNotFoundError as e:
        raise HubError(f"{where}: revision '{revision}' does not exist in '{repo_id}'.") from e
    except RemoteEntryNotFoundError as e:
        raise HubError(f"{where}: the repository has no file '{filename}'.") from e
    except LocalEntryNotFoundError as e:
        mode = "offline (HF_HUB_OFFLINE)" if is_offline() else "the Hub could not be reached"
        raise HubError(f"{where}: not in the local Hub cache and {mode}.") from e
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise HubError(f"{where}: download failed ({type(e).__name__}: {e}).") from e
    if sha256 is not None:
        digest = file_sha256(path)
        if digest != sha256:
            raise HubError(f"{where}: sha256 {digest[:16]}... does not match the pinned {sha256[:16]}...")
    return path


def upload(
    local_path: str | os.PathLike,
    repo_id: str,
    *,
    path_in_repo: str | None = None,
    readme: str | None = None,
    token: str | None = None,
    private: bool = False,
    extra_files: Mapping[str, str | os.PathLike] | None = None,
) -> str:
    """Upload a safetensors file (and optionally a model card) to a Hub model repo.

    Args:
        local_path: the ``.safetensors`` file.
        repo_id: ``owner/name``; created if it does not exist.
        path_in_repo: name in the repo; defaults to the local file name.
        readme: model card text written as ``README.md`` in the same commit.
        token: a write token; defaults to ``HF_TOKEN`` from the environment.
        private: create the repo private.
        extra_files: more ``.safetensors`` files for the same commit, by their path in the repo.

    Returns:
        The commit sha, to pin as ``revision`` in the manifest.

    Raises:
        HubError: offline, no token, not safetensors, or the Hub refused the upload.
    """
    local_path = Path(local_path)
    _check_safetensors(local_path.name)
    if is_offline():
        raise HubError("cannot upload while HF_HUB_OFFLINE is set.")
    if not hub_reachable():
        raise HubError("cannot upload: the Hub cannot be reached from this machine.")
    token = token or os.environ.get("HF_TOKEN") or None
    if not token:
        raise HubError("uploading needs a Hub write token (set HF_TOKEN or enter one in the app).")
    extra = {name: Path(p) for name, p in (extra_files or {}).items()}
    for name in extra:
        _check_safetensors(name)
    operations = [CommitOperationAdd(path_in_repo or local_path.name, str(local_path))]
    operations += [CommitOperationAdd(name, str(p)) for name, p in extra.items()]
    if readme is not None:
        operations.append(CommitOperationAdd("README.md", readme.encode("utf-8")))
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.create_commit(
            repo_id, operations=operations, commit_message=f"Upload {local_path.name} with the styletransfer zoo"
        )
    except (HfHubHTTPError, OSError, ValueError) as e:
        # The exception text never contains the token; only its type and message are shown.
        raise HubError(f"upload to '{repo_id}' failed ({type(e).__name__}: {e}).") from e
    return info.oid
