"""Helpers shared by the benchmark scripts (run them from anywhere; they put the repo on sys.path)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import styletransfer  # noqa: F401  (before torch: it sets how long OpenMP threads spin)
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count, register_flop_formula

__all__ = ["median_time", "median_step_seconds", "have_test_data", "benchmark_pairs", "save_grid", "flops",
           "conv_rate", "int8_conv_rate", "peak_rss_mb", "child_json", "studio_server"]


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_step_seconds(run: Callable[[Callable[[object], None]], object]) -> float:
    """Median time between the progress calls of ``run(progress)`` from its third step on (the first
    two pay one-off set-up); ``run`` makes a library call that reports every step to ``progress``."""
    stamps: list[float] = []
    run(lambda _: stamps.append(time.perf_counter()))
    return statistics.median(b - a for a, b in zip(stamps[2:], stamps[3:]))


def have_test_data(data: Path) -> bool:
    """Whether ``data/content`` exists; prints the skip message when it does not."""
    if (data / "content").is_dir():
        return True
    print(f"skipped: no test images at {data} (pass --data)")
    return False


def benchmark_pairs(data: Path, count: int) -> list[tuple[Path, Path]]:
    """``count`` (content, style) pairs from ``data/content`` and ``data/styles``, spread over both, the same
    in every benchmark that compares methods."""
    contents = sorted((data / "content").glob("*.jpg"))
    styles = sorted((data / "styles").glob("*.jpg"))
    step = max(1, len(contents) // count)
    return [(contents[(i * step) % len(contents)], styles[(i * 5 + 2) % len(styles)]) for i in range(count)]


def save_grid(rows: list[list[Image.Image]], path: Path, cell: int = 256) -> Path:
    """One row of images a pair, each scaled to ``cell`` px wide, as one JPEG at ``path``."""
    rows = [[im.resize((cell, round(cell * im.height / im.width))) for im in row] for row in rows]
    grid = Image.new("RGB", (cell * max(map(len, rows)), sum(max(im.height for im in row) for row in rows)), "white")
    y = 0
    for row in rows:
        for j, im in enumerate(row):
            grid.paste(im, (cell * j, y))
        y += max(im.height for im in row)
    grid.save(path, quality=90)
    return path


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports it in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_json(args: list[str]) -> dict:
    """Run this Python on ``args`` in a fresh process; the JSON object its last output line prints."""
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _conv_call_flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
    """oneDNN's fused convolution + ReLU (``styletransfer.reparam``) and NNPACK's Winograd convolution
    (``styletransfer.winograd``) count as the direct convolution they compute, so a step through NNPACK can run
    below the 'convolution floor' taken at oneDNN's direct rate."""
    return conv_flop_count(list(x_shape), list(w_shape), list(out_shape), transposed=False)


for _op in (torch.ops.mkldnn._convolution_pointwise, torch.ops.aten._nnpack_spatial_convolution):
    register_flop_formula(_op)(_conv_call_flops)  # each registration wraps the plain function once


def flops(fn: Callable[[], object]) -> int:
    """Floating-point operations (2 per multiply-add) of the matrix products and convolutions in one call of ``fn``."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def conv_rate(repeats: int, size: int = 128, channels: int = 256, dtype: torch.dtype = torch.bfloat16) -> float:
    """FLOP/s of a large channels-last 3x3 convolution in ``dtype``: what this CPU's convolutions reach at best."""
    x = torch.rand(1, channels, size + 2, size + 2).to(dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 3, 3).to(dtype).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        seconds = median_time(lambda: F.conv2d(x, w), repeats)
    return 2 * size * size * channels * channels * 9 / seconds


def int8_conv_rate(repeats: int, size: int = 128, channels: int = 256) -> float:
    """Operations per second (2 per multiply-add) of the same convolution in oneDNN int8 (u8 x s8)."""
    from styletransfer.quantized import QuantizedConv

    x = torch.randint(0, 256, (1, channels, size + 2, size + 2), dtype=torch.uint8)
    conv = QuantizedConv(torch.randn(channels, channels, 3, 3), None, 1 / 255, 0.1)
    seconds = median_time(lambda: conv(x.contiguous(memory_format=torch.channels_last)), repeats)
    return 2 * size * size * channels * channels * 9 / seconds


@contextlib.contextmanager
def studio_server(tree: Path, port: int, data: Path) -> Iterator[subprocess.Popen]:
    """``tree``'s ``app.py`` in a fresh process serving on ``port`` (examples from ``data``), once it answers;
    stopped on leaving."""
    env = {**os.environ, "PYTHONPATH": str(tree), "GRADIO_SERVER_PORT": str(port), "STUDIO_EXAMPLES": str(data)}
    server = subprocess.Popen([sys.executable, "app.py"], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()
                break
            except OSError:  # not serving yet
                if server.poll() is not None:
                    raise SystemExit(f"{tree}/app.py exited with {server.returncode}")
                time.sleep(0.5)
        else:
            raise SystemExit(f"the studio did not answer on port {port}")
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)
