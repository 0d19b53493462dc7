"""Image input and output shared by every method.

Everything that turns user input into a working RGB image, or a tensor back into a
picture, lives here: paths, bytes, PIL images and arrays in; EXIF orientation; every
PIL mode coerced to 8-bit RGB; a decompression-bomb guard; a cap on the working size;
tensor <-> PIL helpers; PNG, JPEG and WebP output that records how it was made.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zlib
from pathlib import Path
from typing import Any, Union

import torch
from PIL import ExifTags, Image, ImageOps, PngImagePlugin, UnidentifiedImageError

__all__ = [
    "ImageInputError",
    "ImageSource",
    "MAX_INPUT_PIXELS",
    "MIN_SIDE",
    "IMAGE_SUFFIXES",
    "list_images",
    "load_image",
    "to_rgb",
    "fit_within",
    "scaled_size",
    "check_image",
    "pil_to_tensor",
    "pil_to_bytes",
    "tensor_to_pil",
    "tensor_to_bytes",
    "bytes_to_pil",
    "OUTPUT_SUFFIXES",
    "output_format",
    "save_image",
    "read_settings",
]

ImageSource = Union[str, os.PathLike, bytes, bytearray, Image.Image, Any]

MAX_INPUT_PIXELS = 64_000_000
"""Largest decoded image accepted (pixels); anything larger is refused before decoding."""

MIN_SIDE = 16
"""Smallest side, in pixels, that the VGG-based methods can work with."""

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
"""File endings :func:`list_images` takes for images (the reader itself goes by content, not name)."""

_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    ".png": {"format": "PNG"},
    ".jpg": {"format": "JPEG", "quality": 95, "subsampling": 0},
    ".jpeg": {"format": "JPEG", "quality": 95, "subsampling": 0},
    ".webp": {"format": "WEBP", "quality": 95, "method": 6},
}

OUTPUT_SUFFIXES = tuple(_SAVE_OPTIONS)
"""File endings :func:`save_image` writes; the ending chooses the format (:func:`output_format`)."""

_SETTINGS_KEY = "styletransfer"
# The starts of an EXIF UserComment holding the settings: the character code (ASCII or undefined), then a tag
_COMMENT_TEXT = b"ASCII\x00\x00\x00" + f"{_SETTINGS_KEY} ".encode()
_COMMENT_ZLIB = b"\x00" * 8 + f"{_SETTINGS_KEY}-zlib ".encode()
_JPEG_EXIF_MAX = 65_000  # a JPEG's EXIF segment holds at most 65,533 bytes, its own headers included


class ImageInputError(ValueError):
    """An input that cannot be used as an image; the message says what and why."""


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder`` (by :data:`IMAGE_SUFFIXES`), sorted by name.

    Raises:
        FileNotFoundError: the folder is missing or holds no images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return files


def load_image(
    source: ImageSource,
    *,
    name: str = "image",
    max_pixels: int = MAX_INPUT_PIXELS,
    min_side: int = MIN_SIDE,
) -> Image.Image:
    """Read any supported image source into an 8-bit RGB PIL image.

    Args:
        source: a file path, encoded bytes, a PIL image, or an ``HxW``/``HxWxC`` array
            (uint8, uint16, or float in [0, 1]) exposing ``__array_interface__``.
        name: how the image is called in error messages (e.g. ``"content image"``).
        max_pixels: refuse images with more pixels than this (decompression-bomb guard),
            checked from the header before the pixels are decoded. Default 64 MP.
        min_side: refuse images whose shorter side is below this. Default 16.

    Returns:
        The image, rotated upright per its EXIF orientation and converted to RGB
        (alpha is composited onto white, 16-bit and float data are rescaled).

    Raises:
        ImageInputError: the source is missing, not an image, corrupt, too large or too small.
    """
    if source is None:
        raise ImageInputError(f"{name}: no image was given.")
    if isinstance(source, Image.Image):
        img = source
    elif hasattr(source, "__array_interface__"):
        img = _array_to_pil(source, name)
    else:
        img = _open(source, name, max_pixels)
    _check_pixels(img.size, name, max_pixels)
    try:
        img = ImageOps.exif_transpose(img)
        img = to_rgb(img)
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt pixel data
        raise ImageInputError(f"{name}: the file is damaged and could not be decoded ({e}).") from e
    w, h = img.size
    if min(w, h) < min_side:
        raise ImageInputError(
            f"{name}: {w}x{h} px is too small; the shorter side must be at least {min_side} px."
        )
    return img


def _open(source: Any, name: str, max_pixels: int) -> Image.Image:
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageInputError(f"{name}: the data is empty.")
        fp: Any = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageInputError(f"{name}: no file at '{path}'.")
        if not path.stat().st_size:
            raise ImageInputError(f"{name}: the file '{path}' is empty (0 bytes).")
        fp = path
    else:
        raise ImageInputError(
            f"{name}: expected a path, bytes, a PIL image or an array, got {type(source).__name__}."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
            try:
                _check_pixels(img.size, name, max_pixels)
                img.load()
            except BaseException:
                img.close()  # the file it opened, now rather than at garbage collection
                raise
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageInputError(f"{name}: refused as a possible decompression bomb ({e}).") from e
    except UnidentifiedImageError as e:
        raise ImageInputError(f"{name}: this is not an image file Pillow can read.") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageInputError(f"{name}: the file is damaged and could not be decoded ({e}).") from e
    return img


def _check_pixels(size: tuple[int, int], name: str, max_pixels: int) -> None:
    w, h = size
    if w * h > max_pixels:
        raise ImageInputError(
            f"{name}: {w}x{h} px ({w * h / 1e6:.1f} MP) is larger than the {max_pixels / 1e6:.0f} MP "
            "accepted; downscale it first."
        )


def _array_to_pil(array: Any, name: str) -> Image.Image:
    t = torch.tensor(array)  # a copy: arrays may be read-only
    if t.ndim == 3 and t.shape[-1] == 1:
        t = t[..., 0]
    if t.ndim not in (2, 3) or (t.ndim == 3 and t.shape[-1] not in (3, 4)):
        raise ImageInputError(f"{name}: an array must be HxW, HxWx3 or HxWx4, got shape {tuple(t.shape)}.")
    if t.dtype == torch.uint16:
        t = t.to(torch.int32)  # few ops exist for uint16
    if t.is_floating_point():
        if not torch.isfinite(t).all():
            raise ImageInputError(f"{name}: the array holds NaN or infinite values.")
        t = (t.clamp(0, 1) * 255).round()
    elif t.dtype in (torch.int32, torch.int64) and t.numel() and t.max() > 255:
        t = t.to(torch.float64) / 257  # 16-bit range to 8-bit
    elif t.dtype not in (torch.uint8,) and t.numel() and (t.min() < 0 or t.max() > 255):
        raise ImageInputError(f"{name}: integer array values must lie in 0..255 or 0..65535.")
    return Image.fromarray(t.to(torch.uint8).numpy())


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (documented coercions, never a refusal).

    Transparent pixels (RGBA, LA, PA, P with a transparency key) are composited onto
    white; 16/32-bit integer and float grayscale are rescaled from their value range;
    CMYK, YCbCr, LAB, HSV, L and 1 go through PIL's conversion.
    """
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = img.convert("I") if img.mode.startswith("I;16") else img
        lo, hi = img.getextrema()
        scale = 255.0 if img.mode == "F" and hi <= 1.0 else (1 / 257 if hi > 255 else 1.0)
        return img.point(lambda v: v * scale).convert("L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def scaled_size(size: tuple[int, int], long_side: int, *, name: str = "image",
                min_side: int = MIN_SIDE) -> tuple[int, int]:
    """``size`` (w, h) scaled to ``long_side`` on the long side, keeping the aspect ratio.

    Raises:
        ImageInputError: the shorter side would fall below ``min_side`` (``name`` says which image).
    """
    w, h = size
    s = long_side / max(w, h)
    new = (max(1, round(w * s)), max(1, round(h * s)))
    if min(new) < min_side:
        raise ImageInputError(
            f"{name}: {w}x{h} px is too elongated for {long_side} px on the long side (its shorter side would be "
            f"{min(new)} px, under {min_side}); crop it or choose a larger size."
        )
    return new


