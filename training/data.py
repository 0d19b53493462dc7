"""Training images read from a folder (never copied into the project)."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image

from styletransfer.imageio import ImageInputError, load_image

__all__ = ["load_training_image", "random_crop", "resize_short_side"]


def load_training_image(path: Path, *, long_side: int | None = None,
                        short_side: int | None = None) -> Image.Image | None:
    """An RGB image resized to the given long or short side, or ``None`` (with a warning) if unreadable."""
    try:
        img = load_image(path, name=path.name)
    except ImageInputError as e:
        print(f"skipping {path.name}: {e}", flush=True)
        return None
    if short_side:
        return resize_short_side(img, short_side)
    if long_side:
        return _rescale(img, long_side / max(img.size))
    return img


def resize_short_side(img: Image.Image, side: int) -> Image.Image:
    """``img`` scaled (bicubic) so that its short side is ``side`` px."""
    return _rescale(img, side / min(img.size))


def _rescale(img: Image.Image, s: float) -> Image.Image:
    w, h = img.size
    if s == 1:
        return img
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BICUBIC)


def random_crop(img: Image.Image, size: int, rng: random.Random) -> Image.Image:
    """A random ``size`` x ``size`` crop (the image is upscaled first if a side is shorter)."""
    w, h = img.size
    if min(w, h) < size:
        s = size / min(w, h)
        img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.Resampling.BICUBIC)
        w, h = img.size
    left, top = rng.randint(0, w - size), rng.randint(0, h - size)
    return img.crop((left, top, left + size, top + size))
