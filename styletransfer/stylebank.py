"""StyleBank (Chen, Yuan, Liao, Yu, Hua, CVPR 2017): one auto-encoder, one small filter bank per style.

An encoder ``E`` (9x9 s1 -> 3x3 s2 -> 3x3 s2 convolutions, instance norm + ReLU) maps an image
to features ``F``; a style's bank ``K_i`` (a ``C x C x k x k`` convolution) turns them into
stylised features; the decoder ``D`` mirrors ``E`` back to pixels. ``D(E(x))`` reconstructs
``x``, so content lives in ``E``/``D`` and style in the banks, and a new style needs only a
new bank (incremental learning, :func:`learn_bank`).

Fusion: linear, ``(sum_i w_i K_i) * F`` with weights summing to 1 (paper eq. 5), and
region-specific, ``sum_i K_i * (M_i x F)`` (eq. 6) with masks from K-means on the
L2-normalised encoder features or given by the user.

Banks are separate files that record the fingerprint of the auto-encoder they were trained
with; :func:`load_bank` refuses a bank made for another auto-encoder.

Deviation from the paper, measured: the decoder upsamples with nearest 2x resizing followed by
a 3x3 convolution (``upsample="resize"``, the usual remedy for checkerboard artefacts, Odena et
al., Distill 2016) instead of fractionally-strided convolutions. Trained the same way for the
same 250 iterations, the paper's design (still available as ``upsample="transposed"``) put
6.6x (reconstructions) and 11.5x (stylised outputs) more energy into the 2x2 checkerboard pattern
(``benchmarks/checkerboard_stylebank.py``; figures in the README).

Second deviation, measured: no normalisation layers in ``E`` and ``D`` (``norm="none"``; the
paper's instance norm is ``norm="instance"``). Instance norm after a convolution removes each
feature map's mean and scale, so ``E`` cannot see an image's overall colour and contrast and
``D`` cannot put them back: in our joint run with instance norm the reconstruction stayed at
14.4-15.5 dB PSNR from iteration 500 to 1,125 with a colour cast, and an identity-only probe
(300 Adam steps, batch 4 at 128 px) reached 9.8 dB with instance norm against 18.1 dB without.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from . import color as colorops
from .color import COLOR_MODES
from .masks import MaskSource, kmeans_masks, prepare_masks, region_map_image
from .imageio import ImageInputError, ImageSource, bytes_to_pil, fit_within, load_image, pil_to_bytes, pil_to_tensor, \
    tensor_to_pil
from .ops import gram_matrix, normalized_weights, seeded_generator, total_variation
from .quantized import METADATA_KEY, Int8Calibrated, Int8InferenceCopy, Int8UnavailableError, \
    QuantizedAutoEncoder, calibrate, decoder_ranges, int8_fidelity, int8_is_available, int8_is_fast, int8_min_psnr
from .serialization import ModelFileError, read_metadata
from .vgg import InferenceCopy, VGGEncoder, bf16_is_fast, check_precision

__all__ = [
    "AutoEncoderConfig",
    "StyleBankAutoEncoder",
    "BankConfig",
    "StyleBank",
    "LossConfig",
    "StyleTargets",
    "BankStep",
    "StyleBankResult",
    "style_targets",
    "perceptual_loss",
    "load_bank",
    "load_banks",
    "save_bank",
    "bank_thumbnail",
    "stylize",
    "PRECISIONS",
    "learn_bank",
    "check_bank_name",
    "STYLE_SIZE",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
UPSAMPLING = ("transposed", "resize")
NORMS = ("none", "instance")
STYLE_SIZE = 256
"""Long side of a style image for its Gram targets, in joint training and incremental learning alike
(the stroke scale a bank learns depends on it, so new banks match the shipped ones)."""
CALIBRATION_PHOTOS = 8
"""Content photos on which :func:`learn_bank` measures a new bank's int8 decoder ranges."""


