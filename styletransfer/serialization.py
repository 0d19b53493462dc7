"""Save and load model classes as one safetensors file with their config in its metadata.

In the spirit of ``huggingface_hub.PyTorchModelHubMixin`` (``save_pretrained`` /
``from_pretrained``), but without importing it: the library stays free of Hub code, and a
model is exactly one file whose header says what it is. The zoo adds the Hub transport.
A class opts in by inheriting :class:`SafetensorsMixin` and setting ``config_class`` to a
dataclass with JSON-typed fields that its ``__init__`` takes as first argument.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

__all__ = ["SafetensorsMixin", "ModelFileError", "read_metadata", "update_extra_metadata"]

FORMAT = "styletransfer/1"
T = TypeVar("T", bound="SafetensorsMixin")


class ModelFileError(ValueError):
    """A weights file that cannot be used: unreadable, of another class, or of another shape."""


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file.

    Raises:
        ModelFileError: not a readable safetensors file.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFileError(f"'{Path(path).name}' is not a readable safetensors file ({e}).") from e


def update_extra_metadata(path: str | os.PathLike, updates: dict[str, Any], output: str | os.PathLike | None = None,
                          ) -> Path:
    """Rewrite a :meth:`~SafetensorsMixin.save_pretrained` file (to ``output``, default in place) with
    ``updates`` merged into its ``extra`` metadata; the tensors are copied bit for bit.

    Raises:
        ModelFileError: the file is unreadable.
    """
    meta = read_metadata(path)
    extra = {**json.loads(meta.get("extra", "{}")), **updates}
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    output = Path(output or path)
    output.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(output), metadata={**meta, "extra": json.dumps(extra, sort_keys=True, default=str)})
    return output


class SafetensorsMixin:
    """Adds ``save_pretrained`` / ``from_pretrained`` to an ``nn.Module`` with a dataclass ``config``."""

    config_class: ClassVar[type]
    config: Any

    def save_pretrained(
        self,
        path: str | os.PathLike,
        *,
        metadata: dict[str, Any] | None = None,
        dtype: torch.dtype | None = None,
    ) -> Path:
        """Write the weights to ``path`` (a ``.safetensors`` file) with class and config in the header.

        Args:
            path: file to write; parent folders are created.
            metadata: extra JSON-able entries stored under ``"extra"`` (training settings, licence...).
            dtype: cast floating tensors to this type on save (e.g. ``torch.float16`` to ship).

        Returns:
            The path written.
        """
        assert isinstance(self, torch.nn.Module)
        tensors = {}
        for key, t in self.state_dict().items():
            t = t.detach().cpu()
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            tensors[key] = t.contiguous()
        header = {
            "format": FORMAT,
            "class": type(self).__name__,
            "config": json.dumps(asdict(self.config), sort_keys=True),
        }
        if metadata:
            header["extra"] = json.dumps(metadata, sort_keys=True, default=str)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path), metadata=header)
        return path

    @classmethod
    def from_pretrained(cls: type[T], path: str | os.PathLike, **kwargs: Any) -> T:
        """Build the model from the config in ``path`` and load its weights (strict).

        Floating tensors are loaded as float32 whatever they were stored as.

        Raises:
            ModelFileError: the file is unreadable, holds another class, or its tensors do not fit.
        """
        meta = read_metadata(path)
        name = Path(path).name
        if meta.get("format") != FORMAT or "config" not in meta:
            raise ModelFileError(f"'{name}' was not written by save_pretrained (no styletransfer header).")
        if meta.get("class") != cls.__name__:
            raise ModelFileError(f"'{name}' holds a {meta.get('class')}, not a {cls.__name__}.")
        config = cls.config_class(**json.loads(meta["config"]))
        model = cls(config, **kwargs)
        assert isinstance(model, torch.nn.Module)
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ModelFileError(f"'{name}' does not fit {cls.__name__}({config}): {e}") from e
        return model

    def fingerprint(self) -> str:
        """A digest of the config and the weights rounded to fp16 (so fp16 and fp32 copies agree): what a
        record made for these weights (a bank, an int8 calibration) is checked against."""
        assert isinstance(self, torch.nn.Module)
        h = hashlib.sha256(json.dumps(asdict(self.config), sort_keys=True).encode())
        for key, t in self.state_dict().items():
            h.update(key.encode())
            t = t.detach().cpu()
            h.update((t.half() if t.is_floating_point() else t).contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    @staticmethod
    def extra_metadata(path: str | os.PathLike) -> dict[str, Any]:
        """The ``metadata`` dict passed to :meth:`save_pretrained` when ``path`` was written."""
        return json.loads(read_metadata(path).get("extra", "{}"))
