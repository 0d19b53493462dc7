"""AdaIN arbitrary style transfer (Huang & Belongie, ICCV 2017).

A fixed encoder ``f`` (the VGG-normalised VGG-16 up to ``relu4_1``), an AdaIN layer that
gives the content features the style features' channel means and stds, and a trained
decoder ``g`` that mirrors the encoder (nearest 2x upsampling, reflection padding, ReLU, no
normalisation layers):

    t = AdaIN(f(c), f(s)) = sigma(f(s)) (f(c) - mu(f(c))) / sigma(f(c)) + mu(f(s))
    T(c, s, alpha) = g((1 - alpha) f(c) + alpha t)

Runtime controls: the content-style trade-off ``alpha``; several styles interpolated with
weights; colour preservation (the style recoloured to the content first, or the content's
chroma kept); spatial control (a mask per style, AdaIN per masked region). Style statistics
are computed once with :func:`encode_style` and can be reused for many contents.

Reference: X. Huang, S. Belongie, "Arbitrary Style Transfer in Real-time with Adaptive
Instance Normalization", ICCV 2017 (code: github.com/xunhuang1995/AdaIN-style).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from . import color as colorops
from .color import COLOR_MODES
from .imageio import ImageInputError, ImageSource, fit_within, load_image, pil_to_tensor, tensor_to_pil
from .masks import MaskSource, prepare_masks
from .ops import adain, calc_mean_std, masked_mean_std, normalized_weights
from .quantized import (Int8Calibrated, Int8InferenceCopy, Int8UnavailableError, QuantizedAdaINDecoder,
                        int8_is_available, int8_is_fast, int8_min_psnr)
from .vgg import VGG16_BLOCK_DEPTHS, InferenceCopy, VGGEncoder, bf16_is_fast, check_precision, precision_uses_bf16

__all__ = [
    "DECODER_PRECISIONS",
    "DecoderConfig",
    "AdaINDecoder",
    "StyleStats",
    "FeatureCache",
    "encode_style",
    "stylize",
    "stylize_tensor",
    "ENCODER_LAYER",
    "STYLE_LAYERS",
]

ENCODER_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
"""Layers of the mean/std style loss used to train the decoder (paper, Sec. 6.2)."""
MAX_SIZE = 4096


@dataclass(frozen=True)
class DecoderConfig:
    """Architecture of the decoder, mirroring VGG-16 from ``relu4_1`` back to pixels.

    Args:
        widths: channels at ``relu4_1`` and of blocks 3, 2, 1 of the encoder
            (VGG-16: 512, 256, 128, 64). Tests use tiny widths such as (8, 8, 8, 8).
        depths: convolutions in the mirrored blocks 3, 2, 1 (VGG-16: 3, 2, 2).
    """

    widths: tuple[int, ...] = (512, 256, 128, 64)
    depths: tuple[int, ...] = (VGG16_BLOCK_DEPTHS[2], VGG16_BLOCK_DEPTHS[1], VGG16_BLOCK_DEPTHS[0])

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        if len(self.widths) != 4 or min(self.widths) < 1:
            raise ValueError(f"widths must be 4 positive ints, got {self.widths}")
        if len(self.depths) != 3 or min(self.depths) < 1:
            raise ValueError(f"depths must be 3 positive ints, got {self.depths}")


def _conv(in_ch: int, out_ch: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3)]
    return layers + [nn.ReLU()] if relu else layers


DECODER_PRECISIONS = ("auto", "int8", "bf16", "fp32")
"""The decoder's precisions; ``"auto"`` is bf16 where :func:`~styletransfer.vgg.bf16_is_fast`, else int8 where
:func:`~styletransfer.quantized.int8_is_fast` and the decoder carries a calibration for its weights that
measured at least :func:`~styletransfer.quantized.int8_min_psnr`, else float32."""


class AdaINDecoder(nn.Module, Int8Calibrated):
    """The decoder ``g``: features at ``relu4_1`` (1/8 resolution) -> RGB image in [0, 1].

    Args:
        config: architecture (:class:`DecoderConfig`).
        precision: one of :data:`DECODER_PRECISIONS`. int8 runs only for inference (no gradients), on
            the CPU, with a calibration (:attr:`int8_calibration`).

    The output is not clamped (training sees the raw values; the int8 copy writes bytes, so its output is
    clamped to [0, 1] and rounded to 1/255); clamp it for display.
    """

    config_class = DecoderConfig

    def __init__(self, config: DecoderConfig | None = None, *, precision: str = "auto") -> None:
        super().__init__()
        self.config = config or DecoderConfig()
        self.precision = check_precision(precision, DECODER_PRECISIONS)
        self.int8_calibration: dict[str, Any] | None = None
        """The :func:`~styletransfer.quantized.calibrate_adain_decoder` record read with the weights, if any."""
        self._int8 = Int8InferenceCopy(QuantizedAdaINDecoder, "python -m training.calibrate_adain")
        w4, w3, w2, w1 = self.config.widths
        layers = _conv(w4, w3) + [nn.Upsample(scale_factor=2, mode="nearest")]
        for depth, (cin, cout) in zip(self.config.depths, ((w3, w2), (w2, w1), (w1, 3))):
            for _ in range(depth - 1):
                layers += _conv(cin, cin)
            last = cout == 3
            layers += _conv(cin, cout, relu=not last)
            if not last:
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.layers = nn.Sequential(*layers)
        self._bf16, self._fp32 = InferenceCopy(torch.bfloat16), InferenceCopy(torch.float32)

    def uses_bf16(self, device: torch.device | str) -> bool:
        """Whether a forward pass on ``device`` will run in bf16."""
        return precision_uses_bf16(self.precision, device)

    def uses_int8(self, device: torch.device | str) -> bool:
        """Whether an inference pass (no gradients) on ``device`` runs the int8 copy. With ``"auto"``, only where
        bf16 is not fast: where it is, int8 has not been measured against it.

        Raises:
            Int8UnavailableError: ``"int8"`` where it cannot run (not a CPU, no calibration for these weights).
        """
        if self.precision == "int8":
            if not int8_is_available(device):
                raise Int8UnavailableError(f"int8 inference runs on a CPU with oneDNN, not on {device}")
            self._int8.get(self, self.int8_calibration)
            return True
        if self.precision != "auto" or bf16_is_fast(device) or not int8_is_fast(device):
            return False
        record = self.int8_calibration or {}
        if float(record.get("psnr_db", -math.inf)) < int8_min_psnr():
            return False
        try:
            self._int8.get(self, record)
        except Int8UnavailableError:
            return False
        return True

    def inference_precision(self, device: torch.device | str) -> str:
        """What an inference pass on ``device`` runs in: ``"int8"``, ``"bf16"`` or ``"fp32"``."""
        return "int8" if self.uses_int8(device) else "bf16" if self.uses_bf16(device) else "fp32"

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, widths[0], h, w]`` -> ``[B, 3, 8h, 8w]`` (float32)."""
        if not torch.is_grad_enabled() and self.uses_int8(features.device):
            return self._int8.get(self, self.int8_calibration)(features).float().div_(255)
        use_bf16 = self.uses_bf16(features.device)
        if not torch.is_grad_enabled() and (use_bf16 or features.device.type == "cpu"):
            # inference: a standing copy (bf16, or on the CPU float32) runs faster than autocast or these layers
            fast = self._bf16 if use_bf16 else self._fp32
            return fast.get(self.layers)(features.to(fast.dtype, memory_format=torch.channels_last)).float()
        if not use_bf16:
            return self.layers(features)
        with torch.autocast(features.device.type, dtype=torch.bfloat16):
            return self.layers(features.contiguous(memory_format=torch.channels_last)).float()


