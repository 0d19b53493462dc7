"""Int8 inference for the StyleBank auto-encoder with oneDNN's u8 x s8 convolutions (CPU).

On a CPU with AVX512-VNNI (or AMX-INT8) an int8 convolution does twice the multiply-adds per
cycle of a bf16 one: 800-860 GFLOP/s against 420-440 for bf16 on this project's 2-core CPU.

- **Weights**: symmetric int8 (7-bit on a CPU without VNNI, see :func:`_weight_limit`), one scale per
  output channel, from the float32 re-parameterised layers (:mod:`styletransfer.reparam`:
  column-unfolded input layer, sub-pixel decoder).
- **Activations**: uint8, one scale per tensor. Every encoder and decoder activation follows a
  ReLU, so it spans ``[0, max]``; the maxima are calibrated on photos with the float32 model
  (:func:`calibrate`): the encoder's once, stored with the auto-encoder (tied to its
  fingerprint), the decoder's per bank, stored with each bank (a bank learned later can drive
  the decoder ten times higher than the banks trained with it), both under :data:`METADATA_KEY`.
  The bank output is signed and changes with the style and the fusion, so its range is measured
  on every image (an asymmetric scale and zero point).
- **Input and output**: the image's bytes are the first layer's input as they are (scale 1/255),
  and the last layer writes the output bytes (scale 1/255, saturating), so no float image exists.

:class:`QuantizedAutoEncoder` holds the layers; :func:`stylebank.stylize
<styletransfer.stylebank.stylize>` uses it with ``precision="int8"``, and by default where
:func:`int8_is_fast` and the banks' calibration measured int8 within :func:`int8_min_psnr` of float32.
"""

from __future__ import annotations

import copy
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import torch.nn.functional as F

from .cpu import cpu_flags
from .imageio import tensor_to_bytes
from .reparam import ColumnUnfoldConv, ReflectPadConv, SubPixelConv, SubPixelGridConv, _conv_relu, _interleave, \
    _left_strip, _reflect_into_border, _subpixel_map, _top_strip, reparameterize
from .serialization import SafetensorsMixin

if TYPE_CHECKING:
    from .adain import AdaINDecoder
    from .stylebank import StyleBank, StyleBankAutoEncoder

__all__ = ["ADAIN_QUANTILE", "AUTO_MIN_PSNR", "DECODER_ACTIVATIONS", "ENCODER_ACTIVATIONS", "METADATA_KEY",
           "Calibration", "Int8Calibrated", "Int8InferenceCopy", "Int8UnavailableError", "QuantizedAdaINDecoder",
           "QuantizedAutoEncoder", "QuantizedConv", "calibrate", "calibrate_adain_decoder", "decoder_ranges",
           "int8_fidelity", "int8_is_available", "int8_is_fast", "int8_min_psnr"]

ENCODER_ACTIVATIONS = ("enc0", "enc1", "enc2")
"""The encoder's calibrated activations (its three outputs), a property of the auto-encoder."""

DECODER_ACTIVATIONS = ("dec0", "dec1")
"""The decoder's calibrated activations (its two upsampling outputs), a property of each bank."""

AUTO_MIN_PSNR = 40.0
"""``precision="auto"`` runs a bank (or a fusion) in int8 only where its calibration measured the int8
output within this PSNR (dB) of float32; a bank that drives the decoder far harder than the banks it
was calibrated beside can lose more, and then runs in bf16."""

METADATA_KEY = "int8_calibration"
"""Where the calibration records live in an auto-encoder's and a bank's file (``extra`` metadata)."""

_PREPACKED_BANKS = 8
"""Bank kernels (single or fused) kept prepacked by a :class:`QuantizedAutoEncoder`."""


C = TypeVar("C", bound="Int8Calibrated")


