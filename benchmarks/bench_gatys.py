"""Gatys benchmark: step cost, direct vs coarse-to-fine, in one run.

    python benchmarks/bench_gatys.py [--pairs 1] [--steps 300] [--schedules 256x200+512x50 ...]
        [--upscales detail bicubic] [--init content|noise|content+noise] [--precision auto|bf16|fp32]
        [--quick] [--skip-step-cost] [--no-step-timing]
    python benchmarks/bench_gatys.py --memory [--memory-steps 55] [--memory-sizes 512 1024] [--precision ...]

1. seconds per L-BFGS step at 256 and 512 px, float32 and bf16, and bf16 after
   ``allocator.keep_freed_memory()`` (median over 8 steps after 2; ``--no-step-timing`` leaves
   them out); the FLOPs of one step and the least time the default and the fast schedule need at
   the convolution rate measured in the runs' precision, a step's time at 128, 256 and 512 px in that
   precision against that least time, and
   their actual wall time and loss with ``--precision``, and the fast schedule's under
   ``time_limit=30`` (the steps it took), with the time-left estimates their progress reports gave against
   the time they then had left (after the step timings, so from a process that has measured every size, as
   the app's later runs; ``--quick`` stops here);
2. for each test pair: a direct 512 px run of ``--steps`` L-BFGS steps (its image is also taken
   every 50 steps, to give its loss against time) and each coarse-to-fine schedule of
   ``--schedules`` (default: the library's default schedule) with each ``--upscales`` mode (how
   a coarse result starts the next size; default both), all from ``--init`` (default the
   library's, the content) and with ``--precision`` (``auto``, the default, is bf16 where
   :func:`~styletransfer.vgg.bf16_is_fast`, else float32); every loss is measured the same way,
   at 512 px in float32; wall times and ratios to the direct run are printed, and the loss each
   run starts its 512 px stage from (the direct run: its start), and the parts of each loss
   (content, and each style layer's term), to show where runs differ.
``--memory`` instead measures peak RSS: at each of ``--memory-sizes`` (default 512 and 1024 px, the
app's largest size) a direct run and a coarse-to-fine one (half the size, then the size), each in a
fresh process set up as the app and the CLI set it up, with ``--memory-steps`` steps at each size
(default 55: L-BFGS keeps 50 curvature pairs, so its history is full from step 51).
Images go to ``--out`` (outside git). Needs ../shared/data; says so and exits where absent.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import styletransfer  # noqa: E402, F401  (before torch: it sets how long OpenMP threads spin)
import torch  # noqa: E402

from benchmarks.common import child_json, conv_rate, flops, median_step_seconds, peak_rss_mb  # noqa: E402
from styletransfer.allocator import keep_freed_memory  # noqa: E402
from styletransfer.gatys import (  # noqa: E402
    INITS, LBFGS_HISTORY, UPSCALES, GatysConfig, default_schedule, fast_schedule, measure_losses, parse_schedule,
    stylize,
)
from zoo.registry import load_vgg16  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PAIRS = [("tubingen.jpg", "starry_night.jpg"), ("golden_gate.jpg", "the_scream.jpg"), ("lion.jpg", "candy.jpg")]


def step_seconds(encoder, content: Path, style: Path, size: int) -> float:
    return median_step_seconds(lambda progress: stylize(content, style, encoder=encoder, size=size, num_steps=10,
                                                        progress=progress))


def time_left_record(reports: list, seconds: float) -> str:
    """A run's time-left estimates (its progress reports' ``seconds_left``) against the time it then had left,
    after a tenth, a quarter, half, three quarters and nine tenths of its steps."""
    marks = []
    for share in (0.1, 0.25, 0.5, 0.75, 0.9):
        info = reports[max(0, round(share * len(reports)) - 1)]
        marks.append(f"step {info.step} ({info.size[1]}x{info.size[0]}) "
                     f"{info.seconds_left:.1f}/{seconds - info.seconds:.1f} s")
    return "time left, estimated/actual: " + "; ".join(marks)


def fine_start(result) -> float:
    """The loss (as the run computed it) of the start point of a run's last, full-size stage."""
    last = result.losses[-1]["scale"]
    return next(entry["total"] for entry in result.losses if entry["scale"] == last)


def terms(measured: dict[str, float]) -> str:
    """The parts of a total loss at the default weights (content x alpha, each style layer's term x beta)."""
    parts = {"content": GatysConfig.content_weight * measured["content"]}
    parts.update({k.split("/")[1]: GatysConfig.style_weight * v for k, v in measured.items() if k.startswith("style/")})
    return "  ".join(f"{k} {v:.3g}" for k, v in parts.items())