@dataclass(frozen=True)
class StyleStats:
    """Channel means and stds of a style image's ``relu4_1`` features: all AdaIN needs of a style.

    Compute once with :func:`encode_style` and reuse for any number of contents.
    """

    mean: torch.Tensor  # [1, C, 1, 1]
    std: torch.Tensor  # [1, C, 1, 1]
    size: tuple[int, int]  # (width, height) the style was encoded at


def _check_size(size: int | None, name: str) -> None:
    if size is not None and not 16 <= size <= MAX_SIZE:
        raise ValueError(f"{name} must be in [16, {MAX_SIZE}] px or None, got {size}")


def _working_image(source: ImageSource, name: str, size: int | None) -> Image.Image:
    img = load_image(source, name=name)
    return fit_within(img, size, name=name)[0] if size else img


def _encode(encoder: VGGEncoder, x: torch.Tensor) -> torch.Tensor:
    """``x``'s relu4_1 features as the pass computed them (bf16 channels-last in a bf16 pass), only widened to
    float32: the decoder takes that layout, so no map is transposed on the way."""
    return encoder(x, [ENCODER_LAYER], dtype=None)[ENCODER_LAYER].float()


class FeatureCache:
    """The encoder's ``relu4_1`` maps of the last ``capacity`` images, keyed by their pixels and the encoder: a
    caller that re-runs AdaIN on the same images with other controls (the studio, on each slider change) skips
    the encoder. Thread-safe. The maps are shared, not copied; an encoder whose weights change needs a new cache."""

    def __init__(self, capacity: int = 6) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._maps: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._maps)

    def encode(self, encoder: VGGEncoder, x: torch.Tensor) -> torch.Tensor:
        """``x``'s features as :func:`_encode` gives them, from the cache where ``x`` was encoded before."""
        raw = x.detach().cpu().contiguous().view(torch.uint8).numpy()  # the bytes, whatever the dtype
        # The encoder itself, not its id: an entry keeps it alive, so no later encoder can take its id.
        key = (encoder, tuple(x.shape), x.dtype, x.device, hashlib.blake2b(raw, digest_size=16).digest())
        with self._lock:
            if key in self._maps:
                self._maps.move_to_end(key)
                return self._maps[key]
        maps = _encode(encoder, x)
        with self._lock:
            self._maps[key] = maps
            while len(self._maps) > self.capacity:
                self._maps.popitem(last=False)
        return maps


