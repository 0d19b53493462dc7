"""Learn a new StyleBank style from one image, with the auto-encoder frozen (incremental learning).

    python -m training.learn_bank STYLE_IMAGE --name NAME -o bank.safetensors \
        [--autoencoder path/to/autoencoder.safetensors] [--contents ../shared/data/train/content]

Only the new bank is trained (paper: about 1,000 iterations); the result is one small
shareable file with the bank, its name and kernel size, the auto-encoder's fingerprint and a
thumbnail of the style image. Ctrl-C stops early and still writes the bank learned so far.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

import torch
from PIL import Image

from styletransfer.imageio import ImageInputError, list_images, load_image, pil_to_tensor
from styletransfer.outputs import check_output, save_or_keep
from styletransfer.progress import time_left_text
from styletransfer.serialization import ModelFileError
from styletransfer.stylebank import BANK_INITS, BankStep, StyleBankAutoEncoder, learn_bank, save_bank
from zoo.registry import load_stylebank, load_vgg16

from .data import load_training_image, resize_short_side


def load_contents(folder: Path, count: int, size: int, seed: int) -> list[torch.Tensor]:
    """``count`` random photos from ``folder`` whose short side is at least ``size`` (resized to it otherwise)."""
    files = list_images(folder)
    random.Random(seed).shuffle(files)
    out = []
    for path in files[:count]:
        img = load_training_image(path)
        if img is not None:
            out.append(pil_to_tensor(resize_short_side(img, size) if min(img.size) < size else img))
    return out


def contents_from_images(images: Iterable[Image.Image], size: int) -> list[torch.Tensor]:
    """Photos to learn a bank on, each resized so that its short side is the crop side ``size``."""
    return [pil_to_tensor(resize_short_side(img, size)) for img in images]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("style", type=Path, help="the style image")
    parser.add_argument("--name", required=True, help="bank name (letters, digits, _ and -)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="bank file to write (.safetensors)")
    parser.add_argument("--autoencoder", type=Path, default=None,
                        help="the StyleBank auto-encoder file (default: the zoo's StyleBank)")
    parser.add_argument("--contents", type=Path, default=Path("../shared/data/train/content"), help="folder of photos")
    parser.add_argument("--num-contents", type=int, default=200)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256, help="crop side in px")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--kernel-size", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", choices=BANK_INITS, default="auto",
                        help="new bank's start: random (the paper), identity (the auto-encoder's reconstruction) or "
                             "auto (a short probe from each, the better goes on)")
    parser.add_argument("--ema", type=float, default=0.98,
                        help="decay of the weight average returned instead of the last step (0: off, the paper)")
    parser.add_argument("--probe-steps", type=int, default=200, help="steps of each probe with --init auto")
    args = parser.parse_args(argv)
    try:
        check_output(args.output, (".safetensors",))
        if args.autoencoder is None:
            autoencoder = load_stylebank()[0]
        else:
            autoencoder = StyleBankAutoEncoder.from_pretrained(args.autoencoder)
        style = load_image(args.style, name="style")
        contents = load_contents(args.contents, args.num_contents, args.size, args.seed)
        stop = threading.Event()
        start = [""]

        def progress(info: BankStep) -> None:
            start[0] = info.init
            if info.step % 25 == 0 or info.step == info.total:
                print(f"step {info.step}/{info.total} ({info.init} start) style {info.losses['style']:.4f} "
                      f"content {info.losses['content']:.3f} ({info.seconds:.0f} s, "
                      f"{time_left_text(info.seconds_left)})", flush=True)

        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            bank = learn_bank(style, contents, name=args.name, autoencoder=autoencoder, vgg=load_vgg16(),
                              num_steps=args.steps, size=args.size, batch_size=args.batch, lr=args.lr,
                              kernel_size=args.kernel_size, seed=args.seed, init=args.init, ema=args.ema,
                              probe_steps=args.probe_steps, progress=progress,
                              cancel=stop)
        finally:
            signal.signal(signal.SIGINT, previous)
        metadata = {"trained": "incrementally (E, D frozen)", "steps": args.steps, "size": args.size,
                    "batch": args.batch, "lr": args.lr, "init": args.init, "ema": args.ema, "start": start[0],
                    "stopped_early": stop.is_set(), "style_image": args.style.name}
        save_or_keep(lambda target: save_bank(bank, target, thumbnail=style, metadata=metadata), args.output)
    except (ImageInputError, ModelFileError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
