"""VGG-16 feature extractor with named layers, shared by every method.

Layers are addressed by name (``relu1_1`` ... ``relu5_3``, ``conv*_*``, ``pool1`` ... ``pool4``),
the ImageNet input normalisation lives inside the module, and a forward pass stops at the
deepest layer asked for. The module layout matches torchvision's ``vgg16().features``, so
its weights load from safetensors files keyed ``features.N.weight`` / ``features.N.bias``
(torchvision's and timm's ``vgg16.tv_in1k`` layout).

Speed: on CUDA and on CPUs with native bf16 (AVX512-BF16 or AMX-BF16) the pass runs in bf16 on
channels-last tensors (a standing bf16 copy of the frozen weights; autocast while they are being
trained); features are returned in float32 (or, with ``dtype=None``, as computed: the Gatys
objective takes them so, sparing a copy of every map). On the CPU each frozen convolution runs with
its ReLU fused (:func:`~styletransfer.reparam.conv_relu`), also when gradients flow to the input;
on an AVX2 CPU without AVX-512 a float32 pass over an image of 256x192 px or more runs them through
NNPACK's Winograd kernels on NCHW maps instead (:mod:`~styletransfer.winograd`).
Set ``STYLETRANSFER_FORCE_FP32=1`` (or ``precision="fp32"``) to force float32 everywhere.

Reference: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from .cpu import cpu_flags
from .ops import max_pool_2x2
from .reparam import conv_relu, reparameterize
from .serialization import SafetensorsMixin
from .winograd import nnpack_conv_relu, nnpack_pays

__all__ = [
    "VGGConfig", "VGGEncoder", "VGG16_BLOCK_DEPTHS", "IMAGENET_MEAN", "IMAGENET_STD", "bf16_is_fast",
    "InferenceCopy", "check_precision", "precision_uses_bf16", "receptive_field",
]

VGG16_BLOCK_DEPTHS = (2, 2, 3, 3, 3)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_PRECISIONS = ("auto", "bf16", "fp32")
POOLINGS = ("max", "avg")
"""VGG's pooling: ``max`` as trained, or ``avg``, which Gatys et al. found gives smoother results."""


@dataclass(frozen=True)
class VGGConfig:
    """Architecture of the encoder.

    Args:
        widths: channels of each of the five blocks; VGG-16 is (64, 128, 256, 512, 512).
            Tests use tiny widths such as (4, 8, 8, 8, 8); the layer names stay the same.
        pooling: ``"max"`` (as trained) or ``"avg"`` (Gatys et al. found it gives smoother results).
        mean: input normalisation mean (RGB, images in [0, 1]).
        std: input normalisation std.
    """

    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    pooling: str = "max"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if len(self.widths) != len(VGG16_BLOCK_DEPTHS) or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must be 5 positive ints, got {self.widths!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        # Accept lists from JSON configs; keep the dataclass hashable.
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))


