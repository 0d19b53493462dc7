"""The "normalised" VGG of Gatys et al. (2015): rescale each filter to mean activation 1.

Each convolution's filters (and biases) are divided by their mean post-ReLU activation
over a set of images and positions, and the next convolution's input weights are
multiplied by the same factors. Because ReLU and max/avg pooling are positively
homogeneous, every ``relu`` output is the original one divided per channel by its scale,
so the network computes the same function up to a per-layer, per-channel factor, while
feature statistics of all layers become comparable in size (which the AdaIN encoder needs).

The per-filter factors are a few KB: the zoo ships them and applies them to the VGG-16
weights at load time, which keeps the result exactly reproducible.

Reference: Gatys, Ecker, Bethge, "A Neural Algorithm of Artistic Style", 2015, sec. 2.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .vgg import LAYER_NAMES, VGGEncoder

__all__ = ["RELU_LAYERS", "mean_filter_activations", "apply_filter_scales"]

RELU_LAYERS: tuple[str, ...] = tuple(name for name in LAYER_NAMES if name.startswith("relu"))


@torch.no_grad()
def mean_filter_activations(encoder: VGGEncoder, images: Iterable[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean post-ReLU activation of every filter over ``images`` and all positions.

    Args:
        encoder: the (un-normalised) encoder; run in float32 whatever its precision setting.
        images: batches ``[B, 3, H, W]`` in [0, 1]; sizes may differ between batches.

    Returns:
        ``{relu_name: tensor[C]}`` in float64, weighted by the number of positions.

    Raises:
        ValueError: ``images`` is empty.
    """
    sums = {name: torch.zeros(encoder.channels(name), dtype=torch.float64) for name in RELU_LAYERS}
    counts = dict.fromkeys(RELU_LAYERS, 0)
    precision, encoder.precision = encoder.precision, "fp32"
    try:
        for batch in images:
            feats = encoder(batch, RELU_LAYERS)
            for name, f in feats.items():
                sums[name] += f.double().sum(dim=(0, 2, 3)).cpu()
                counts[name] += f.shape[0] * f.shape[2] * f.shape[3]
    finally:
        encoder.precision = precision
    if counts[RELU_LAYERS[0]] == 0:
        raise ValueError("mean_filter_activations needs at least one image")
    return {name: sums[name] / counts[name] for name in RELU_LAYERS}


@torch.no_grad()
def apply_filter_scales(encoder: VGGEncoder, scales: dict[str, torch.Tensor]) -> VGGEncoder:
    """Rescale ``encoder`` in place so ``relu`` layer outputs are divided by ``scales``.

    Args:
        encoder: the encoder to modify.
        scales: ``{relu_name: tensor[C]}``, typically from :func:`mean_filter_activations`.
            Layers not listed keep scale 1; zero or negative entries (dead filters) are
            treated as 1.

    Returns:
        ``encoder``, for chaining.

    Raises:
        ValueError: a scale vector has the wrong length or names an unknown layer.
    """
    unknown = sorted(set(scales) - set(RELU_LAYERS))
    if unknown:
        raise ValueError(f"scales name unknown layers {unknown}")
    previous: torch.Tensor | None = None
    for name in RELU_LAYERS:
        conv = encoder.conv(name)
        s = scales.get(name)
        s = torch.ones(conv.out_channels, dtype=torch.float64) if s is None else s.double().clone()
        if s.shape != (conv.out_channels,):
            raise ValueError(f"{name}: expected {conv.out_channels} scales, got shape {tuple(s.shape)}")
        s[s <= 0] = 1.0
        w = conv.weight.double()
        if previous is not None:
            w = w * previous.view(1, -1, 1, 1)  # undo the previous layer's division on its input
        conv.weight.copy_(w / s.view(-1, 1, 1, 1))
        if conv.bias is not None:
            conv.bias.copy_(conv.bias.double() / s)
        previous = s
    return encoder
