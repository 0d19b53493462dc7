"""Resumable training state as safetensors (no pickles): model weights, optimiser state, step.

One file holds ``model.<name>`` tensors of every module, ``optim.<k>.<i>.<key>`` tensors of
every optimiser's per-parameter state, and JSON metadata (step, optimiser param groups,
anything else the trainer wants back). Writes go to a temporary file first, then replace
the old checkpoint, so an interrupted write never leaves a broken checkpoint behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

__all__ = ["save_checkpoint", "load_checkpoint", "append_log"]


def save_checkpoint(
    path: str | os.PathLike,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    *,
    step: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write modules, optimisers, ``step`` and ``extra`` (JSON) to ``path`` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    groups: dict[str, Any] = {}
    for name, module in modules.items():
        for key, t in module.state_dict().items():
            tensors[f"model.{name}.{key}"] = t.detach().cpu().contiguous()
    for name, opt in optimizers.items():
        state = opt.state_dict()
        groups[name] = state["param_groups"]
        for idx, entry in state["state"].items():
            for key, value in entry.items():
                value = value if isinstance(value, torch.Tensor) else torch.tensor(value)
                tensors[f"optim.{name}.{idx}.{key}"] = value.detach().cpu().contiguous()
    meta = {"step": str(step), "param_groups": json.dumps(groups), "extra": json.dumps(extra or {}, default=str)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def load_checkpoint(
    path: str | os.PathLike,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> tuple[int, dict[str, Any]]:
    """Restore what :func:`save_checkpoint` wrote (modules strictly; an optimiser the file has no
    state for keeps its fresh state); returns ``(step, extra)``."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for name, module in modules.items():
        prefix = f"model.{name}."
        module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
    groups = json.loads(meta["param_groups"])
    for name, opt in optimizers.items():
        if name not in groups:
            continue
        prefix = f"optim.{name}."
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix):
                idx, field = key[len(prefix):].split(".", 1)
                state.setdefault(int(idx), {})[field] = value
        opt.load_state_dict({"state": state, "param_groups": groups[name]})
    return int(meta["step"]), json.loads(meta["extra"])


def append_log(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line to the run's log."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
