"""StyleBank benchmark: stylisation speed, auto-encoder reconstruction, incremental learning, in one run.

    python benchmarks/bench_stylebank.py [--data ../shared/data] [--autoencoder FILE] \
        [--relearn BANK BANK] [--steps 1000] [--batch 1] [--variant random:0 identity:0.98]
    python benchmarks/bench_stylebank.py --memory

1. seconds per image at 256 and 512 px (float32 and bf16, then bf16 and int8 after
   ``allocator.keep_freed_memory()``; one bank and, in int8, a 2-bank linear fusion), and the
   compute floors (FLOPs of the pass over the best measured bf16 and int8 convolution rates);
2. reconstruction PSNR of the auto-encoder (no bank) on the test content photos, and how close the
   bf16 and int8 outputs come to float32 (PSNR over every test photo and bank);
3. for each ``--relearn`` style of the jointly trained set and each ``--variant``: a new bank learned
   with E and D frozen (:func:`styletransfer.stylebank.learn_bank`, 256 px crops), its style and
   content loss on fixed evaluation crops every ``--eval-every`` steps next to the jointly
   trained bank's on the same crops, and the training time (evaluation excluded) at which its
   style loss first comes within 10% of the joint bank's.

``--memory`` instead measures peak RSS: the zoo's auto-encoder and banks loaded and one 1024x1024
image stylised, in a fresh process set up as the app and the CLI set it up.

Writes a grid (content | banks) and the re-learned banks' outputs to ``benchmarks/out/stylebank/``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    child_json, conv_rate, flops, have_test_data, int8_conv_rate, median_time, peak_rss_mb,
)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

import zoo  # noqa: E402
import zoo.publish  # noqa: E402
from styletransfer.allocator import keep_freed_memory  # noqa: E402
from styletransfer.imageio import fit_within, load_image, pil_to_tensor, tensor_to_pil  # noqa: E402
from styletransfer.stylebank import (  # noqa: E402
    BANK_INITS,
    BankStep,
    LossConfig,
    StyleBank,
    STYLE_SIZE,
    StyleBankAutoEncoder,
    StyleTargets,
    learn_bank,
    load_banks,
    perceptual_loss,
    style_targets,
    stylize,
)
from styletransfer.vgg import VGGEncoder, bf16_is_fast  # noqa: E402
from training.learn_bank import load_contents  # noqa: E402

WITHIN = 1.10
"""The incremental bank counts as caught up when its style loss is at most this times the joint bank's."""


def square_crop(img: Image.Image, size: int) -> torch.Tensor:
    """The centre ``size`` square of ``img`` resized to short side ``size``, as ``[1, 3, size, size]``."""
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.LANCZOS)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return pil_to_tensor(img.crop((left, top, left + size, top + size)))


