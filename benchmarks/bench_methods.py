"""Every method on the same pairs, measured the same way: seconds, content loss, LPIPS to the content, style loss.

    python benchmarks/bench_methods.py [--data ../shared/data] [--pairs 6] [--size 512] [--bank-steps 1000]
        [--bank-crop 256] [--bank-batch 1]

Methods: AdaIN (the zoo decoder); StyleBank with a bank learned for each style first (incremental
learning on the training photos with the Train tab's CPU settings, its time counted, and the stylisation
alone), and with the zoo bank
whose style is nearest; Gatys with the fast and the default coarse-to-fine schedules. Measures from
``styletransfer.metrics`` (the AdaIN paper's Fig. 3 content and style losses; LPIPS on a float32
VGG-16). Writes a grid (content | style | one column a method) to ``benchmarks/out/methods/``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import benchmark_pairs, have_test_data, save_grid  # noqa: E402

from PIL import Image  # noqa: E402

import zoo  # noqa: E402
from styletransfer import adain, gatys, stylebank  # noqa: E402
from styletransfer.allocator import keep_freed_memory  # noqa: E402
from styletransfer.imageio import fit_within, load_image  # noqa: E402
from styletransfer.metrics import content_style_losses, lpips_content_distance, nearest_style  # noqa: E402
from training.learn_bank import load_contents  # noqa: E402

MEASURES = ("seconds", "content", "lpips", "style")
ALONE = "StyleBank, stylise alone"
"""The row of the new bank's stylisation without its learning (the same image: not shown again in the grid)."""


def timed(fn: Callable[[], Image.Image]) -> tuple[Image.Image, float]:
    t0 = time.perf_counter()
    image = fn()
    return image, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--size", type=int, default=512, help="long side of every result")
    parser.add_argument("--bank-steps", type=int, default=1000, help="steps of each new StyleBank bank")
    parser.add_argument("--bank-crop", type=int, default=256, help="crop side of the bank's training photos")
    parser.add_argument("--bank-batch", type=int, default=1, help="crops a step (1: the Train tab's on a CPU)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "methods")
    args = parser.parse_args()
    if not have_test_data(args.data):
        return 0
    if not (args.data / "train" / "content").is_dir():
        print(f"skipped: no training photos at {args.data / 'train' / 'content'} (for the new StyleBank banks)")
        return 0
    keep_freed_memory()
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = benchmark_pairs(args.data, args.pairs)
    vgg, normalized = zoo.load_vgg16(), zoo.load_normalized_vgg()
    lpips_vgg, heads = zoo.load_vgg16("fp32"), zoo.load_lpips_heads()
    decoder = zoo.load_adain_decoder()
    autoencoder, zoo_banks = zoo.load_stylebank()
    photos = load_contents(args.data / "train" / "content", 64, args.bank_crop, seed=0)
    thumbs = {name: bank.thumbnail for name, bank in zoo_banks.items()}
    print(f"{len(pairs)} pairs at {args.size} px: " + ", ".join(f"{c.stem}+{s.stem}" for c, s in pairs), flush=True)

    results: dict[str, list[dict[str, float]]] = {}
    grid_rows = []
    for i, (c_path, s_path) in enumerate(pairs):
        content = fit_within(load_image(c_path), args.size, name="content")[0]
        style = fit_within(load_image(s_path), 512, name="style")[0]
        outs: dict[str, tuple[Image.Image, float]] = {}
        adain.stylize(content, style, encoder=normalized, decoder=decoder, size=None)  # warm-up
        outs["AdaIN"] = timed(lambda: adain.stylize(content, style, encoder=normalized, decoder=decoder, size=None))
        t0 = time.perf_counter()
        bank = stylebank.learn_bank(style, photos, name="new", autoencoder=autoencoder, vgg=vgg,
                                    num_steps=args.bank_steps, size=args.bank_crop, batch_size=args.bank_batch,
                                    seed=i)
        learning = time.perf_counter() - t0
        image, seconds = timed(lambda: stylebank.stylize(content, "new", autoencoder=autoencoder,
                                                         banks={"new": bank}, size=None).image)
        outs[f"StyleBank, new bank ({args.bank_steps} steps) + stylise"] = image, learning + seconds
        outs[ALONE] = image, seconds
        nearest = nearest_style(style, thumbs, encoder=normalized)
        outs["StyleBank, nearest zoo bank"] = timed(lambda: stylebank.stylize(
            content, nearest, autoencoder=autoencoder, banks=zoo_banks, size=None).image)
        for label, schedule in (("fast", gatys.fast_schedule(args.size)), ("default", None)):
            scales = dict(zip(("scales", "scale_steps"), schedule)) if schedule else {"coarse_to_fine": True}
            result = gatys.stylize(content, style, encoder=vgg, size=args.size, **scales)
            outs[f"Gatys, {label} coarse-to-fine"] = result.image, result.seconds
        for name, (image, seconds) in outs.items():
            losses = content_style_losses(image, content, style, encoder=normalized)
            results.setdefault(name, []).append({
                "seconds": seconds, **losses, "lpips": lpips_content_distance(image, content, vgg=lpips_vgg,
                                                                              heads=heads)})
        print(f"pair {i + 1}: {c_path.stem} + {s_path.stem} (nearest zoo bank: {nearest})", flush=True)
        shown = [content, style] + [image for name, (image, _) in outs.items() if name != ALONE]
        grid_rows.append(shown)

    print(f"\nmean over {len(pairs)} pairs at {args.size} px (content loss: VGG-normalised relu4_1 MSE; LPIPS to "
          "the content: VGG-16 v0.1, float32; style loss: mean/std on relu1_1..relu4_1):\n"
          "| method | seconds | content loss | LPIPS to content | style loss |\n|---|---|---|---|---|")
    for name, rows in results.items():
        means = (statistics.mean(r[key] for r in rows) for key in MEASURES)
        print(f"| {name} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    save_grid(grid_rows, args.out / "grid.jpg")
    columns = [name for name in results if name != ALONE]
    print(f"\nwrote {args.out / 'grid.jpg'} (columns: content, style, {', '.join(columns)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
