"""Time VGG-16 up to relu4_1 in float32 and bf16 (the shared cost of every method).

    python benchmarks/bench_vgg.py [--sizes 256 512] [--repeats 10] [--threads N]

Both precisions run in the same process on the same input (a real photo from
../shared/data/content when present, else noise), median of ``--repeats`` timed runs after
two warm-ups. Prints seconds per image, the bf16/fp32 speed ratio and the relative error of
relu4_1 in bf16 against float32.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import styletransfer  # noqa: E402, F401  (before torch: it sets how long OpenMP threads spin)
import torch  # noqa: E402

from styletransfer.imageio import load_image, pil_to_tensor  # noqa: E402
from zoo.registry import load_vgg16  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "content" / "tubingen.jpg"


def _input(size: int) -> tuple[torch.Tensor, str]:
    if DATA.is_file():
        img = load_image(DATA).resize((size, size))
        return pil_to_tensor(img), DATA.name
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)), "noise"


@torch.inference_mode()
def _time(encoder, x: torch.Tensor, repeats: int) -> tuple[float, torch.Tensor]:
    for _ in range(2):
        out = encoder(x, ["relu4_1"])["relu4_1"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = encoder(x, ["relu4_1"])["relu4_1"]
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    fp32, bf16 = load_vgg16("fp32"), load_vgg16("bf16")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, weights: {fp32.weights_source}")
    print(f"{'size':>6} {'input':>12} {'fp32 s':>8} {'bf16 s':>8} {'speed-up':>9} {'rel.err':>8}")
    for size in args.sizes:
        x, name = _input(size)
        t32, ref = _time(fp32, x, args.repeats)
        t16, got = _time(bf16, x, args.repeats)
        err = ((got - ref).norm() / ref.norm()).item()
        print(f"{size:>6} {name:>12} {t32:8.3f} {t16:8.3f} {t32 / t16:8.2f}x {err:8.4f}")


if __name__ == "__main__":
    main()
