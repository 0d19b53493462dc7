"""The model zoo: catalogue, weights resolution chain, Hub transport and loaders."""

import styletransfer  # noqa: F401  (before torch: it sets how long OpenMP threads spin, see styletransfer/cpu.py)

from .hub import HubError
from .manifest import MODELS, ModelSpec
from .registry import (get_spec, list_models, load_adain_decoder, load_lpips_heads, load_normalized_vgg, load_stylebank,
                       load_vgg16)
from .resolve import Resolved, WeightsNotFoundError, bank_path_in_repo, local_weights_dir, resolve_weights

__all__ = [
    "HubError",
    "MODELS",
    "ModelSpec",
    "Resolved",
    "WeightsNotFoundError",
    "bank_path_in_repo",
    "get_spec",
    "list_models",
    "load_adain_decoder",
    "load_lpips_heads",
    "load_normalized_vgg",
    "load_stylebank",
    "load_vgg16",
    "local_weights_dir",
    "resolve_weights",
]
