"""Exact re-parameterisations of encoder and decoder layers that run faster at inference.

- **Sub-pixel convolution.** Nearest 2x upsampling, reflection padding 1 and a 3x3
  convolution (the AdaIN and StyleBank decoders' upsampling step) equal a replicate padding of
  the small map, one 2x2 convolution with four times the outputs (one group per output phase)
  and an interleave: 16 instead of 36 multiply-adds per small-map pixel, and no 4x-size
  upsampled and padded copies. A following ReLU is fused into the convolution (oneDNN on the CPU).
- **Space-to-depth convolution.** A large-kernel convolution with few output channels (the
  StyleBank decoder's 9x9 RGB output layer) computed on the 4x space-to-depth grid: oneDNN blocks
  output channels by 16, so a 3-output convolution wastes most of its work; on the 16x-channel
  grid it has 48 outputs and a 3x3 kernel (1.7-1.8x faster in bf16 on this CPU, 1.3x with a 2x
  grid; for a 3x3 RGB layer it was slower, so only kernels of 5 and more are rewritten). A
  reflection padding just before it is done in the same pass that builds the grid.
- **Sub-pixel grid convolution.** When a sub-pixel convolution with ReLU feeds a reflection padding
  and such a narrow convolution (the StyleBank decoder's last two layers), the narrow one runs on
  the sub-pixel phase outputs themselves, which already form a 2x space-to-depth grid: no
  interleaved map, padding copy or space-to-depth copy is made.
- **Reflection padding + convolution (+ ReLU)** as one module with the ReLU fused into oneDNN's
  convolution; at stride 2 on even sizes the padded copy is skipped (only the first output row and
  column read the reflected border, and they are recomputed from small strips).
- **Column-unfolded convolution** for a large kernel on few input channels after a reflection padding
  (the StyleBank encoder's 9x9 RGB layer): the ``k`` columns of each window become channels, so
  oneDNN runs a ``k x 1`` convolution on 27 channels instead of padding 3 channels to 4.
- The last two are made for oneDNN and applied to CPU copies only: a CUDA run of an inference copy
  with the padding rewrite diverged at that layer (H100, 2026-11-22; cause not found).
- **In-place ReLU** after a convolution (whose output is a fresh tensor): no extra full-size copy.
- **Convolution + ReLU with gradients** (:func:`conv_relu`, used by the frozen VGG on the CPU): the
  ReLU fused into oneDNN's convolution, and a backward pass to the input only.

:func:`reparameterize` rewrites a module in place; the results are for inference only (no
gradients through the interleave, ReLUs that overwrite their input) and agree with the original
to float rounding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .cpu import cpu_flags

__all__ = ["ColumnUnfoldConv", "ReflectPadConv", "SubPixelConv", "SubPixelGridConv", "SpaceToDepthConv",
           "conv_relu", "frozen_stride1_conv", "reparameterize"]

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
        return _subpixel_map(_conv_relu(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.weight, self.bias,
                                        relu=self.relu))


def _subpixel_map(y: torch.Tensor) -> torch.Tensor:
    """A sub-pixel convolution's output ``[n, 4c, h + 1, w + 1]`` (the four phases of each output channel) as
    the map it stands for, ``[n, c, 2h, 2w]`` (channels-last)."""
    n, _, h1, w1 = y.shape
    return _interleave(y.permute(0, 2, 3, 1).reshape(n, h1, w1, 2, 2, -1)).permute(0, 3, 1, 2)


def _interleave(phases: torch.Tensor) -> torch.Tensor:
    """Sub-pixel phase outputs ``[n, h + 1, w + 1, 2, 2, c]``, holding pixel ``(2i + a, 2j + b)`` at
    ``[:, i + a, j + b, a, b]``, as one map ``[n, 2h, 2w, c]``."""
    n, h, w, c = phases.shape[0], phases.shape[1] - 1, phases.shape[2] - 1, phases.shape[-1]
    out = torch.empty(n, h, 2, w, 2, c, dtype=phases.dtype, device=phases.device)
    for a in range(2):
        for b in range(2):
            out[:, :, a, :, b, :] = phases[:, a:a + h, b:b + w, a, b, :]
    return out.view(n, 2 * h, 2 * w, c)  # permute(0, 3, 1, 2) gives channels-last NCHW


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


class SubPixelGridConv(nn.Module):
    """A :class:`SubPixelConv` with ReLU, then reflection padding ``p`` and a narrow ``(2p + 1)``-square
    convolution (the StyleBank decoder's last two layers), evaluated on the sub-pixel phase grid.

    The sub-pixel convolution's output holds pixel ``2I - a`` of the upsampled map at grid row ``I``,
    phase ``a``: a 2x space-to-depth grid, for free. The narrow convolution runs on that grid (a
    ``(p + 1)``-tap kernel, or ``p + 2`` for odd ``p``; outputs ordered the same way, padded to 16
    channels for oneDNN's blocking), so no interleaved map, padding copy or space-to-depth copy is
    made. The reflection padding is written into the grid's border cells, which exist because the
    small map is replicate-padded a little more than the sub-pixel convolution alone needs.
    """

    def __init__(self, up: SubPixelConv, conv: nn.Conv2d, reflect_pad: int) -> None:
        super().__init__()
        w = conv.weight.detach().float()
        cout, cin, k, _ = w.shape
        p = reflect_pad
        if not up.relu or k != 2 * p + 1 or up.weight.shape[0] != 4 * cin:
            raise ValueError("expected a sub-pixel convolution with ReLU feeding a (2p+1)-square convolution")
        first, last = -((p + 1) // 2), -(-p // 2)  # the grid rows a kernel row reaches, relative
        taps = last - first + 1
        grid = torch.zeros(2, 2, cout, 2, 2, cin, taps, taps, dtype=w.dtype, device=w.device)
        for r in range(2):  # output pixel 2I - r reads input pixel 2I - r + dy - p = 2(I + t) - a
            for dy in range(k):
                t = -(-(dy - r - p) // 2)
                a = 2 * t - (dy - r - p)
                for s in range(2):
                    for dx in range(k):
                        u = -(-(dx - s - p) // 2)
                        b = 2 * u - (dx - s - p)
                        grid[r, s, :, a, b, :, t - first, u - first] = w[:, :, dy, dx]
        rows = -(-4 * cout // 16) * 16
        weight = torch.zeros(rows, 4 * cin, taps, taps, dtype=w.dtype, device=w.device)
        weight[: 4 * cout] = grid.reshape(4 * cout, 4 * cin, taps, taps)
        bias = torch.zeros(rows, dtype=w.dtype, device=w.device)
        if conv.bias is not None:
            bias[: 4 * cout] = conv.bias.detach().float().repeat(4)
        self.up = up
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = nn.Parameter(bias, requires_grad=False)
        self.pad, self.cout = p, cout
        self.border = last + 1  # = 1 - first: grid rows first .. h + last exist

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        e, p, c = self.border, self.pad, self.up.weight.shape[0] // 4
        if p >= 2 * h or p >= 2 * w:
            raise ValueError(f"a {2 * h}x{2 * w} map is too small for reflection padding {p}")
        y = _conv_relu(F.pad(x, (e,) * 4, mode="replicate"), self.up.weight, self.up.bias)
        grid = y.permute(0, 2, 3, 1).reshape(n, y.shape[2], y.shape[3], 2, 2, c)
        _reflect_into_border(grid, 1, 3, 2 * h, p, e - 1)
        _reflect_into_border(grid, 2, 4, 2 * w, p, e - 1)
        out = F.conv2d(grid.flatten(3).permute(0, 3, 1, 2), self.weight, self.bias)  # [n, rows, h + 1, w + 1]
        phases = out.permute(0, 2, 3, 1)[..., : 4 * self.cout].unflatten(-1, (2, 2, self.cout))
        return _interleave(phases).permute(0, 3, 1, 2)


def _reflect_into_border(grid: torch.Tensor, cell_dim: int, phase_dim: int, size: int, pad: int, offset: int) -> None:
    """Write the reflection padding of a map of ``size`` pixels along one axis into ``grid``, which holds
    pixel ``2I - a`` at index ``I + offset`` of ``cell_dim`` and ``a`` of ``phase_dim``."""
    for q in [*range(-pad, 0), *range(size, size + pad)]:
        src = -q if q < 0 else 2 * (size - 1) - q
        cell, cell_src = -(-q // 2), -(-src // 2)
        grid.select(phase_dim, 2 * cell - q).select(cell_dim, cell + offset).copy_(
            grid.select(phase_dim, 2 * cell_src - src).select(cell_dim, cell_src + offset))


_ONEDNN_FUSED_CONV = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
"""Whether this torch build has oneDNN's convolution with a fused activation (x86 builds do)."""


def _fused_bf16() -> bool:
    flags = cpu_flags()
    return "avx_ne_convert" in flags or {"avx512bw", "avx512vl", "avx512dq"} <= flags


def _conv_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int = 1,
               padding: int = 0, relu: bool = True) -> torch.Tensor:
    """``conv2d(x)`` with zero ``padding``, then a ReLU if asked, fused into the convolution by oneDNN on the CPU
    (in bf16 only where oneDNN's fused bf16 path runs: AVX512-BW/VL/DQ or AVX-NE-CONVERT)."""
    if x.device.type == "cpu" and _ONEDNN_FUSED_CONV and (x.dtype != torch.bfloat16 or _fused_bf16()):
        return torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, [padding] * 2, [stride] * 2, [1, 1], 1, "relu" if relu else "none", [], "")
    y = F.conv2d(x, weight, bias, stride, padding)
    return F.relu_(y) if relu else y