def peak_rss_child(size: int, steps: int, precision: str, coarse_to_fine: bool) -> None:
    """Run in a fresh process: one ``size`` px run of ``steps`` steps, direct or after ``steps`` at half the
    size; print peak RSS (MB) as JSON."""
    keep_freed_memory()  # as the app and the CLI run
    encoder = load_vgg16(precision)
    loaded = peak_rss_mb()
    schedule = dict(scales=(size // 2, size), scale_steps=(steps, steps)) if coarse_to_fine else {}
    result = stylize(DATA / "content" / PAIRS[0][0], DATA / "styles" / PAIRS[0][1], encoder=encoder, size=size,
                     num_steps=steps, **schedule)
    print(json.dumps({"models_mb": loaded, "peak_mb": peak_rss_mb(), "seconds": result.seconds,
                      "size": result.image.size}))


def memory_section(steps: int, sizes: list[int], precision: str) -> None:
    """Peak RSS of a direct and a coarse-to-fine run at each size, each in a fresh process."""
    print(f"peak RSS of runs of {steps} steps at each size, each in a fresh process ({precision} precision)")
    for size, c2f in itertools.product(sizes, (False, True)):
        mem = child_json([__file__, "--peak-rss", str(size), "--memory-steps", str(steps), "--precision", precision,
                          *(["--peak-rss-c2f"] if c2f else [])])
        w, h = mem["size"]
        history = LBFGS_HISTORY * 2 * 3 * w * h * 4 / 2**20  # pairs of float32 image-sized vectors
        run = f"coarse-to-fine from {size // 2} px" if c2f else "direct"
        print(f"   {w}x{h}, {run}: peak RSS {mem['peak_mb']:.0f} MB (VGG-16 loaded: {mem['models_mb']:.0f} MB; "
              f"the full L-BFGS history alone: {history:.0f} MB); {mem['seconds']:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--schedules", nargs="*", default=None,
                        help="coarse-to-fine schedules SIZExSTEPS+SIZExSTEPS... (default: the library's)")
    parser.add_argument("--upscales", nargs="+", choices=UPSCALES, default=list(UPSCALES))
    parser.add_argument("--skip-step-cost", action="store_true", help="skip section 1")
    parser.add_argument("--no-step-timing", action="store_true",
                        help="section 1 without the float32/bf16/heap comparison of step times "
                             "(bf16 crawls on CPUs without native bf16)")
    parser.add_argument("--quick", action="store_true",
                        help="only section 1 (seconds per step, compute floor, the default and fast schedules' time)")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="of the schedule runs (section 1 times float32 and bf16 steps)")
    parser.add_argument("--init", choices=INITS, default=GatysConfig.init, help="start of section 2's runs")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "gatys")
    parser.add_argument("--memory", action="store_true", help="only peak RSS, direct and coarse-to-fine (fresh "
                                                              "processes)")
    parser.add_argument("--memory-steps", type=int, default=55, help="steps at each size of each --memory run")
    parser.add_argument("--memory-sizes", type=int, nargs="+", default=[512, 1024], help="output sizes of --memory")
    parser.add_argument("--peak-rss", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--peak-rss-c2f", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not (DATA / "content").is_dir():
        print(f"skipped: test images not found at {DATA}")
        return
    if args.peak_rss:
        peak_rss_child(args.peak_rss, args.memory_steps, args.precision, args.peak_rss_c2f)
        return
    if args.memory:
        memory_section(args.memory_steps, args.memory_sizes, args.precision)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    fp32, bf16, runner = load_vgg16("fp32"), load_vgg16("bf16"), load_vgg16(args.precision)
    run_precision = "bf16" if runner.uses_bf16("cpu") else "float32"
    c0, s0 = DATA / "content" / PAIRS[0][0], DATA / "styles" / PAIRS[0][1]
    if not args.skip_step_cost:
        print(f"1. cost of a step, and the default and fast schedules at 512px ({run_precision} runs)")
        if not args.no_step_timing:
            print("   seconds per L-BFGS step (content + 5 style layers, forward + backward); 'heap' after "
                  "allocator.keep_freed_memory()")
            sizes = (256, 512)
            t32 = {size: step_seconds(fp32, c0, s0, size) for size in sizes}
            t16 = {size: step_seconds(bf16, c0, s0, size) for size in sizes}
            keep_freed_memory()
            heap = {size: step_seconds(bf16, c0, s0, size) for size in sizes}
            for size in sizes:
                print(f"   {size}px  fp32 {t32[size]:.3f} s  bf16 {t16[size]:.3f} s  bf16 heap {heap[size]:.3f} s  "
                      f"({t32[size] / t16[size]:.2f}x, heap {t16[size] / heap[size]:.2f}x)", flush=True)
        keep_freed_memory()  # the schedules run as the app and the CLI run them (idempotent)
        step_flops = {size: flops(lambda: stylize(c0, s0, encoder=runner, size=size, num_steps=2))
                      - flops(lambda: stylize(c0, s0, encoder=runner, size=size, num_steps=1))
                      for size in (128, 256, 512)}
        rate = conv_rate(5, dtype=torch.bfloat16 if run_precision == "bf16" else torch.float32)
        print(f"   one step: {step_flops[256] / 1e9:.0f} GFLOP at 256px, {step_flops[512] / 1e9:.0f} at 512px; "
              f"a large {run_precision} 3x3 convolution runs at {rate / 1e9:.0f} GFLOP/s here, so one 512px step "
              f"needs at least {step_flops[512] / rate:.3f} s", flush=True)
        paces = {size: step_seconds(runner, c0, s0, size) for size in step_flops}
        print(f"   {run_precision} steps as the schedules run them: " + ", ".join(
            f"{size}px {paces[size]:.3f} s ({paces[size] * rate / step_flops[size]:.2f}x its convolution floor)"
            for size in step_flops), flush=True)
        runs = (("default", default_schedule(512, args.steps), None), ("fast", fast_schedule(512), None),
                ("fast_30s", fast_schedule(512), 30.0))
        for name, (sizes_, steps_), limit in runs:
            reports: list = []
            result = stylize(c0, s0, encoder=runner, size=512, scales=sizes_, scale_steps=steps_, time_limit=limit,
                             progress=reports.append)
            taken = result.settings["steps_taken"]
            label = "+".join(f"{a}x{b}" for a, b in zip(sizes_, taken))
            floor = sum(n * step_flops[size] for size, n in zip(sizes_, taken)) / rate
            result.image.save(args.out / f"schedule_{name}.png")
            loss = measure_losses(result.image, c0, s0, encoder=fp32, size=512)["total"]
            print(f"   {name} schedule {label}{f' (time_limit {limit:g} s)' if limit else ''}: {result.seconds:.1f} s "
                  f"(at least {floor:.1f} s of convolutions), total loss at 512px {loss:.4g}", flush=True)
            print(f"      {time_left_record(reports, result.seconds)}", flush=True)
    if args.quick:
        return
    schedules = [parse_schedule(s) for s in args.schedules] if args.schedules else [default_schedule(512, args.steps)]
    print(f"2. direct 512px {args.steps} steps vs coarse-to-fine ({run_precision} runs; losses at 512px in float32)")
    for content_name, style_name in PAIRS[: args.pairs]:
        content, style = DATA / "content" / content_name, DATA / "styles" / style_name
        stem = f"{Path(content_name).stem}_{Path(style_name).stem}"

        def losses_of(image) -> dict[str, float]:
            return measure_losses(image, content, style, encoder=fp32, size=512)

        snapshots: list[tuple[int, float, object]] = []
        t0 = time.perf_counter()

        def keep(info) -> None:
            if info.preview is not None:
                snapshots.append((info.step, time.perf_counter() - t0, info.preview))

        direct = stylize(content, style, encoder=runner, size=512, num_steps=args.steps, progress=keep,
                         preview_every=50, init=args.init)
        measured = losses_of(direct.image)
        final = measured["total"]
        direct.image.save(args.out / f"{stem}_direct.png")
        print(f"   {content_name} x {style_name} direct: {direct.seconds:7.1f} s  total loss {final:.4g}; "
              f"its start ({args.init}) has loss {direct.losses[0]['total']:.4g}", flush=True)
        print(f"      terms: {terms(measured)}", flush=True)
        for step, seconds, image in snapshots[:-1]:
            measured = losses_of(image)
            print(f"      after {step:>4} steps ({seconds:6.1f} s, {seconds / direct.seconds:.2f}x time): "
                  f"loss {measured['total'] / final:.3f}x final; terms: {terms(measured)}", flush=True)
        for (sizes, steps), upscale in itertools.product(schedules, args.upscales):
            result = stylize(content, style, encoder=runner, size=512, scales=sizes, scale_steps=steps, upscale=upscale,
                              init=args.init)
            measured = losses_of(result.image)
            loss = measured["total"]
            label = "+".join(f"{a}x{b}" for a, b in zip(sizes, steps))
            result.image.save(args.out / f"{stem}_c2f_{label}_{upscale}.png")
            print(f"   coarse-to-fine {label}, {upscale} upscale: {result.seconds:7.1f} s "
                  f"({result.seconds / direct.seconds:.2f}x time)  total loss {loss:.4g} ({loss / final:.3f}x); "
                  f"the 512px stage starts at loss {fine_start(result):.4g}", flush=True)
            print(f"      terms: {terms(measured)}", flush=True)


if __name__ == "__main__":
    main()
