"""What this machine's CPU can do, read once from ``/proc/cpuinfo`` (empty where there is none)."""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["cpu_flags"]


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags (``avx512_bf16``, ``avx512_vnni``, ``amx_int8`` ...); empty if unknown."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()
