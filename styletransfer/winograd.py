"""Frozen 3x3 convolutions (+ ReLU) through NNPACK's Winograd kernels, with a backward pass to the input.

On a CPU without AVX-512, oneDNN runs a float32 3x3 convolution as a direct kernel at AVX2 width;
NNPACK's Winograd transform F(6x6, 3x3) needs about a fifth of the multiplications. Each VGG layer's
convolution and its input gradient (a convolution with the kernels flipped and their channels
swapped, again 3x3) ran 1.1-2.3x faster through it on the AVX2-only EPYC (``benchmarks/speed.md``),
with outputs within 1.1e-5 (relative) of oneDNN's. NNPACK takes NCHW maps, so a caller that routes
through it keeps them contiguous rather than channels-last.

Where it runs (:func:`nnpack_pays`): float32 images of at least 256 x 192 px (on smaller ones NNPACK's
per-call kernel transforms cost more than its Winograd saves: a Gatys step at 128 x 96 px took about
twice as long) on a CPU with AVX2 and without AVX-512 (:func:`~styletransfer.cpu.winograd_cpu`), where
the torch build has NNPACK. ``STYLETRANSFER_NNPACK=0`` turns it off; ``=1`` turns it on at every size,
on any CPU (to compare the two, and for the tests).
"""

from __future__ import annotations

import functools
import os

import torch
from torch import nn

from .cpu import winograd_cpu
from .reparam import frozen_stride1_conv

__all__ = ["MIN_PIXELS", "nnpack_conv_relu", "nnpack_pays"]

MIN_PIXELS = 256 * 192
"""The smallest image (in pixels) whose convolutions run through NNPACK: the smallest measured to gain."""


@functools.cache
def _nnpack_ready() -> bool:
    # is_available() also initialises NNPACK: its convolutions fail until it has run.
    return torch.backends.nnpack.is_available()


def nnpack_pays(x: torch.Tensor) -> bool:
    """Whether a frozen network's 3x3 convolutions of ``x`` (``[B, C, H, W]``, the input of its first layer) run
    through NNPACK (see the module docstring)."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or not winograd_cpu() or not _nnpack_ready():
        return False
    return os.environ.get("STYLETRANSFER_NNPACK") == "1" or x.shape[-2] * x.shape[-1] >= MIN_PIXELS


def nnpack_conv_relu(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``relu(conv(x))`` through NNPACK for a frozen stride-1 3x3 convolution with zero padding; the result is
    NCHW-contiguous and differentiable with respect to ``x``."""
    if conv.kernel_size != (3, 3) or not frozen_stride1_conv(conv):
        raise ValueError("nnpack_conv_relu takes a frozen stride-1 3x3 convolution with equal zero padding")
    if not _nnpack_ready():  # also what makes NNPACK's first call work
        raise RuntimeError("this torch build has no usable NNPACK")
    return _NNPackConvReLU.apply(x, conv.weight, conv.bias, conv.padding[0])


def _flipped(weight: torch.Tensor) -> torch.Tensor:
    """The kernels of the input gradient's convolution: flipped in space, input and output channels swapped (made
    on each call: keeping them did not make a Gatys step measurably faster, 0.98-1.06x)."""
    return weight.transpose(0, 1).flip(2, 3).contiguous()


class _NNPackConvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                padding: int) -> torch.Tensor:
        y = torch._nnpack_spatial_convolution(x.contiguous(), weight.contiguous(), bias, [padding] * 2).relu_()
        ctx.save_for_backward(weight, y)
        ctx.padding = padding
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:  # type: ignore[override]
        weight, y = ctx.saved_tensors
        grad = torch.ops.aten.threshold_backward(grad.contiguous(), y, 0)
        k = weight.shape[-1]
        grad_x = torch._nnpack_spatial_convolution(grad, _flipped(weight), None, [k - 1 - ctx.padding] * 2)
        return grad_x, None, None, None
