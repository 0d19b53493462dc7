"""Calibrate a StyleBank auto-encoder and its banks for int8 inference, in place.

    python -m training.calibrate_stylebank [--autoencoder FILE] [--banks BANK ...] \
        [--contents ../shared/data/train/content] [--num-contents 32]

Runs the float32 model on photos through every bank and records the maximum of each activation
that int8 inference quantizes (:func:`styletransfer.quantized.calibrate`): the encoder's, with the
auto-encoder's fingerprint, in the auto-encoder file, and each bank's decoder ranges in its bank
file (metadata only: the weights are copied bit for bit). Banks learned with
``training.learn_bank`` calibrate themselves; this is for an auto-encoder and banks from joint training.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from styletransfer.imageio import list_images, pil_to_tensor
from styletransfer.quantized import METADATA_KEY, calibrate
from styletransfer.serialization import ModelFileError, update_extra_metadata
from styletransfer.stylebank import StyleBankAutoEncoder, load_banks
from zoo.registry import get_spec
from zoo.resolve import resolve_weights

from .data import load_training_image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--autoencoder", type=Path, default=None,
                        help="the StyleBank auto-encoder file (default: the zoo's StyleBank)")
    parser.add_argument("--banks", type=Path, nargs="*", default=None,
                        help="bank files (default: banks/*.safetensors beside the auto-encoder)")
    parser.add_argument("--contents", type=Path, default=Path("../shared/data/train/content"), help="folder of photos")
    parser.add_argument("--num-contents", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        path = args.autoencoder or resolve_weights(get_spec("stylebank.pd16")).path
        beside = sorted((Path(path).parent / "banks").glob("*.safetensors"))
        bank_files = args.banks if args.banks is not None else beside
        if not bank_files:
            raise ValueError(f"no bank files given and none in {Path(path).parent / 'banks'}")
        files = list_images(args.contents) if args.contents.is_dir() else []
        if not files:
            raise ValueError(f"no photos in {args.contents}")
        autoencoder = StyleBankAutoEncoder.from_pretrained(path).eval()
        banks = load_banks(bank_files, autoencoder)
        if len(banks) != len(bank_files):
            raise ValueError("two bank files hold banks of the same name; calibrate them separately")
    except (OSError, ValueError, ModelFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    random.Random(args.seed).shuffle(files)
    images = []
    for file in files:
        img = load_training_image(file)
        if img is not None:
            images.append(pil_to_tensor(img.crop((0, 0, img.width // 4 * 4, img.height // 4 * 4))))
        if len(images) == args.num_contents:
            break
    found = calibrate(autoencoder, banks.values(), images)
    update_extra_metadata(path, {METADATA_KEY: found.autoencoder})
    print(f"{path}: {json.dumps(found.autoencoder)}")
    for file, name in zip(bank_files, banks):
        update_extra_metadata(file, {METADATA_KEY: found.banks[name]})
        print(f"{file}: {json.dumps(found.banks[name])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