def fit_within(img: Image.Image, max_side: int, *, name: str = "image",
               min_side: int = MIN_SIDE) -> tuple[Image.Image, str | None]:
    """Downscale so the long side is at most ``max_side``, keeping the aspect ratio.

    Returns:
        The (possibly) resized image and a note saying what was done, or ``None`` when
        the image already fits.

    Raises:
        ImageInputError: the image is so elongated that its shorter side would fall below
            ``min_side`` (``name`` says which image).
    """
    w, h = img.size
    if max(w, h) <= max_side:
        return img, None
    size = scaled_size((w, h), max_side, name=name, min_side=min_side)
    note = f"Downscaled from {w}x{h} to {size[0]}x{size[1]} (working size is capped at {max_side} px)."
    return img.resize(size, Image.Resampling.LANCZOS), note


def check_image(img: Image.Image | None, name: str, *, max_side: int, min_side: int = MIN_SIDE) -> None:
    """Raise ``ImageInputError`` unless ``img`` is a PIL image with sides in range."""
    if img is None:
        raise ImageInputError(f"{name}: no image was given.")
    if not isinstance(img, Image.Image):
        raise TypeError(f"{name}: expected a PIL image, got {type(img).__name__}.")
    w, h = img.size
    if min(w, h) < min_side:
        raise ImageInputError(f"{name}: {w}x{h} px is too small; the shorter side must be at least {min_side} px.")
    if max(w, h) > max_side:
        raise ImageInputError(
            f"{name}: {w}x{h} px is above the {max_side} px cap on the long side; "
            "downscale it (imageio.fit_within) or raise the cap."
        )


