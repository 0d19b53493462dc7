"""Pure, stateless tensor operations shared by the methods (shapes in each docstring)."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["gram_matrix", "gram_operand", "calc_mean_std", "adain", "masked_mean_std", "mean_std_loss",
           "normalized_weights", "total_variation", "seeded_generator"]

MAX_SEED = 2**64 - 1
"""The largest seed a torch generator takes."""


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU random generator seeded with ``seed`` (same seed, same numbers on the same machine).

    Args:
        seed: a whole number from 0 to :data:`MAX_SEED`.

    Raises:
        ValueError: ``seed`` is not a whole number in that range.
    """
    try:
        value = operator.index(seed)
    except TypeError:
        value = None
    if value is None or isinstance(seed, bool) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"seed must be a whole number from 0 to 2**64 - 1, got {seed!r}")
    return torch.Generator().manual_seed(value)


def gram_matrix(features: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
    """Gram matrix of feature maps, returned in float32.

    bf16 features (as a bf16 VGG pass gives them, :meth:`VGGEncoder.forward
    <styletransfer.vgg.VGGEncoder.forward>` with ``dtype=None``) are multiplied in bf16 with float32
    accumulation, the result rounded to bf16: at 512 px after 60 Gatys steps that rounding was
    0.15-0.6% of ``|G - A|`` at each style layer, and the products ran 3-5x faster than in float32
    on a CPU with AMX. Other features are multiplied in float32. Channels-last maps are used as
    they lie in memory (no copy), and their gradient comes back channels-last.

    Args:
        features: ``[B, C, H, W]``.
        normalize: divide by ``H*W`` (the number of positions) so images of different
            sizes give comparable matrices. Default True.

    Returns:
        ``[B, C, C]``: ``G[b, i, j] = sum_p F[b, i, p] F[b, j, p]`` (divided by ``H*W``).
    """
    assert features.ndim == 4, f"expected [B, C, H, W], got {tuple(features.shape)}"
    h, w = features.shape[-2:]
    with torch.autocast(features.device.type, enabled=False):
        g = _SymmetricGram.apply(gram_operand(features)).float()
    return g / (h * w) if normalize else g


def gram_operand(features: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` maps as the ``[B, C, H*W]`` operand of their Gram product: bf16 stays bf16,
    anything else becomes float32; a channels-last map is a view of its memory (no copy)."""
    b, c, h, w = features.shape
    f = features if features.dtype == torch.bfloat16 else features.float()
    if f.is_contiguous(memory_format=torch.channels_last) and not f.is_contiguous():
        # positions-major [B, M, C] seen as [B, C, M]; a flatten(2) view here got a batch stride
        # that sent bmm down a path 10x slower
        return f.permute(0, 2, 3, 1).reshape(b, h * w, c).transpose(1, 2)
    return f.reshape(b, c, h * w)


class _SymmetricGram(torch.autograd.Function):
    """``f f^T`` for ``f`` of shape ``[B, C, M]`` (any strides), with one product in the backward pass.

    Autograd's ``bmm`` backward forms a gradient for each operand (``dG f`` and ``f^T dG``, the
    second ``[B, M, C]``), transposes and adds them, memory-bound work when ``M`` is in the hundreds
    of thousands. Here the gradient is ``(dG + dG^T) f``, a single product, laid out as ``f`` is
    (positions-major for channels-last maps): the Gram terms of a 512x384 Gatys step took 0.155 s
    instead of 0.436 s, the whole step 1.22x less time and a StyleBank bank-learning step 1.11x
    (``benchmarks/bench_gram.py``, 2-core AVX2 CPU, float32).
    """

    @staticmethod
    def forward(ctx: Any, f: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(f)
        return torch.bmm(f, f.transpose(1, 2))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (f,) = ctx.saved_tensors
        sym = grad + grad.transpose(1, 2)
        if f.stride(1) == 1 and f.shape[1] > 1:  # positions-major: f^T sym = (sym f)^T, as sym is symmetric
            return torch.bmm(f.transpose(1, 2), sym).transpose(1, 2)
        return torch.bmm(sym, f)


def calc_mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and standard deviation over positions.

    Args:
        features: ``[B, C, H, W]``.
        eps: added to the variance before the square root, so flat channels give a
            finite, non-zero std (as in Huang & Belongie's reference code). Default 1e-5.

    Returns:
        ``(mean, std)``, each ``[B, C, 1, 1]``.
    """
    assert features.ndim == 4, f"expected [B, C, H, W], got {tuple(features.shape)}"
    # Reduced over both spatial dimensions in place: a flattening reshape would copy a channels-last map.
    mean = features.mean(dim=(2, 3), keepdim=True)
    std = (features.var(dim=(2, 3), unbiased=False, keepdim=True) + eps).sqrt()
    return mean, std


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2, 2)`` as the maximum of four strided views, for passes without gradients.

    Equal to it (floor mode: an odd last row or column is dropped), but it writes no argmax indices: on a
    64 x 512 x 512 bf16 channels-last map it took 2.6-3.5 ms against 10.9 ms on a 2-core AMX CPU.
    """
    x = x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]
    return torch.maximum(torch.maximum(x[..., ::2, ::2], x[..., ::2, 1::2]),
                         torch.maximum(x[..., 1::2, ::2], x[..., 1::2, 1::2]))


def adain(content: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance normalisation: ``sigma(y) (x - mu(x)) / sigma(x) + mu(y)``.

    Args:
        content: content features ``[B, C, H, W]``.
        style_mean: ``[B or 1, C, 1, 1]`` per-channel style means.
        style_std: ``[B or 1, C, 1, 1]`` per-channel style standard deviations.
        eps: as in :func:`calc_mean_std`.

    Returns:
        ``[B, C, H, W]``: the content features with the style's channel statistics.
    """
    mean, std = calc_mean_std(content, eps)
    return (content - mean) / std * style_std + style_mean


def masked_mean_std(
    features: torch.Tensor, mask: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std over the positions a (soft) mask covers.

    Args:
        features: ``[B, C, H, W]``.
        mask: ``[B or 1, 1, H, W]`` weights in [0, 1]; must cover a positive area.
        eps: as in :func:`calc_mean_std`.

    Returns:
        ``(mean, std)``, each ``[B, C, 1, 1]``.
    """
    assert features.ndim == 4 and mask.ndim == 4 and mask.shape[1] == 1, "expected [B, C, H, W] and [B, 1, H, W]"
    area = mask.sum(dim=(2, 3), keepdim=True)
    assert bool((area > 0).all()), "mask covers no position"
    mean = (features * mask).sum(dim=(2, 3), keepdim=True) / area
    var = ((features - mean) ** 2 * mask).sum(dim=(2, 3), keepdim=True) / area
    return mean, (var + eps).sqrt()


def mean_std_loss(features: torch.Tensor, target_mean: torch.Tensor, target_std: torch.Tensor) -> torch.Tensor:
    """AdaIN's style distance: MSE of the channel means plus MSE of the channel stds.

    Args:
        features: ``[B, C, H, W]``.
        target_mean: ``[B, C]`` or ``[B, C, 1, 1]``.
        target_std: same shape as ``target_mean``.
    """
    mean, std = calc_mean_std(features)
    return F.mse_loss(mean.flatten(1), target_mean.flatten(1)) + F.mse_loss(std.flatten(1), target_std.flatten(1))


def normalized_weights(weights: Sequence[float], what: str = "weights") -> list[float]:
    """Mixing weights checked (finite, >= 0, positive sum) and divided by their sum.

    Raises:
        ValueError: a negative or non-finite weight, or all zero; ``what`` names them in the message.
    """
    values = [float(w) for w in weights]
    if any(not math.isfinite(w) or w < 0 for w in values):
        raise ValueError(f"{what} must be finite and >= 0, got {values}")
    total = sum(values)
    if total <= 0:
        raise ValueError(f"at least one of the {what} must be > 0")
    return [w / total for w in values]


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean absolute difference of neighbouring pixels.

    Args:
        images: ``[B, C, H, W]``.

    Returns:
        A scalar tensor; 0 for a constant image.
    """
    assert images.ndim == 4, f"expected [B, C, H, W], got {tuple(images.shape)}"
    dh = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().mean()
    dw = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean()
    return dh + dw
