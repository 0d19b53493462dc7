"""styletransfer: neural style transfer (Gatys, AdaIN, StyleBank) on a shared VGG-16 core.

The library knows nothing of Gradio or the Hub: models and weights are passed in. The
``zoo`` package resolves and downloads weights; ``app.py`` is the web demo.
"""

from .cpu import shorten_openmp_spin

shorten_openmp_spin()  # before torch loads (the first import below): it reads the setting once

from . import adain, color, gatys, masks, metrics, stylebank  # noqa: E402
from .imageio import (  # noqa: E402
    ImageInputError, fit_within, load_image, pil_to_tensor, read_settings, save_image, tensor_to_pil,
)
from .serialization import ModelFileError  # noqa: E402
from .vgg import VGGConfig, VGGEncoder, bf16_is_fast  # noqa: E402
from .vgg_normalize import apply_filter_scales, mean_filter_activations  # noqa: E402

__all__ = [
    "adain",
    "color",
    "gatys",
    "masks",
    "metrics",
    "stylebank",
    "ImageInputError",
    "ModelFileError",
    "VGGConfig",
    "VGGEncoder",
    "apply_filter_scales",
    "bf16_is_fast",
    "fit_within",
    "load_image",
    "mean_filter_activations",
    "pil_to_tensor",
    "read_settings",
    "save_image",
    "tensor_to_pil",
]

__version__ = "0.1.0"