class _ConvReLU(torch.autograd.Function):
    """:func:`_conv_relu` with a backward pass to the input only (the weights are frozen)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                padding: int) -> torch.Tensor:
        y = _conv_relu(x, weight, bias, padding=padding)
        ctx.save_for_backward(x, weight, y)
        ctx.padding = padding
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:  # type: ignore[override]
        x, weight, y = ctx.saved_tensors
        grad = torch.ops.aten.threshold_backward(grad, y, 0)
        grad_x = torch.ops.aten.convolution_backward(grad, x, weight, None, [1, 1], [ctx.padding] * 2, [1, 1], False,
                                                     [0, 0], 1, [True, False, False])[0]
        return grad_x, None, None, None


def conv_relu(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``relu(conv(x))`` for a frozen stride-1 convolution with zero padding, the ReLU fused into oneDNN's
    convolution on the CPU, and differentiable with respect to ``x`` (gradients flow to the input, as
    through the frozen VGG to a Gatys image): the separate ReLU pass over every map is gone (a Gatys step
    at 512 px 9% faster in bf16 on an AMX CPU), with the same features and gradient (to the bit with the real
    VGG-16 there; oneDNN may round otherwise on other shapes)."""
    if not frozen_stride1_conv(conv):
        raise ValueError("conv_relu takes a frozen stride-1 convolution with equal zero padding")
    return _ConvReLU.apply(x, conv.weight, conv.bias, conv.padding[0])


