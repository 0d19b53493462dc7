"""Gatys et al. optimisation-based style transfer, with colour control and coarse-to-fine.

The pixels of an image are optimised so that its VGG features match the content image's
(content layers, default ``relu4_2``) and its Gram matrices match the style images'
(style layers, default ``relu1_1 ... relu5_1``), with the losses normalised exactly as in
the paper so the weights mean what the papers mean:

    L_content = 1/2 * sum (F - P)^2                     (summed over channels and positions)
    E_l       = 1/(4 N_l^2 M_l^2) * sum (G_l - A_l)^2   (G unnormalised Gram, N channels, M positions)
    L_style   = sum_l w_l E_l,   L = alpha L_content + beta L_style + gamma TV

Note that our VGG sees torch-normalised input (ImageNet mean/std on [0, 1]) while the paper's
Caffe VGG saw 0-255 pixels, about 58x larger; style terms scale with the 4th power of that and
content terms with the 2nd, so good ``style_weight / content_weight`` ratios here are far larger
than the paper's 1e3 .. 1e4.

References: Gatys, Ecker, Bethge, "Image Style Transfer Using Convolutional Neural Networks",
CVPR 2016; Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer", CVPR 2017
(colour control, coarse-to-fine, spatial control).

Spatial control gives each style image a region of the output (a mask): each region's Gram
matrices are means over its positions (the mask weighting every position), matched to its
style's, and each region's term is weighted by its share ``a_r`` of the positions:

    E_l = sum_r a_r / (4 N_l^2) * sum (G_r / M_r - A_r / M_r')^2

(``G_r`` the mask-weighted Gram, ``M_r`` the mask's sum, ``A_r`` the Gram of region r's style and
``M_r'`` its number of positions), which is ``E_l`` above when one mask covers everything. A style
mask takes ``A_r`` and ``M_r'`` over a region of the style image in the same way.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Union

import torch
import torch.nn.functional as F
from PIL import Image

from . import color as colorops
from .color import COLOR_MODES
from .imageio import ImageInputError, ImageSource, load_image, pil_to_tensor, scaled_size, tensor_to_pil
from .masks import MaskSource, prepare_masks
from .ops import gram_matrix, seeded_generator, total_variation
from .progress import StepPace, step_pace
from .vgg import POOLINGS, VGGEncoder, receptive_field

__all__ = ["GatysConfig", "StepInfo", "GatysResult", "stylize", "measure_losses", "default_schedule", "fast_schedule",
           "parse_schedule", "recorded_controls", "upscale_result", "weighted_terms", "loss_text"]

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "content+noise")
LBFGS_HISTORY = 50
"""Curvature pairs L-BFGS keeps, each two float32 images (all 50: 225 MB at 512x384, 900 MB at 1024x768)."""
FIRST_STEP_EXPONENT = 1.0
"""L-BFGS at a finer size starts with the last size's inverse Hessian scale times (pixel ratio) ** this:
the loss is a mean over positions, so its curvature per pixel falls in proportion to the pixel count."""
OVERSHOOT = 2.0
"""L-BFGS steps without a line search; a step whose loss exceeds this many times the best of its size so far has
overshot. The size then goes on from its best point with a step ``SHRINK`` times as long as the one that
overshot, moving no pixel by more than ``MAX_RESTART_MOVE`` (pixels in [0, 1]; good steps move
them by 0.01-0.2). The case met: towards candy, torch's tiny first step (``grad / |grad|_1``) from a photo gave
no curvature pair (its ``y.s`` not above torch's 1e-10), so the second step was ``-grad`` itself, which
saturated every pixel; without the restart most such runs at 128 px never got below their start."""
SHRINK = 0.1
MAX_RESTART_MOVE = 0.1
COLOR_DIRECTIONS = ("style_to_content", "content_to_style")
UPSCALES = ("detail", "bicubic")
GUIDANCES = ("simple", "inside")
StyleWeights = Sequence[Union[float, Sequence[float]]]  # one number per style, or one per style layer
MAX_SIZE = 4096


@dataclass(frozen=True)
class GatysConfig:
    """Defaults of :func:`stylize` (each is also a keyword argument there)."""

    size: int = 512
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    style_layer_weights: tuple[float, ...] | None = None  # None: equal, 1/len(style_layers) each (paper)
    content_weight: float = 1.0
    style_weight: float = 1e7  # beta/alpha in the paper's range for our input scale (see README)
    tv_weight: float = 0.0
    pooling: str = "max"  # VGG's pooling: "max" (as trained) or "avg" (the paper's choice for smoother results)
    optimizer: str = "lbfgs"
    num_steps: int = 300
    lr: float | None = None  # None: 1.0 for L-BFGS, 0.02 for Adam (pixels in [0, 1])
    init: str = "content"
    noise_ratio: float = 0.5
    seed: int = 0
    style_scale: float = 1.0
    coarse_to_fine: bool = False
    scales: tuple[int, ...] | None = None
    scale_steps: tuple[int, ...] | None = None
    upscale: str = "detail"
    guidance: str = "simple"  # region masks at each layer: area-averaged, or only positions seeing inside
    time_limit: float | None = None  # seconds for the whole run; None: no limit
    color: str = "none"
    color_space: str = "yiq"
    color_method: str = "cholesky"
    color_direction: str = "style_to_content"


@dataclass(frozen=True)
class StepInfo:
    """What the progress callback receives after every optimisation step."""

    step: int
    total: int
    scale: int
    size: tuple[int, int]
    losses: dict[str, float]
    preview: Image.Image | None = None
    seconds: float = 0.0
    """Since the run started."""
    seconds_left: float = 0.0
    """An estimate of the time to the end, at most what ``time_limit`` leaves: the steps left at this size at
    the pace it has kept since its first step, and those of every size to come at the pace this process
    measured at the size nearest to it (:mod:`~styletransfer.progress`), or where it has measured none, at this
    size's pace scaled by the pixel ratio. A process's first run thus runs high while a coarse size runs where
    a finer size's steps cost less per pixel (measured in ``benchmarks/gatys.md``)."""


@dataclass
class GatysResult:
    """The stylised image and a record of the run."""

    image: Image.Image
    losses: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False
    final_losses: dict[str, float] = field(default_factory=dict)
    """The losses of the returned image, as the run measured them at the last size it reached (before
    8-bit rounding; empty when it ended before a step there): at most those of any step at that size, as
    the point after a size's last step is measured too."""

    @property
    def hit_time_limit(self) -> bool:
        """Whether ``time_limit`` ended the run before its planned steps (a cancel sets ``stopped``)."""
        return not self.stopped and self.settings["steps_taken"] != self.settings["scale_steps"]

    def steps_taken_text(self) -> str:
        """The steps each size took against the plan, e.g. ``"40+20+12 of 50+20+12 steps"``."""
        taken, planned = self.settings["steps_taken"], self.settings["scale_steps"]
        return f"{'+'.join(map(str, taken))} of {'+'.join(map(str, planned))} steps"


def default_schedule(size: int, num_steps: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Coarse-to-fine sizes (halving down to at least 256 px) and steps per size.

    A sixth of ``num_steps`` go to the coarsest size, where steps are cheap and the large-scale
    structure forms, and 17/60 (about 28%) to each finer size: for 512 px and 300 steps, 50 steps
    at 256 px and 85 at 512 px, about a third of the time of 300 steps at 512 px (a step costs
    roughly in proportion to the pixel count). On two test pairs this split ended about 2% lower in
    512 px loss than 100 + 75 in the same time (``benchmarks/bench_gatys.py``).
    """
    sizes = [size]
    while sizes[0] // 2 >= 256:
        sizes.insert(0, sizes[0] // 2)
    if len(sizes) == 1:
        return (size,), (num_steps,)
    first = max(1, round(num_steps / 6))
    rest = max(1, round(num_steps * 17 / 60))
    return tuple(sizes), (first,) + (rest,) * (len(sizes) - 1)


def fast_schedule(size: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A quick coarse-to-fine schedule for ``scales`` / ``scale_steps``: 50 steps at a quarter of
    ``size``, 20 at half, 12 at full size (sizes below 64 px are left out: 50 at half size and 12 at
    full size, or 100 at full size alone).

    The coarsest steps set the large strokes cheaply, but past about 50 there they hardly lower the
    final loss, while each full-size step lowers it markedly; so strokes come out larger than in a full
    run, and the 512 px loss stays well above it. The former 100/30/8 split drew the same strokes and
    ended 12-18% higher in 512 px loss on five pairs; at 512 px it took 27.3-30.1 s against 23.3-24.0 s for
    this one in float32 on an AVX2-only 2-core CPU (``benchmarks/gatys.md``), and 6-8 s on one with
    AMX-BF16 (this split not measured there); ``time_limit`` caps it where the CPU is slower.
    """
    coarser = tuple(s for s in (size // 4, size // 2) if s >= 64)
    return coarser + (size,), ((100,), (50, 12), (50, 20, 12))[len(coarser)]


def parse_schedule(text: str | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``scales`` and ``scale_steps`` from text such as ``"128x100, 256x30, 512x8"``: long side x steps at
    each size, smallest first, separated by ``,``, ``;`` or ``+``; the last size is the output's.

    Raises:
        ValueError: a malformed entry, sizes that do not grow within [16, MAX_SIZE], or no step in all.
    """
    example = "e.g. 128x100, 256x30, 512x8"
    items = [item.strip().lower() for item in re.split(r"[,;+]", text or "") if item.strip()]
    if not items:
        raise ValueError(f"a schedule needs at least one size x steps, {example}")
    try:
        sizes, steps = zip(*((int(size), int(n)) for size, n in (item.split("x") for item in items)))
    except ValueError:
        raise ValueError(f"write each size as <long side>x<steps>, {example}; got {text!r}") from None
    _check_sizes(sizes, "the sizes")
    if min(steps) < 0 or sum(steps) < 1:
        raise ValueError(f"a schedule needs at least one step in all (a size given 0 only carries its start to the "
                         f"next), got {list(steps)}")
    return sizes, steps


def _check_sizes(sizes: Sequence[int], what: str) -> None:
    """A schedule's sizes: at least one, each larger than the one before, within [16, MAX_SIZE]."""
    if not sizes or list(sizes) != sorted(set(sizes)) or sizes[0] < 16 or sizes[-1] > MAX_SIZE:
        raise ValueError(f"{what} must grow, smallest first, within [16, {MAX_SIZE}] px, got {list(sizes)}")


def _check_inputs(encoder: VGGEncoder, n_styles: int, c: dict[str, Any]) -> None:
    if not isinstance(encoder, VGGEncoder):
        raise TypeError(f"encoder must be a VGGEncoder, got {type(encoder).__name__}")
    for key in ("content_layers", "style_layers"):
        if not c[key]:
            raise ValueError(f"{key} must name at least one layer")
        unknown = [name for name in c[key] if name not in encoder.layer_names]
        if unknown:
            raise ValueError(f"{key}: unknown layer(s) {unknown}; valid names are {', '.join(encoder.layer_names)}")
    if c["style_layer_weights"] is not None:
        if len(c["style_layer_weights"]) != len(c["style_layers"]):
            raise ValueError(
                f"style_layer_weights has {len(c['style_layer_weights'])} entries for "
                f"{len(c['style_layers'])} style layers"
            )
        if any(w < 0 for w in c["style_layer_weights"]):
            raise ValueError(f"style_layer_weights must be >= 0, got {list(c['style_layer_weights'])}")
    for key in ("content_weight", "style_weight", "tv_weight"):
        if not (math.isfinite(c[key]) and c[key] >= 0):
            raise ValueError(f"{key} must be a finite number >= 0, got {c[key]}")
    if c["num_steps"] < 1:
        raise ValueError(f"num_steps must be >= 1, got {c['num_steps']}")
    if not 16 <= c["size"] <= MAX_SIZE:
        raise ValueError(f"size must be in [16, {MAX_SIZE}] px, got {c['size']}")
    for key, allowed in (
        ("optimizer", OPTIMIZERS),
        ("init", INITS),
        ("color", COLOR_MODES),
        ("color_space", colorops.COLOR_SPACES),
        ("color_method", colorops.MATCH_METHODS),
        ("color_direction", COLOR_DIRECTIONS),
        ("upscale", UPSCALES),
        ("guidance", GUIDANCES),
        ("pooling", POOLINGS),
    ):
        if c[key] not in allowed:
            raise ValueError(f"{key} must be one of {allowed}, got {c[key]!r}")
    if c["lr"] is not None and not c["lr"] > 0:
        raise ValueError(f"lr must be > 0, got {c['lr']}")
    if not 0 <= c["noise_ratio"] <= 1:
        raise ValueError(f"noise_ratio must be in [0, 1], got {c['noise_ratio']}")
    if c["time_limit"] is not None and not (math.isfinite(c["time_limit"]) and c["time_limit"] > 0):
        raise ValueError(f"time_limit must be a number of seconds > 0 (or None for no limit), got {c['time_limit']}")
    if not 0.1 <= c["style_scale"] <= 4:
        raise ValueError(f"style_scale must be in [0.1, 4], got {c['style_scale']}")
    if n_styles < 1:
        raise ValueError("give at least one style image")
    if c["scales"] is not None:
        _check_sizes(c["scales"], "scales")
        if c["scale_steps"] is not None and (len(c["scale_steps"]) != len(c["scales"])
                                             or min(c["scale_steps"]) < 0 or sum(c["scale_steps"]) < 1):
            raise ValueError(f"scale_steps must give >= 0 steps for each of the {len(c['scales'])} scales, "
                             f">= 1 in all, got {list(c['scale_steps'])}")


def _check_masks(masks: Sequence[MaskSource] | None, style_masks: Sequence[MaskSource | None] | None, n_styles: int,
                 style_weights: StyleWeights | None) -> None:
    if style_masks is not None and len(style_masks) != n_styles:
        raise ImageInputError(f"got {len(style_masks)} style masks for {n_styles} styles; give one per style image "
                              "(None for the whole image)")
    if masks is None:
        return
    if style_weights is not None:
        raise ValueError("give either style_weights (a blend) or masks (a region per style), not both")
    if len(masks) != n_styles:
        raise ImageInputError(f"got {len(masks)} masks for {n_styles} styles; give one mask per style")


def _style_regions(style_masks: Sequence[MaskSource | None] | None, styles: list[torch.Tensor]
                   ) -> list[torch.Tensor | None] | None:
    """Each style mask checked against its style image and as a ``[1, 1, H, W]`` tensor at that image's size."""
    if style_masks is None:
        return None
    regions: list[torch.Tensor | None] = []
    for i, (mask, style) in enumerate(zip(style_masks, styles)):
        if mask is None:
            regions.append(None)
            continue
        h, w = style.shape[-2:]
        regions.append(prepare_masks([mask], (w, h), (h, w), names=[f"style mask {i + 1}"],
                                     image=f"style image {i + 1}").to(style.device))
    return regions


def _content_regions(masks: Sequence[MaskSource] | None, content: torch.Tensor, hw: tuple[int, int] | torch.Size
                     ) -> torch.Tensor | None:
    """``masks`` checked against the content image and area-averaged to ``hw``, ``[n, 1, h, w]``."""
    if masks is None:
        return None
    return prepare_masks(masks, (content.shape[-1], content.shape[-2]), tuple(hw)).to(content.device)


def _styles_at(size: int, styles: list[torch.Tensor], regions: list[torch.Tensor | None] | None, style_scale: float
               ) -> tuple[list[torch.Tensor], list[torch.Tensor | None] | None]:
    """The style images for an output of long side ``size``, and their style masks resampled to them."""
    scaled = [_resize_long(s, round(size * style_scale)) for s in styles]
    if regions is None:
        return scaled, None
    return scaled, [None if m is None else F.interpolate(m, size=s.shape[-2:], mode="area")
                    for m, s in zip(regions, scaled)]


def _style_mix(style_weights: StyleWeights | None, n_styles: int, layers: Sequence[str]) -> list[list[float]]:
    """Each style's share of each style layer's Gram target, ``[n_styles][n_layers]``, every layer's
    shares summing to 1. A weight is one number (all layers) or one number per style layer."""
    if style_weights is None:
        return [[1.0 / n_styles] * len(layers) for _ in range(n_styles)]
    if len(style_weights) != n_styles:
        raise ValueError(f"style_weights has {len(style_weights)} entries for {n_styles} style images")
    rows = []
    for i, w in enumerate(style_weights):
        row = [float(w)] * len(layers) if isinstance(w, numbers.Real) else [float(v) for v in w]
        if len(row) != len(layers):
            raise ValueError(f"style_weights entry {i + 1} has {len(row)} per-layer weights for the "
                             f"{len(layers)} style layers {', '.join(layers)}")
        rows.append(row)
    if any(v < 0 or not math.isfinite(v) for row in rows for v in row):
        raise ValueError(f"style_weights must be >= 0, got {list(style_weights)}")
    totals = [sum(column) for column in zip(*rows)]
    unweighted = [name for name, total in zip(layers, totals) if total <= 0]
    if unweighted:
        raise ValueError(f"style_weights give no style any weight at {', '.join(unweighted)}; "
                         "every style layer needs a positive weight in some style (or drop the layer)")
    return [[v / total for v, total in zip(row, totals)] for row in rows]


def _weights_record(mix: list[list[float]]) -> list[float] | list[list[float]]:
    """``mix`` as recorded in the settings: one number per style where it is the same at every layer."""
    if all(len(set(row)) == 1 for row in mix):
        return [row[0] for row in mix]
    return mix


def _resolve_controls(
    encoder: VGGEncoder,
    style: ImageSource | Sequence[ImageSource],
    style_weights: StyleWeights | None,
    controls: dict[str, Any],
) -> tuple[dict[str, Any], list[ImageSource], list[list[float]]]:
    """Checked settings, the style sources as a list, and each style's share of each style layer."""
    unknown = sorted(set(controls) - set(GatysConfig.__dataclass_fields__))
    if unknown:
        raise TypeError(f"unknown control(s) {unknown}; valid: {', '.join(GatysConfig.__dataclass_fields__)}")
    c = asdict(GatysConfig(**controls))
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    _check_inputs(encoder, len(styles), c)
    if c["scales"] is not None:  # the last of the scales is the output's size
        if "size" in controls and controls["size"] != c["scales"][-1]:
            raise ValueError(f"size {controls['size']} is not the last of the scales {list(c['scales'])}, which is the "
                             "output's long side; give one of them, or the same size in both")
        c["size"] = c["scales"][-1]
    return c, styles, _style_mix(style_weights, len(styles), c["style_layers"])


def _resize_long(t: torch.Tensor, long_side: int, mode: str = "bicubic") -> torch.Tensor:
    h, w = t.shape[-2:]
    s = long_side / max(h, w)
    return _resize_to(t, (max(16, round(h * s)), max(16, round(w * s))), mode)


def _resize_to(t: torch.Tensor, size: tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    return F.interpolate(t, size=size, mode=mode, align_corners=False, antialias=mode != "nearest").clamp(0, 1)


def upscale_result(x: torch.Tensor, target: torch.Tensor, coarse_target: torch.Tensor,
                   mode: str = "detail") -> torch.Tensor:
    """Carry a coarse scale's result ``x`` to the next scale, where the content is ``target``.

    ``"bicubic"`` only resamples, so the start is blurred; ``"detail"`` also adds the content
    detail that the coarse scale could not hold, ``target - up(coarse_target)`` (the finer band of
    a Laplacian pyramid), which is ``up(x) + target - up(coarse_target)``: where ``x`` still equals
    the coarse content, the result is the fine content exactly. Measured at 512 px, this start ends
    the same coarse-to-fine schedule 2-8% lower in loss on two test pairs (``benchmarks/bench_gatys.py``).
    """
    def up(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, size=target.shape[-2:], mode="bicubic", align_corners=False)

    x = up(x)
    if mode == "detail":
        x = x + (target - up(coarse_target))
    return x.clamp(0, 1)


class _Objective:
    """The paper's losses for fixed content features and style Gram targets: blended, or one per
    region when ``masks`` (``[n_styles, 1, H, W]`` at the content's size) give each style a region;
    ``style_masks`` (``[1, 1, h, w]`` at each style's size, or None) limit a style's Gram to a region."""

    def __init__(self, encoder: VGGEncoder, content: torch.Tensor, styles: list[torch.Tensor],
                 style_mix: list[list[float]], c: dict[str, Any], masks: torch.Tensor | None = None,
                 style_masks: Sequence[torch.Tensor | None] | None = None) -> None:
        # Features as the pass computes them (bf16 in a bf16 pass): gram_matrix takes them as they are.
        self.encoder = functools.partial(encoder, pooling=c["pooling"], dtype=None)
        self.content_layers = list(c["content_layers"])
        self.style_layers = list(c["style_layers"])
        n = len(self.style_layers)
        self.layer_weights = list(c["style_layer_weights"] or [1.0 / n] * n)
        self.weights = (c["content_weight"], c["style_weight"], c["tv_weight"])
        self.layers = list(dict.fromkeys(self.content_layers + self.style_layers))
        self.inside = c["guidance"] == "inside"
        self.regions: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
        with torch.no_grad():
            feats = self.encoder(content, self.layers if masks is not None else self.content_layers)
            self.content_targets = {k: feats[k].float() for k in self.content_layers}
            grams = [self._style_grams(style, mask) for style, mask in zip(styles, style_masks or [None] * len(styles))]
            if masks is None:
                # Blending targets minimises the weighted sum of per-style losses (same gradient).
                self.gram_targets = {name: sum(mix[layer] * g[name] for g, mix in zip(grams, style_mix))
                                     for layer, name in enumerate(self.style_layers)}
            else:
                self.gram_targets = {name: torch.cat([g[name] for g in grams]) for name in self.style_layers}
                self.regions = {name: _region_weights(masks, feats[name].shape[-2:], self._erosion(name))
                                for name in self.style_layers}

    def _erosion(self, layer: str) -> int:
        """How many positions to erode masks by at ``layer``: with ``inside`` guidance, so that each
        position left sees only its region (its receptive field's half-width, in the layer's positions)."""
        if not self.inside:
            return 0
        size, stride = receptive_field(layer)
        return math.ceil((size - 1) / 2 / stride)

    def _style_grams(self, style: torch.Tensor, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """A style image's Gram matrices, over the region ``mask`` (``[1, 1, H, W]``) when there is one."""
        feats = self.encoder(style, self.style_layers)
        if mask is None:
            return {name: gram_matrix(feats[name]) for name in self.style_layers}
        grams = {}
        for name in self.style_layers:
            root, rescale, _ = _region_weights(mask, feats[name].shape[-2:], self._erosion(name))
            grams[name] = gram_matrix(feats[name] * root) * rescale
        return grams

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.encoder(x, self.layers)
        content = sum(0.5 * (feats[k].float() - self.content_targets[k]).pow(2).sum() for k in self.content_layers)
        per_layer: dict[str, torch.Tensor] = {}
        for name, w in zip(self.style_layers, self.layer_weights):
            f, n = feats[name], feats[name].shape[1]
            # gram_matrix divides by M, so sum((G/M - A/M)^2) / (4 N^2) = sum((G - A)^2) / (4 N^2 M^2).
            if self.regions is None:
                error = (gram_matrix(f) - self.gram_targets[name]).pow(2).sum()
            else:  # each region's Gram, a mean over its positions, against its style's; weighted by its area
                root, rescale, share = self.regions[name]
                grams = gram_matrix(f * root) * rescale
                error = ((grams - self.gram_targets[name]).pow(2).sum((1, 2)) * share).sum()
            per_layer[f"style/{name}"] = w * error / (4 * n * n)
        style = sum(per_layer.values(), x.new_zeros(()))
        tv = total_variation(x)
        a, b, g = self.weights
        return {"content": content, "style": style, "tv": tv, "total": a * content + b * style + g * tv, **per_layer}


def _region_weights(masks: torch.Tensor, hw: tuple[int, int] | torch.Size, erode: int = 0
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For guided Gram matrices at a layer of size ``hw``: the square root of each mask there
    (``[n, 1, h, w]``, to weight the features with), the factor that turns ``gram_matrix``'s mean
    over all positions into the mean over the region (``[n, 1, 1]``), and each region's share of
    the positions (``[n]``). ``erode`` > 0 shrinks each mask by that many positions (a minimum
    filter; the image border does not erode), unless that leaves less than half a position."""
    m = F.interpolate(masks, size=tuple(hw), mode="area")
    if erode:
        eroded = -F.max_pool2d(-m, 2 * erode + 1, stride=1, padding=erode)
        m = torch.where((eroded.sum((1, 2, 3)) >= 0.5).view(-1, 1, 1, 1), eroded, m)
    share = m.sum((1, 2, 3)) / (m.shape[-2] * m.shape[-1])
    return m.sqrt(), (1 / share.clamp_min(1e-12)).view(-1, 1, 1), share


def _as_cancel(cancel: threading.Event | Callable[[], bool] | None) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    if isinstance(cancel, threading.Event):
        return cancel.is_set
    return cancel


def _prepare_images(content: torch.Tensor, styles: list[torch.Tensor], c: dict[str, Any]
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Apply colour control to the optimisation inputs (before any resizing)."""
    if c["color"] == "histogram":
        if c["color_direction"] == "style_to_content":
            styles = [colorops.match_color(s, content, c["color_method"]) for s in styles]
        else:
            content = colorops.match_color(content, styles[0], c["color_method"])
    elif c["color"] == "luminance":
        styles = [colorops.match_luminance(s, content) for s in styles]
        content = colorops.luminance(content).expand(-1, 3, -1, -1).contiguous()
    return content, styles


def stylize(
    content: ImageSource,
    style: ImageSource | Sequence[ImageSource],
    *,
    encoder: VGGEncoder,
    style_weights: StyleWeights | None = None,
    init_image: ImageSource | None = None,
    masks: Sequence[MaskSource] | None = None,
    style_masks: Sequence[MaskSource | None] | None = None,
    progress: Callable[[StepInfo], None] | None = None,
    preview_every: int = 25,
    cancel: threading.Event | Callable[[], bool] | None = None,
    **controls: Any,
) -> GatysResult:
    """Optimise an image to have ``content``'s features and the style's Gram statistics.

    Args:
        content: the content image (path, bytes, PIL or array; any mode, see ``imageio``).
        style: one style image, or a list of them blended with ``style_weights``.
        encoder: the VGG-16 encoder (its ``precision`` decides bf16 or float32 passes).
        style_weights: non-negative weights, one per style image (normalised to sum 1); an entry may
            also be a sequence with one weight per style layer, normalised per layer across the
            styles: scale control (Gatys et al. 2017), e.g. ``[(1, 1, 0, 0, 0), (0, 0, 1, 1, 1)]``
            takes the fine texture (relu1_1, relu2_1) from style 1 and the coarser structure from style 2.
        init_image: an image to start from instead of the content, e.g. an earlier result to refine
            (resized to the first size; with ``init="content+noise"`` it is mixed with noise instead
            of the content; ``init="noise"`` ignores it, so that combination is an error).
        masks: spatial control (Gatys et al. 2017): one mask per style image at the content's input
            size (white, or opaque paint on a transparent layer, = that style's region). Each
            region's Gram matrices (means over its positions, the masks area-averaged to each layer)
            are matched to its style's, each term weighted by the region's share of the image;
            uncovered areas have only the content loss (near a region's edge the receptive fields of
            its features still carry some style). Not together with ``style_weights``.
        style_masks: one per style image (None: all of it), at that image's size: its Gram matrices
            are taken over that region only, e.g. a painting's sky for the content's sky (the same
            painting given twice, with two style masks and two ``masks``). The ``guidance`` control
            says how masks reach each layer: ``"simple"`` area-averages them; ``"inside"`` also
            erodes them there by the layer's receptive field, so only positions that see nothing
            but their region count (less of a region's style spills over its edge; the paper's
            "inside" guidance channels).
        progress: called after every step with a :class:`StepInfo`; every ``preview_every``
            steps (and at the last) it carries a preview image.
        preview_every: steps between previews (>= 1).
        cancel: an Event or a callable; when set, the run stops and the best image so far is returned
            (at the output size: a coarser scale's image is carried up as between scales).
        **controls: any field of :class:`GatysConfig`: ``size`` (long side of the output,
            16..4096, default 512), ``content_layers``, ``style_layers``, ``style_layer_weights``,
            ``content_weight`` (alpha), ``style_weight`` (beta), ``tv_weight``, ``pooling`` (VGG's
            pooling: ``"max"`` as trained, or ``"avg"``, which the paper chose for smoother results), ``optimizer``
            (``"lbfgs"``/``"adam"``), ``num_steps``, ``lr``, ``init`` (``"content"``, ``"noise"``,
            ``"content+noise"``), ``noise_ratio``, ``seed``, ``style_scale`` (style size relative to
            the output), ``coarse_to_fine`` / ``scales`` / ``scale_steps`` (explicit schedule: sizes
            growing, the last the output's, so ``size`` may be left out; a size given no steps only carries
            its start to the next),
            ``upscale`` (how a scale's result starts the next: ``"detail"`` adds the content's
            finer detail, ``"bicubic"`` only resamples; see :func:`upscale_result`), ``time_limit``
            (seconds for the whole run; the schedule's steps become the most each size may take, each
            size getting a share of the time in proportion to its planned steps x pixels, or to their
            cost where this process has measured steps at these sizes and the plan fits, and a step
            starts only when it is expected to end in time: the run ends within a step of the limit; what
            the run's first step takes beyond the pace measured, all of it where none is, comes off the limit
            before the shares, as it pays one-off costs in a fresh process),
            ``color`` (``"none"``, ``"luminance"``, ``"histogram"``), ``color_space`` (``"yiq"``,
            ``"ycbcr"``), ``color_method`` (``"cholesky"``, ``"eigen"``), ``color_direction``
            (``"style_to_content"``, ``"content_to_style"``).

    Returns:
        A :class:`GatysResult`: the image (long side ``size``, content's aspect ratio), the
        losses of every step (``content``, ``style``, ``tv``, ``total`` and each style layer's
        term ``style/<layer>``), wall time, the resolved settings (with ``steps_taken``, the steps
        each scale took, ``init_image``, whether one was given, ``masks``, how many, ``style_masks``,
        which styles had one, ``precision``, ``"bf16"`` or ``"fp32"`` VGG passes, and ``stopped``; see
        :func:`recorded_controls`), whether it was stopped, and the losses of the returned image
        (``final_losses``).

    Raises:
        ValueError / TypeError: a control out of range (the message names it and the value);
            ``ImageInputError`` for unusable images, or masks of the wrong count, size or coverage.
    """
    c, styles_in, mix = _resolve_controls(encoder, style, style_weights, controls)
    _check_masks(masks, style_masks, len(styles_in), style_weights)
    if preview_every < 1:
        raise ValueError(f"preview_every must be >= 1, got {preview_every}")
    if init_image is not None and c["init"] == "noise":
        raise ValueError("init='noise' starts from noise alone, so it cannot use init_image; "
                         "use init='content' or 'content+noise'")
    start = time.perf_counter()
    device = next(encoder.parameters()).device
    content_img = pil_to_tensor(load_image(content, name="content image"), device)
    style_imgs = [pil_to_tensor(load_image(s, name=f"style image {i + 1}"), device) for i, s in enumerate(styles_in)]
    start_img = None if init_image is None else pil_to_tensor(load_image(init_image, name="start image"), device)

    c["scales"], c["scale_steps"] = sizes, steps = _schedule(c)
    # Checks the output size only: coarser sizes clamp their sides to 16 px.
    scaled_size((content_img.shape[-1], content_img.shape[-2]), sizes[-1], name="content image")

    style_regions = _style_regions(style_masks, style_imgs)
    opt_content, opt_styles = _prepare_images(content_img, style_imgs, c)
    if start_img is not None and c["color"] == "luminance":  # the optimisation runs on luminance
        start_img = colorops.luminance(start_img).expand(-1, 3, -1, -1).contiguous()

    def finish(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().clamp(0, 1)
        if c["color"] == "luminance":
            x = colorops.transfer_luminance(x, content_img, c["color_space"])
        return x

    is_cancelled = _as_cancel(cancel)
    generator = seeded_generator(c["seed"])
    record: list[dict[str, float]] = []
    total_steps, done, stopped = sum(steps), 0, False
    targets = [_resize_long(opt_content, size) for size in sizes]
    regions = _content_regions(masks, content_img, targets[-1].shape[-2:])
    # What a step costs at each size, as measured in this process's earlier steps with this encoder.
    pace = step_pace(encoder, str(device), encoder.uses_bf16(device), c["optimizer"], c["pooling"],
                     tuple(sorted({*c["content_layers"], *c["style_layers"]})), masks is not None)
    work = _work(targets, steps, pace, c["time_limit"])
    deadlines = _deadlines(start, c["time_limit"], work)
    taken: list[int] = []
    x: torch.Tensor | None = None
    best: torch.Tensor | None = None
    step_seconds = 0.0  # how long the next step will take: the last one's time, scaled to the current size
    curvature: float | None = None  # L-BFGS's inverse Hessian scale at the end of the last size
    for scale_index, (size, n_steps, target) in enumerate(zip(sizes, steps, targets)):
        # The content term is a sum over positions, so at a coarse scale it would weigh less
        # against style than in the final objective; scale it by the area ratio so every scale
        # solves (a resampled version of) the same problem as the final size.
        area = _pixels(targets[-1]) / _pixels(target)
        growth = _pixels(target) / _pixels(targets[scale_index - 1]) if scale_index else 1.0
        scaled_styles, scaled_style_regions = _styles_at(size, opt_styles, style_regions, c["style_scale"])
        objective = _Objective(
            encoder, target, scaled_styles, mix, {**c, "content_weight": c["content_weight"] * area},
            None if regions is None else F.interpolate(regions, size=target.shape[-2:], mode="area"),
            scaled_style_regions,
        )
        if scale_index == 0:
            noise = torch.rand(target.shape, generator=generator).to(device)
            ratio = {"content": 0.0, "noise": 1.0, "content+noise": c["noise_ratio"]}[c["init"]]
            base = target if start_img is None else _resize_to(start_img, target.shape[-2:])
            x = (1 - ratio) * base + ratio * noise
        else:
            x = upscale_result(x, target, targets[scale_index - 1], c["upscale"])
            step_seconds = pace.predict(_pixels(target), (_pixels(targets[scale_index - 1]), step_seconds))
        x = x.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)  # L-BFGS flattens grads
        best, best_loss, best_terms = x.detach().clone(), math.inf, {}
        best_grad = torch.zeros_like(x)  # the gradient at best: an overshoot's restart moves along it
        opt = _optimizer(x, c)
        seeded = curvature is not None
        if seeded:
            _start_lbfgs_scaled(opt, x, curvature * growth**FIRST_STEP_EXPONENT)
        last: dict[str, torch.Tensor] = {}

        def closure() -> torch.Tensor:
            nonlocal best, best_loss, best_terms, best_grad
            opt.zero_grad(set_to_none=True)
            # Evaluate the image as it will be saved: L-BFGS steps leave [0, 1] freely, and clamping
            # only at the end raised the 512 px loss of a 100-step run by 9% (a 300-step one by 20%).
            with torch.no_grad():
                x.clamp_(0, 1)
            losses = objective(x)
            losses["total"].backward()
            last.update({k: v.detach() for k, v in losses.items()})
            loss = float(last["total"])
            if loss < best_loss:
                best_loss, best, best_terms, best_grad = loss, x.detach().clone(), dict(last), x.grad.detach().clone()
            return losses["total"]

        first_step_end = 0.0
        for i in range(n_steps):
            if is_cancelled():
                stopped = True
                break
            tic = time.perf_counter()
            if tic + step_seconds > deadlines[scale_index]:
                break  # this size's share of the time limit is spent
            move = _lbfgs_move_scale(opt)  # of the move this step's evaluation judges
            best_before = best_loss
            opt.step(closure)
            done += 1
            entry = {"step": done, "scale": scale_index, **{k: float(v) for k, v in last.items()}}
            record.append(entry)
            now = time.perf_counter()
            # The pace of this size's steps: after its first (which pays one-off set-up) once there are more.
            if i == 0:
                first_step_end, seconds_a_step = now, now - tic
            else:
                seconds_a_step = (now - first_step_end) / i
            if progress is not None:
                left = seconds_a_step * (n_steps - i - 1) + _seconds_of(
                    pace, targets[scale_index + 1:], steps[scale_index + 1:], (_pixels(target), seconds_a_step))
                if c["time_limit"] is not None:
                    left = min(left, max(0.0, start + c["time_limit"] - now))
                show = done % preview_every == 0 or done == total_steps
                progress(StepInfo(done, total_steps, scale_index, tuple(target.shape[-2:]), entry,
                                  tensor_to_pil(finish(x)) if show else None, now - start, left))
            step_seconds = time.perf_counter() - tic  # with the progress callback and its preview
            if done == 1 and c["time_limit"] is not None:
                # The run's first step pays one-off costs (in a fresh process 1.4 s against 0.13 s for the next at
                # 128 px): what it took beyond the pace remembered here (all of it where none is) comes off the
                # limit before the shares, and that pace (or none: the next step measures it) judges the next.
                normal = pace.remembered(_pixels(target)) or 0.0
                overhead = max(0.0, step_seconds - normal)
                deadlines = _deadlines(start + overhead, c["time_limit"] - overhead, work)
                step_seconds = normal
            overshot = entry["total"] > OVERSHOOT * best_before or (
                seeded and i == 1 and entry["total"] > best_before)  # the scale carried from the last size
            if overshot and move is not None:
                opt = _optimizer(x, c)
                _restart_lbfgs(opt, x, best, best_grad, move * SHRINK)
        taken.append(sum(e["scale"] == scale_index for e in record))
        if taken[-1] > 1:  # a steady pace, past the first step's set-up
            pace.record(_pixels(target), seconds_a_step)
        if taken[-1] and not stopped:
            # The last step's move is not evaluated by any step: measure it (a forward pass) so it can count.
            with torch.no_grad():
                x.clamp_(0, 1)
                terms = objective(x)
            if (loss := float(terms["total"])) < best_loss:
                best_loss, best, best_terms = loss, x.detach().clone(), terms
        curvature = _lbfgs_curvature(opt)
        x = best  # continue from the best point of this scale
        if stopped:
            break

    assert best is not None
    if len(taken) < len(sizes):  # cancelled at a coarser size: the best image so far, carried to the output size
        best = upscale_result(best, targets[-1], targets[len(taken) - 1], c["upscale"])
    image = tensor_to_pil(finish(best))
    c["style_weights"] = None if masks is not None else _weights_record(mix)
    c["steps_taken"], c["init_image"], c["masks"] = tuple(taken), start_img is not None, len(masks or ())
    c["style_masks"] = None if style_masks is None else [m is not None for m in style_masks]
    c["precision"], c["stopped"] = "bf16" if encoder.uses_bf16(device) else "fp32", stopped
    return GatysResult(image, record, time.perf_counter() - start, c, stopped,
                       {k: float(v) for k, v in best_terms.items()})


def recorded_controls(settings: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`stylize` (``style_weights`` among them) that redo the run ``settings``
    records (a :class:`GatysResult`'s, or ``read_settings(path)["settings"]`` of a saved result): the same
    controls and sizes, each size taking the steps it took, without a time limit, so the same machine gives the
    same image (a size the time limit left no step takes none). A run stopped by hand is redone in full, its
    planned steps. A control the record lacks (one older than it) keeps its default. The images (content,
    styles, masks, a start image) are not in the record: ``settings`` says only whether there were any.

    Raises:
        ValueError: ``settings`` is no record of this method's (it names no sizes and steps).
    """
    if not {"scales", "scale_steps"} <= settings.keys():
        raise ValueError("these settings are not a Gatys run's: they name no sizes and steps (scales, scale_steps)")
    controls = {name: settings[name] for name in GatysConfig.__dataclass_fields__ if name in settings}
    for name in ("content_layers", "style_layers", "style_layer_weights", "scales", "scale_steps"):
        if controls.get(name) is not None:
            controls[name] = tuple(controls[name])
    taken = tuple(settings.get("steps_taken") or ())
    stopped = settings.get("stopped", settings.get("time_limit") is None)  # records before "stopped": no limit
    if not stopped and len(taken) == len(controls["scales"]) and sum(taken):
        controls["scale_steps"] = taken
    controls["time_limit"] = None
    weights = settings.get("style_weights")
    controls["style_weights"] = None if weights is None else [
        tuple(w) if isinstance(w, list) else w for w in weights]
    return controls


def weighted_terms(losses: dict[str, float], style_weight: float, tv_weight: float = 0.0) -> dict[str, float]:
    """A record entry's weighted terms, which sum to its total: ``content`` (alpha L_content, with the
    content weight as scaled for that size, so it is what the others leave), ``style`` (beta L_style)
    and ``tv`` (gamma TV)."""
    parts = {"style": style_weight * losses["style"], "tv": tv_weight * losses["tv"]}
    return {"content": losses["total"] - parts["style"] - parts["tv"], **parts}


def loss_text(losses: dict[str, float], style_weight: float, tv_weight: float = 0.0) -> str:
    """A record entry's total loss and each weighted term's share of it, e.g.
    ``"2.277e+06 (content 11%, style 89%)"``: the raw terms differ by orders of magnitude, the
    shares say which one the optimiser is working on."""
    total = losses["total"]
    if not (math.isfinite(total) and total > 0):
        return f"{total:.4g}"
    parts = weighted_terms(losses, style_weight, tv_weight)
    shares = ", ".join(f"{name} {max(0.0, 100 * part / total):.0f}%"  # content may round below 0 at 0
                       for name, part in parts.items() if name != "tv" or tv_weight)
    return f"{total:.4g} ({shares})"


def _schedule(c: dict[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The sizes a run solves at, smallest first, and the steps at each: the explicit ``scales``, the
    default coarse-to-fine schedule, or the output size alone."""
    if c["scales"] is not None:
        sizes = tuple(c["scales"])
        return sizes, tuple(c["scale_steps"] or [max(1, c["num_steps"] // len(sizes))] * len(sizes))
    if c["coarse_to_fine"]:
        return default_schedule(c["size"], c["num_steps"])
    return (c["size"],), (c["num_steps"],)


def _optimizer(x: torch.Tensor, c: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimiser of one size's pixels ``x``. L-BFGS makes one function evaluation per step
    (``max_iter=1``), so steps are counted, reported and cancellable, and its curvature history
    carries over between calls; its tolerances are off, so a run takes the steps it was asked for."""
    if c["optimizer"] == "lbfgs":
        return torch.optim.LBFGS([x], lr=c["lr"] or 1.0, max_iter=1, history_size=LBFGS_HISTORY,
                                 tolerance_grad=-1, tolerance_change=-1)
    return torch.optim.Adam([x], lr=c["lr"] or 0.02)


def _lbfgs_curvature(opt: torch.optim.Optimizer) -> float | None:
    """The scale of L-BFGS's inverse Hessian estimate (``s.y / y.y`` of its newest curvature pair) at the end
    of a size, or None where there is none (another optimiser, or no pair yet)."""
    if not isinstance(opt, torch.optim.LBFGS):
        return None
    state = next(iter(opt.state.values()), {})
    return float(state["H_diag"]) if state.get("old_dirs") else None


def _set_lbfgs_state(opt: torch.optim.LBFGS, x: torch.Tensor, h_diag: float, d: torch.Tensor, t: float,
                     prev_grad: torch.Tensor) -> None:
    """Set a fresh L-BFGS state (the keys of ``torch.optim.LBFGS``'s), with no curvature pair and ``h_diag`` as
    the inverse Hessian scale, as after a move ``t * d`` from a point whose gradient was ``prev_grad``: its next
    step pairs that move with the gradient it finds (a zero-length move gives no pair)."""
    opt.state[x].update(func_evals=0, n_iter=1, d=d, t=t, old_dirs=[], old_stps=[], ro=[], H_diag=h_diag,
                        prev_flat_grad=prev_grad, prev_loss=None)


def _start_lbfgs_scaled(opt: torch.optim.LBFGS, x: torch.Tensor, h_diag: float) -> None:
    """Make a fresh L-BFGS's first step ``-h_diag * grad`` instead of torch's tiny ``-grad / |grad|_1``
    (a wasted step at every size): its state is set as after one zero-length step."""
    _set_lbfgs_state(opt, x, h_diag, x.new_zeros(x.numel()), 0.0, x.new_zeros(x.numel()))


def _restart_lbfgs(opt: torch.optim.LBFGS, x: torch.Tensor, point: torch.Tensor, grad: torch.Tensor,
                   h_diag: float) -> None:
    """Move ``x`` to ``point - h * grad``, with ``h`` the lesser of ``h_diag`` and the scale that moves no pixel
    by more than ``MAX_RESTART_MOVE`` (``grad``: the gradient at ``point``, already evaluated, so no evaluation
    is repeated), and set a fresh L-BFGS as after that move."""
    h = min(h_diag, MAX_RESTART_MOVE / float(grad.abs().max().clamp_min(1e-12)))
    with torch.no_grad():
        x.copy_(point - h * grad)
    flat = grad.reshape(-1).clone()
    _set_lbfgs_state(opt, x, h, -flat, h, flat)


def _lbfgs_move_scale(opt: torch.optim.Optimizer) -> float | None:
    """How far L-BFGS's last move went per unit of gradient, ``|t d| / |g|`` with ``g`` the gradient where it
    started (None for another optimiser, or before a move from a point with a gradient)."""
    if not isinstance(opt, torch.optim.LBFGS):
        return None
    state = next(iter(opt.state.values()), {})
    if state.get("d") is None or not (norm := float(state["prev_flat_grad"].norm())):
        return None
    return float(state["t"]) * float(state["d"].norm()) / norm


def _pixels(t: torch.Tensor) -> int:
    return t.shape[-2] * t.shape[-1]


def _seconds_of(pace: StepPace, targets: Sequence[torch.Tensor], steps: Sequence[int],
                now: tuple[int, float]) -> float:
    """The seconds ``steps`` steps at each of ``targets``' sizes should take, given the pace ``now``
    (pixels, seconds a step) of the size running."""
    return sum(n * pace.predict(_pixels(t), now) for n, t in zip(steps, targets))


def _work(targets: list[torch.Tensor], steps: Sequence[int], pace: StepPace, time_limit: float | None
          ) -> list[float]:
    """The planned work of each size, in the units ``time_limit`` is shared in: the seconds its steps cost at
    the pace this process measured, where that says the whole plan fits (so no size is cut); else its steps x
    pixels (what a step costs grows about as its pixel count).

    Not seconds where the plan does not fit: coarse steps cost more per pixel, so a time limit shared by seconds
    gave the former fast schedule's coarse sizes more steps and its output size fewer, and ended higher in loss
    (``benchmarks/gatys.md``)."""
    if time_limit is not None and None not in (known := [pace.remembered(_pixels(t)) for t in targets]):
        seconds = [n * s for n, s in zip(steps, known)]
        if sum(seconds) <= time_limit:
            return seconds
    return [float(n * _pixels(t)) for n, t in zip(steps, targets)]


def _deadlines(start: float, time_limit: float | None, work: list[float]) -> list[float]:
    """When each size's steps must end: ``time_limit`` shared in proportion to the planned ``work``
    (:func:`_work`), cumulatively, so time that one size leaves unused passes to the next."""
    if time_limit is None:
        return [math.inf] * len(work)
    return [start + time_limit * sum(work[: i + 1]) / sum(work) for i in range(len(work))]


@torch.no_grad()
def measure_losses(
    image: ImageSource | torch.Tensor,
    content: ImageSource,
    style: ImageSource | Sequence[ImageSource],
    *,
    encoder: VGGEncoder,
    style_weights: StyleWeights | None = None,
    masks: Sequence[MaskSource] | None = None,
    style_masks: Sequence[MaskSource | None] | None = None,
    **controls: Any,
) -> dict[str, float]:
    """The paper's content, style, TV and total losses of ``image``, computed as :func:`stylize` does.

    Everything is resized so the long side is ``size``; use a float32 encoder for comparable
    numbers across methods. Colour control is not applied. Besides ``content``, ``style``, ``tv``
    and ``total``, ``style/<layer>`` gives each style layer's weighted term ``w_l E_l`` (they sum
    to ``style``), as in every entry of a run's record. ``image`` may also be a float tensor
    ``[1, 3, H, W]`` in [0, 1], measured as it is (no 8-bit rounding; resized only if its size differs).
    ``masks`` and ``style_masks`` give each style a region, as in :func:`stylize`.
    """
    c, styles, mix = _resolve_controls(encoder, style, style_weights, controls)
    _check_masks(masks, style_masks, len(styles), style_weights)
    device = next(encoder.parameters()).device

    def load(src: ImageSource, name: str) -> torch.Tensor:
        return pil_to_tensor(load_image(src, name=name), device)

    content_img = load(content, "content image")
    target = _resize_long(content_img, c["size"])
    style_imgs = [load(s, f"style image {i + 1}") for i, s in enumerate(styles)]
    scaled_styles, style_regions = _styles_at(c["size"], style_imgs, _style_regions(style_masks, style_imgs),
                                              c["style_scale"])
    regions = _content_regions(masks, content_img, target.shape[-2:])
    objective = _Objective(encoder, target, scaled_styles, mix, c, regions, style_regions)
    if isinstance(image, torch.Tensor):
        x = image.detach().to(device, torch.float32)
    else:
        x = _resize_long(load(image, "image"), c["size"])
    if x.shape != target.shape:
        x = F.interpolate(x, size=target.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
    return {k: float(v) for k, v in objective(x).items()}
