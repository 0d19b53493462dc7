"""Steadier stylised video: each frame's result keeps part of the last one where the scene stands still.

A feed-forward stylisation of each frame on its own turns the camera's noise into flicker (this project's AdaIN
at 256 px made a mean frame-to-frame change of 0.9-3.7 levels of 255, from noise alone, into 4.5-11.5). A running
average removes it but smears whatever moves; :class:`TemporalSmoother` averages only where the input frame did
not change, pixel by pixel (``benchmarks/bench_live.py`` measures both effects).
"""

from __future__ import annotations

from collections.abc import Hashable

import torch
import torch.nn.functional as F
from PIL import Image

from .color import luminance
from .imageio import pil_to_tensor, tensor_to_pil

__all__ = ["TemporalSmoother"]


class TemporalSmoother:
    """Blends each stylised frame with the previous blended one where the input stands still.

    Where the input's luminance changed by ``delta`` since the last frame (the absolute change, averaged over the
    5x5 pixels around), the result keeps ``strength * max(0, 1 - delta / motion)`` of the previous output: a still
    scene settles to a running average of its results, and what moves shows the new result alone. (Averaging the
    change rather than comparing averaged frames also sees a texture that shifts: a 5x5 mean hardly moves.)

    Args:
        strength: the share of the previous output kept where nothing moves, in [0, 1); 0 turns it off.
        motion: the mean change of luminance (in [0, 1] units) from which a pixel counts as moving; the default,
            6 levels of 255, is about three times what camera noise of 3 levels gives (``benchmarks/bench_live.py``
            and the README give the trade-off between flicker and lag measured around it).
    """

    def __init__(self, strength: float = 0.7, motion: float = 6 / 255) -> None:
        if motion <= 0:
            raise ValueError(f"motion must be > 0, got {motion}")
        self.strength, self.motion = strength, motion
        self._last: tuple[Hashable, torch.Tensor, torch.Tensor] | None = None

    @property
    def strength(self) -> float:
        """The share of the previous output kept where nothing moves (settable between frames)."""
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"strength must be in [0, 1), got {value}")
        self._strength = float(value)

    def reset(self) -> None:
        """Forget the last frame: the next result is shown as it is."""
        self._last = None

    def __call__(self, frame: Image.Image, result: Image.Image, context: Hashable = None) -> Image.Image:
        """The steadied ``result`` of ``frame`` (the input, any size: it is resized to the result's).

        ``context`` names what made the result (method, style, settings...): a frame whose context or size differs
        from the last one's starts again rather than blending two different stylisations.
        """
        if frame.size != result.size:
            frame = frame.resize(result.size, Image.Resampling.BOX)
        luma = luminance(pil_to_tensor(frame))
        out = pil_to_tensor(result)
        last, self._last = self._last, None
        if last is not None and last[0] == context and last[2].shape == out.shape and self.strength > 0:
            _, last_luma, last_out = last
            change = F.avg_pool2d((luma - last_luma).abs(), 5, stride=1, padding=2, count_include_pad=False)
            keep = self.strength * (1 - change / self.motion).clamp(min=0)
            out = torch.lerp(out, last_out, keep)
        self._last = (context, luma, out)
        return tensor_to_pil(out)