def check_bank_name(name: str) -> str:
    """Return ``name`` if it is a valid bank name (letters, digits, ``_``, ``-``; at most 64), else raise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"bank name {name!r} is not valid: use 1-64 letters, digits, '_' or '-', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class AutoEncoderConfig:
    """Architecture of ``E`` and ``D``.

    Args:
        channels: widths of the three encoder convolutions (paper: 32, 64, 128; C_max = 128).
        upsample: ``"resize"`` (nearest + conv, the default; see module docstring) or ``"transposed"``
            (the paper's fractionally-strided convolutions).
        norm: ``"none"`` (the default; see module docstring) or ``"instance"`` (the paper's instance
            norm after every convolution but the last).
    """

    channels: tuple[int, ...] = (32, 64, 128)
    upsample: str = "resize"
    norm: str = "none"

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise ValueError(f"channels must be 3 positive ints, got {self.channels}")
        if self.upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, got {self.upsample!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")


def _norm(channels: int, kind: str) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True) if kind == "instance" else nn.Identity()


def _conv_norm_relu(cin: int, cout: int, k: int, stride: int, norm: str) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride), _norm(cout, norm), nn.ReLU())


def _up_norm_relu(cin: int, cout: int, mode: str, norm: str) -> nn.Sequential:
    if mode == "transposed":
        up: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)]
    else:
        up = [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
    return nn.Sequential(*up, _norm(cout, norm), nn.ReLU())


class StyleBankAutoEncoder(nn.Module, Int8Calibrated):
    """The encoder ``E`` and decoder ``D`` shared by every style bank."""

    config_class = AutoEncoderConfig

    def __init__(self, config: AutoEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config or AutoEncoderConfig()
        c1, c2, c3 = self.config.channels
        up, norm = self.config.upsample, self.config.norm
        self.encoder = nn.Sequential(
            _conv_norm_relu(3, c1, 9, 1, norm), _conv_norm_relu(c1, c2, 3, 2, norm), _conv_norm_relu(c2, c3, 3, 2, norm)
        )
        self.decoder = nn.Sequential(
            _up_norm_relu(c3, c2, up, norm),
            _up_norm_relu(c2, c1, up, norm),
            nn.ReflectionPad2d(4),
            nn.Conv2d(c1, 3, 9),
        )
        self._bf16, self._fp32 = InferenceCopy(torch.bfloat16), InferenceCopy(torch.float32)
        self.int8_calibration: dict[str, Any] | None = None
        """The :func:`~styletransfer.quantized.calibrate` record read with the weights, if any."""
        self._int8 = Int8InferenceCopy(QuantizedAutoEncoder, "python -m training.calibrate_stylebank")

    def for_inference(self, device: torch.device, precision: str = "auto") -> StyleBankAutoEncoder:
        """The module to run without gradients on ``device`` (inputs must be in its dtype): a standing bf16
        channels-last copy for ``"bf16"``, or for ``"auto"`` where bf16 is fast there, else a float32 one on
        the CPU, else this module."""
        if precision == "bf16" or (precision == "auto" and bf16_is_fast(device)):
            return self._bf16.get(self)
        return self._fp32.get(self) if torch.device(device).type == "cpu" else self

    def quantized(self) -> QuantizedAutoEncoder:
        """The standing int8 copy (:class:`~styletransfer.quantized.QuantizedAutoEncoder`) made from
        :attr:`int8_calibration`, rebuilt when the weights or the calibration change.

        Raises:
            Int8UnavailableError: no calibration for these weights, or an architecture it does not support.
        """
        return self._int8.get(self, self.int8_calibration)

    @property
    def feature_channels(self) -> int:
        return self.config.channels[-1]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """RGB ``[B, 3, H, W]`` in [0, 1] (H, W multiples of 4) -> features ``[B, C, H/4, W/4]``."""
        return self.encoder(images)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Features -> RGB (unclamped)."""
        return self.decoder(features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``D(E(x))``."""
        return self.decode(self.encode(images))


@dataclass(frozen=True)
class BankConfig:
    """One style bank: a ``channels x channels x kernel_size^2`` convolution and what it belongs to."""

    name: str
    channels: int = 128
    kernel_size: int = 3
    autoencoder: str = ""  # fingerprint of the StyleBankAutoEncoder it was trained with

    def __post_init__(self) -> None:
        check_bank_name(self.name)
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {self.kernel_size}")


class StyleBank(nn.Module, Int8Calibrated):
    """The filter bank ``K_i`` of one style."""

    config_class = BankConfig

    def __init__(self, config: BankConfig) -> None:
        super().__init__()
        self.config = config
        k = config.kernel_size
        self.pad = nn.ReflectionPad2d(k // 2)
        self.conv = nn.Conv2d(config.channels, config.channels, k)
        self.int8_calibration: dict[str, Any] | None = None
        """The decoder ranges for int8 inference (:func:`~styletransfer.quantized.calibrate`), if measured."""

    @property
    def name(self) -> str:
        return self.config.name

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(features))


def bank_thumbnail(style: Image.Image, side: int = 96) -> str:
    """A small JPEG of the style image, base64-encoded for a bank file's metadata."""
    thumb = style.convert("RGB").copy()
    thumb.thumbnail((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def save_bank(bank: StyleBank, path: str | os.PathLike, *, thumbnail: Image.Image | None = None,
              metadata: dict[str, Any] | None = None, dtype: torch.dtype | None = None) -> os.PathLike:
    """Write one shareable bank file: weights, name, kernel size, auto-encoder fingerprint, thumbnail, and
    its int8 calibration if it has one."""
    extra = dict(metadata or {})
    if bank.int8_calibration:
        extra[METADATA_KEY] = bank.int8_calibration
    if thumbnail is not None:
        extra["thumbnail_jpeg_base64"] = bank_thumbnail(thumbnail)
    return bank.save_pretrained(path, metadata=extra, dtype=dtype)


def load_bank(path: str | os.PathLike, autoencoder: StyleBankAutoEncoder, *,
              fingerprint: str | None = None) -> StyleBank:
    """Load a bank file and check that it was trained with ``autoencoder``.

    Args:
        fingerprint: the auto-encoder's fingerprint if already computed (saves hashing it again).

    Raises:
        ModelFileError: not a bank file, or a bank for another auto-encoder.
    """
    bank = StyleBank.from_pretrained(path)
    expected = fingerprint or autoencoder.fingerprint()
    if bank.config.autoencoder != expected:
        raise ModelFileError(
            f"the bank '{bank.name}' was trained for another StyleBank auto-encoder "
            f"(fingerprint {bank.config.autoencoder or 'missing'}, this one is {expected}); "
            "banks only work with the auto-encoder they were trained with"
        )
    if bank.config.channels != autoencoder.feature_channels:
        raise ModelFileError(f"the bank '{bank.name}' has {bank.config.channels} channels, "
                             f"the auto-encoder {autoencoder.feature_channels}")
    return bank


def load_banks(paths: Iterable[str | os.PathLike], autoencoder: StyleBankAutoEncoder) -> dict[str, StyleBank]:
    """Load bank files for ``autoencoder`` (fingerprint hashed once) for inference, by bank name, in file order;
    each bank carries the style ``thumbnail`` its file holds (or ``None``).

    Raises:
        ModelFileError: a file is not a bank, or a bank for another auto-encoder.
    """
    paths = list(paths)
    if not paths:
        return {}
    fingerprint = autoencoder.fingerprint()
    banks = {}
    for path in paths:
        bank = load_bank(path, autoencoder, fingerprint=fingerprint).eval().requires_grad_(False)
        bank.thumbnail = read_thumbnail(path)
        banks[bank.name] = bank
    return banks


def read_thumbnail(path: str | os.PathLike) -> Image.Image | None:
    """The style thumbnail stored in a bank file, if any."""
    extra = json.loads(read_metadata(path).get("extra", "{}"))
    data = extra.get("thumbnail_jpeg_base64")
    if not data:
        return None
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


# ---------------------------------------------------------------- perceptual loss

@dataclass(frozen=True)
class LossConfig:
    """The perceptual loss of the paper: content at relu4_2, Gram style loss at relu{1..4}_2, TV."""

    content_layer: str = "relu4_2"
    style_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_2", "relu4_2")
    content_weight: float = 1.0
    style_weight: float = 1.0  # the shipped model's; Gram loss normalised by positions (see README)
    tv_weight: float = 1e-4


@dataclass(frozen=True)
class StyleTargets:
    """Gram matrices of one style image at the style layers (float32), computed once."""

    grams: dict[str, torch.Tensor]


@torch.no_grad()
def style_targets(style: torch.Tensor, vgg: VGGEncoder, loss: LossConfig = LossConfig()) -> StyleTargets:
    """Gram targets of a style image ``[1, 3, H, W]``."""
    feats = vgg(style, loss.style_layers, dtype=None)  # as computed, as perceptual_loss takes them
    return StyleTargets({layer: gram_matrix(f)[0] for layer, f in feats.items()})


def perceptual_loss(
    output: torch.Tensor,
    content: torch.Tensor,
    targets: Sequence[StyleTargets],
    vgg: VGGEncoder,
    loss: LossConfig = LossConfig(),
    content_features: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Content, style and TV losses of a batch of outputs, each against its own style target.

    Gram matrices are normalised by positions and computed by :func:`~styletransfer.ops.gram_matrix`
    on the maps as the VGG pass gives them (bf16 in a bf16 pass); the style term is the mean squared
    Gram difference summed over layers.
    """
    layers = list(dict.fromkeys([*loss.style_layers, loss.content_layer]))
    feats = vgg(output, layers, dtype=None)
    if content_features is None:
        with torch.no_grad():
            content_features = vgg(content, [loss.content_layer])[loss.content_layer]
    c = F.mse_loss(feats[loss.content_layer].float(), content_features)
    s = output.new_zeros(())
    for layer in loss.style_layers:
        g = gram_matrix(feats[layer])
        target = torch.stack([t.grams[layer] for t in targets])
        s = s + F.mse_loss(g, target)
    tv = total_variation(output)
    total = loss.content_weight * c + loss.style_weight * s + loss.tv_weight * tv
    return {"total": total, "content": c, "style": s, "tv": tv}


# ---------------------------------------------------------------- fusion and inference

def _fusion_weights(style: str | Mapping[str, float] | Sequence[str],
                    banks: Mapping[str, StyleBank]) -> dict[str, float]:
    if isinstance(style, str):
        weights = {style: 1.0}
    elif isinstance(style, Mapping):
        weights = {str(k): float(v) for k, v in style.items()}
    else:
        names = list(style)
        weights = {name: 1.0 / len(names) for name in names} if names else {}
    if not weights:
        raise ValueError("choose at least one style bank")
    unknown = [name for name in weights if name not in banks]
    if unknown:
        raise ValueError(f"unknown style bank(s) {unknown}; available: {', '.join(sorted(banks)) or 'none'}")
    return dict(zip(weights, normalized_weights(list(weights.values()), "fusion weights")))


def _fused_kernel(weights: Mapping[StyleBank, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """``sum_i w_i K_i`` and its bias; kernels of different sizes are zero-padded to the largest
    (equivalent under the reflection padding)."""
    k = max(bank.config.kernel_size for bank in weights)
    kernel = sum(wi * F.pad(bank.conv.weight, [(k - bank.config.kernel_size) // 2] * 4) for bank, wi in weights.items())
    bias = sum(wi * bank.conv.bias for bank, wi in weights.items())
    return kernel, bias


def _linear_fusion(features: torch.Tensor, weights: Mapping[StyleBank, float]) -> torch.Tensor:
    """``(sum_i w_i K_i) * F`` (eq. 5) as one convolution in the features' dtype."""
    kernel, bias = _fused_kernel(weights)
    padded = F.pad(features, [kernel.shape[-1] // 2] * 4, mode="reflect")
    return F.conv2d(padded, kernel.to(features.dtype), bias.to(features.dtype))


PRECISIONS = ("auto", "int8", "bf16", "fp32")
"""Inference precisions of :func:`stylize`; ``"auto"`` is int8 where :func:`~styletransfer.quantized.int8_is_fast`,
the auto-encoder is calibrated and the banks' calibrations measured int8 within
:func:`~styletransfer.quantized.int8_min_psnr` of float32, else bf16 where it is fast, else float32."""


class _FloatRun:
    """One stylisation in float32 or bf16 (the auto-encoder's inference copy)."""

    def __init__(self, autoencoder: StyleBankAutoEncoder, device: torch.device, precision: str) -> None:
        self.net = autoencoder.for_inference(device, precision)
        self.device = device
        self.precision = "bf16" if next(self.net.parameters()).dtype == torch.bfloat16 else "fp32"

    def encode(self, img: Image.Image) -> torch.Tensor:
        x = pil_to_tensor(img, self.device, dtype=next(self.net.parameters()).dtype, memory_format=torch.channels_last)
        return self.net.encode(_pad_to_4(x))

    def float_features(self, features: torch.Tensor) -> torch.Tensor:
        return features.float()

    def bank(self, features: torch.Tensor, weights: Mapping[StyleBank, float], mask: torch.Tensor | None = None
             ) -> torch.Tensor:
        return _linear_fusion(features if mask is None else features * mask.to(features.dtype), weights)

    def decode(self, features: torch.Tensor, size: tuple[int, int]) -> Image.Image:
        return tensor_to_pil(self.net.decode(features)[..., : size[1], : size[0]])


class _Int8Run:
    """One stylisation with the auto-encoder's int8 copy; bank kernels are prepacked once per bank and weights."""

    precision = "int8"

    def __init__(self, autoencoder: StyleBankAutoEncoder, banks: Iterable[StyleBank]) -> None:
        self.ranges = decoder_ranges(banks)
        self.net = autoencoder.quantized()

    def encode(self, img: Image.Image) -> torch.Tensor:
        return self.net.encode(_pad_to_4(pil_to_bytes(img)))

    def float_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.net.dequantize(features)

    def bank(self, features: torch.Tensor, weights: Mapping[StyleBank, float], mask: torch.Tensor | None = None
             ) -> torch.Tensor:
        if mask is not None:  # a mask in [0, 1] keeps non-negative features in range: same scale
            features = features.float().mul_(mask).round_().to(torch.uint8)
        key = tuple((bank, bank.conv.weight._version, bank.conv.bias._version, wi) for bank, wi in weights.items())
        return self.net.apply_bank(features, key, lambda: _fused_kernel(weights))

    def decode(self, features: torch.Tensor, size: tuple[int, int]) -> Image.Image:
        return bytes_to_pil(self.net.decode(features, self.ranges)[0, : size[1], : size[0]])


def _pad_to_4(x: torch.Tensor) -> torch.Tensor:
    """Reflection-pad the bottom and right of ``x`` to sides that are multiples of 4."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % 4, 0, -h % 4), mode="reflect") if (h % 4 or w % 4) else x


def _inference_run(autoencoder: StyleBankAutoEncoder, banks: Iterable[StyleBank], device: torch.device,
                   precision: str) -> _FloatRun | _Int8Run:
    """The run for ``precision`` (see :data:`PRECISIONS`) with ``banks``.

    Raises:
        Int8UnavailableError: ``"int8"`` where it cannot run (not a CPU, no calibration).
    """
    check_precision(precision, PRECISIONS)
    if precision == "int8" and not int8_is_available(device):
        raise Int8UnavailableError(f"int8 inference runs on a CPU with oneDNN, not on {device}")
    banks = list(banks)
    auto_int8 = precision == "auto" and int8_is_fast(device) and int8_fidelity(banks) >= int8_min_psnr()
    if precision == "int8" or auto_int8:
        try:
            return _Int8Run(autoencoder, banks)
        except Int8UnavailableError:
            if precision == "int8":
                raise
    return _FloatRun(autoencoder, device, precision)


@dataclass
class StyleBankResult:
    """The stylised image, and for region fusion the masks (``[n, 1, H, W]`` at image size) and a colour map."""

    image: Image.Image
    masks: torch.Tensor | None = None
    region_map: Image.Image | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def stylize(
    content: ImageSource,
    style: str | Mapping[str, float] | Sequence[str],
    *,
    autoencoder: StyleBankAutoEncoder,
    banks: Mapping[str, StyleBank],
    regions: int | None = None,
    masks: Sequence[MaskSource] | None = None,
    seed: int = 0,
    size: int | None = 512,
    precision: str = "auto",
    preserve_color: str = "none",
    color_method: str = "cholesky",
) -> StyleBankResult:
    """Stylise ``content`` with one bank, a linear fusion of banks, or a region fusion.

    Args:
        content: any image source :func:`~styletransfer.imageio.load_image` reads.
        style: a bank name, ``{name: weight}`` for linear fusion (weights >= 0, normalised to
            sum 1), or a list of names (equal weights; with ``regions``/``masks``, style i
            goes to region i).
        autoencoder: the auto-encoder the banks were trained with.
        banks: available banks by name.
        regions: region fusion with this many K-means regions of the encoder features
            (style i paints region i; regions beyond the styles cycle through them).
        masks: region fusion with one user mask per style (at the content's input size).
        seed: K-means seed.
        size: long side of the working size (down only); ``None`` keeps the input size.
        precision: one of :data:`PRECISIONS`; ``settings["precision"]`` says which ran.
        preserve_color: ``"none"``; ``"luminance"`` (the result's luminance with the content's
            chroma); ``"histogram"`` (the result's colours mapped to the content's colour mean and
            covariance: a bank's style is fixed, so the result is recoloured, not a style image).
        color_method: ``"cholesky"`` or ``"eigen"`` for ``"histogram"``.

    Returns:
        :class:`StyleBankResult` with the image, and the masks and their colour map for
        region fusion.

    Raises:
        Int8UnavailableError: ``precision="int8"`` where it cannot run.
    """
    if regions is not None and masks is not None:
        raise ValueError("give either regions (K-means) or masks, not both")
    if preserve_color not in COLOR_MODES:
        raise ValueError(f"preserve_color must be one of {COLOR_MODES}, got {preserve_color!r}")
    if color_method not in colorops.MATCH_METHODS:
        raise ValueError(f"color_method must be one of {colorops.MATCH_METHODS}, got {color_method!r}")
    raw = load_image(content, name="content")
    img = fit_within(raw, size, name="content")[0] if size else raw
    device = next(autoencoder.parameters()).device
    linear = regions is None and masks is None
    names = [style] if isinstance(style, str) else list(style)
    weights = _fusion_weights(style if linear else names, banks)  # validates the names
    run = _inference_run(autoencoder, [banks[name] for name, wi in weights.items() if wi > 0], device, precision)
    feats = run.encode(img)
    region_masks = None
    if linear:
        fused = run.bank(feats, {banks[name]: wi for name, wi in weights.items()})
        settings: dict[str, Any] = {"fusion": "linear", "weights": weights}
    else:
        if masks is not None:
            if len(masks) != len(names):
                raise ImageInputError(f"got {len(masks)} masks for {len(names)} styles; give one mask per style")
            region_masks = prepare_masks(masks, raw.size, feats.shape[-2:]).to(device)
            assignment = names
        else:
            region_masks = kmeans_masks(run.float_features(feats), int(regions), seed=seed)
            assignment = [names[i % len(names)] for i in range(region_masks.shape[0])]
        norm = region_masks.sum(0, keepdim=True).clamp(min=1)
        fused = sum(run.bank(feats, {banks[name]: 1.0}, m[None] / norm) for name, m in zip(assignment, region_masks))
        settings = {"fusion": "region", "regions": assignment, "k": int(region_masks.shape[0]), "seed": seed,
                    "source": "masks" if masks is not None else "kmeans"}
    settings["precision"], settings["preserve_color"] = run.precision, preserve_color
    image = run.decode(fused, img.size)
    if preserve_color != "none":
        out, x = pil_to_tensor(image), pil_to_tensor(img)
        if preserve_color == "luminance":
            out = colorops.transfer_luminance(out, x)
        else:
            out = colorops.match_color(out, x, color_method)
            settings["color_method"] = color_method
        image = tensor_to_pil(out)
    result = StyleBankResult(image, settings=settings)
    if region_masks is not None:
        up = F.interpolate(region_masks, scale_factor=4, mode="nearest")[..., : img.height, : img.width]
        result.masks = up
        result.region_map = region_map_image(up)
    return result


# ---------------------------------------------------------------- incremental learning

@dataclass(frozen=True)
class BankStep:
    """What the progress callback of :func:`learn_bank` receives."""

    step: int
    total: int
    losses: dict[str, float]
    seconds: float
    preview: Image.Image | None = None
    bank: StyleBank | None = None  # the bank learn_bank would return now (evaluate it, do not train it)
    init: str = ""  # the start of the bank being trained (with init="auto" the probes change it)

    @property
    def seconds_left(self) -> float:
        """An estimate of the time to the end: the steps left at the pace so far (every step costs the same)."""
        return self.seconds / self.step * (self.total - self.step)


BANK_INITS = ("random", "identity", "auto")


def learn_bank(
    style: ImageSource,
    contents: Sequence[torch.Tensor],
    *,
    name: str,
    autoencoder: StyleBankAutoEncoder,
    vgg: VGGEncoder,
    num_steps: int = 1000,
    size: int = 256,
    batch_size: int = 4,
    style_size: int = STYLE_SIZE,
    kernel_size: int = 3,
    lr: float = 1e-2,
    loss: LossConfig = LossConfig(),
    seed: int = 0,
    init: str = "auto",
    ema: float = 0.98,
    probe_steps: int = 200,
    progress: Callable[[BankStep], None] | None = None,
    preview_every: int = 50,
    preview_content: torch.Tensor | None = None,
    cancel: threading.Event | None = None,
) -> StyleBank:
    """Learn a new style bank with ``E`` and ``D`` frozen (the paper's incremental learning).

    Args:
        style: the new style image.
        contents: content images ``[1, 3, H, W]`` (or ``[3, H, W]``) in [0, 1], at least ``size`` px
            on the short side; random ``size`` crops are drawn from them.
        name: the bank's name.
        autoencoder: the frozen auto-encoder; its fingerprint goes into the bank.
        vgg: the loss network (ImageNet VGG-16).
        num_steps: optimisation steps (paper: about 1,000).
        size: crop side in px (multiple of 4).
        batch_size: crops per step.
        style_size: long side the style image is resized to (down only) for its Gram targets.
        kernel_size: the bank's kernel size (odd).
        lr: Adam learning rate.
        loss: perceptual loss weights and layers.
        seed: initialisation and sampling seed.
        init: ``"random"`` (the paper: PyTorch's default convolution init), ``"identity"`` (the
            centre tap is the identity, so training starts from the auto-encoder's reconstruction)
            or ``"auto"`` (default): ``probe_steps`` steps from each (at most a quarter of
            ``num_steps`` each), then the one with the lower training loss over the second half of
            its probe goes on for the remaining steps. Either single start can settle in a wrong
            palette for some styles; the probes catch that early (see README).
        ema: decay of an exponential moving average of the bank's weights (warmed up as
            ``min(ema, (1 + t) / (10 + t))``), which is returned instead of the last step's
            weights; 0 turns it off (the paper). With batch 1 the iterates are noisy and the
            average is steadier. (The paper's recipe is ``init="random", ema=0``.)
        probe_steps: steps of each probe for ``init="auto"``.
        progress: called after every step with a :class:`BankStep`.
        preview_every: attach a preview (``preview_content`` through the bank) every this many steps.
        cancel: set it to stop early; the bank learned so far is returned (during the probes, the
            better one so far).

    Returns:
        The new :class:`StyleBank` (recording the auto-encoder's fingerprint).
    """
    check_bank_name(name)
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if size < 16 or size % 4:
        raise ValueError(f"size must be a multiple of 4 and >= 16, got {size}")
    if not contents:
        raise ValueError("learning a bank needs some content images")
    if init not in BANK_INITS:
        raise ValueError(f"init must be one of {', '.join(BANK_INITS)}, got {init!r}")
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"ema must be in [0, 1), got {ema}")
    gen = seeded_generator(seed)  # checks the seed before any image is read
    pool = [c if c.ndim == 4 else c[None] for c in contents]
    small = [i for i, c in enumerate(pool) if min(c.shape[-2:]) < size]
    if small:
        raise ValueError(f"{len(small)} content image(s) are smaller than the {size} px crop")
    style_img = fit_within(load_image(style, name="style"), style_size, name="style")[0]
    device = next(autoencoder.parameters()).device
    targets = style_targets(pil_to_tensor(style_img, device), vgg, loss)
    autoencoder.eval().requires_grad_(False)
    config = BankConfig(name, autoencoder.feature_channels, kernel_size, autoencoder.fingerprint())
    inits = ("random", "identity") if init == "auto" else (init,)
    candidates = [_BankRun(i, config, lr, ema, seed, device) for i in inits]
    probe = min(probe_steps, num_steps // 4) if len(candidates) > 1 else 0
    use_bf16 = bf16_is_fast(device)
    t0 = time.perf_counter()
    step = 0

    def train(run: _BankRun, steps: int) -> bool:
        """``steps`` steps of ``run``; False when cancelled."""
        nonlocal step
        for _ in range(steps):
            if cancel is not None and cancel.is_set():
                return False
            step += 1
            picks = torch.randint(len(pool), (batch_size,), generator=gen)
            batch = torch.cat([_random_crop(pool[int(i)], size, gen) for i in picks]).to(device)
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                feats = autoencoder.encode(batch).float()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                out = autoencoder.decode(run.bank(feats)).float()
            losses = perceptual_loss(out, batch, [targets] * batch_size, vgg, loss)
            run.update(losses["total"])
            if progress is not None:
                preview = None
                if preview_content is not None and (step % preview_every == 0 or step == num_steps):
                    with torch.no_grad():
                        encoded = autoencoder.encode(preview_content.to(device))
                        preview = tensor_to_pil(autoencoder.decode(run.result(encoded)))
                progress(BankStep(step, num_steps, {k: v.item() for k, v in losses.items()}, time.perf_counter() - t0,
                                  preview, run.result, run.init))
        return True

    chosen = candidates[0]
    if probe:  # a short run from each start; the lower training loss over its second half goes on
        for run in candidates:
            if not train(run, probe):
                break
        chosen = min((run for run in candidates if run.totals), key=_BankRun.recent_loss, default=chosen)
    train(chosen, num_steps - step)  # returns at once if cancelled
    bank = chosen.result.eval().requires_grad_(False)
    if autoencoder.int8_calibration is not None:  # its decoder ranges for int8 inference, on some of the photos
        photos = [c[..., : c.shape[-2] // 4 * 4, : c.shape[-1] // 4 * 4] for c in pool[:CALIBRATION_PHOTOS]]
        encoder_ranges = autoencoder.int8_calibration.get("ranges")
        bank.int8_calibration = calibrate(autoencoder, [bank], photos, encoder_ranges=encoder_ranges).banks[bank.name]
    return bank


class _BankRun:
    """One new bank being learned: its start, Adam state, weight average and training losses."""

    def __init__(self, init: str, config: BankConfig, lr: float, ema: float, seed: int, device: torch.device) -> None:
        self.init, self.ema, self.totals = init, ema, []
        with torch.random.fork_rng(devices=[]):  # a seeded start that leaves the caller's random state alone
            torch.manual_seed(seed)
            self.bank = StyleBank(config).to(device)
        if init == "identity":
            with torch.no_grad():
                self.bank.conv.weight.zero_()
                self.bank.conv.bias.zero_()
                middle = config.kernel_size // 2
                self.bank.conv.weight[:, :, middle, middle] = torch.eye(config.channels)
        self.result = copy.deepcopy(self.bank).requires_grad_(False) if ema else self.bank
        self.optimizer = torch.optim.Adam(self.bank.parameters(), lr=lr)

    def recent_loss(self) -> float:
        """Mean training loss over the second half of the steps so far."""
        recent = self.totals[len(self.totals) // 2:]
        return sum(recent) / len(recent)

    def update(self, total: torch.Tensor) -> None:
        """One optimiser step on ``total``, then the weight average."""
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.totals.append(total.item())
        if self.ema:
            t = len(self.totals)
            decay = min(self.ema, (1 + t) / (10 + t))
            with torch.no_grad():
                for averaged, current in zip(self.result.parameters(), self.bank.parameters()):
                    averaged.lerp_(current, 1 - decay)


def _random_crop(image: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    h, w = image.shape[-2:]
    top = int(torch.randint(h - size + 1, (1,), generator=gen))
    left = int(torch.randint(w - size + 1, (1,), generator=gen))
    return image[..., top : top + size, left : left + size]
