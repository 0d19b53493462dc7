"""Train the AdaIN decoder (Huang & Belongie 2017, Sec. 6.2) on photos and paintings.

    python -m training.train_adain --data ../shared/data/train --run runs/adain \
        --steps 3200 --crop 128 --batch 8 --style-weight 2      # then, to finish at a larger crop:
    python -m training.train_adain --run runs/adain --steps 3700 --crop 256 --batch 4

The encoder (VGG-normalised VGG-16 up to relu4_1) is fixed, so each content photo's
relu4_1 features and each style crop's mean/std at relu1_1 .. relu4_1 are computed once and
cached in the run folder; a training step then only runs the decoder and the encoder on its
output (forward and backward), about 30% less work than encoding the inputs every step.
Content crops are random windows of the cached feature maps (``--crop`` / 8 cells square).

Loss (paper eq. 8-10): ``L = ||f(g(t)) - t||^2 + lambda * sum_l (||mu(phi_l(g(t))) -
mu(phi_l(s))||^2 + ||sigma(phi_l(g(t))) - sigma(phi_l(s))||^2)`` with MSE means, Adam,
bf16 autocast where the CPU has native bf16. A checkpoint (safetensors: decoder, Adam state,
step) is written every ``--checkpoint-every`` steps together with a fp16 export of the
decoder and a preview; running the same command again resumes from it (``--steps`` is the
total). ``--init FILE`` starts a new run from a saved decoder (e.g. the zoo's default) instead
of random weights, with a fresh Adam; that file's steps and seconds count on. ``--export``
copies the fp16 decoder, with the training settings in its metadata, to a path (the zoo's
embedded default is ``zoo/weights/adain_decoder_vgg16n.safetensors``).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

from styletransfer.adain import ENCODER_LAYER, STYLE_LAYERS, AdaINDecoder, DecoderConfig, StyleStats, stylize_tensor
from styletransfer.imageio import fit_within, list_images, load_image, pil_to_tensor, tensor_to_pil
from styletransfer.ops import adain, calc_mean_std, mean_std_loss
from styletransfer.serialization import ModelFileError
from styletransfer.vgg import VGGEncoder
from zoo.registry import load_normalized_vgg

from .checkpoints import append_log, load_checkpoint, save_checkpoint
from .data import load_training_image, random_crop

CACHE_VERSION = "1"


def build_cache(encoder: VGGEncoder, data: Path, style_crops: int, seed: int, limit: int) -> dict[str, torch.Tensor]:
    """relu4_1 features of every content photo (short side 256) and style statistics of random 256 crops."""
    rng = random.Random(seed)
    cache: dict[str, torch.Tensor] = {}
    photos = list_images(data / "content")[: limit or None]
    t0 = time.perf_counter()
    n = 0
    for path in photos:
        img = load_training_image(path, short_side=256)
        if img is None:
            continue
        with torch.no_grad():
            cache[f"content.{n}"] = encoder(pil_to_tensor(img), [ENCODER_LAYER])[ENCODER_LAYER][0].bfloat16()
        n += 1
        if n % 100 == 0:
            print(f"cached {n}/{len(photos)} content feature maps ({time.perf_counter() - t0:.0f} s)", flush=True)
    means: dict[str, list[torch.Tensor]] = {layer: [] for layer in STYLE_LAYERS}
    stds: dict[str, list[torch.Tensor]] = {layer: [] for layer in STYLE_LAYERS}
    style_ids = []
    for sid, path in enumerate(list_images(data / "styles")):
        img = load_training_image(path, long_side=512)
        if img is None:
            continue
        crops = torch.cat([pil_to_tensor(random_crop(img, 256, rng)) for _ in range(style_crops)])
        with torch.no_grad():
            feats = encoder(crops, STYLE_LAYERS)
        for layer in STYLE_LAYERS:
            mean, std = calc_mean_std(feats[layer])
            means[layer].append(mean.flatten(1))
            stds[layer].append(std.flatten(1))
        style_ids += [sid] * style_crops
    for layer in STYLE_LAYERS:
        cache[f"style_mean.{layer}"] = torch.cat(means[layer])
        cache[f"style_std.{layer}"] = torch.cat(stds[layer])
    cache["style_id"] = torch.tensor(style_ids)
    print(f"cache: {n} content maps, {len(style_ids)} style crops of {style_ids[-1] + 1} paintings "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return cache


def load_or_build_cache(path: Path, encoder: VGGEncoder, args: argparse.Namespace) -> dict[str, torch.Tensor]:
    key = f"{CACHE_VERSION}:{args.data.resolve()}:{args.style_crops}:{args.seed}:{args.limit}"
    if path.exists():
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("key") == key:
                return {k: f.get_tensor(k) for k in f.keys()}
    cache = build_cache(encoder, args.data, args.style_crops, args.seed, args.limit)
    save_file({k: v.contiguous() for k, v in cache.items()}, str(path), metadata={"key": key})
    return cache


def sample_batch(cache: dict[str, torch.Tensor], n_content: int, batch: int, cells: int, gen: torch.Generator):
    """Random content feature windows and random style crops' statistics."""
    windows = []
    for i in torch.randint(n_content, (batch,), generator=gen).tolist():
        fmap = cache[f"content.{i}"]  # short side 256 px = 32 cells >= cells
        h, w = fmap.shape[-2:]
        top = int(torch.randint(h - cells + 1, (1,), generator=gen))
        left = int(torch.randint(w - cells + 1, (1,), generator=gen))
        windows.append(fmap[:, top : top + cells, left : left + cells].float())
    fc = torch.stack(windows)
    sidx = torch.randint(cache["style_id"].numel(), (batch,), generator=gen)
    targets = {layer: (cache[f"style_mean.{layer}"][sidx], cache[f"style_std.{layer}"][sidx]) for layer in STYLE_LAYERS}
    return fc, targets


