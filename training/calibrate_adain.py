"""Calibrate an AdaIN decoder for int8 inference, in place.

    python -m training.calibrate_adain [--decoder FILE] [--contents ../shared/data/train/content] \
        [--styles ../shared/data/train/styles] [--pairs 32] [--size 512]

Runs the float32 decoder on the AdaIN features of photo x painting pairs (each at ``--size`` px long side,
alpha 1) and records each int8 activation's range and the int8 output's PSNR against float32 on them
(:func:`styletransfer.quantized.calibrate_adain_decoder`) in the decoder file, with the decoder's fingerprint
(metadata only: the weights are copied bit for bit). The default decoder is the zoo's.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

from styletransfer.adain import ENCODER_LAYER, AdaINDecoder
from styletransfer.imageio import list_images, pil_to_tensor
from styletransfer.ops import adain, calc_mean_std
from styletransfer.quantized import METADATA_KEY, calibrate_adain_decoder
from styletransfer.serialization import ModelFileError, update_extra_metadata
from zoo.registry import get_spec, load_normalized_vgg
from zoo.resolve import resolve_weights

from .data import load_training_image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decoder", type=Path, default=None, help="the AdaIN decoder file (default: the zoo's)")
    parser.add_argument("--contents", type=Path, default=Path("../shared/data/train/content"), help="folder of photos")
    parser.add_argument("--styles", type=Path, default=Path("../shared/data/train/styles"), help="folder of paintings")
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--size", type=int, default=512, help="long side of each photo and painting")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        path = args.decoder or resolve_weights(get_spec("adain.vgg16n")).path
        decoder = AdaINDecoder.from_pretrained(path, precision="fp32").eval()
        photos, paintings = (list_images(folder) if folder.is_dir() else [] for folder in (args.contents, args.styles))
        if not photos or not paintings:
            raise ValueError(f"no photos in {args.contents} or no paintings in {args.styles}")
        if args.pairs < 1:
            raise ValueError(f"--pairs must be >= 1, got {args.pairs}")
    except (OSError, ValueError, ModelFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    encoder = load_normalized_vgg("fp32")
    maps = []
    for _ in range(4 * args.pairs):  # unreadable files are skipped (with a warning)
        photo, painting = (load_training_image(rng.choice(files), long_side=args.size) for files in (photos, paintings))
        if photo is not None and painting is not None:
            with torch.no_grad():
                content, style = (encoder(pil_to_tensor(img), [ENCODER_LAYER])[ENCODER_LAYER]
                                  for img in (photo, painting))
                maps.append(adain(content, *calc_mean_std(style)))
        if len(maps) == args.pairs:
            break
    if not maps:
        print("error: none of the photos and paintings could be read", file=sys.stderr)
        return 2
    record = calibrate_adain_decoder(decoder, maps)
    update_extra_metadata(path, {METADATA_KEY: record})
    print(f"{path}: {json.dumps(record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
