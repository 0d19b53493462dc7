"""What this machine's CPU can do, read once from ``/proc/cpuinfo`` (empty where there is none), and the one
OpenMP setting that depends on it. Only the standard library: the package reads it before torch loads."""

from __future__ import annotations

import functools
import os
from pathlib import Path

__all__ = ["cpu_flags", "shorten_openmp_spin", "winograd_cpu"]

OPENMP_SPIN = "10000"
"""``GOMP_SPINCOUNT`` where NNPACK runs (:func:`shorten_openmp_spin`)."""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags (``avx512_bf16``, ``avx512_vnni``, ``amx_int8`` ...); empty if unknown."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def winograd_cpu() -> bool:
    """Whether float32 VGG convolutions run through NNPACK's Winograd kernels here (:mod:`styletransfer.winograd`):
    a CPU with AVX2 and without AVX-512 (the kind measured), unless ``STYLETRANSFER_NNPACK`` is ``0``; ``1`` says
    yes on any CPU whose torch build has NNPACK."""
    setting = os.environ.get("STYLETRANSFER_NNPACK", "auto")
    flags = cpu_flags()
    return setting == "1" or (setting != "0" and "avx2" in flags and "avx512f" not in flags)


def shorten_openmp_spin() -> None:
    """Where NNPACK runs, let torch's OpenMP threads sleep sooner after each parallel region (``GOMP_SPINCOUNT``,
    unless it or ``OMP_WAIT_POLICY`` is set); must run before torch loads to take effect.

    NNPACK has its own thread pool: OpenMP threads still spinning after an oneDNN call compete with it for the
    cores. With 10,000 spins instead of GNU OpenMP's 300,000 a float32 Gatys step at 256 px through NNPACK went
    from 0.56-0.58 s to 0.36-0.45 s on the AVX2-only EPYC, and nothing else measured slowed (benchmarks/speed.md).
    """
    if winograd_cpu() and "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", OPENMP_SPIN)
