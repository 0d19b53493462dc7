"""How long a running job has left, shared by the long-running methods' progress reports.

A step's cost grows about as its pixel count, but not exactly: on the CPUs measured a coarse step costs more
per pixel than a fine one (fixed costs per step, and convolution kernels that pay only on large images), so
estimates made by scaling a coarse size's pace run high. A :class:`StepPace` keeps the steady pace measured
at each size and predicts a size from the measured one nearest to it.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Hashable

__all__ = ["time_left_text", "StepPace", "step_pace"]


def time_left_text(seconds: float) -> str:
    """An estimate of the time left as a person reads it: ``"a few seconds left"``, ``"about 25 s left"``
    (to 5 s under a minute), ``"about 2.5 min left"`` (to half a minute under ten), ``"about 14 min left"``."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds}")
    if seconds < 7.5:
        return "a few seconds left"
    if seconds < 57.5:
        return f"about {round(seconds / 5) * 5} s left"
    if seconds < 585:
        return f"about {round(seconds / 30) / 2:g} min left"
    return f"about {round(seconds / 60)} min left"


class StepPace:
    """The seconds a step took at each pixel count measured (the latest measure of each)."""

    def __init__(self) -> None:
        self._seconds: dict[int, float] = {}

    def record(self, pixels: int, seconds: float) -> None:
        """Remember that a step of ``pixels`` pixels took ``seconds`` (a steady pace, without one-off set-up;
        a clock that did not move says nothing)."""
        if seconds > 0:
            self._seconds[pixels] = seconds

    def _nearest(self, pixels: int) -> int | None:
        return min(self._seconds, key=lambda known: abs(math.log(known / pixels)), default=None)

    def remembered(self, pixels: int) -> float | None:
        """The seconds a step of ``pixels`` pixels took at the measured size nearest to it, scaled by the pixel
        ratio; None where nothing was measured."""
        known = self._nearest(pixels)
        return None if known is None else self._seconds[known] * pixels / known

    def predict(self, pixels: int, now: tuple[int, float]) -> float:
        """The seconds a step of ``pixels`` pixels should take, given the pace of the size running now,
        ``(pixels, seconds a step)``: that pace scaled by the pixel ratio where ``now``'s size is nearer to
        ``pixels`` than any measured, else :meth:`remembered`."""
        known = self._nearest(pixels)
        if known is None or abs(math.log(now[0] / pixels)) <= abs(math.log(known / pixels)):
            return now[1] * pixels / now[0]
        return self._seconds[known] * pixels / known


_PACES: weakref.WeakKeyDictionary[object, dict[Hashable, StepPace]] = weakref.WeakKeyDictionary()


def step_pace(owner: object, *kind: Hashable) -> StepPace:
    """The pace of steps run with ``owner`` (a model: forgotten with it) in the way ``kind`` names (device,
    precision, the layers computed...): one record per process, shared by every run that asks alike."""
    return _PACES.setdefault(owner, {}).setdefault(kind, StepPace())