@torch.no_grad()
def eval_losses(autoencoder: StyleBankAutoEncoder, bank: StyleBank, vgg: VGGEncoder, crops: torch.Tensor,
                targets, loss: LossConfig) -> dict[str, float]:
    """Mean content and style loss of ``bank`` on ``crops`` (the training loss, measured without sampling noise)."""
    use_bf16 = bf16_is_fast(crops.device)
    totals = {"content": 0.0, "style": 0.0}
    for x in crops.split(4):
        with torch.autocast(crops.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            out = autoencoder.decode(bank(autoencoder.encode(x))).float()
        losses = perceptual_loss(out, x, [targets] * len(x), vgg, loss)
        for key in totals:
            totals[key] += float(losses[key]) * len(x)
    return {key: value / len(crops) for key, value in totals.items()}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(max(float(F.mse_loss(a, b)), 1e-12))


def variant(text: str) -> tuple[str, float]:
    """``INIT:EMA`` (e.g. ``identity:0.98``) for ``--variant``."""
    init, _, ema = text.partition(":")
    if init not in BANK_INITS or not ema:
        raise argparse.ArgumentTypeError(f"expected INIT:EMA with INIT one of {', '.join(BANK_INITS)}, got {text!r}")
    return init, float(ema)


def relearn(style_img: Image.Image, pool: list[torch.Tensor], autoencoder: StyleBankAutoEncoder, vgg: VGGEncoder,
            crops: torch.Tensor, targets: StyleTargets, loss: LossConfig, joint: dict[str, float], init: str,
            ema: float, args: argparse.Namespace) -> tuple[StyleBank, list[tuple[int, float, dict[str, float]]]]:
    """Learn one bank incrementally; its losses on ``crops`` every ``--eval-every`` steps as
    (step, training seconds without the evaluations, losses)."""
    curve: list[tuple[int, float, dict[str, float]]] = []
    eval_seconds = [0.0]

    def progress(info: BankStep) -> None:
        if info.step % args.eval_every and info.step != info.total:
            return
        t0 = time.perf_counter()
        train_seconds = info.seconds - eval_seconds[0]  # learn_bank's clock includes earlier evaluations
        measured = eval_losses(autoencoder, info.bank, vgg, crops, targets, loss)
        eval_seconds[0] += time.perf_counter() - t0
        curve.append((info.step, train_seconds, measured))
        print(f"  step {info.step:>5} {train_seconds:>6.0f} s  style {measured['style']:.3f} "
              f"({measured['style'] / joint['style']:.2f}x joint)  content {measured['content']:.3f}  "
              f"({info.init} start)", flush=True)

    bank = learn_bank(style_img, pool, name="relearned", autoencoder=autoencoder, vgg=vgg, num_steps=args.steps,
                      size=256, batch_size=args.batch, style_size=STYLE_SIZE, lr=args.lr, loss=loss, init=init,
                      ema=ema, progress=progress)
    return bank, curve


def peak_rss_child(size: int) -> None:
    """Run in a fresh process: load the zoo's StyleBank, stylise one random ``size`` px square; print MB as JSON."""
    keep_freed_memory()  # as the app and the CLI run
    autoencoder, banks = zoo.load_stylebank()
    loaded = peak_rss_mb()
    image = tensor_to_pil(torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)))
    result = stylize(image, next(iter(banks)), autoencoder=autoencoder, banks=banks, size=None)
    print(json.dumps({"models_mb": loaded, "peak_mb": peak_rss_mb(), "banks": len(banks),
                      "precision": result.settings.get("precision")}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--autoencoder", type=Path, default=None,
                        help="auto-encoder file with banks/ beside it (default: the zoo's)")
    parser.add_argument("--relearn", nargs="*", default=None,
                        help="banks of the joint set to learn again incrementally (default: the first and the last)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--variant", nargs="+", type=variant, default=[("auto", 0.98)], metavar="INIT:EMA",
                        help="new-bank recipes to compare: start (random, identity or auto) and weight-average decay; "
                             "the default is learn_bank's, random:0 is the paper's")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--eval-crops", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "stylebank")
    parser.add_argument("--memory", action="store_true", help="only peak RSS at 1024x1024 (a fresh process)")
    parser.add_argument("--peak-rss", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_rss:
        peak_rss_child(args.peak_rss)
        return 0
    if args.memory:
        mem = child_json([__file__, "--peak-rss", "1024"])
        print(f"peak RSS at 1024x1024 (fresh process, {mem['precision']}): {mem['peak_mb']:.0f} MB "
              f"(auto-encoder and {mem['banks']} banks loaded: {mem['models_mb']:.0f} MB)")
        return 0
    if not have_test_data(args.data):
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.autoencoder:
        ae_path, bank_files = args.autoencoder, sorted((args.autoencoder.parent / "banks").glob("*.safetensors"))
    else:
        spec = next(s for s in zoo.list_models("stylebank") if s.kind == "stylebank-autoencoder")
        found, files = zoo.publish.pull(spec.name)
        ae_path, bank_files = found.path, [p for key, p in files.items() if key != spec.filename]
    autoencoder = StyleBankAutoEncoder.from_pretrained(ae_path).eval().requires_grad_(False)
    banks = load_banks(bank_files, autoencoder)
    style_files = {name: StyleBank.extra_metadata(path).get("style_image", name)
                   for name, path in zip(banks, bank_files)}
    loss, style_size = LossConfig(), STYLE_SIZE
    contents = sorted((args.data / "content").glob("*.jpg"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(banks)} banks; "
          f"{len(contents)} test photos; style weight {loss.style_weight}, style size {style_size}", flush=True)

    # ---- 1. speed
    names = list(banks)
    photo = load_image(contents[0])
    print("\nseconds per image (median of %d), stylebank.stylize from a PIL image; 'heap' columns after "
          "allocator.keep_freed_memory()" % args.repeats)

    def seconds(img: Image.Image, style: str | dict[str, float], precision: str) -> float:
        return median_time(lambda: stylize(img, style, autoencoder=autoencoder, banks=banks, size=None,
                                           precision=precision), args.repeats)

    images = {size: photo.resize((size, size), Image.Resampling.LANCZOS) for size in (256, 512)}
    fp32 = {size: seconds(img, names[0], "fp32") for size, img in images.items()}
    bf16 = {size: seconds(img, names[0], "bf16") for size, img in images.items()}
    heap_ok = keep_freed_memory()
    heap = {size: seconds(img, names[0], "bf16") for size, img in images.items()}
    int8 = {size: seconds(img, names[0], "int8") for size, img in images.items()}
    fusion = {size: seconds(img, {names[0]: 0.5, names[1]: 0.5}, "int8") for size, img in images.items()}
    print(f"{'size':>6} {'fp32 1 bank':>12} {'bf16 1 bank':>12} {'bf16 heap':>10} {'int8 heap':>10} "
          f"{'int8 fusion':>12} {'fp32/bf16':>10} {'bf16/heap':>10} {'int8/bf16 heap':>15}")
    for size in images:
        print(f"{size:>6} {fp32[size]:>12.3f} {bf16[size]:>12.3f} {heap[size]:>10.3f} {int8[size]:>10.3f} "
              f"{fusion[size]:>12.3f} {fp32[size] / bf16[size]:>9.2f}x {bf16[size] / heap[size]:>9.2f}x "
              f"{int8[size] / heap[size]:>14.3f}", flush=True)
    if not heap_ok:
        print("(the C library refused the allocator settings: the heap columns ran with its defaults)")
    total = flops(lambda: stylize(images[512], names[0], autoencoder=autoencoder, banks=banks, size=None,
                                  precision="bf16"))
    rate, rate8 = conv_rate(args.repeats), int8_conv_rate(args.repeats)
    print(f"compute floor at 512x512: {total / 1e9:.1f} GFLOP per image as bf16 and int8 run it; a large 3x3 "
          f"convolution runs at {rate / 1e9:.0f} GFLOP/s in bf16 and {rate8 / 1e9:.0f} GOP/s in int8 here, so at "
          f"least {total / rate:.3f} s and {total / rate8:.3f} s; measured {heap[512]:.3f} s and {int8[512]:.3f} s")

    # ---- 2. reconstruction
    scores = []
    with torch.no_grad():
        for path in contents:
            x = pil_to_tensor(fit_within(load_image(path), 512)[0])
            x = x[..., : x.shape[-2] // 4 * 4, : x.shape[-1] // 4 * 4]
            scores.append(psnr(autoencoder(x).clamp(0, 1), x))
    print(f"\nauto-encoder reconstruction on {len(scores)} test photos (long side 512): PSNR mean "
          f"{statistics.mean(scores):.2f} dB, min {min(scores):.2f}, max {max(scores):.2f}", flush=True)

    # ---- 2b. fidelity of the fast paths to float32
    fidelity: dict[str, list[float]] = {"bf16": [], "int8": []}
    for path in contents:
        img = fit_within(load_image(path), 512)[0]
        for name in names:
            ref = pil_to_tensor(stylize(img, name, autoencoder=autoencoder, banks=banks, precision="fp32").image)
            for precision, found in fidelity.items():
                out = stylize(img, name, autoencoder=autoencoder, banks=banks, precision=precision).image
                found.append(psnr(pil_to_tensor(out), ref))
    for precision, found in fidelity.items():
        print(f"{precision} output against float32, {len(contents)} test photos (long side 512) x {len(names)} banks: "
              f"PSNR mean {statistics.mean(found):.2f} dB, min {min(found):.2f}", flush=True)

    # ---- grid
    rows = []
    for path in contents[:: max(1, len(contents) // 3)][:3]:
        img = fit_within(load_image(path), 256)[0]
        tiles = [img] + [stylize(img, n, autoencoder=autoencoder, banks=banks, size=None).image for n in names[:6]]
        rows.append(torch.cat([pil_to_tensor(t.resize((256, 256))) for t in tiles], dim=-1))
    tensor_to_pil(torch.cat(rows, dim=-2)).save(args.out / "grid.jpg")

    # ---- 3. incremental learning against the joint banks
    vgg = zoo.load_vgg16()
    crops = torch.cat([square_crop(load_image(p), 256) for p in contents[: args.eval_crops]])
    pool = load_contents(args.data / "train" / "content", 200, 256, 0)
    styles_dir = args.data / "train" / "styles"
    summary = []
    for style_name in args.relearn if args.relearn is not None else [names[0], names[-1]]:
        if style_name not in banks:
            print(f"\n{style_name}: not a bank of this model; skipped")
            continue
        style_img = fit_within(load_image(next(styles_dir.glob(style_files[style_name] + ".*"))), style_size)[0]
        targets = style_targets(pil_to_tensor(style_img), vgg, loss)
        joint = eval_losses(autoencoder, banks[style_name], vgg, crops, targets, loss)
        tiles = [fit_within(load_image(contents[0]), 256)[0]]
        tiles.append(stylize(tiles[0], style_name, autoencoder=autoencoder, banks=banks, size=None).image)
        for init, ema in args.variant:
            print(f"\n{style_name}: joint bank style {joint['style']:.3f} content {joint['content']:.3f}; learning a "
                  f"new bank ({init} init, ema {ema}, {args.steps} steps, batch {args.batch}, 256 px)", flush=True)
            bank, curve = relearn(style_img, pool, autoencoder, vgg, crops, targets, loss, joint, init, ema, args)
            within = [m["style"] <= WITHIN * joint["style"] for _, _, m in curve]
            first = within.index(True) if any(within) else None
            reached = None if first is None else curve[first][1]
            held = "" if first is None else f"{sum(within[first:])}/{len(within) - first}"
            summary.append((style_name, f"{init}:{ema:g}", joint, curve[-1][2], reached, held, curve[-1][1]))
            tiles.append(stylize(tiles[0], "new", autoencoder=autoencoder, banks={"new": bank}, size=None).image)
        tensor_to_pil(torch.cat([pil_to_tensor(t) for t in tiles], dim=-1)).save(args.out / f"relearn_{style_name}.jpg")
    if summary:
        print(f"\n{'style':<26} {'variant':<14} {'joint style':>11} {'incr style':>11} {'joint content':>13} "
              f"{'incr content':>12} {'within 10% after':>17} {'held':>6} {'total':>7}")
        for name, init, joint, final, reached, held, total in summary:
            when = f"{reached:.0f} s" if reached is not None else "not reached"
            print(f"{name:<26} {init:<14} {joint['style']:>11.3f} {final['style']:>11.3f} {joint['content']:>13.3f} "
                  f"{final['content']:>12.3f} {when:>17} {held:>6} {total:>5.0f} s")
        print("(held: evaluations from the first one within 10% on that were within 10%)")
    print(f"\nimages in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
