"""styletransfer: neural style transfer (Gatys, AdaIN, StyleBank) on a shared VGG-16 core.

The library knows nothing of Gradio or the Hub: models and weights are passed in. The
``zoo`` package resolves and downloads weights; ``app.py`` is the web demo.
"""

from . import adain, color, gatys, masks, metrics, stylebank
from .imageio import (ImageInputError, fit_within, load_image, pil_to_tensor, read_settings, save_image,
                      tensor_to_pil)
from .serialization import ModelFileError
from .vgg import VGGConfig, VGGEncoder, bf16_is_fast
from .vgg_normalize import apply_filter_scales, mean_filter_activations

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
