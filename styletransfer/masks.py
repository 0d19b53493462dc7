"""Region masks shared by the methods: user masks read and checked, K-means regions, a colour map.

Masks are float ``[N, 1, h, w]`` tensors in [0, 1] at the resolution they are applied at
(encoder features). A user mask is an image (white or opaque = covered; a painted RGBA
layer counts by its alpha) or a ``[H, W]`` tensor at the content's input size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
import torch.nn.functional as F
from PIL import Image

from .imageio import ImageInputError, ImageSource, fit_within, load_image, pil_to_tensor, tensor_to_pil
from .ops import seeded_generator
from .vgg import VGGEncoder

__all__ = ["MaskSource", "prepare_masks", "kmeans_masks", "auto_regions", "region_map_image"]

MaskSource = Union[ImageSource, torch.Tensor]


def _mask_tensor(mask: MaskSource, name: str, size: tuple[int, int], image: str) -> torch.Tensor:
    """A mask as float ``[1, 1, H, W]`` in [0, 1], checked against the ``size`` (w, h) of ``image``."""
    if isinstance(mask, torch.Tensor):
        m = mask.detach().float().cpu()
        while m.ndim > 2 and m.shape[0] == 1:
            m = m[0]
        if m.ndim != 2:
            raise ImageInputError(f"{name}: expected a 2-D [H, W] tensor, got shape {tuple(mask.shape)}")
        if m.numel() and (m.min() < 0 or m.max() > 1):
            raise ImageInputError(f"{name}: values must lie in [0, 1]")
    else:
        img = mask if isinstance(mask, Image.Image) else load_image(mask, name=name, min_side=1)
        if img.mode == "RGBA":  # painted strokes on a transparent layer: coverage is alpha
            img = img.getchannel("A")
        m = pil_to_tensor(img.convert("RGB"))[0].mean(0)
    h, w = m.shape
    if (w, h) != size:
        raise ImageInputError(f"{name} is {w}x{h} px but the {image} is {size[0]}x{size[1]} px; "
                              f"masks must have the {image}'s size")
    return m[None, None]


def prepare_masks(masks: Sequence[MaskSource], content_size: tuple[int, int], feature_hw: tuple[int, int], *,
                  names: Sequence[str] | None = None, image: str = "content") -> torch.Tensor:
    """Masks at feature resolution, ``[N, 1, h, w]`` in [0, 1] (area-averaged, so soft at edges).

    ``content_size`` (w, h) is the size of the ``image`` they cover; errors call the masks ``names``
    (default ``"mask 1"``, ``"mask 2"``, ...).

    Raises:
        ImageInputError: a mask of the wrong size or out of range, or one that covers nothing.
    """
    out = []
    for i, mask in enumerate(masks):
        name = names[i] if names else f"mask {i + 1}"
        m = F.interpolate(_mask_tensor(mask, name, content_size, image), size=feature_hw, mode="area")
        if float(m.sum()) < 0.5:
            raise ImageInputError(f"{name} covers (almost) no area of the {image}; paint a larger region")
        out.append(m)
    return torch.cat(out)


def kmeans_masks(features: torch.Tensor, k: int, *, seed: int = 0, iters: int = 25) -> torch.Tensor:
    """Partition the feature grid by K-means on L2-normalised feature vectors.

    Args:
        features: ``[1, C, h, w]``.
        k: number of regions (1 .. h*w).
        seed: seeds the k-means++ initialisation; same seed, same masks.

    Returns:
        ``[k, 1, h, w]`` one-hot masks that partition the grid, ordered by region size (largest first),
        on the features' device (the clustering runs on the CPU, so every device gives the same masks).
    """
    if k < 1:
        raise ValueError(f"the number of regions must be >= 1, got {k}")
    _, c, h, w = features.shape
    x = F.normalize(features[0].reshape(c, -1).T.float().cpu(), dim=1)  # [h*w, C]
    if k > x.shape[0]:
        raise ValueError(f"{k} regions is more than the {x.shape[0]} feature positions")
    gen = seeded_generator(seed)
    centres = x[torch.randint(x.shape[0], (1,), generator=gen)]
    for _ in range(1, k):  # k-means++
        d = torch.cdist(x, centres).min(dim=1).values ** 2
        probs = d / d.sum() if d.sum() > 0 else torch.full_like(d, 1 / d.numel())
        centres = torch.cat([centres, x[torch.multinomial(probs, 1, generator=gen)]])
    labels = torch.zeros(x.shape[0], dtype=torch.long)
    for _ in range(iters):
        labels = torch.cdist(x, centres).argmin(dim=1)
        new = torch.stack([x[labels == j].mean(0) if (labels == j).any() else centres[j] for j in range(k)])
        if torch.allclose(new, centres):
            break
        centres = new
    order = torch.bincount(labels, minlength=k).argsort(descending=True, stable=True)
    masks = torch.stack([(labels == j).float() for j in order.tolist()])
    return masks.view(k, 1, h, w).to(features.device)


@torch.no_grad()
def auto_regions(content: ImageSource, k: int, *, encoder: VGGEncoder, layer: str = "relu4_1", size: int | None = 512,
                 seed: int = 0) -> torch.Tensor:
    """``k`` region masks for spatial control from K-means on the content's L2-normalised ``layer`` features
    (computed with the content's long side at most ``size``; None: as it is).

    Returns:
        ``[k, H, W]`` one-hot masks at the content's input size (largest region first), ready
        for the ``masks`` of AdaIN's and Gatys' ``stylize``.
    """
    raw = load_image(content, name="content")
    img = fit_within(raw, size, name="content")[0] if size else raw
    x = pil_to_tensor(img, next(encoder.parameters()).device)
    masks = kmeans_masks(encoder(x, [layer])[layer].cpu(), k, seed=seed)
    return F.interpolate(masks, size=(raw.height, raw.width), mode="nearest")[:, 0]


_REGION_COLORS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                  (70, 240, 240), (240, 50, 230))


def region_map_image(masks: torch.Tensor) -> Image.Image:
    """A colour picture of one-hot or soft masks ``[n, 1, H, W]`` (region i in colour i)."""
    colors = torch.tensor([_REGION_COLORS[i % len(_REGION_COLORS)] for i in range(masks.shape[0])], dtype=torch.float32)
    rgb = torch.einsum("nhw,nc->chw", masks[:, 0].float().cpu(), colors) / 255
    return tensor_to_pil(rgb.clamp(0, 1))
