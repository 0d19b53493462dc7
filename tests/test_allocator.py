"""keep_freed_memory makes glibc serve big blocks from its heap."""

from __future__ import annotations

import ctypes

import pytest

from styletransfer.allocator import keep_freed_memory


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mmapped_blocks_while_holding(libc: ctypes.CDLL, size: int) -> int:
    before = libc.mallinfo2().hblks
    block = libc.malloc(size)
    try:
        return libc.mallinfo2().hblks - before
    finally:
        libc.free(block)


def test_big_blocks_come_from_the_heap() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        pytest.skip("needs glibc 2.33+ (mallinfo2)")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 48 << 20  # above glibc's largest dynamic mmap threshold (32 MiB): always mapped by default
    if not keep_freed_memory.cache_info().currsize:
        assert _mmapped_blocks_while_holding(libc, size) == 1
    assert keep_freed_memory() is True
    assert _mmapped_blocks_while_holding(libc, size) == 0