class Int8Calibrated(SafetensorsMixin):
    """A model whose file may carry an int8 calibration record (under :data:`METADATA_KEY`): loading it sets
    ``int8_calibration`` (None where the file has none)."""

    int8_calibration: dict[str, Any] | None = None

    @classmethod
    def from_pretrained(cls: type[C], path: str | os.PathLike, **kwargs: Any) -> C:
        """:meth:`SafetensorsMixin.from_pretrained`, plus the int8 calibration stored with the weights."""
        model = super().from_pretrained(path, **kwargs)
        model.int8_calibration = cls.extra_metadata(path).get(METADATA_KEY)
        return model


class Int8UnavailableError(ValueError):
    """Int8 inference was asked for where it cannot run; the message says why."""


def int8_is_available(device: torch.device | str = "cpu") -> bool:
    """Whether this build of torch runs oneDNN int8 convolutions on ``device`` (CPUs only)."""
    return (torch.device(device).type == "cpu" and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.onednn, "qconv2d_pointwise"))


def _has_vnni() -> bool:
    return bool(cpu_flags() & {"avx512_vnni", "amx_int8", "avx_vnni"})


def _weight_limit() -> int:
    """The largest int8 weight magnitude used. Without VNNI, oneDNN adds two u8 x s8 products in int16
    with saturation (255 * 127 * 2 > 32767); 7-bit weights (255 * 63 * 2 < 32767) keep every such
    sum exact. On an AVX2-only CPU the test suite's two random banks measured 32.1 and 40.1 dB
    against float32 with 8-bit weights, 43.8 and 42.0 dB with 7-bit ones."""
    return 127 if _has_vnni() else 63


def int8_is_fast(device: torch.device | str = "cpu") -> bool:
    """Whether int8 pays on ``device``: :func:`int8_is_available` and the CPU has VNNI or AMX-INT8, or AVX2
    (without VNNI oneDNN's int8 convolutions still ran at 1.9x float32's rate on an AVX2-only EPYC, 364
    against 195 GFLOP/s, and a StyleBank image at 512 px took 0.082-0.090 s against 0.143-0.148 s).

    ``STYLETRANSFER_FORCE_FP32=1`` in the environment makes this ``False`` everywhere.
    """
    if os.environ.get("STYLETRANSFER_FORCE_FP32", "") not in ("", "0") or not int8_is_available(device):
        return False
    return _has_vnni() or "avx2" in cpu_flags()


NO_VNNI_MARGIN_DB = 3.0
"""What a CPU without VNNI asks of a calibration beyond :data:`AUTO_MIN_PSNR`: its weights are 7-bit (see
:func:`_weight_limit`), and there the zoo's 16 banks, calibrated with 8-bit weights, came 0.8-2.8 dB below their
calibration's PSNR (an AVX2-only EPYC, 2026-12-06, the 22 test photos at 512 px; see ``benchmarks/stylebank.md``)."""


def int8_min_psnr() -> float:
    """The calibration PSNR (dB) every bank in use needs for ``precision="auto"`` to run in int8 on this CPU."""
    return AUTO_MIN_PSNR + (0.0 if _has_vnni() else NO_VNNI_MARGIN_DB)


