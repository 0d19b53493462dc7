"""Joint StyleBank training, the paper's Algorithm 1 ((T+1)-step alternating strategy).

    python -m training.train_stylebank --data ../shared/data/train --run runs/stylebank \
        --styles 16 --iterations 12000 --crop 128 --batch 4

Each iteration runs T stylising steps on E -> K_i -> D with the perceptual loss (updating E,
D and the sampled banks), then one auto-encoder step with the MSE identity loss whose
gradient on E and D is rescaled to ``lambda * ||grad^K|| / ||grad^I||`` before the update.
Guards against the divergence a probe showed: linear learning-rate warm-up, x``--decay``
every ``--decay-every`` iterations, gradient clipping, and a spike detector that rolls back to
the last good checkpoint (and halves the learning rate) when a logged window's style or
identity loss jumps above ``--spike-factor`` times its running best, or turns non-finite.
Checkpoints (safetensors) and a JSON-lines log live in the run folder; running the command
again resumes. ``--export DIR`` writes the fp16 auto-encoder and one bank file per style.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from styletransfer.imageio import list_images, pil_to_tensor, tensor_to_pil
from styletransfer.stylebank import (
    AutoEncoderConfig,
    BankConfig,
    STYLE_SIZE,
    LossConfig,
    StyleBank,
    StyleBankAutoEncoder,
    StyleTargets,
    perceptual_loss,
    save_bank,
    style_targets,
)
from styletransfer.vgg import VGGEncoder, bf16_is_fast
from zoo.registry import load_vgg16

from .checkpoints import append_log, load_checkpoint, save_checkpoint
from .data import load_training_image

__all__ = ["grad_norm", "stylizing_step", "identity_step", "main"]

MAX_ROLLBACKS = 3
"""Consecutive rollbacks allowed before a high loss is accepted (so noise cannot loop forever)."""


def grad_norm(params: list[torch.nn.Parameter]) -> float:
    """L2 norm of the gradients of ``params`` (those without a gradient count as zero)."""
    total = sum(float(p.grad.float().pow(2).sum()) for p in params if p.grad is not None)
    return math.sqrt(total)


def stylizing_step(
    autoencoder: StyleBankAutoEncoder,
    banks: torch.nn.ModuleDict,
    vgg: VGGEncoder,
    x: torch.Tensor,
    style_names: list[str],
    targets: dict[str, StyleTargets],
    optimizer: torch.optim.Optimizer,
    loss: LossConfig,
    clip: float,
) -> tuple[dict[str, float], float]:
    """One E -> K -> D step (each crop through its own style's bank); returns the losses and ``||grad^K||``,
    the norm on E, D of the gradient as applied (after clipping, so ``lambda`` keeps its meaning)."""
    use_bf16 = bf16_is_fast(x.device)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_bf16):
        feats = autoencoder.encode(x)
        stylized = torch.cat([banks[name](feats[i : i + 1]) for i, name in enumerate(style_names)])
        out = autoencoder.decode(stylized).float()
    losses = perceptual_loss(out, x, [targets[name] for name in style_names], vgg, loss)
    optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], clip)
    norm_k = grad_norm(list(autoencoder.parameters()))
    optimizer.step()
    return {k: v.item() for k, v in losses.items()}, norm_k


def identity_step(
    autoencoder: StyleBankAutoEncoder,
    x: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    norm_k: float,
    lam: float,
    clip: float,
) -> tuple[float, float]:
    """The auto-encoder step: MSE identity loss, gradient on E, D rescaled to ``lam * norm_k`` (then clipped at
    ``lam * clip``, a bound it only reaches if ``norm_k`` exceeds ``clip``); returns (loss, scale)."""
    use_bf16 = bf16_is_fast(x.device)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_bf16):
        out = autoencoder(x).float()
    loss = F.mse_loss(out, x)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = list(autoencoder.parameters())
    norm_i = grad_norm(params)
    scale = lam * norm_k / norm_i if norm_i > 0 else 0.0
    for p in params:
        if p.grad is not None:
            p.grad.mul_(scale)
    torch.nn.utils.clip_grad_norm_(params, lam * clip)
    optimizer.step()
    return loss.item(), scale


def _lr_at(iteration: int, args: argparse.Namespace, lr_scale: float) -> float:
    warm = min(1.0, (iteration + 1) / max(1, args.warmup))
    return args.lr * lr_scale * warm * args.decay ** (iteration // args.decay_every)


def _crops(photos: list[torch.Tensor], n: int, size: int, rng: random.Random) -> torch.Tensor:
    out = []
    for _ in range(n):
        img = photos[rng.randrange(len(photos))]
        h, w = img.shape[-2:]
        top, left = rng.randint(0, h - size), rng.randint(0, w - size)
        crop = img[:, top : top + size, left : left + size]
        out.append(crop.flip(-1) if rng.random() < 0.5 else crop)
    return torch.stack(out).float().div_(255)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/train"),
                        help="folder with content/ and styles/")
    parser.add_argument("--run", type=Path, default=Path("runs/stylebank"))
    parser.add_argument("--styles", type=int, default=16,
                        help="use the first N paintings of styles/ (or --style-files)")
    parser.add_argument("--style-files", nargs="*", default=None, help="file names in styles/ to use, in order")
    parser.add_argument("--iterations", type=int, default=12000, help="total Algorithm-1 iterations (T+1 steps each)")
    parser.add_argument("--T", type=int, default=2, dest="T")
    parser.add_argument("--lam", type=float, default=1.0, help="lambda of the gradient rescaling (paper: 1)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--style-size", type=int, default=STYLE_SIZE,
                        help="long side of the style images for Gram targets")
    parser.add_argument("--lr", type=float, default=3e-4,
                        help="peak Adam rate (1e-3 wrecked the reconstruction, see README)")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--decay", type=float, default=0.8)
    parser.add_argument("--decay-every", type=int, default=3000)
    parser.add_argument("--clip", type=float, default=5.0)
    parser.add_argument("--spike-factor", type=float, default=4.0)
    parser.add_argument("--style-weight", type=float, default=LossConfig.style_weight)
    parser.add_argument("--tv-weight", type=float, default=LossConfig.tv_weight)
    parser.add_argument("--upsample", choices=("transposed", "resize"), default="resize",
                        help="decoder upsampling (resize: nearest + conv, our default; transposed: the paper's)")
    parser.add_argument("--norm", choices=("none", "instance"), default="none",
                        help="normalisation in E and D (none: our default; instance: the paper's)")
    parser.add_argument("--channels", type=int, nargs=3, default=(32, 64, 128))
    parser.add_argument("--kernel-size", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos (0 = all)")
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--export", type=Path, default=None,
                        help="write autoencoder.safetensors and banks/ here (fp16)")
    parser.add_argument("--rename", nargs="*", default=[], metavar="STEM=NAME",
                        help="bank names for the export (default: the style files' stems)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.crop % 4:
        parser.error("--crop must be a multiple of 4")
    if any("=" not in item for item in args.rename):
        parser.error("--rename takes STEM=NAME pairs")
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    args.run.mkdir(parents=True, exist_ok=True)

    vgg = load_vgg16()
    loss_cfg = LossConfig(style_weight=args.style_weight, tv_weight=args.tv_weight)
    style_files = ([args.data / "styles" / f for f in args.style_files] if args.style_files
                   else list_images(args.data / "styles")[: args.styles])
    styles = {}
    for path in style_files:
        img = load_training_image(path, long_side=args.style_size)
        if img is not None:
            styles[path.stem.replace(" ", "_")[:64]] = img  # the style file's stem names the bank (see --rename)
    targets = {name: style_targets(pil_to_tensor(img), vgg, loss_cfg) for name, img in styles.items()}
    photos = []
    for path in list_images(args.data / "content")[: args.limit or None]:
        img = load_training_image(path)
        if img is not None and min(img.size) >= args.crop:
            photos.append((pil_to_tensor(img)[0] * 255).round().to(torch.uint8))
    print(f"{len(photos)} photos, {len(styles)} styles: {', '.join(styles)}", flush=True)

    autoencoder = StyleBankAutoEncoder(AutoEncoderConfig(tuple(args.channels), args.upsample, args.norm)).train()
    banks = torch.nn.ModuleDict({
        name: StyleBank(BankConfig(name, args.channels[-1], args.kernel_size)) for name in styles
    })
    optimizer = torch.optim.Adam([*autoencoder.parameters(), *banks.parameters()], lr=args.lr)
    optimizers = {"adam": optimizer}
    ckpt = args.run / "checkpoint.safetensors"
    iteration, state = 0, {"seconds": 0.0, "lr_scale": 1.0, "best": {}}
    if ckpt.exists():
        iteration, state = load_checkpoint(ckpt, {"autoencoder": autoencoder, "banks": banks}, optimizers)
        print(f"resumed at iteration {iteration}", flush=True)
    names = list(styles)
    log = args.run / "log.jsonl"
    window: dict[str, list[float]] = {"content": [], "style": [], "tv": [], "identity": [], "scale": []}
    t0, seconds0 = time.perf_counter(), float(state["seconds"])
    rollbacks = 0
    while iteration < args.iterations:
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(iteration, args, state["lr_scale"])
        for _ in range(args.T):
            x = _crops(photos, args.batch, args.crop, rng)
            picked = [rng.choice(names) for _ in range(args.batch)]
            losses, norm_k = stylizing_step(autoencoder, banks, vgg, x, picked, targets, optimizer, loss_cfg, args.clip)
            for key in ("content", "style", "tv"):
                window[key].append(losses[key])
        identity, scale = identity_step(autoencoder, _crops(photos, args.batch, args.crop, rng), optimizer, norm_k,
                                        args.lam, args.clip)
        window["identity"].append(identity)
        window["scale"].append(scale)
        iteration += 1
        if iteration % args.log_every and iteration != args.iterations:
            continue
        means = {k: sum(v) / len(v) for k, v in window.items() if v}
        window = {k: [] for k in window}
        seconds = seconds0 + time.perf_counter() - t0
        psnr = -10 * math.log10(max(means["identity"], 1e-10))
        record = {"iteration": iteration, **means, "psnr": psnr, "lr": optimizer.param_groups[0]["lr"],
                  "seconds": round(seconds, 1)}
        best = state["best"]
        spiked = not all(math.isfinite(v) for v in means.values()) or (
            iteration > args.warmup
            and any(means[k] > args.spike_factor * best.get(k, math.inf) for k in ("style", "identity")))
        rollbacks = rollbacks + 1 if spiked else 0
        if spiked and ckpt.exists() and rollbacks <= MAX_ROLLBACKS:
            print(f"iteration {iteration}: loss spike {means}; rolling back to the last checkpoint", flush=True)
            append_log(log, {**record, "event": "rollback"})
            lr_scale = state["lr_scale"] * 0.5
            iteration, state = load_checkpoint(ckpt, {"autoencoder": autoencoder, "banks": banks}, optimizers)
            state["lr_scale"] = lr_scale
            t0, seconds0 = time.perf_counter(), seconds
            continue
        for k in ("style", "identity"):
            best[k] = min(best.get(k, math.inf), means[k])
        append_log(log, record)
        print(f"it {iteration}/{args.iterations} content {means['content']:.3f} style {means['style']:.4f} "
              f"identity {means['identity']:.4f} ({psnr:.1f} dB) scale {means['scale']:.3g} ({seconds:.0f} s)",
              flush=True)
        if iteration % args.checkpoint_every == 0 or iteration == args.iterations:
            state["seconds"] = seconds
            save_checkpoint(ckpt, {"autoencoder": autoencoder, "banks": banks}, optimizers,
                            step=iteration, extra=state)
            _preview(autoencoder, banks, photos[0], args.run / f"preview_{iteration:06d}.jpg")
    if args.export:
        export(autoencoder, banks, styles, args, float(state["seconds"]), iteration)
    return 0


@torch.no_grad()
def _preview(autoencoder: StyleBankAutoEncoder, banks: torch.nn.ModuleDict, photo: torch.Tensor, path: Path) -> None:
    autoencoder.eval()
    x = photo[None].float().div(255)
    x = x[..., : x.shape[-2] // 4 * 4, : x.shape[-1] // 4 * 4]
    feats = autoencoder.encode(x)
    outs = [autoencoder.decode(feats)] + [autoencoder.decode(bank(feats)) for bank in list(banks.values())[:5]]
    tensor_to_pil(torch.cat([x] + outs, dim=-1).clamp(0, 1)).save(path)
    autoencoder.train()


def export(autoencoder: StyleBankAutoEncoder, banks: torch.nn.ModuleDict, styles: dict, args: argparse.Namespace,
           seconds: float, iteration: int) -> None:
    """Write the fp16 auto-encoder and one shareable bank file per style (fingerprint of the fp16 auto-encoder)."""
    meta = {"iterations": iteration, "T": args.T, "lambda": args.lam, "batch": args.batch, "crop": args.crop,
            "lr": args.lr, "style_weight": args.style_weight, "tv_weight": args.tv_weight,
            "style_size": args.style_size,
            "train_seconds": round(seconds), "script": "training/train_stylebank.py"}
    out = args.export
    renames = dict(item.split("=", 1) for item in args.rename)
    meta["styles"] = [renames.get(name, name) for name in styles]
    autoencoder.save_pretrained(out / "autoencoder.safetensors", metadata=meta, dtype=torch.float16)
    fingerprint = StyleBankAutoEncoder.from_pretrained(out / "autoencoder.safetensors").fingerprint()
    for stem, bank in banks.items():
        name = renames.get(stem, stem)
        shipped = StyleBank(BankConfig(name, bank.config.channels, bank.config.kernel_size, fingerprint))
        shipped.load_state_dict(bank.state_dict())
        save_bank(shipped, out / "banks" / f"{name}.safetensors", thumbnail=styles[stem], dtype=torch.float16,
                  metadata={"trained": "jointly (Algorithm 1)", "iterations": iteration, "style_image": stem})
    print(f"exported the auto-encoder and {len(banks)} banks to {out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