def _layer_names() -> list[str]:
    names: list[str] = []
    for block, depth in enumerate(VGG16_BLOCK_DEPTHS, start=1):
        for i in range(1, depth + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        if block < len(VGG16_BLOCK_DEPTHS):
            names.append(f"pool{block}")
    return names


LAYER_NAMES: tuple[str, ...] = tuple(_layer_names())


def receptive_field(layer: str) -> tuple[int, int]:
    """The size in pixels of the input window one position of ``layer`` sees, and the layer's stride
    (3x3 convolutions, 2x2 pooling): ``relu1_1`` (3, 1), ``relu3_1`` (24, 4), ``relu5_1`` (132, 16)."""
    if layer not in LAYER_NAMES:
        raise ValueError(f"unknown VGG layer {layer!r}; valid names are {', '.join(LAYER_NAMES)}")
    size, stride = 1, 1
    for name in LAYER_NAMES[: LAYER_NAMES.index(layer) + 1]:
        if name.startswith("conv"):
            size += 2 * stride
        elif name.startswith("pool"):
            size, stride = size + stride, stride * 2
    return size, stride


def bf16_is_fast(device: torch.device | str) -> bool:
    """Whether bf16 autocast pays on ``device`` (CUDA with bf16, or a CPU with AVX512-BF16/AMX).

    ``STYLETRANSFER_FORCE_FP32=1`` in the environment makes this ``False`` everywhere.
    """
    if os.environ.get("STYLETRANSFER_FORCE_FP32", "") not in ("", "0"):
        return False
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return (device.type == "cpu" and torch.backends.mkldnn.is_available()
            and bool(cpu_flags() & {"amx_bf16", "avx512_bf16"}))


def check_precision(precision: str, choices: tuple[str, ...] = _PRECISIONS) -> str:
    """Return ``precision`` if it is one of ``choices`` (default ``"auto"``, ``"bf16"``, ``"fp32"``), else raise
    ``ValueError``."""
    if precision not in choices:
        raise ValueError(f"precision must be one of {choices}, got {precision!r}")
    return precision


def precision_uses_bf16(precision: str, device: torch.device | str) -> bool:
    """Whether a model with this ``precision`` setting runs in bf16 on ``device``."""
    if precision == "auto":
        return bf16_is_fast(device)
    return precision == "bf16" and os.environ.get("STYLETRANSFER_FORCE_FP32", "") in ("", "0")


class InferenceCopy:
    """A channels-last copy of a module in ``dtype`` for inference without gradients, rebuilt when its weights
    change.

    Under autocast every call casts the float32 weights and converts layouts again; on the AMX-BF16
    CPU a standing bf16 copy ran the AdaIN decoder about 25% faster. The copy is also
    :func:`~styletransfer.reparam.reparameterize`-d (sub-pixel upsampling convolutions and the
    like, exact up to rounding) and its weights take no gradients: a module being trained keeps
    using its float32 weights under autocast, while the frozen VGG runs its bf16 copy also when
    gradients flow to its input (Gatys, and the training losses). A float32 copy is what a CPU
    without fast bf16 runs the frozen networks on (the AdaIN decoder 1.4-1.7x faster than the plain
    module on an AVX2-only CPU, see ``benchmarks/speed.md``).
    """

    def __init__(self, dtype: torch.dtype = torch.bfloat16) -> None:
        self.dtype = dtype
        self._copy: nn.Module | None = None
        self._key: tuple = ()

    def __deepcopy__(self, memo: dict) -> InferenceCopy:
        return InferenceCopy(self.dtype)  # a deep copy of the owner makes its own copy when asked

    def get(self, module: nn.Module) -> nn.Module:
        key = tuple((id(p), p._version, p.device) for p in module.parameters())
        if self._copy is None or key != self._key:
            fast = reparameterize(copy.deepcopy(module)).requires_grad_(False)
            self._copy = fast.to(self.dtype).to(memory_format=torch.channels_last).eval()
            self._key = key
        return self._copy


class VGGEncoder(nn.Module, SafetensorsMixin):
    """Frozen VGG-16 ``features`` with named layers and the input normalisation inside.

    Args:
        config: architecture (:class:`VGGConfig`); defaults to VGG-16.
        precision: ``"auto"`` (bf16 autocast where :func:`bf16_is_fast`), ``"bf16"`` or ``"fp32"``.

    Call it as ``encoder(images, ["relu1_1", "relu4_2"])`` with RGB images in [0, 1],
    shape ``[B, 3, H, W]``; it returns ``{name: float32 feature map}``.
    """

    config_class = VGGConfig
    layer_names = LAYER_NAMES

    def __init__(self, config: VGGConfig | None = None, *, precision: str = "auto") -> None:
        super().__init__()
        self.config = config or VGGConfig()
        self.precision = check_precision(precision)
        layers: list[nn.Module] = []
        in_ch = 3
        for name in LAYER_NAMES:
            kind = name[:4]
            if kind == "conv":
                out_ch = self.config.widths[int(name[4]) - 1]
                layers.append(nn.Conv2d(in_ch, out_ch, 3, padding=1))
                in_ch = out_ch
            elif kind == "relu":
                layers.append(nn.ReLU(inplace=False))
            else:
                pool = nn.MaxPool2d if self.config.pooling == "max" else nn.AvgPool2d
                layers.append(pool(2, 2))
        self.features = nn.Sequential(*layers)
        self._index = {name: i for i, name in enumerate(LAYER_NAMES)}
        self.register_buffer("mean", torch.tensor(self.config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.config.std).view(1, 3, 1, 1), persistent=False)
        self._bf16, self._fp32 = InferenceCopy(torch.bfloat16), InferenceCopy(torch.float32)
        self.requires_grad_(False)
        self.eval()

    def channels(self, layer: str) -> int:
        """Number of channels of the named layer's output."""
        self._check_layers([layer])
        return self.config.widths[int(layer[4]) - 1]

    def conv(self, layer: str) -> nn.Conv2d:
        """The convolution feeding ``layer`` (``convB_I`` or ``reluB_I``)."""
        self._check_layers([layer])
        if layer[:4] not in ("conv", "relu"):
            raise ValueError(f"{layer!r} is not a convolution or ReLU layer")
        module = self.features[self._index["conv" + layer[4:]]]
        assert isinstance(module, nn.Conv2d)
        return module

    def uses_bf16(self, device: torch.device | str) -> bool:
        """Whether a forward pass on ``device`` will run in bf16."""
        return precision_uses_bf16(self.precision, device)

    def _check_layers(self, layers: Sequence[str]) -> None:
        unknown = [layer for layer in layers if layer not in self._index]
        if unknown:
            raise ValueError(f"unknown VGG layer(s) {unknown}; valid names are {', '.join(LAYER_NAMES)}")

    def forward(self, images: torch.Tensor, layers: Sequence[str], *, pooling: str | None = None,
                dtype: torch.dtype | None = torch.float32) -> dict[str, torch.Tensor]:
        """Features of the requested layers, computed up to the deepest of them only.

        Args:
            images: RGB in [0, 1], ``[B, 3, H, W]``.
            layers: layer names, e.g. ``("relu1_1", "relu4_1")``.
            pooling: ``"max"`` or ``"avg"`` for this call (2x2, stride 2); None: the config's.
            dtype: of the features returned, contiguous; None: as the pass computed them (bf16 and
                channels-last in a bf16 pass), which spares a bf16 pass a copy of every map.

        Returns:
            ``{name: tensor}`` in the order requested.

        Raises:
            ValueError: an unknown layer name (the message lists the valid ones).
        """
        layers = list(layers)
        if not layers:
            raise ValueError("ask for at least one layer")
        if pooling not in (None, *POOLINGS):
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        kind = pooling or self.config.pooling
        pool: Callable[[torch.Tensor], torch.Tensor] | None = None  # None: the modules' own pooling
        if kind == "max" and not torch.is_grad_enabled():
            pool = max_pool_2x2  # no argmax indices where no backward pass needs them
        elif kind != self.config.pooling:
            pool = functools.partial(F.max_pool2d if kind == "max" else F.avg_pool2d, kernel_size=2, stride=2)
        self._check_layers(layers)
        assert images.ndim == 4 and images.shape[1] == 3, f"expected [B, 3, H, W], got {tuple(images.shape)}"
        wanted = set(layers)
        last = max(self._index[name] for name in layers)
        use_bf16 = self.uses_bf16(images.device)
        x = (images - self.mean) / self.std
        features = self.features
        frozen = not any(p.requires_grad for p in self.features.parameters())
        winograd = frozen and not use_bf16 and nnpack_pays(x)  # NNPACK's 3x3 convolutions take NCHW maps
        if use_bf16 or (frozen and images.device.type == "cpu" and not winograd):
            x = x.contiguous(memory_format=torch.channels_last)
            # The frozen network runs its standing bf16 copy (else on the CPU a float32 one), also when gradients
            # flow to the input (a Gatys step at 256 px 1.15x faster than under autocast, which casts every
            # weight per call).
            if frozen:
                fast = self._bf16 if use_bf16 else self._fp32
                features, x = fast.get(self.features), x.to(fast.dtype)
        # On the CPU a frozen convolution and its ReLU run as one oneDNN call, unless the map between them is asked for.
        fuse = frozen and images.device.type == "cpu"
        found: dict[str, torch.Tensor] = {}
        relu_done = False
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            for name, module in zip(LAYER_NAMES[: last + 1], features[: last + 1]):
                if relu_done:  # by the fused convolution before it
                    relu_done = False
                elif pool is not None and name.startswith("pool"):
                    x = pool(x)
                elif fuse and name.startswith("conv") and name not in wanted:
                    # not the RGB layer: NNPACK ran it 2.4-2.6x slower at 128 and 256 px, no faster at 512
                    x, relu_done = (nnpack_conv_relu if winograd and x.shape[1] > 3 else conv_relu)(x, module), True
                else:
                    x = module(x)
                if name in wanted:
                    kept = x if dtype is None else x.contiguous().to(dtype)  # transposed in bf16: 1.3-1.7x faster
                    # a convolution's map must not share memory with the ReLU after it (in place in the bf16 copy)
                    found[name] = kept.clone() if kept is x and name.startswith("conv") else kept
        return {name: found[name] for name in layers}

    def load_features(self, path: str | os.PathLike) -> None:
        """Load ``features.N.weight/bias`` from a safetensors file (other keys, e.g. a classifier, are ignored).

        Raises:
            ValueError: the file lacks a needed tensor or one has the wrong shape.
        """
        own = self.state_dict()
        state: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
            missing = sorted(set(own) - keys)
            if missing:
                raise ValueError(f"'{Path(path).name}' is not a VGG-16 features file: missing {missing[:4]}")
            for key, ref in own.items():
                t = f.get_tensor(key)
                if t.shape != ref.shape:
                    raise ValueError(
                        f"'{Path(path).name}': {key} has shape {tuple(t.shape)}, expected {tuple(ref.shape)}"
                    )
                state[key] = t.float()
        self.load_state_dict(state, strict=True)

    @classmethod
    def from_safetensors(
        cls, path: str | os.PathLike, config: VGGConfig | None = None, *, precision: str = "auto"
    ) -> VGGEncoder:
        """Build an encoder and load its weights from a torchvision-layout safetensors file."""
        encoder = cls(config, precision=precision)
        encoder.load_features(path)
        return encoder