class QuantizedConv:
    """One oneDNN int8 convolution: uint8 input (``scale``, ``zero_point``), int8 weights with per-channel
    scales, float32 bias; output uint8 (``out_scale``, zero point 0, an optional fused ReLU, saturating)
    or float32 (``out_scale=None``)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, scale: float, out_scale: float | None, *,
                 stride: int = 1, padding: int = 0, relu: bool = False) -> None:
        w = weight.detach().float().cpu()
        limit = _weight_limit()
        self.weight_scales = (w.abs().amax(dim=(1, 2, 3)).clamp(min=1e-12) / limit).double()
        q = torch.round(w / self.weight_scales.float()[:, None, None, None]).clamp(-limit, limit).to(torch.int8)
        self.geometry = ([stride] * 2, [padding] * 2, [1, 1], 1)
        self.packed = torch.ops.onednn.qconv_prepack(q, self.weight_scales, float(scale), 0, *self.geometry, None)
        self.weight_zero_points = torch.zeros(w.shape[0], dtype=torch.int64)
        self.bias = None if bias is None else bias.detach().float().cpu()
        self.scale = float(scale)
        self.out = (1.0, 0, torch.float32) if out_scale is None else (float(out_scale), 0, None)
        self.attr = "relu" if relu else "none"

    def __call__(self, x: torch.Tensor, scale: float | None = None, zero_point: int = 0,
                 out_scale: float | None = None) -> torch.Tensor:
        """``x``: uint8 ``[n, c, h, w]``, channels-last, with its scale and zero point; ``scale`` and a
        uint8 output's ``out_scale`` default to the ones given at construction (the prepacked weights
        depend on neither)."""
        scale = self.scale if scale is None else float(scale)
        out = self.out if out_scale is None else (float(out_scale), *self.out[1:])
        return torch.ops.onednn.qconv2d_pointwise(x, scale, int(zero_point), self.packed, self.weight_scales,
                                                  self.weight_zero_points, self.bias, *self.geometry, *out,
                                                  self.attr, [], "")


def _quantize(x: torch.Tensor, scale: float, zero_point: int = 0) -> torch.Tensor:
    """``round(x / scale) + zero_point`` saturated to uint8, in ``x``'s memory layout."""
    q = x.to(torch.float32, copy=True).mul_(1 / scale).add_(zero_point).round_().clamp_(0, 255)
    return q.to(torch.uint8)