def pil_to_tensor(img: Image.Image, device: torch.device | str = "cpu", *, dtype: torch.dtype = torch.float32,
                  memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """RGB PIL image -> tensor ``[1, 3, H, W]`` in [0, 1] (float32 and contiguous unless asked otherwise;
    a bf16 channels-last result is made straight from the pixel bytes, with the same values)."""
    return pil_to_bytes(img).to(device=device, dtype=dtype).div_(255).contiguous(memory_format=memory_format)


def pil_to_bytes(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> its pixel bytes as a uint8 tensor ``[1, 3, H, W]`` with channels-last strides (one copy)."""
    data = torch.frombuffer(bytearray(to_rgb(img).tobytes()), dtype=torch.uint8)
    return data.view(1, img.size[1], img.size[0], 3).permute(0, 3, 1, 2)


def bytes_to_pil(pixels: torch.Tensor) -> Image.Image:
    """uint8 ``[H, W, 3]`` (any strides, any device) -> RGB PIL image."""
    u8 = pixels.contiguous().cpu()
    return Image.frombytes("RGB", (u8.shape[1], u8.shape[0]), u8.numpy().tobytes())


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """Float tensor ``[1, 3, H, W]`` or ``[3, H, W]`` in [0, 1] (any float dtype) -> RGB PIL image (clamped)."""
    return bytes_to_pil(tensor_to_bytes(t))


def tensor_to_bytes(t: torch.Tensor) -> torch.Tensor:
    """Float tensor ``[1, 3, H, W]`` or ``[3, H, W]`` in [0, 1] -> the bytes an image file would hold, uint8
    ``[H, W, 3]`` (clamped, rounded in float32, with one working copy, in the tensor's memory layout)."""
    if t.ndim == 4:
        assert t.shape[0] == 1, "tensor_to_bytes takes a single image"
        t = t[0]
    assert t.ndim == 3 and t.shape[0] == 3, f"expected 3xHxW, got {tuple(t.shape)}"
    f = t.detach().to(torch.float32, copy=True).clamp_(0, 1).mul_(255).round_()
    return f.to(torch.uint8).permute(1, 2, 0)


def output_format(suffix: str) -> str | None:
    """The format (``"PNG"``, ``"JPEG"``, ``"WEBP"``) :func:`save_image` writes for a file ending such as
    ``".jpeg"``; None for an ending it does not write."""
    options = _SAVE_OPTIONS.get(suffix.lower())
    return options and options["format"]


def save_image(img: Image.Image, path: str | os.PathLike, *, method: str, settings: dict[str, Any]) -> Path:
    """Write ``img`` in the format its file ending names (PNG; JPEG or WebP at quality 95, JPEG without
    chroma subsampling) with the method and its settings as JSON: in a PNG text chunk, or in the EXIF
    UserComment of a JPEG or WebP (zlib-compressed where the text would not fit a JPEG's EXIF).

    Settings that are not JSON types are stored as their ``str``.

    Raises:
        ValueError: an ending other than those in :data:`OUTPUT_SUFFIXES`.
    """
    path = Path(path)
    options = _SAVE_OPTIONS.get(path.suffix.lower())
    if options is None:
        raise ValueError(f"{path}: name the file {', '.join(OUTPUT_SUFFIXES)}; the ending chooses the format")
    record = json.dumps({"method": method, "settings": settings}, default=str, sort_keys=True)
    if options["format"] == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text(_SETTINGS_KEY, record)
        img.save(path, pnginfo=info, **options)
    else:
        img.save(path, exif=_settings_exif(record, path), **options)
    return path


def _settings_exif(record: str, path: Path) -> bytes:
    """EXIF bytes whose UserComment holds ``record``: as text, or zlib-compressed where the text is
    too long for a JPEG's EXIF segment.

    Raises:
        ValueError: too long for a JPEG even compressed (checked before anything is written).
    """
    data = _exif_with_comment(_COMMENT_TEXT + record.encode())
    if len(data) > _JPEG_EXIF_MAX:
        data = _exif_with_comment(_COMMENT_ZLIB + zlib.compress(record.encode(), 9))
    if len(data) > _JPEG_EXIF_MAX:
        raise ValueError(f"{path}: the settings ({len(record):,} characters) do not fit a JPEG or WebP's EXIF "
                         f"even compressed; write a .png")
    return data


def _exif_with_comment(comment: bytes) -> bytes:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = comment
    return exif.tobytes()


def read_settings(path: str | os.PathLike) -> dict[str, Any]:
    """Return the ``{"method", "settings"}`` record written by :func:`save_image`."""
    with Image.open(path) as img:
        text = getattr(img, "text", {}).get(_SETTINGS_KEY)
        comment = img.getexif().get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.UserComment)
    if text is None and isinstance(comment, bytes):
        if comment.startswith(_COMMENT_TEXT):
            text = comment[len(_COMMENT_TEXT):].decode()
        elif comment.startswith(_COMMENT_ZLIB):
            text = zlib.decompress(comment[len(_COMMENT_ZLIB):]).decode()
    if text is None:
        raise ImageInputError(f"'{path}' carries no style-transfer settings.")
    return json.loads(text)
