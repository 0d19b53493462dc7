import gc
import io
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer.imageio import (
    ImageInputError,
    check_image,
    fit_within,
    load_image,
    pil_to_tensor,
    read_settings,
    save_image,
    tensor_to_pil,
)
from tests.conftest import gradient_image


def _encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize("kind", ["path", "bytes", "pil", "uint8", "float", "uint16"])
def test_every_source_kind_gives_rgb(tmp_path, kind):
    img = gradient_image(40, 30)
    arr = np.asarray(img)
    source = {
        "path": tmp_path / "a.png",
        "bytes": _encode(img),
        "pil": img,
        "uint8": arr,
        "float": arr.astype(np.float32) / 255,
        "uint16": arr.astype(np.uint16) * 257,
    }[kind]
    img.save(tmp_path / "a.png")
    out = load_image(source)
    assert out.mode == "RGB" and out.size == (40, 30)
    assert np.abs(np.asarray(out).astype(int) - arr).max() <= 1


def test_exif_orientation_is_applied():
    img = gradient_image(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = load_image(_encode(img, "JPEG", exif=exif.tobytes()))
    assert out.size == (20, 40)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "CMYK", "L", "1", "I;16", "I", "F", "YCbCr"])
def test_modes_become_rgb(mode):
    base = gradient_image(32, 32)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257)
        assert img.mode == "I;16"
    elif mode == "F":
        img = Image.fromarray(np.asarray(base.convert("L")).astype(np.float32) / 255)
    else:
        img = base.convert(mode)
    out = load_image(img)
    assert out.mode == "RGB" and out.size == (32, 32)
    if mode in ("I;16", "F", "L", "I"):
        # rescaled to the 8-bit range, not clipped to white or crushed to black
        assert np.abs(np.asarray(out)[..., 0].astype(int) - np.asarray(base.convert("L"))).max() <= 1


