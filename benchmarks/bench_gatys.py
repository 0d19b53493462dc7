"""Gatys benchmark: step cost, direct vs coarse-to-fine, in one run.

    python benchmarks/bench_gatys.py [--pairs 1] [--steps 300] [--out benchmarks/out/gatys]

1. seconds per L-BFGS step at 256 and 512 px, float32 and bf16 (median over 8 steps after 2);
2. for each test pair: a direct 512 px run of ``--steps`` L-BFGS steps against the default
   coarse-to-fine schedule (2/3 of the steps at 256 px, 1/6 at 512 px), both in bf16; the
   final total loss of both is measured the same way, at 512 px in float32; wall times and
   ratios are printed.
Images go to ``--out`` (outside git). Needs ../shared/data; says so and exits where absent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from styletransfer.gatys import measure_losses, stylize  # noqa: E402
from zoo.registry import load_vgg16  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PAIRS = [("tubingen.jpg", "starry_night.jpg"), ("golden_gate.jpg", "the_scream.jpg"), ("lion.jpg", "candy.jpg")]


def step_seconds(encoder, content: Path, style: Path, size: int) -> float:
    stamps: list[float] = []
    stylize(content, style, encoder=encoder, size=size, num_steps=10, progress=lambda _: stamps.append(time.perf_counter()))
    return statistics.median(b - a for a, b in zip(stamps[2:], stamps[3:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "gatys")
    args = parser.parse_args()
    if not (DATA / "content").is_dir():
        print(f"skipped: test images not found at {DATA}")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    fp32, bf16 = load_vgg16("fp32"), load_vgg16("bf16")
    c0, s0 = DATA / "content" / PAIRS[0][0], DATA / "styles" / PAIRS[0][1]
    print("1. seconds per L-BFGS step (content + 5 style layers, forward + backward)")
    for size in (256, 512):
        t32, t16 = step_seconds(fp32, c0, s0, size), step_seconds(bf16, c0, s0, size)
        print(f"   {size}px  fp32 {t32:.3f} s  bf16 {t16:.3f} s  ({t32 / t16:.2f}x)", flush=True)
    print(f"2. direct 512px {args.steps} steps vs coarse-to-fine (bf16 runs; losses at 512px in float32)")
    for content_name, style_name in PAIRS[: args.pairs]:
        content, style = DATA / "content" / content_name, DATA / "styles" / style_name
        runs = {}
        for label, kw in (("direct", {}), ("coarse-to-fine", {"coarse_to_fine": True})):
            result = stylize(content, style, encoder=bf16, size=512, num_steps=args.steps, **kw)
            loss = measure_losses(result.image, content, style, encoder=fp32, size=512)["total"]
            runs[label] = (result.seconds, loss)
            result.image.save(args.out / f"{Path(content_name).stem}_{Path(style_name).stem}_{label}.png")
            print(f"   {content_name} x {style_name} {label:>15}: {result.seconds:7.1f} s  total loss {loss:.4g}"
                  f"  schedule {result.settings['scales']} {result.settings['scale_steps']}", flush=True)
        (td, ld), (tc, lc) = runs["direct"], runs["coarse-to-fine"]
        print(f"   coarse-to-fine / direct: time {tc / td:.2f}x, loss {lc / ld:.3f}x", flush=True)


if __name__ == "__main__":
    main()
