"""LPIPS, the learned perceptual image distance of Zhang et al. (VGG-16 variant, v0.1).

For two images, VGG-16 features at ``relu1_2``, ``relu2_2``, ``relu3_3``, ``relu4_3`` and
``relu5_3`` are unit-normalised over channels at every position; the squared differences are
weighted per channel by a learned non-negative linear head (a 1x1 convolution), averaged over
the positions and summed over the five layers. LPIPS's input scaling (``[-1, 1]``, then shift
and scale) is the ImageNet normalisation that :class:`~styletransfer.vgg.VGGEncoder` applies
itself, so the plain ImageNet VGG-16 (the zoo's ``vgg16.tv_in1k``, not the filter-scaled one)
serves as LPIPS's trunk. The heads ship as the zoo entry ``lpips.vgg16``.

Reference: Zhang, Isola, Efros, Shechtman & Wang, "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric", CVPR 2018.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .serialization import SafetensorsMixin
from .vgg import VGGEncoder

__all__ = ["LPIPS_LAYERS", "LPIPSConfig", "LPIPSHeads", "lpips"]

LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_EPS = 1e-10  # LPIPS's own, in the channel normalisation


@dataclass(frozen=True)
class LPIPSConfig:
    """Channels of the five heads: VGG-16's block widths (tests use tiny ones)."""

    channels: tuple[int, ...] = (64, 128, 256, 512, 512)

    def __post_init__(self) -> None:
        if len(self.channels) != len(LPIPS_LAYERS) or any(int(c) < 1 for c in self.channels):
            raise ValueError(f"channels must be {len(LPIPS_LAYERS)} positive ints, got {self.channels!r}")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))


class LPIPSHeads(nn.Module, SafetensorsMixin):
    """The five linear heads of LPIPS, one 1x1 convolution (no bias) per layer of :data:`LPIPS_LAYERS`."""

    config_class = LPIPSConfig

    def __init__(self, config: LPIPSConfig | None = None) -> None:
        super().__init__()
        self.config = config or LPIPSConfig()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.config.channels)
        self.requires_grad_(False)


def _unit(features: torch.Tensor) -> torch.Tensor:
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)


def lpips(x: torch.Tensor, y: torch.Tensor, *, vgg: VGGEncoder, heads: LPIPSHeads) -> torch.Tensor:
    """LPIPS between ``x`` and ``y`` (RGB in [0, 1], ``[B, 3, H, W]``, the same size): one value per image.

    Differentiable in both images. ``vgg`` must be the plain ImageNet VGG-16 with max pooling.

    Raises:
        ValueError: images of different shapes, or heads whose channels are not ``vgg``'s widths.
    """
    if x.shape != y.shape:
        raise ValueError(f"LPIPS compares images of one size, got {tuple(x.shape)} and {tuple(y.shape)}")
    if heads.config.channels != vgg.config.widths:
        raise ValueError(f"LPIPS heads for channels {heads.config.channels} do not fit a VGG of widths "
                         f"{vgg.config.widths}")
    features = vgg(torch.cat([x, y]), LPIPS_LAYERS, pooling="max")
    total = x.new_zeros(x.shape[0])
    for layer, lin in zip(LPIPS_LAYERS, heads.lins):
        fx, fy = _unit(features[layer]).chunk(2)
        total = total + lin((fx - fy).pow(2)).mean(dim=(1, 2, 3))
    return total
