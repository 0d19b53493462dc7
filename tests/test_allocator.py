"""keep_freed_memory makes glibc serve big blocks from its heap."""

from __future__ import annotations

import ctypes
import resource
import subprocess
import sys
from pathlib import Path

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


_THREAD_FAULTS = """
import ctypes, resource, sys, threading
from styletransfer.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size, faults = 40 << 20, []

def rounds():  # three blocks too big to share one of a thread's own 64 MiB heaps, held together, then freed
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        blocks = [libc.malloc(size) for _ in range(3)]
        for block in blocks:
            ctypes.memset(block, 1, size)
        for block in blocks:
            libc.free(block)
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

thread = threading.Thread(target=rounds)
thread.start()
thread.join()
print(sum(faults[1:]))
"""


def _repeat_faults_on_a_thread(mode: str) -> int:
    """Page faults of rounds 2-4 of big allocations on a new thread, in a fresh process."""
    done = subprocess.run([sys.executable, "-c", _THREAD_FAULTS, mode], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1], check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(resource, "RUSAGE_THREAD"),
                    reason="needs glibc on Linux")
def test_threads_reuse_freed_blocks_too() -> None:
    pages = (40 << 20) // resource.getpagesize()
    assert _repeat_faults_on_a_thread("default") >= pages  # glibc unmapped the thread's emptied heaps
    assert _repeat_faults_on_a_thread("keep") < pages // 100
