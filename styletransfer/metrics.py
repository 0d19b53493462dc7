"""Quality measures shared by every method, so results compare (the AdaIN paper's Fig. 3 protocol).

Both losses use the VGG-normalised encoder (pass ``zoo.load_normalized_vgg()``):

* content loss: mean squared difference of ``relu4_1`` features of the output and the content
  (the content resized to the output's size);
* style loss: sum over ``relu1_1 .. relu4_1`` of the mean squared differences of the channel
  means and of the channel standard deviations, output against style.

The content distance :func:`lpips_content_distance` is LPIPS (VGG-16, v0.1; :mod:`.lpips`) between the
output and the content; it takes the plain ImageNet VGG-16 (``zoo.load_vgg16()``) and
``zoo.load_lpips_heads()``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from .imageio import pil_to_tensor
from .lpips import LPIPSHeads, lpips
from .ops import calc_mean_std, mean_std_loss
from .vgg import VGGEncoder

__all__ = ["CONTENT_LAYER", "STYLE_LAYERS", "content_style_losses", "lpips_content_distance", "style_distance",
           "nearest_style"]

CONTENT_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def _content_at_output_size(content: Image.Image, out: torch.Tensor) -> torch.Tensor:
    return F.interpolate(pil_to_tensor(content, out.device), size=out.shape[-2:], mode="bilinear",
                         align_corners=False, antialias=True)


def _style_loss(f_out: dict[str, torch.Tensor], f_s: dict[str, torch.Tensor]) -> float:
    return sum(float(mean_std_loss(f_out[layer], *calc_mean_std(f_s[layer]))) for layer in STYLE_LAYERS)


@torch.no_grad()
def content_style_losses(output: Image.Image, content: Image.Image, style: Image.Image, *,
                         encoder: VGGEncoder) -> dict[str, float]:
    """``{"content": ..., "style": ...}`` of one stylised image (see the module docstring)."""
    device = next(encoder.parameters()).device
    out = pil_to_tensor(output, device)
    c = _content_at_output_size(content, out)
    f_out = encoder(out, STYLE_LAYERS)
    f_c = encoder(c, [CONTENT_LAYER])[CONTENT_LAYER]
    f_s = encoder(pil_to_tensor(style, device), STYLE_LAYERS)
    return {"content": float(F.mse_loss(f_out[CONTENT_LAYER], f_c)), "style": _style_loss(f_out, f_s)}


@torch.no_grad()
def lpips_content_distance(output: Image.Image, content: Image.Image, *, vgg: VGGEncoder, heads: LPIPSHeads) -> float:
    """LPIPS between a stylised image and its content (the content resized to the output's size)."""
    out = pil_to_tensor(output, next(vgg.parameters()).device)
    return float(lpips(out, _content_at_output_size(content, out), vgg=vgg, heads=heads)[0])


@torch.no_grad()
def style_distance(image: Image.Image, style: Image.Image, *, encoder: VGGEncoder) -> float:
    """The style loss of the module docstring between two images (``image`` against ``style``)."""
    device = next(encoder.parameters()).device
    return _style_loss(encoder(pil_to_tensor(image, device), STYLE_LAYERS),
                       encoder(pil_to_tensor(style, device), STYLE_LAYERS))


def nearest_style(style: Image.Image, candidates: dict[str, Image.Image], *, encoder: VGGEncoder,
                  side: int = 96) -> str:
    """The name of the candidate image whose style is closest to ``style`` (both compared at ``side`` px, long side).

    Raises:
        ValueError: no candidates.
    """
    if not candidates:
        raise ValueError("no candidate styles to compare with")
    small = style.copy()
    small.thumbnail((side, side), Image.Resampling.LANCZOS)
    scores = {}
    for name, img in candidates.items():
        thumb = img.convert("RGB")
        thumb.thumbnail((side, side), Image.Resampling.LANCZOS)
        scores[name] = style_distance(thumb, small, encoder=encoder)
    return min(scores, key=scores.__getitem__)