def test_transparency_is_composited_on_white():
    img = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    img.paste((0, 0, 255, 255), (0, 0, 10, 20))
    out = np.asarray(load_image(_encode(img)))
    assert tuple(out[5, 5]) == (0, 0, 255) and tuple(out[5, 15]) == (255, 255, 255)
    palette = Image.new("P", (20, 20), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.info["transparency"] = 0
    assert tuple(np.asarray(load_image(palette))[0, 0]) == (255, 255, 255)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (None, "no image was given"),
        (b"", "empty"),
        (b"this is not an image at all", "not an image file"),
        ("no/such/file.png", "no file at"),
        (12, "expected a path"),
        (np.zeros((4, 4, 2), np.uint8), "HxWx3"),
        (np.full((20, 20), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_sources_give_clear_errors(source, message):
    with pytest.raises(ImageInputError, match=message):
        load_image(source, name="content image")


def test_an_empty_file_is_named_as_empty(tmp_path):
    (tmp_path / "empty.jpg").touch()
    with pytest.raises(ImageInputError, match=r"content image: the file .*empty\.jpg' is empty \(0 bytes\)"):
        load_image(tmp_path / "empty.jpg", name="content image")


def test_corrupt_file_is_refused():
    data = _encode(gradient_image(64, 64))
    with pytest.raises(ImageInputError, match="damaged"):
        load_image(data[: len(data) // 2])


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(ImageInputError, match="decompression bomb|larger than"):
        load_image(_png_header_only(30000, 30000))
    with pytest.raises(ImageInputError, match="larger than the 0 MP"):
        load_image(gradient_image(64, 64), max_pixels=1000)


def test_a_refused_file_is_closed_at_once(tmp_path):
    """An image refused for its size leaves no file open behind it (an app serves many uploads)."""
    gradient_image(64, 64).save(tmp_path / "big.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(ImageInputError, match="larger than"):
            load_image(tmp_path / "big.png", max_pixels=1000)
        gc.collect()  # what other tests left unclosed may be collected here too: only big.png counts
    assert not [w for w in caught if issubclass(w.category, ResourceWarning) and "big.png" in str(w.message)]


def test_tiny_images_are_refused():
    with pytest.raises(ImageInputError, match="too small"):
        load_image(gradient_image(8, 200))


def test_fit_within_keeps_aspect_and_says_so():
    img, note = fit_within(gradient_image(400, 100), 200)
    assert img.size == (200, 50) and "400x100" in note and "200 px" in note
    same, none = fit_within(gradient_image(100, 50), 200)
    assert same.size == (100, 50) and none is None


def test_fit_within_refuses_a_shorter_side_under_the_minimum():
    with pytest.raises(ImageInputError, match="content: 20x2000 px is too elongated for 512 px on the long side"):
        fit_within(gradient_image(20, 2000), 512, name="content")
    img, _ = fit_within(gradient_image(64, 2000), 512)  # 16 px: still enough
    assert img.size == (16, 512)


def test_check_image_names_argument_and_range():
    with pytest.raises(ImageInputError, match="style image: 400x100 px is above the 300 px cap"):
        check_image(gradient_image(400, 100), "style image", max_side=300)
    with pytest.raises(TypeError, match="style image: expected a PIL image"):
        check_image("x.png", "style image", max_side=300)


def test_tensor_round_trip_is_exact():
    img = gradient_image(33, 17)
    t = pil_to_tensor(img)
    assert t.shape == (1, 3, 17, 33) and t.dtype == torch.float32 and 0 <= t.min() <= t.max() <= 1
    assert np.array_equal(np.asarray(tensor_to_pil(t)), np.asarray(img))


@pytest.mark.parametrize("name, fmt", [("out.png", "PNG"), ("out.JPG", "JPEG"), ("out.jpeg", "JPEG"),
                                        ("out.webp", "WEBP")])
def test_saved_image_carries_method_and_settings_in_the_format_its_name_says(tmp_path, name, fmt):
    settings = {"alpha": 0.5, "layers": ["relu1_1"], "content": "caf\u00e9.jpg"}
    path = save_image(gradient_image(), tmp_path / name, method="gatys", settings=settings)
    assert read_settings(path) == {"method": "gatys", "settings": settings}
    with Image.open(path) as written:
        assert written.format == fmt and written.size == gradient_image().size
        pixels = np.asarray(written.convert("RGB"), dtype=np.float32)
    error = np.abs(pixels - np.asarray(gradient_image(), dtype=np.float32)).mean()
    assert error == 0 if fmt == "PNG" else error < 2  # quality 95, JPEG without chroma subsampling


@pytest.mark.parametrize("name", ["out.jpg", "out.webp"])
def test_settings_too_long_for_a_jpeg_exif_are_stored_compressed_and_refused_only_past_that(tmp_path, name):
    settings = {"styles": [f"style_{i:05d}.jpg" for i in range(8000)]}  # 140 KB of JSON: over a JPEG's 64 KB EXIF
    path = save_image(gradient_image(), tmp_path / name, method="adain", settings=settings)
    assert read_settings(path) == {"method": "adain", "settings": settings}
    noise = {"data": np.random.default_rng(0).bytes(120_000).hex()}  # 240 KB that zlib cannot fit in 64 KB
    with pytest.raises(ValueError, match="do not fit .* EXIF even compressed; write a .png"):
        save_image(gradient_image(), tmp_path / name.replace("out", "noise"), method="adain", settings=noise)
    assert not (tmp_path / name.replace("out", "noise")).exists()


def test_images_without_settings_and_unknown_endings_are_refused(tmp_path):
    gradient_image().save(tmp_path / "plain.png")
    camera = Image.Exif()
    camera.get_ifd(0x8769)[0x9286] = b"ASCII\x00\x00\x00shot on a phone"  # someone else's UserComment
    gradient_image().save(tmp_path / "photo.jpg", exif=camera.tobytes())
    for plain in ("plain.png", "photo.jpg"):
        with pytest.raises(ImageInputError, match="no style-transfer settings"):
            read_settings(tmp_path / plain)
    with pytest.raises(ValueError, match=r"name the file \.png, \.jpg, \.jpeg, \.webp"):
        save_image(gradient_image(), tmp_path / "out.gif", method="gatys", settings={})
    assert not (tmp_path / "out.gif").exists()


def test_list_images_takes_image_files_by_suffix_sorted_and_says_when_there_are_none(tmp_path):
    from styletransfer.imageio import list_images

    for name in ("b.JPG", "a.tiff", "c.webp", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.tiff", "b.JPG", "c.webp"]
    with pytest.raises(FileNotFoundError, match="no images"):
        list_images(tmp_path / "folder.png")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        list_images(tmp_path / "missing")