def _features(encoder: VGGEncoder, x: torch.Tensor, cache: FeatureCache | None) -> torch.Tensor:
    return cache.encode(encoder, x) if cache is not None else _encode(encoder, x)


@torch.no_grad()
def encode_style(
    style: ImageSource, *, encoder: VGGEncoder, size: int | None = 512, recolor_to: torch.Tensor | None = None,
    color_method: str = "cholesky", cache: FeatureCache | None = None,
) -> StyleStats:
    """The :class:`StyleStats` of one style image.

    Args:
        style: any image source :func:`~styletransfer.imageio.load_image` reads.
        encoder: the VGG-normalised encoder.
        size: long side the style is resized to (down only) before encoding; ``None`` keeps it.
        recolor_to: a content tensor ``[1, 3, H, W]`` whose colours the style takes first
            (colour preservation by histogram matching).
        color_method: ``"cholesky"`` or ``"eigen"`` (see :func:`~styletransfer.color.match_color`).
        cache: where the encoded maps are kept for the next call on the same pixels.
    """
    _check_size(size, "style_size")
    img = _working_image(style, "style", size)
    device = next(encoder.parameters()).device
    x = pil_to_tensor(img, device)
    if recolor_to is not None:
        x = colorops.match_color(x, recolor_to.to(device), color_method)
    mean, std = calc_mean_std(_features(encoder, x, cache))
    return StyleStats(mean, std, img.size)


def _style_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise ValueError(f"got {len(weights)} style weights for {n} styles")
    return normalized_weights(weights, "style weights")


