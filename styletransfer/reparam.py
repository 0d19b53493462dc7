"""Exact re-parameterisations of decoder layers that run faster at inference.

- **Sub-pixel convolution.** Nearest 2x upsampling, reflection padding 1 and a 3x3
  convolution (the AdaIN and StyleBank decoders' upsampling step) equal a replicate padding of
  the small map, one 2x2 convolution with four times the outputs (one group per output phase)
  and an interleave: 16 instead of 36 multiply-adds per small-map pixel, and no 4x-size
  upsampled and padded copies. A following ReLU is applied while interleaving.
- **Space-to-depth convolution.** A large-kernel convolution with few output channels (the
  StyleBank decoder's 9x9 RGB output layer) computed on the 4x space-to-depth grid: oneDNN blocks
  output channels by 16, so a 3-output convolution wastes most of its work; on the 16x-channel
  grid it has 48 outputs and a 3x3 kernel (1.7-1.8x faster in bf16 on this CPU, 1.3x with a 2x
  grid; for a 3x3 RGB layer it was slower, so only kernels of 5 and more are rewritten). A
  reflection padding just before it is done in the same pass that builds the grid.
- **In-place ReLU** after a convolution (whose output is a fresh tensor): no extra full-size copy.

:func:`reparameterize` rewrites a module in place; the results are for inference only (no
gradients through the interleave, ReLUs that overwrite their input) and agree with the original
to float rounding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SubPixelConv", "SpaceToDepthConv", "reparameterize"]

_TAPS = {0: ((0, (0,)), (1, (1, 2))), 1: ((0, (0, 1)), (1, (2,)))}
"""For output phase ``a``, which taps of the 3x3 kernel fall on each of the two small-map rows it
reads (row offset within the 2x2 window, kernel rows summed into it)."""


class SubPixelConv(nn.Module):
    """``[ReLU] . conv3x3 . reflection_pad(1) . upsample_nearest(2)`` as one 2x2 convolution on the small map."""

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        w = conv.weight.detach().float()
        cout, cin = w.shape[:2]
        phases = torch.zeros(2, 2, cout, cin, 2, 2, dtype=w.dtype, device=w.device)
        for a in range(2):
            for b in range(2):
                for m, rows in _TAPS[a]:
                    for n, cols in _TAPS[b]:
                        phases[a, b, :, :, m, n] = w[:, :, list(rows)][:, :, :, list(cols)].sum((2, 3))
        bias = conv.bias.detach().float() if conv.bias is not None else torch.zeros(cout, device=w.device)
        self.weight = nn.Parameter(phases.reshape(4 * cout, cin, 2, 2), requires_grad=False)
        self.bias = nn.Parameter(bias.repeat(4), requires_grad=False)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        c = self.weight.shape[0] // 4
        y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.weight, self.bias)  # [n, 4c, h+1, w+1]
        y = y.permute(0, 2, 3, 1).reshape(n, h + 1, w + 1, 2, 2, c)
        out = torch.empty(n, h, 2, w, 2, c, dtype=y.dtype, device=y.device)
        for a in range(2):
            for b in range(2):
                phase = y[:, a:a + h, b:b + w, a, b, :]
                if self.relu:
                    torch.clamp_min(phase, 0, out=out[:, :, a, :, b, :])
                else:
                    out[:, :, a, :, b, :] = phase
        return out.view(n, 2 * h, 2 * w, c).permute(0, 3, 1, 2)  # channels-last NCHW


class SpaceToDepthConv(nn.Module):
    """A stride-1 ``k x k`` convolution, after an optional reflection padding, evaluated on the
    ``factor``-x space-to-depth grid.

    The padding and the space-to-depth rearrangement are one pass into a channels-last buffer
    whose grid channels are ordered (row phase, column phase, channel), so each copy moves whole
    pixels; ``F.pixel_unshuffle`` on a channels-last map was 5-6x slower here.
    """

    def __init__(self, conv: nn.Conv2d, factor: int = 4, reflect_pad: int = 0) -> None:
        super().__init__()
        w = conv.weight.detach().float()
        cout, cin, k, _ = w.shape
        f = factor
        big = math.ceil((k + f - 1) / f)
        weight = torch.zeros(cout, f, f, f, f, cin, big, big, dtype=w.dtype, device=w.device)
        for a in range(f):
            for b in range(f):
                for dy in range(k):
                    m, r = divmod(a + dy, f)
                    for dx in range(k):
                        n, s = divmod(b + dx, f)
                        weight[:, a, b, r, s, :, m, n] = w[:, :, dy, dx]
        bias = conv.bias.detach().float() if conv.bias is not None else torch.zeros(cout, device=w.device)
        self.weight = nn.Parameter(weight.reshape(cout * f * f, f * f * cin, big, big), requires_grad=False)
        self.bias = nn.Parameter(bias.repeat_interleave(f * f), requires_grad=False)
        self.factor, self.kernel_size, self.reflect_pad = f, k, reflect_pad

    def _space_to_depth(self, x: torch.Tensor) -> torch.Tensor:
        """Reflection-pad ``x``, zero-fill to whole ``f x f`` cells and fold the cells into channels."""
        f, k, p, big = self.factor, self.kernel_size, self.reflect_pad, self.weight.shape[-1]
        n, c, h, w = x.shape
        if p and (p >= h or p >= w):
            raise ValueError(f"a {h}x{w} map is too small for reflection padding {p}")

        def cells(size: int) -> int:  # enough rows for every output; the zeros only reach cropped outputs
            return max(-(-size // f), -(-(size - k + 1) // f) + big - 1)

        hp, wp = f * cells(h + 2 * p), f * cells(w + 2 * p)
        buf = x.new_empty(n, hp, wp, c)
        buf[:, p:p + h, p:p + w] = x.permute(0, 2, 3, 1)
        if p:
            buf[:, p:p + h, :p] = buf[:, p:p + h, p + 1:2 * p + 1].flip(2)
            buf[:, p:p + h, p + w:w + 2 * p] = buf[:, p:p + h, w - 1:w + p - 1].flip(2)
            buf[:, :p, : w + 2 * p] = buf[:, p + 1:2 * p + 1, : w + 2 * p].flip(1)
            buf[:, p + h:h + 2 * p, : w + 2 * p] = buf[:, h - 1:h + p - 1, : w + 2 * p].flip(1)
        buf[:, h + 2 * p:].zero_()
        buf[:, : h + 2 * p, w + 2 * p:].zero_()
        grid = buf.view(n, hp // f, f, wp // f, f, c).permute(0, 1, 3, 2, 4, 5)
        return grid.reshape(n, hp // f, wp // f, f * f * c).permute(0, 3, 1, 2)  # channels-last NCHW

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = [s + 2 * self.reflect_pad - self.kernel_size + 1 for s in x.shape[-2:]]
        y = F.pixel_shuffle(F.conv2d(self._space_to_depth(x), self.weight, self.bias), self.factor)
        return y[..., : size[0], : size[1]]


def _is_resize_conv(layers: list[nn.Module], i: int) -> bool:
    up, pad, conv = (layers[i:i + 3] + [None, None, None])[:3]
    return (
        isinstance(up, nn.Upsample) and up.mode == "nearest" and up.scale_factor in (2, 2.0, (2.0, 2.0))
        and isinstance(pad, nn.ReflectionPad2d) and tuple(pad.padding) == (1, 1, 1, 1)
        and isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
        and conv.padding == (0, 0) and conv.dilation == (1, 1) and conv.groups == 1
    )


def _is_narrow_conv(m: nn.Module) -> bool:
    return (
        isinstance(m, nn.Conv2d) and m.out_channels <= 4 and m.kernel_size[0] == m.kernel_size[1] >= 5
        and m.stride == (1, 1) and m.padding == (0, 0) and m.dilation == (1, 1) and m.groups == 1
    )


def _reflect_pad(m: nn.Module) -> int:
    """The width of a uniform reflection padding, else 0."""
    if isinstance(m, nn.ReflectionPad2d) and len(set(m.padding)) == 1:
        return int(m.padding[0])
    return 0


def reparameterize(module: nn.Module) -> nn.Module:
    """Rewrite every ``nn.Sequential`` inside ``module`` (and ``module`` itself) in place with the
    faster equivalents above; returns ``module``. Layers that match no pattern are kept."""
    for child in list(module.children()):
        reparameterize(child)
    if not isinstance(module, nn.Sequential):
        return module
    layers, out, i = [m for m in module if not isinstance(m, nn.Identity)], [], 0
    while i < len(layers):
        if _is_resize_conv(layers, i):
            relu = i + 3 < len(layers) and isinstance(layers[i + 3], nn.ReLU)
            out.append(SubPixelConv(layers[i + 2], relu))
            i += 4 if relu else 3
        elif _is_narrow_conv(layers[i]):
            out.append(SpaceToDepthConv(layers[i]))
            i += 1
        elif (pad := _reflect_pad(layers[i])) and i + 1 < len(layers) and _is_narrow_conv(layers[i + 1]):
            out.append(SpaceToDepthConv(layers[i + 1], reflect_pad=pad))
            i += 2
        elif isinstance(layers[i], nn.ReLU) and out and isinstance(out[-1], nn.Conv2d):
            out.append(nn.ReLU(inplace=True))  # the convolution's output is a fresh tensor
            i += 1
        else:
            out.append(layers[i])
            i += 1
    for key in list(module._modules):
        del module._modules[key]
    for j, layer in enumerate(out):
        module.add_module(str(j), layer)
    return module
