"""Slow tier: the shipped AdaIN decoder with the real encoder on real images from ../shared/data."""

import pytest

import zoo
from styletransfer import adain
from styletransfer.__main__ import main as cli
from styletransfer.imageio import load_image, read_settings
from styletransfer.metrics import content_style_losses

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(real_vgg_fp32):
    return zoo.load_normalized_vgg(), zoo.load_adain_decoder()


def test_shipped_decoder_transfers_style_and_alpha_zero_stays_near_the_content(models, data_dir):
    encoder, decoder = models
    assert "embedded" in decoder.weights_source or "local" in decoder.weights_source
    content = load_image(data_dir / "content" / "chicago.jpg")
    content.thumbnail((256, 256))
    style = load_image(data_dir / "styles" / "candy.jpg")
    style.thumbnail((256, 256))
    full = adain.stylize(content, style, encoder=encoder, decoder=decoder, size=256)
    none = adain.stylize(content, style, encoder=encoder, decoder=decoder, size=256, alpha=0.0)
    assert full.size == content.size
    loss_full = content_style_losses(full, content, style, encoder=encoder)
    loss_none = content_style_losses(none, content, style, encoder=encoder)
    assert loss_full["style"] < loss_none["style"]
    assert loss_none["content"] < loss_full["content"]


def test_cli_adain_writes_a_png_with_settings(models, data_dir, tmp_path):
    out = tmp_path / "out.png"
    rc = cli(["adain", str(data_dir / "content" / "tubingen.jpg"), str(data_dir / "styles" / "candy.jpg"),
              str(data_dir / "styles" / "mosaic.jpg"), "--weights", "3", "1", "--alpha", "0.8", "--size", "128",
              "--preserve-color", "luminance", "-o", str(out)])
    assert rc == 0
    record = read_settings(out)
    assert record["method"] == "adain" and record["settings"]["alpha"] == 0.8
    assert record["settings"]["style_weights"] == [3.0, 1.0]
    assert max(load_image(out).size) == 128
    rc = cli(["adain", str(data_dir / "content" / "tubingen.jpg"), str(data_dir / "styles" / "candy.jpg"),
              str(data_dir / "styles" / "mosaic.jpg"), "--auto-regions", "--size", "128", "-o", str(out)])
    assert rc == 0 and read_settings(out)["settings"]["masks"] == "auto regions"
    assert cli(["adain", str(data_dir / "content" / "tubingen.jpg"), str(data_dir / "styles" / "candy.jpg"),
                "--alpha", "2", "-o", str(out)]) == 2
    pair = [str(data_dir / "content" / "tubingen.jpg"), str(data_dir / "styles" / "candy.jpg")]
    assert cli(["adain", *pair, "--precision", "fp32", "--size", "128", "-o", str(out)]) == 0
    assert read_settings(out)["settings"]["decoder_precision"] == "fp32"
    assert cli(["adain", *pair, "--fp32", "--precision", "int8", "-o", str(out)]) == 2


def test_shipped_decoder_carries_an_int8_calibration_and_its_int8_output_stays_close_to_float32(models, data_dir,
                                                                                                  tmp_path):
    """43.8 dB mean, 35.7 dB worst over the 22 test photos at 512 px, alpha 1 and 0.5 (benchmarks/adain.md)."""
    import math

    import numpy as np

    from styletransfer import quantized

    if not quantized.int8_is_available():
        pytest.skip("this torch build has no oneDNN int8 convolutions")
    out = tmp_path / "out.png"
    assert cli(["adain", str(data_dir / "content" / "tubingen.jpg"), str(data_dir / "styles" / "candy.jpg"),
                "--precision", "int8", "--size", "128", "-o", str(out)]) == 0
    assert read_settings(out)["settings"]["decoder_precision"] == "int8"
    encoder, decoder = models
    assert decoder.int8_calibration["fingerprint"] == decoder.fingerprint()
    assert decoder.int8_calibration["psnr_db"] >= quantized.AUTO_MIN_PSNR + quantized.NO_VNNI_MARGIN_DB
    content, style = data_dir / "content" / "chicago.jpg", data_dir / "styles" / "candy.jpg"
    precision = decoder.precision
    try:
        decoder.precision = "int8"
        fast = np.asarray(adain.stylize(content, style, encoder=encoder, decoder=decoder, size=384), np.float64)
        decoder.precision = "fp32"
        ref = np.asarray(adain.stylize(content, style, encoder=encoder, decoder=decoder, size=384), np.float64)
    finally:
        decoder.precision = precision
    psnr = 10 * math.log10(255**2 / max(float(np.mean((fast - ref) ** 2)), 1e-12))
    assert psnr > 38, psnr