class QuantizedAutoEncoder:
    """An int8 copy of a :class:`~styletransfer.stylebank.StyleBankAutoEncoder` (the default architecture:
    nearest-resize decoder, no normalisation) for inference on the CPU.

    Args:
        autoencoder: the float model.
        ranges: the calibrated maximum of each activation in :data:`ENCODER_ACTIVATIONS` (see :func:`calibrate`).
    """

    def __init__(self, autoencoder: StyleBankAutoEncoder, ranges: Mapping[str, float]) -> None:
        _check_ranges(ranges, ENCODER_ACTIVATIONS, "the auto-encoder")
        fast = reparameterize(copy.deepcopy(autoencoder).float().cpu(), onednn=True)
        rewritten = (ColumnUnfoldConv, ReflectPadConv, SubPixelConv, SubPixelGridConv)
        layers = [m for m in fast.modules() if isinstance(m, rewritten)]
        layers = [m for m in layers if not any(isinstance(o, SubPixelGridConv) and o.up is m for o in layers)]
        kinds = [type(m) for m in layers]
        if kinds != [ColumnUnfoldConv, ReflectPadConv, ReflectPadConv, SubPixelConv, SubPixelGridConv]:
            raise Int8UnavailableError("int8 inference supports the default StyleBank architecture only "
                                       "(resize upsampling, no normalisation)")
        enc0, enc1, enc2, dec0, grid = layers
        if enc1.stride != 2 or enc2.stride != 2 or not dec0.relu:
            raise Int8UnavailableError("int8 inference supports the default StyleBank architecture only")
        s = {k: float(ranges[k]) / 255 for k in ENCODER_ACTIVATIONS}
        self.feature_scale = s["enc2"]
        """The scale of the uint8 features :meth:`encode` returns."""
        self.input_pad = enc0.pad
        self.enc0 = QuantizedConv(enc0.weight, enc0.bias, 1 / 255, s["enc0"], relu=True)
        self.enc1 = self._strided_pair(enc1, s["enc0"], s["enc1"])
        self.enc2 = self._strided_pair(enc2, s["enc1"], s["enc2"])
        self.dec0 = QuantizedConv(dec0.weight, dec0.bias, 1.0, 1.0, relu=True)  # scales come with each call
        self.dec1 = QuantizedConv(grid.up.weight, grid.up.bias, 1.0, 1.0, relu=True)
        self.out = QuantizedConv(grid.weight, grid.bias, 1.0, 1 / 255)
        self.out_channels, self.border, self.out_pad = grid.cout, grid.border, grid.pad
        self._banks: OrderedDict[Hashable, tuple[QuantizedConv, int]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _strided_pair(layer: ReflectPadConv, scale: float, out_scale: float) -> tuple[QuantizedConv, QuantizedConv]:
        """The stride-2 3x3 layer with zero padding 1, and unpadded for the reflected first row and column."""
        return (QuantizedConv(layer.weight, layer.bias, scale, out_scale, stride=2, padding=1, relu=True),
                QuantizedConv(layer.weight, layer.bias, scale, out_scale, stride=2, relu=True))

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 RGB ``[1, 3, H, W]`` (H, W multiples of 4) -> uint8 features ``[1, C, H/4, W/4]``, channels-last."""
        h, w = image.shape[-2:]
        if h % 4 or w % 4:
            raise ValueError(f"int8 encode needs sides that are multiples of 4, got {h}x{w}")
        p = self.input_pad
        padded = F.pad(image, (p,) * 4, mode="reflect").contiguous(memory_format=torch.channels_last)
        n, c, hp, wp = padded.shape
        k = 2 * p + 1
        cols = padded.as_strided((n, hp, wp - k + 1, k * c), (hp * wp * c, wp * c, c, 1), padded.storage_offset())
        x = self.enc0(cols.contiguous().permute(0, 3, 1, 2))
        for padded_conv, strip_conv in (self.enc1, self.enc2):
            y = padded_conv(x)  # zero padding is exact for the rows and columns that never read the reflection
            y[:, :, :1] = strip_conv(_top_strip(x))
            y[:, :, :, :1] = strip_conv(_left_strip(x))[..., :1]
            x = y
        return x

    def dequantize(self, features: torch.Tensor) -> torch.Tensor:
        """uint8 features -> float32."""
        return features.float().mul_(self.feature_scale)

    def apply_bank(self, features: torch.Tensor, key: Hashable,
                   kernel: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """A bank's (or a fused) reflection-padded convolution on uint8 features -> float32 features.

        ``kernel()`` gives its weight and bias; they are quantized and prepacked once per ``key``, which
        must identify them (e.g. the bank modules, their weights' versions and the fusion weights).
        """
        with self._lock:  # the studio serves requests from several threads
            entry = self._banks.pop(key, None)
            if entry is None:
                weight, bias = kernel()
                entry = (QuantizedConv(weight, bias, self.feature_scale, None), weight.shape[-1] // 2)
                while len(self._banks) >= _PREPACKED_BANKS:
                    self._banks.popitem(last=False)
            self._banks[key] = entry
        conv, pad = entry
        return conv(F.pad(features, (pad,) * 4, mode="reflect") if pad else features)

    def decode(self, features: torch.Tensor, ranges: Mapping[str, float]) -> torch.Tensor:
        """Float features ``[1, C, h, w]`` -> uint8 RGB ``[1, 4h, 4w, 3]`` (the last layer's saturated bytes),
        with the decoder activation ``ranges`` of the bank(s) that made them (:func:`decoder_ranges`)."""
        s0, s1 = (float(ranges[k]) / 255 for k in DECODER_ACTIVATIONS)
        f = features.contiguous(memory_format=torch.channels_last)
        lo, hi = torch.aminmax(f.permute(0, 2, 3, 1).reshape(-1))
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        scale = max(hi - lo, 1e-8) / 255
        zero_point = int(round(-lo / scale))
        n, _, h, w = f.shape
        x = _subpixel_map(self.dec0(F.pad(_quantize(f, scale, zero_point), (1,) * 4, mode="replicate"), scale,
                                    zero_point, s0))
        e, p = self.border, self.out_pad
        y = self.dec1(F.pad(x, (e,) * 4, mode="replicate"), s0, 0, s1)
        grid = y.permute(0, 2, 3, 1).reshape(n, y.shape[2], y.shape[3], 2, 2, -1)
        _reflect_into_border(grid, 1, 3, 4 * h, p, e - 1)
        _reflect_into_border(grid, 2, 4, 4 * w, p, e - 1)
        out = self.out(grid.flatten(3).permute(0, 3, 1, 2), s1)
        phases = out.permute(0, 2, 3, 1)[..., : 4 * self.out_channels].unflatten(-1, (2, 2, self.out_channels))
        return _interleave(phases)


ADAIN_QUANTILE = 0.9999
"""Each int8 activation range of the AdaIN decoder is the largest, over the calibration maps, of this quantile
of the map's values: a few outliers set the maximum, and a range set by them wasted levels (a throwaway check,
2026-12-06, the AVX2-only EPYC, 12 test pairs at 512 px: 42.6 dB mean and 40.4 dB worst against float32 with
the maxima, 44.5 and 42.8 dB with this quantile)."""


class QuantizedAdaINDecoder:
    """An int8 copy of an :class:`~styletransfer.adain.AdaINDecoder` for inference on the CPU.

    Its first layer runs in float32: its input, the AdaIN features, is signed with outlying channels, and
    quantized per tensor it cost about 11 dB (33.6 dB mean against float32 in the check of
    :data:`ADAIN_QUANTILE`); the other layers run in int8, each ReLU output with its calibrated range, the
    upsampling ones as sub-pixel convolutions, and the last writes the output bytes.

    Args:
        decoder: the float model.
        ranges: the calibrated range of each layer's output but the last's (:func:`calibrate_adain_decoder`).
    """

    def __init__(self, decoder: AdaINDecoder, ranges: Sequence[float]) -> None:
        fast = reparameterize(copy.deepcopy(decoder.layers).float().cpu(), onednn=True)
        layers = list(fast)
        if (not all(isinstance(m, (ReflectPadConv, SubPixelConv)) for m in layers) or not isinstance(ranges, Sequence)
                or len(ranges) != len(layers) - 1):
            raise Int8UnavailableError("this AdaIN decoder's int8 calibration does not fit its layers")
        if not all(isinstance(r, (int, float)) and r > 0 for r in ranges):
            raise Int8UnavailableError("the AdaIN decoder's int8 calibration holds a range that is not positive")
        self.first = layers[0]
        self.scales = [float(r) / 255 for r in ranges]
        outs = [*self.scales[1:], 1 / 255]
        self.layers = [(m, QuantizedConv(m.weight, m.bias, scale, out, relu=m.relu))
                       for m, scale, out in zip(layers[1:], self.scales, outs)]

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        """Float features ``[n, C, h, w]`` -> uint8 RGB ``[n, 3, 8h, 8w]`` (channels-last): the output's bytes."""
        x = _quantize(self.first(features.float().contiguous(memory_format=torch.channels_last)), self.scales[0])
        for module, conv in self.layers:
            if isinstance(module, SubPixelConv):
                x = _subpixel_map(conv(F.pad(x, (1,) * 4, mode="replicate")))
            else:
                x = conv(F.pad(x, (module.pad,) * 4, mode="reflect"))
        return x


@torch.no_grad()
def calibrate_adain_decoder(decoder: AdaINDecoder, features: Iterable[torch.Tensor]) -> dict[str, Any]:
    """Calibrate the int8 AdaIN decoder on AdaIN feature maps (``[1, C, h, w]``, e.g. of training photos
    and paintings) with the float32 model on the CPU; the decoder is not modified.

    Returns the record :class:`QuantizedAdaINDecoder` and ``precision="auto"`` use: the decoder's
    ``fingerprint``, the number of maps, each layer's ``ranges`` (:data:`ADAIN_QUANTILE`), ``psnr_db``, the
    mean PSNR of the int8 output's bytes against float32's on these maps, and the ``weight_bits`` this CPU
    gave the int8 weights (7 without VNNI, see :func:`_weight_limit`).
    """
    layers = list(reparameterize(copy.deepcopy(decoder.layers).float().cpu(), onednn=True))
    maps = [t.float().cpu() for t in features]
    if not maps:
        raise ValueError("calibration needs at least one feature map")
    ranges = [0.0] * (len(layers) - 1)
    references = []
    for x in maps:
        for k, layer in enumerate(layers):
            x = layer(x)
            if k < len(ranges):
                values = x.flatten()[:: max(1, x.numel() // 4_000_000)]  # torch.quantile takes at most 16M
                ranges[k] = max(ranges[k], float(torch.quantile(values, ADAIN_QUANTILE)))
        references.append(tensor_to_bytes(x))
    quantized = QuantizedAdaINDecoder(decoder, ranges)
    scores = [_psnr(quantized(t)[0].permute(1, 2, 0), ref) for t, ref in zip(maps, references)]
    return {"fingerprint": decoder.fingerprint(), "images": len(maps), "ranges": [round(r, 6) for r in ranges],
            "psnr_db": round(sum(scores) / len(scores), 2), "weight_bits": _weight_limit().bit_length() + 1}


class Int8InferenceCopy:
    """The int8 copy of a model (``build(model, ranges)``, e.g. :class:`QuantizedAutoEncoder`), made from the
    ranges of a calibration record made for its weights, rebuilt when its weights or calibration change; a
    deep copy of its owner starts empty (prepacked weights cannot be copied).

    Args:
        build: makes the int8 copy of a model from its calibrated ranges.
        calibrate_with: the command that calibrates such a model, for the error message.
    """

    def __init__(self, build: Callable[[Any, Any], Any], calibrate_with: str) -> None:
        self._build, self._calibrate_with = build, calibrate_with
        self._key: tuple = ()
        self._model: Any = None
        self._reason = ""

    def __deepcopy__(self, memo: dict) -> Int8InferenceCopy:
        return Int8InferenceCopy(self._build, self._calibrate_with)

    def get(self, model: torch.nn.Module, calibration: Mapping[str, Any] | None) -> Any:
        """The int8 copy of ``model`` with the ranges of ``calibration`` (a record with the ``fingerprint`` of
        the weights it was made for).

        Raises:
            Int8UnavailableError: ``calibration`` is missing or for other weights, or the architecture is not supported.
        """
        key = (id(calibration), *((id(p), p._version) for p in model.parameters()))
        if key != self._key:
            self._model, self._reason = None, ""
            if not calibration or calibration.get("fingerprint") != model.fingerprint():
                self._reason = (f"this {type(model).__name__} has no int8 calibration for its weights "
                                f"({self._calibrate_with} adds one)")
            else:
                try:
                    self._model = self._build(model, calibration.get("ranges"))
                except Int8UnavailableError as e:
                    self._reason = str(e)
            self._key = key
        if self._model is None:
            raise Int8UnavailableError(self._reason)
        return self._model


@dataclass
class Calibration:
    """What :func:`calibrate` measured: the auto-encoder's record (encoder ranges with its fingerprint)
    and each bank's (decoder ranges), by bank name, as stored under :data:`METADATA_KEY`."""

    autoencoder: dict[str, Any]
    banks: dict[str, dict[str, Any]] = field(default_factory=dict)


@torch.no_grad()
def calibrate(autoencoder: StyleBankAutoEncoder, banks: Iterable[StyleBank], images: Iterable[torch.Tensor], *,
              encoder_ranges: Mapping[str, float] | None = None) -> Calibration:
    """Calibrate int8 inference on ``images`` (RGB ``[1, 3, H, W]`` in [0, 1], sides multiples of 4) with
    the float32 model on the CPU; nothing given is modified.

    Records the maximum of every encoder activation, and for each bank the maxima of the decoder's
    and ``psnr_db``: how close its int8 output comes to float32 on these images (mean PSNR of the
    8-bit outputs), measured with ``encoder_ranges`` (default: the ones just measured), which is
    what ``precision="auto"`` goes by (:data:`AUTO_MIN_PSNR`).
    """
    fast = reparameterize(copy.deepcopy(autoencoder).float().cpu(), onednn=False)
    enc = list(fast.encoder)
    *ups, grid = list(fast.decoder)
    if not isinstance(grid, SubPixelGridConv) or len(enc) != 3:
        raise Int8UnavailableError("int8 calibration supports the default StyleBank architecture only")
    kernels = {bank.name: (bank.conv.weight.detach().float().cpu(), bank.conv.bias.detach().float().cpu())
               for bank in banks}
    images = [image.float().cpu() for image in images]
    if not images:
        raise ValueError("calibration needs at least one image")
    peaks = dict.fromkeys(ENCODER_ACTIVATIONS, 0.0)
    bank_peaks = {name: dict.fromkeys(DECODER_ACTIVATIONS, 0.0) for name in kernels}
    references: dict[str, list[torch.Tensor]] = {name: [] for name in kernels}
    for x in images:
        for key, layer in zip(ENCODER_ACTIVATIONS, enc):
            x = layer(x)
            peaks[key] = max(peaks[key], float(x.max()))
        for name, (weight, bias) in kernels.items():
            y = F.conv2d(F.pad(x, (weight.shape[-1] // 2,) * 4, mode="reflect"), weight, bias)
            for up in ups:
                y = up(y)
            z = _conv_relu(F.pad(y, (grid.border,) * 4, mode="replicate"), grid.up.weight, grid.up.bias)
            for key, value in zip(DECODER_ACTIVATIONS, (y, z)):
                bank_peaks[name][key] = max(bank_peaks[name][key], float(value.max()))
            references[name].append(tensor_to_bytes(grid(y)))
    record = {"fingerprint": autoencoder.fingerprint(), "images": len(images),
              "ranges": {k: round(v, 6) for k, v in peaks.items()}}
    records = {name: {"images": len(images), "ranges": {k: round(v, 6) for k, v in found.items()}}
               for name, found in bank_peaks.items()}
    if int8_is_available():
        quantized = QuantizedAutoEncoder(autoencoder, encoder_ranges or record["ranges"])
        scores: dict[str, list[float]] = {name: [] for name in kernels}
        for i, x in enumerate(images):
            feats = quantized.encode(x.mul(255).round_().to(torch.uint8).contiguous(memory_format=torch.channels_last))
            for name, (weight, bias) in kernels.items():
                fused = quantized.apply_bank(feats, name, lambda: (weight, bias))
                scores[name].append(_psnr(quantized.decode(fused, records[name]["ranges"])[0], references[name][i]))
        for name, found in scores.items():
            records[name]["psnr_db"] = round(sum(found) / len(found), 2)
    return Calibration(record, records)


def _psnr(out: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR (dB) of 8-bit image bytes against others of the same layout."""
    mse = float((out.float() - reference.float()).square().mean())
    return 10 * math.log10(255 ** 2 / max(mse, 1e-10))


def _check_ranges(ranges: Mapping[str, Any] | None, keys: tuple[str, ...], owner: str) -> None:
    ranges = ranges if isinstance(ranges, Mapping) else {}
    bad = [k for k in keys if not (isinstance(ranges.get(k), (int, float)) and ranges[k] > 0)]
    if bad:
        raise Int8UnavailableError(f"{owner}'s int8 calibration lacks a positive range for {', '.join(bad)}")


def decoder_ranges(banks: Iterable[StyleBank]) -> dict[str, float]:
    """The decoder ranges for features made by ``banks`` (one, or fused): the largest of their
    calibrated ranges (a fusion's pre-activations are a convex combination of the banks').

    Raises:
        Int8UnavailableError: a bank has no calibration.
    """
    found: dict[str, float] = dict.fromkeys(DECODER_ACTIVATIONS, 0.0)
    for bank in banks:
        record = getattr(bank, "int8_calibration", None)
        if not record:
            raise Int8UnavailableError(f"the bank '{bank.name}' has no int8 calibration "
                                       "(python -m training.calibrate_stylebank adds one)")
        ranges = record.get("ranges", {})
        _check_ranges(ranges, DECODER_ACTIVATIONS, f"the bank '{bank.name}'")
        found = {k: max(found[k], float(ranges[k])) for k in DECODER_ACTIVATIONS}
    return found


def int8_fidelity(banks: Iterable[StyleBank]) -> float:
    """The lowest int8-against-float32 PSNR (dB) measured in ``banks``' calibrations; ``-inf`` if one has none."""
    found = [float((getattr(bank, "int8_calibration", None) or {}).get("psnr_db", -math.inf)) for bank in banks]
    return min(found, default=-math.inf)