def adain_losses(
    decoder: AdaINDecoder, encoder: VGGEncoder, fc: torch.Tensor, targets: dict[str, tuple[torch.Tensor, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Content loss against the AdaIN target and the mean/std style loss (both MSE means)."""
    mean4, std4 = targets[ENCODER_LAYER]
    t = adain(fc, mean4[..., None, None], std4[..., None, None])
    feats = encoder(decoder(t), STYLE_LAYERS)
    content = F.mse_loss(feats[ENCODER_LAYER], t)
    style = fc.new_zeros(())
    for layer in STYLE_LAYERS:
        style = style + mean_std_loss(feats[layer], *targets[layer])
    return content, style


def start_from(decoder: AdaINDecoder, path: Path) -> tuple[int, float]:
    """Load a saved decoder's weights into ``decoder`` (same config); returns the steps and seconds it was trained."""
    saved = AdaINDecoder.from_pretrained(path)
    if saved.config != decoder.config:
        raise ModelFileError(f"'{path.name}' holds a decoder with {saved.config}, not {decoder.config}.")
    decoder.load_state_dict(saved.state_dict())
    meta = AdaINDecoder.extra_metadata(path)
    return int(meta.get("steps", 0)), float(meta.get("train_seconds", 0.0))


def write_preview(decoder: AdaINDecoder, encoder: VGGEncoder, pairs: list[tuple[torch.Tensor, torch.Tensor]],
                  path: Path) -> None:
    """A row of stylised test pairs, to look at while training runs."""
    decoder.eval()
    outs = []
    for content, style in pairs:
        mean, std = calc_mean_std(encoder(style, [ENCODER_LAYER])[ENCODER_LAYER])
        out = stylize_tensor(content, [StyleStats(mean, std, (0, 0))], encoder=encoder, decoder=decoder)
        outs.append(F.interpolate(out.clamp(0, 1), size=(256, 256), mode="bilinear", align_corners=False))
    decoder.train()
    tensor_to_pil(torch.cat(outs, dim=-1)).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/train"),
                        help="folder with content/ and styles/")
    parser.add_argument("--run", type=Path, default=Path("runs/adain"), help="run folder (checkpoint, log, cache)")
    parser.add_argument("--steps", type=int, default=3200, help="total steps (resumes count towards it)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128, help="content crop side in px (multiple of 8)")
    parser.add_argument("--style-weight", type=float, default=2.0,
                        help="lambda of the style loss (2: with 10 the decoder ignored the content, see README)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--style-crops", type=int, default=16, help="cached 256 px crops per painting")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos (0 = all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--widths", type=int, nargs=4, default=None, help="decoder widths (tests use tiny ones)")
    parser.add_argument("--init", type=Path, default=None,
                        help="start a new run from this saved decoder (its steps count towards --steps)")
    parser.add_argument("--export", type=Path, default=None, help="copy the fp16 decoder here at the end")
    parser.add_argument("--preview", type=Path, nargs="*", default=None, help="content/style image pairs to preview")
    args = parser.parse_args(argv)
    if args.crop % 8 or not 8 <= args.crop <= 256:
        parser.error("--crop must be a multiple of 8 in [8, 256] (the photos are cached at short side 256)")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.run.mkdir(parents=True, exist_ok=True)

    encoder = load_normalized_vgg()
    config = DecoderConfig(widths=tuple(args.widths)) if args.widths else DecoderConfig()
    decoder = AdaINDecoder(config).train()
    optimizer = torch.optim.Adam(decoder.parameters(), lr=args.lr)
    ckpt = args.run / "checkpoint.safetensors"
    step, state = 0, {"seconds": 0.0}
    if ckpt.exists():
        step, state = load_checkpoint(ckpt, {"decoder": decoder}, {"adam": optimizer})
        for group in optimizer.param_groups:
            group["lr"] = args.lr
        print(f"resumed from step {step}", flush=True)
    elif args.init:
        try:
            step, seconds = start_from(decoder, args.init)
        except (OSError, ModelFileError) as e:
            parser.error(f"--init: {e}")
        if step >= args.steps:
            parser.error(f"--init: that decoder was trained {step} steps already; ask for more with --steps")
        state = {"seconds": seconds, "init": f"{args.init.name} at step {step}"}
        print(f"started from {args.init} (trained {step} steps)", flush=True)
    cache = load_or_build_cache(args.run / "feature_cache.safetensors", encoder, args)
    n_content = sum(1 for k in cache if k.startswith("content."))
    pairs = []
    if args.preview:
        for c, s in zip(args.preview[::2], args.preview[1::2]):
            content_image, style_image = (pil_to_tensor(fit_within(load_image(p), 384)[0]) for p in (c, s))
            pairs.append((content_image, style_image))
    gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
    log = args.run / "log.jsonl"
    window: list[tuple[float, float]] = []
    t_start = time.perf_counter()
    seconds0 = float(state.get("seconds", 0.0))
    while step < args.steps:
        fc, targets = sample_batch(cache, n_content, args.batch, args.crop // 8, gen)
        content, style = adain_losses(decoder, encoder, fc, targets)
        loss = content + args.style_weight * style
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), 10.0)
        optimizer.step()
        step += 1
        window.append((content.item(), style.item()))
        if step % 25 == 0 or step == args.steps:
            c_avg = sum(c for c, _ in window) / len(window)
            s_avg = sum(s for _, s in window) / len(window)
            seconds = seconds0 + time.perf_counter() - t_start
            append_log(log, {"step": step, "content": c_avg, "style": s_avg, "crop": args.crop, "batch": args.batch,
                             "seconds": round(seconds, 1)})
            print(f"step {step}/{args.steps} content {c_avg:.4f} style {s_avg:.4f} ({seconds:.0f} s)", flush=True)
            window.clear()
        if step % args.checkpoint_every == 0 or step == args.steps:
            seconds = seconds0 + time.perf_counter() - t_start
            state = {**state, "seconds": seconds}
            save_checkpoint(ckpt, {"decoder": decoder}, {"adam": optimizer}, step=step, extra=state)
            meta = {"steps": step, "batch": args.batch, "last_crop": args.crop, "style_weight": args.style_weight,
                    "lr": args.lr, "train_seconds": round(seconds), "encoder": "vgg16.normalized relu4_1",
                    "data": "train/content photos + train/styles paintings", "script": "training/train_adain.py"}
            if "init" in state:
                meta["continued_from"] = state["init"]
            decoder.save_pretrained(args.run / "decoder_fp16.safetensors", metadata=meta, dtype=torch.float16)
            if pairs:
                write_preview(decoder, encoder, pairs, args.run / f"preview_{step:06d}.jpg")
    if args.export:
        args.export.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.run / "decoder_fp16.safetensors", args.export)
        print(f"exported {args.export}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
