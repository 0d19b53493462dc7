"""How long a running job has left, shared by the long-running methods' progress reports."""

from __future__ import annotations

import math

__all__ = ["time_left_text"]


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
