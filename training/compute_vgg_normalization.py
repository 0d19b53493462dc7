"""Compute the per-filter scales of the normalised VGG-16 and write them into the zoo.

    python -m training.compute_vgg_normalization --data ../shared/data/train/content \
        -o zoo/weights/vgg16_normalized_scales.safetensors

Every photo is resized so its short side is ``--size`` and centre-cropped to a square,
then VGG-16 (float32, for reproducible numbers) runs over all of them and each filter's
mean post-ReLU activation over images and positions becomes its scale (Gatys et al. 2015).
The file records the image count, size and the sorted file list's digest, so a rerun on
the same folder reproduces it bit for bit on the same machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file

from styletransfer.imageio import ImageInputError, list_images, load_image, pil_to_tensor
from styletransfer.vgg_normalize import mean_filter_activations
from zoo.registry import load_vgg16


def _square(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    s = size / min(w, h)
    img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.Resampling.BICUBIC)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return img.crop((left, top, left + size, top + size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="folder of photos")
    parser.add_argument("-o", "--output", required=True, type=Path)
    parser.add_argument("--size", type=int, default=256, help="square crop side (default 256)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N files (0 = all)")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)

    try:
        files = list_images(args.data)
    except FileNotFoundError as e:
        parser.error(f"--data: {e}")
    if args.limit:
        files = files[: args.limit]

    def batches():
        batch: list[torch.Tensor] = []
        for i, path in enumerate(files, 1):
            try:
                batch.append(pil_to_tensor(_square(load_image(path, name=path.name), args.size)))
            except ImageInputError as e:
                print(f"skipping {e}", file=sys.stderr)
            if len(batch) == args.batch or i == len(files):
                if batch:
                    yield torch.cat(batch)
                batch = []
                print(f"\r{i}/{len(files)} images", end="", file=sys.stderr, flush=True)

    start = time.perf_counter()
    encoder = load_vgg16("fp32")
    with torch.inference_mode():
        means = mean_filter_activations(encoder, batches())
    digest = hashlib.sha256("\n".join(p.name for p in files).encode()).hexdigest()
    meta = {
        "base": "vgg16.tv_in1k",
        "images": str(len(files)),
        "size": str(args.size),
        "file_list_sha256": digest,
        "recipe": "mean post-ReLU activation per filter over images and positions, float32",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: m.float() for name, m in means.items()}, str(args.output), metadata=meta)
    print(f"\nwrote {args.output} in {time.perf_counter() - start:.0f} s: {json.dumps(meta)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