def frozen_stride1_conv(conv: nn.Conv2d) -> bool:
    """Whether ``conv`` is a frozen, ungrouped, undilated stride-1 convolution with equal zero padding on both axes
    (what :func:`conv_relu` and :func:`~styletransfer.winograd.nnpack_conv_relu` compute)."""
    return not (conv.weight.requires_grad or conv.stride != (1, 1) or isinstance(conv.padding, str)
                or conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros"
                or conv.padding[0] != conv.padding[1])


class ColumnUnfoldConv(nn.Module):
    """Reflection padding, a stride-1 ``k x k`` convolution on a map with few channels (the StyleBank
    encoder's 9x9 RGB input layer) and an optional fused ReLU, with the ``k`` columns of each window
    unfolded into channels: a ``k x 1`` convolution on ``k * c`` channels.

    oneDNN pads 3 input channels to 4, so the RGB layer does a third more work than it needs; 27
    unfolded channels it takes as they are (1.1x faster here with the unfolding). The unfolded map
    is one copy from a strided view of the padded map: channel ``dx * c + i`` of pixel ``x`` is
    channel ``i`` of pixel ``x + dx``, the next element in channels-last memory.
    """

    def __init__(self, pad: int, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        w = conv.weight.detach()
        cout, cin, k, _ = w.shape
        self.weight = nn.Parameter(w.permute(0, 3, 1, 2).reshape(cout, k * cin, k, 1).clone(), requires_grad=False)
        self.bias = conv.bias
        self.pad, self.relu = pad, relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pad
        padded = (F.pad(x, (p,) * 4, mode="reflect") if p else x).contiguous(memory_format=torch.channels_last)
        n, c, h, w = padded.shape
        k = self.weight.shape[2]
        cols = padded.as_strided((n, h, w - k + 1, k * c), (h * w * c, w * c, c, 1), padded.storage_offset())
        return _conv_relu(cols.contiguous().permute(0, 3, 1, 2), self.weight, self.bias, relu=self.relu)


class ReflectPadConv(nn.Module):
    """Reflection padding, a convolution and an optional ReLU (the StyleBank encoder's and the AdaIN
    decoder's layers), with the ReLU fused into the convolution.

    A stride-2 3x3 convolution after padding 1 on a map of even size never reads the bottom row or
    the right column of the padding, so it runs on the unpadded map with zero padding, and only its
    first output row and column, the ones that read the reflected top row and left column, are
    computed again from small reflection-padded strips: no padded copy of the map.
    """

    def __init__(self, pad: int, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        self.weight, self.bias = conv.weight, conv.bias
        self.pad, self.stride, self.relu = pad, conv.stride[0], relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if not (self.pad == 1 and self.stride == 2 and self.weight.shape[-1] == 3 and h % 2 == 0 and w % 2 == 0):
            return _conv_relu(F.pad(x, (self.pad,) * 4, mode="reflect"), self.weight, self.bias, self.stride,
                              relu=self.relu)
        y = _conv_relu(x, self.weight, self.bias, 2, padding=1, relu=self.relu)
        y[:, :, :1] = _conv_relu(_top_strip(x), self.weight, self.bias, 2, relu=self.relu)
        y[:, :, :, :1] = _conv_relu(_left_strip(x), self.weight, self.bias, 2, relu=self.relu)[..., :1]
        return y


def _top_strip(x: torch.Tensor) -> torch.Tensor:
    """The reflection-padded top strip a stride-2 3x3 convolution reads for its first output row."""
    return F.pad(x[:, :, :2], (1, 1, 1, 0), mode="reflect")


def _left_strip(x: torch.Tensor) -> torch.Tensor:
    """The reflection-padded left strip a stride-2 3x3 convolution reads for its first output column,
    widened with zeros to two output columns (use the first): oneDNN's AMX kernels return wrong
    values (NaN in bf16) for a stride-2 convolution one output column wide (torch 2.14.1)."""
    return F.pad(F.pad(x[:, :, :, :2], (1, 0, 1, 1), mode="reflect"), (0, 2))


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


def _is_plain_conv(ms: list[nn.Module]) -> bool:
    """``ms`` is one unpadded, undilated, ungrouped square convolution with equal strides."""
    return (
        len(ms) == 1 and isinstance(m := ms[0], nn.Conv2d) and m.padding == (0, 0) and m.dilation == (1, 1)
        and m.groups == 1 and m.stride[0] == m.stride[1] and m.kernel_size[0] == m.kernel_size[1]
    )


def _pop_trailing_subpixel(out: list[nn.Module]) -> SubPixelConv | None:
    """Remove and return the :class:`SubPixelConv` with ReLU that ends ``out`` (possibly as the last
    layer of a nested ``nn.Sequential``, which is dropped once empty), else ``None``."""
    if not out:
        return None
    last = out[-1]
    if isinstance(last, SubPixelConv) and last.relu:
        return out.pop()
    if isinstance(last, nn.Sequential):
        inner = list(last)
        found = _pop_trailing_subpixel(inner)
        if found is not None:
            out[-1:] = [nn.Sequential(*inner)] if inner else []
        return found
    return None


def _reflect_pad(m: nn.Module) -> int:
    """The width of a uniform reflection padding, else 0."""
    if isinstance(m, nn.ReflectionPad2d) and len(set(m.padding)) == 1:
        return int(m.padding[0])
    return 0


def reparameterize(module: nn.Module, *, onednn: bool | None = None) -> nn.Module:
    """Rewrite every ``nn.Sequential`` inside ``module`` (and ``module`` itself) in place with the
    faster equivalents above; returns ``module``. Layers that match no pattern are kept.

    ``onednn``: whether to apply the rewrites made for oneDNN (column unfolding, padding +
    convolution); by default, where a layer's weights are on the CPU.
    """
    for child in list(module.children()):
        reparameterize(child, onednn=onednn)
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
            conv = layers[i + 1]
            up = _pop_trailing_subpixel(out) if conv.kernel_size[0] == 2 * pad + 1 else None
            out.append(SpaceToDepthConv(conv, reflect_pad=pad) if up is None else SubPixelGridConv(up, conv, pad))
            i += 2
        elif (pad := _reflect_pad(layers[i])) and _is_plain_conv(layers[i + 1:i + 2]) and (
                layers[i + 1].weight.is_cpu if onednn is None else onednn):
            conv, relu = layers[i + 1], i + 2 < len(layers) and isinstance(layers[i + 2], nn.ReLU)
            thin = conv.stride == (1, 1) and conv.kernel_size[0] >= 5 and conv.in_channels * conv.kernel_size[0] <= 32
            out.append((ColumnUnfoldConv if thin else ReflectPadConv)(pad, conv, relu))
            i += 3 if relu else 2
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
