"""Quality measures shared by every method, so results compare (the AdaIN paper's Fig. 3 protocol).

Both losses use the VGG-normalised encoder (pass ``zoo.load_normalized_vgg()``):

* content loss: mean squared difference of ``relu4_1`` features of the output and the content
  (the content resized to the output's size);
* style loss: sum over ``relu1_1 .. relu4_1`` of the mean squared differences of the channel
  means and of the channel standard deviations, output against style.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from .imageio import pil_to_tensor
from .ops import calc_mean_std, mean_std_loss
from .vgg import VGGEncoder

__all__ = ["CONTENT_LAYER", "STYLE_LAYERS", "content_style_losses"]

CONTENT_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


@torch.no_grad()
def content_style_losses(output: Image.Image, content: Image.Image, style: Image.Image, *, encoder: VGGEncoder) -> dict[str, float]:
    """``{"content": ..., "style": ...}`` of one stylised image (see the module docstring)."""
    device = next(encoder.parameters()).device
    out = pil_to_tensor(output, device)
    c = F.interpolate(pil_to_tensor(content, device), size=out.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
    s = pil_to_tensor(style, device)
    f_out = encoder(out, STYLE_LAYERS)
    f_c = encoder(c, [CONTENT_LAYER])[CONTENT_LAYER]
    f_s = encoder(s, STYLE_LAYERS)
    style_loss = sum(float(mean_std_loss(f_out[layer], *calc_mean_std(f_s[layer]))) for layer in STYLE_LAYERS)
    return {"content": float(F.mse_loss(f_out[CONTENT_LAYER], f_c)), "style": style_loss}