@torch.no_grad()
def stylize_tensor(
    content: torch.Tensor,
    styles: Sequence[StyleStats],
    *,
    encoder: VGGEncoder,
    decoder: AdaINDecoder,
    alpha: float = 1.0,
    style_weights: Sequence[float] | None = None,
    masks: torch.Tensor | None = None,
    cache: FeatureCache | None = None,
) -> torch.Tensor:
    """The tensor core of :func:`stylize`: content ``[B, 3, H, W]`` in [0, 1] -> stylised, unclamped (except
    where the decoder runs in int8).

    ``H`` and ``W`` need not be multiples of 8: the content is reflection-padded and the output
    cropped back. ``masks`` are ``[N, 1, h, w]`` at feature resolution (:func:`prepare_masks`);
    ``cache`` keeps the content's encoded maps for the next call on the same pixels.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not styles:
        raise ValueError("give at least one style")
    h, w = content.shape[-2:]
    pad_h, pad_w = -h % 8, -w % 8
    x = F.pad(content, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else content
    fc = _features(encoder, x, cache)
    if masks is not None:
        if style_weights is not None:
            raise ValueError("give either style weights (interpolation) or masks (spatial control), not both")
        if masks.shape[0] != len(styles):
            raise ValueError(f"got {masks.shape[0]} masks for {len(styles)} styles; give one mask per style")
        if masks.shape[-2:] != fc.shape[-2:]:
            raise ValueError(f"masks are {tuple(masks.shape[-2:])} but the features are {tuple(fc.shape[-2:])}")
        # Overlaps are averaged by mask weight; where coverage is below 1 the content features fill in.
        coverage = masks.sum(0, keepdim=True)
        norm = coverage.clamp(min=1)
        t = (1 - coverage / norm) * fc
        for s, m in zip(styles, masks):
            mean, std = masked_mean_std(fc, m[None])
            t = t + m[None] / norm * ((fc - mean) / std * s.std + s.mean)
    else:
        weights = _style_weights(style_weights, len(styles))
        t = sum(wi * adain(fc, s.mean, s.std) for wi, s in zip(weights, styles))
    t = alpha * t + (1 - alpha) * fc
    return decoder(t)[..., :h, :w]


def stylize(
    content: ImageSource,
    style: ImageSource | StyleStats | Sequence[ImageSource | StyleStats],
    *,
    encoder: VGGEncoder,
    decoder: AdaINDecoder,
    alpha: float = 1.0,
    style_weights: Sequence[float] | None = None,
    preserve_color: str = "none",
    color_method: str = "cholesky",
    masks: Sequence[MaskSource] | None = None,
    size: int | None = 512,
    style_size: int | None = 512,
    cache: FeatureCache | None = None,
) -> Image.Image:
    """Stylise ``content`` with one or more styles.

    Args:
        content: any image source :func:`~styletransfer.imageio.load_image` reads.
        style: a style image, its precomputed :class:`StyleStats`, or a list of these.
        encoder: the VGG-normalised encoder (``zoo.load_normalized_vgg()``).
        decoder: a trained :class:`AdaINDecoder`.
        alpha: content-style trade-off in [0, 1]; 0 reconstructs the content, 1 is full transfer.
        style_weights: interpolation weights, one per style, >= 0, normalised to sum 1
            (default equal).
        preserve_color: ``"none"``; ``"histogram"`` (each style recoloured to the content's
            colour mean and covariance before encoding; needs style images, not stats);
            ``"luminance"`` (the result's luminance with the content's chroma).
        color_method: ``"cholesky"`` or ``"eigen"`` for ``"histogram"``.
        masks: spatial control, one mask per style at the content's input size (white or
            opaque = that style); AdaIN runs per region with that region's content statistics.
            Overlaps are averaged by mask weight; uncovered areas keep the content.
        size: long side of the working content size (down only); ``None`` keeps the input size.
        style_size: long side the styles are resized to (down only); ``None`` keeps them.
        cache: a :class:`FeatureCache` that keeps the encoded content and styles for the next call on
            the same images (a re-run with other controls then only decodes).

    Returns:
        The stylised RGB image at the working content size.

    Raises:
        ImageInputError: unreadable images, or masks of the wrong size, count or coverage.
        ValueError: controls out of range.
    """
    if preserve_color not in COLOR_MODES:
        raise ValueError(f"preserve_color must be one of {COLOR_MODES}, got {preserve_color!r}")
    _check_size(size, "size")
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise ValueError("give at least one style")
    if masks is not None and len(masks) != len(styles):
        raise ImageInputError(f"got {len(masks)} masks for {len(styles)} styles; give one mask per style")
    raw = load_image(content, name="content")
    img = fit_within(raw, size, name="content")[0] if size else raw
    device = next(encoder.parameters()).device
    x = pil_to_tensor(img, device)
    stats = []
    for i, s in enumerate(styles):
        if isinstance(s, StyleStats):
            if preserve_color == "histogram":
                raise ValueError("preserve_color='histogram' recolours the style image itself: "
                                 "pass images, not StyleStats")
            stats.append(s)
        else:
            recolor = x if preserve_color == "histogram" else None
            stats.append(encode_style(s, encoder=encoder, size=style_size, recolor_to=recolor,
                                      color_method=color_method, cache=cache))
    mask_t = None
    if masks is not None:
        feature_hw = ((img.height + 7) // 8, (img.width + 7) // 8)
        mask_t = prepare_masks(masks, raw.size, feature_hw).to(device)
    out = stylize_tensor(x, stats, encoder=encoder, decoder=decoder, alpha=alpha, style_weights=style_weights,
                         masks=mask_t, cache=cache)
    if preserve_color == "luminance":
        out = colorops.transfer_luminance(out.clamp(0, 1), x)
    return tensor_to_pil(out)
