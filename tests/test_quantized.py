"""Int8 StyleBank inference (styletransfer/quantized.py) on a tiny random auto-encoder."""

import copy
import math

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer.imageio import pil_to_bytes
from styletransfer import quantized, stylebank
from styletransfer.quantized import AUTO_MIN_PSNR, METADATA_KEY, Int8UnavailableError, calibrate, int8_is_available
from styletransfer.serialization import read_metadata, update_extra_metadata
from styletransfer.stylebank import (AutoEncoderConfig, BankConfig, StyleBank, StyleBankAutoEncoder, learn_bank,
                                     load_bank, save_bank, stylize)
from training.calibrate_stylebank import main as calibrate_cli

pytestmark = pytest.mark.skipif(not int8_is_available(), reason="this torch build has no oneDNN int8 convolutions")

CONFIG = AutoEncoderConfig(channels=(8, 16, 16))  # the default architecture (int8 supports no other), narrower


def photo(w: int, h: int, seed: int) -> Image.Image:
    """A smooth random colour field with some edges: a stand-in for a photo."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, 6, 6, generator=g)
    field = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    blocks = (torch.rand(1, 3, -(-h // 4), -(-w // 4), generator=g) > 0.8).float()
    field = field + 0.15 * blocks.repeat_interleave(4, 2).repeat_interleave(4, 3)[..., :h, :w]
    arr = (field[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(arr, "RGB")


def as_tensor(img: Image.Image) -> torch.Tensor:
    return pil_to_bytes(img).float().div(255)


@pytest.fixture
def model():
    """A tiny auto-encoder whose output sits mid-range (so its bytes are not clamped away), two banks
    and the calibration record on photos unlike the test images."""
    torch.manual_seed(0)
    ae = StyleBankAutoEncoder(CONFIG).eval().requires_grad_(False)
    for conv in [m for m in ae.modules() if isinstance(m, torch.nn.Conv2d)]:
        torch.nn.init.kaiming_normal_(conv.weight)  # keeps the signal's scale through the ReLUs
    last = ae.decoder[-1]
    last.weight.mul_(0.2)
    last.bias.fill_(0.5)
    banks = {}
    for i, name in enumerate(["a", "b"]):
        torch.manual_seed(10 + i)
        banks[name] = StyleBank(BankConfig(name, 16, 3, ae.fingerprint())).eval().requires_grad_(False)
        torch.nn.init.kaiming_normal_(banks[name].conv.weight)
    found = calibrate(ae, banks.values(), CALIBRATION)
    ae.int8_calibration = found.autoencoder
    for name, bank in banks.items():
        bank.int8_calibration = found.banks[name]
    return ae, banks


CALIBRATION = [as_tensor(photo(64, 48, s)) for s in range(6)]


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return 10 * math.log10(255 ** 2 / max(mse, 1e-12))


def test_calibration_records_the_encoder_with_the_fingerprint_and_the_decoder_per_bank(model):
    ae, banks = model
    record = ae.int8_calibration
    assert record["fingerprint"] == ae.fingerprint() and record["images"] == 6
    assert set(record["ranges"]) == {"enc0", "enc1", "enc2"} and all(v > 0 for v in record["ranges"].values())
    for bank in banks.values():
        assert set(bank.int8_calibration["ranges"]) == {"dec0", "dec1"}
        assert bank.int8_calibration["psnr_db"] > 35  # int8 against float32 on the calibration photos
    assert banks["a"].int8_calibration != banks["b"].int8_calibration


def test_int8_output_stays_close_to_float32_and_a_miscalibration_shows(model):
    ae, banks = model
    content = photo(60, 44, 99)  # not a multiple of 4
    ref = stylize(content, "a", autoencoder=ae, banks=banks, precision="fp32")
    out = stylize(content, "a", autoencoder=ae, banks=banks, precision="int8")
    assert out.settings["precision"] == "int8" and ref.settings["precision"] == "fp32"
    assert out.image.size == content.size
    assert np.asarray(ref.image).std() > 20  # a visible image, not a flat or clamped one
    good = psnr(out.image, ref.image)
    assert good > 35, good
    record = banks["a"].int8_calibration
    banks["a"].int8_calibration = {**record, "ranges": {k: v * 0.1 for k, v in record["ranges"].items()}}
    bad = psnr(stylize(content, "a", autoencoder=ae, banks=banks, precision="int8").image, ref.image)
    assert bad < good - 10, (good, bad)


def test_int8_encoder_is_as_close_to_float32_at_the_reflected_edges_as_inside(model):
    """The first row and column of each stride-2 layer come from separate strips (oneDNN's AMX kernel
    got a one-column-wide strip wrong); every edge must be as close to float32 as the interior."""
    ae, _ = model
    image = as_tensor(photo(64, 48, 7))
    q = quantized.QuantizedAutoEncoder(ae, ae.int8_calibration["ranges"])
    got = q.dequantize(q.encode(image.mul(255).round().to(torch.uint8).contiguous(memory_format=torch.channels_last)))
    want = ae.encoder(image)
    err = (got - want).abs()
    inside = float(err[..., 1:-1, 1:-1].max())
    edges = {"top": err[..., 0, :], "left": err[..., :, 0], "bottom": err[..., -1, :], "right": err[..., :, -1]}
    for name, edge in edges.items():
        assert float(edge.max()) <= 2 * inside + 1e-6, (name, float(edge.max()), inside)


def test_a_bank_that_drives_the_decoder_much_higher_is_quantized_with_its_own_ranges(model):
    """A bank learned later can push the decoder's activations far above the calibrated banks' (a
    300-step incremental bank did 11x): its own calibration keeps int8 close to float32."""
    ae, banks = model
    loud = StyleBank(BankConfig("loud", 16, 3, ae.fingerprint())).eval().requires_grad_(False)
    loud.load_state_dict(banks["a"].state_dict())
    loud.conv.weight.mul_(6)
    loud.int8_calibration = calibrate(ae, [loud], CALIBRATION).banks["loud"]
    assert loud.int8_calibration["ranges"]["dec0"] > 2 * banks["a"].int8_calibration["ranges"]["dec0"]
    both = {**banks, "loud": loud}
    content = photo(60, 44, 99)
    ref = stylize(content, "loud", autoencoder=ae, banks=both, precision="fp32").image
    good = psnr(stylize(content, "loud", autoencoder=ae, banks=both, precision="int8").image, ref)
    loud.int8_calibration = banks["a"].int8_calibration  # another bank's ranges saturate
    bad = psnr(stylize(content, "loud", autoencoder=ae, banks=both, precision="int8").image, ref)
    assert good > 35 and bad < good - 10, (good, bad)


def test_auto_runs_int8_only_for_banks_whose_calibration_measured_it_close_to_float32(model, monkeypatch):
    ae, banks = model
    monkeypatch.setattr(stylebank, "int8_is_fast", lambda device: True)
    content = photo(32, 32, 5)
    assert stylize(content, "a", autoencoder=ae, banks=banks).settings["precision"] == "int8"
    banks["b"].int8_calibration = {**banks["b"].int8_calibration, "psnr_db": AUTO_MIN_PSNR - 1}
    assert stylize(content, "b", autoencoder=ae, banks=banks).settings["precision"] in ("bf16", "fp32")
    assert stylize(content, {"a": 0.5, "b": 0.5}, autoencoder=ae, banks=banks).settings["precision"] in ("bf16", "fp32")
    assert stylize(content, {"a": 1.0, "b": 0.0}, autoencoder=ae, banks=banks).settings["precision"] == "int8"
    assert stylize(content, "b", autoencoder=ae, banks=banks, precision="int8").settings["precision"] == "int8"


def test_linear_fusion_one_zero_is_the_single_style_and_a_blend_matches_float32(model):
    ae, banks = model
    content = photo(48, 48, 7)
    single = np.asarray(stylize(content, "a", autoencoder=ae, banks=banks, precision="int8").image)
    one_zero = np.asarray(stylize(content, {"a": 1.0, "b": 0.0}, autoencoder=ae, banks=banks, precision="int8").image)
    np.testing.assert_array_equal(one_zero, single)
    blend = {"a": 0.3, "b": 0.7}
    half = stylize(content, blend, autoencoder=ae, banks=banks, precision="int8").image
    assert psnr(half, stylize(content, blend, autoencoder=ae, banks=banks, precision="fp32").image) > 35
    assert psnr(half, Image.fromarray(single)) < 30  # the blend is another image


def test_region_fusion_in_int8_partitions_the_image_and_matches_float32(model):
    ae, banks = model
    content = photo(64, 40, 3)
    out = stylize(content, ["a", "b"], autoencoder=ae, banks=banks, regions=2, precision="int8")
    ref = stylize(content, ["a", "b"], autoencoder=ae, banks=banks, regions=2, precision="fp32")
    assert out.masks.shape == (2, 1, 40, 64)
    torch.testing.assert_close(out.masks.sum(0), torch.ones(1, 40, 64))
    assert psnr(out.image, ref.image) > 30


def test_int8_without_a_calibration_is_a_clear_error_and_auto_falls_back(model):
    ae, banks = model
    content = photo(32, 32, 1)
    banks["b"].int8_calibration = None
    with pytest.raises(Int8UnavailableError, match="the bank 'b' has no int8 calibration"):
        stylize(content, {"a": 0.5, "b": 0.5}, autoencoder=ae, banks=banks, precision="int8")
    assert stylize(content, "a", autoencoder=ae, banks=banks, precision="int8").settings["precision"] == "int8"
    ae.int8_calibration = None
    with pytest.raises(Int8UnavailableError, match="calibrate_stylebank"):
        stylize(content, "a", autoencoder=ae, banks=banks, precision="int8")
    assert stylize(content, "a", autoencoder=ae, banks=banks).settings["precision"] in ("bf16", "fp32")
    with pytest.raises(ValueError, match="precision must be one of"):
        stylize(content, "a", autoencoder=ae, banks=banks, precision="int4")


def test_a_calibration_for_other_weights_or_another_architecture_is_refused(model):
    ae, banks = model
    ae.quantized()
    with torch.no_grad():
        ae.encoder[0][1].weight[0, 0, 0, 0] += 0.5  # the record's fingerprint no longer fits: rebuilt, refused
    with pytest.raises(Int8UnavailableError, match="no int8 calibration"):
        ae.quantized()
    other = StyleBankAutoEncoder(AutoEncoderConfig(channels=(4, 8, 16), norm="instance"))
    with pytest.raises(Int8UnavailableError, match="default StyleBank architecture"):
        calibrate(other, [], [torch.rand(1, 3, 16, 16)])


def test_an_autoencoder_with_an_int8_copy_still_deep_copies(model):
    ae, banks = model
    stylize(photo(32, 32, 2), "a", autoencoder=ae, banks=banks, precision="int8")
    clone = copy.deepcopy(ae)
    assert clone.int8_calibration == ae.int8_calibration
    result = stylize(photo(32, 32, 2), "a", autoencoder=clone, banks=banks, precision="int8")
    assert result.settings["precision"] == "int8"


def test_calibration_travels_in_the_file_and_the_weights_stay_bit_identical(model, tmp_path):
    ae, banks = model
    record = ae.int8_calibration
    path = ae.save_pretrained(tmp_path / "ae.safetensors", metadata={"note": "kept"}, dtype=torch.float16)
    loaded = StyleBankAutoEncoder.from_pretrained(path)
    assert loaded.int8_calibration is None
    update_extra_metadata(path, {METADATA_KEY: record})
    loaded = StyleBankAutoEncoder.from_pretrained(path)
    assert loaded.int8_calibration == record and StyleBankAutoEncoder.extra_metadata(path)["note"] == "kept"
    bank_file = save_bank(banks["a"], tmp_path / "a.safetensors")
    assert load_bank(bank_file, loaded).int8_calibration == banks["a"].int8_calibration
    assert loaded.fingerprint() == ae.fingerprint() == record["fingerprint"]  # fp16 rounding does not change it
    assert read_metadata(path)["class"] == "StyleBankAutoEncoder"
    for key, value in loaded.state_dict().items():
        torch.testing.assert_close(value, ae.state_dict()[key].half().float(), rtol=0, atol=0)
    loaded.quantized()


def test_calibrate_cli_writes_the_records_in_place_and_refuses_a_missing_folder(model, tmp_path, capsys):
    ae, banks = model
    path = ae.save_pretrained(tmp_path / "ae" / "autoencoder.safetensors")
    for bank in banks.values():
        bank.int8_calibration = None
        save_bank(bank, tmp_path / "ae" / "banks" / f"{bank.name}.safetensors")
    photos = tmp_path / "photos"
    photos.mkdir()
    for s in range(3):
        photo(70, 50, s).save(photos / f"p{s}.png")
    assert calibrate_cli(["--autoencoder", str(path), "--contents", str(photos)]) == 0
    loaded = StyleBankAutoEncoder.from_pretrained(path)
    assert loaded.int8_calibration["images"] == 3 and loaded.int8_calibration["fingerprint"] == ae.fingerprint()
    for name in banks:
        assert load_bank(tmp_path / "ae" / "banks" / f"{name}.safetensors", loaded).int8_calibration["images"] == 3
    assert calibrate_cli(["--autoencoder", str(path), "--contents", str(tmp_path / "nowhere")]) == 2
    assert "no photos" in capsys.readouterr().err


def test_learn_bank_measures_the_new_banks_decoder_ranges(model, tiny_vgg):
    ae, _ = model
    photos = [as_tensor(photo(40, 40, s)) for s in range(3)]
    bank = learn_bank(photo(40, 40, 9), photos, name="new", autoencoder=ae, vgg=tiny_vgg, num_steps=2, size=32,
                      batch_size=1, style_size=32)
    assert bank.int8_calibration["images"] == 3 and set(bank.int8_calibration["ranges"]) == {"dec0", "dec1"}
    result = stylize(photo(36, 36, 4), "new", autoencoder=ae, banks={"new": bank}, precision="int8")
    assert result.settings["precision"] == "int8" and result.image.size == (36, 36)


def test_int8_is_for_the_cpu_only_and_follows_the_fp32_switch(monkeypatch):
    assert not int8_is_available("cuda") and not quantized.int8_is_fast("cuda")
    monkeypatch.setenv("STYLETRANSFER_FORCE_FP32", "1")
    assert not quantized.int8_is_fast("cpu")


@pytest.mark.parametrize(("flags", "fast", "least_psnr"), [
    (frozenset({"avx2", "avx512_vnni"}), True, AUTO_MIN_PSNR), (frozenset({"avx2"}), True, AUTO_MIN_PSNR + 3),
    (frozenset({"sse4_2"}), False, AUTO_MIN_PSNR + 3),
])
def test_auto_int8_needs_vnni_or_avx2_and_without_vnni_a_higher_calibration_psnr(model, monkeypatch, flags, fast,
                                                                                  least_psnr):
    """Without VNNI the weights are 7-bit, which cost the zoo's banks up to 2.8 dB: auto asks 3 dB more."""
    monkeypatch.setattr(quantized, "cpu_flags", lambda: flags)
    assert quantized.int8_is_fast("cpu") is (fast and int8_is_available("cpu"))
    assert quantized.int8_min_psnr() == least_psnr
    ae, banks = model
    monkeypatch.setattr(stylebank, "int8_is_fast", lambda device: True)
    content = photo(32, 32, 5)
    for psnr_db, want in ((least_psnr + 0.1, "int8"), (least_psnr - 0.1, "fp32")):
        banks["a"].int8_calibration = {**banks["a"].int8_calibration, "psnr_db": psnr_db}
        got = stylize(content, "a", autoencoder=ae, banks=banks).settings["precision"]
        assert got == want or (want == "fp32" and got == "bf16")


@pytest.mark.parametrize("flags, limit", [(frozenset({"avx2"}), 63), (frozenset({"avx2", "avx512_vnni"}), 127)])
def test_weights_are_7_bit_where_the_cpu_has_no_vnni(monkeypatch, flags, limit):
    """Without VNNI oneDNN sums u8 x s8 pairs in saturating int16; 7-bit weights keep those sums exact."""
    monkeypatch.setattr(quantized, "cpu_flags", lambda: flags)
    torch.manual_seed(0)
    w = torch.randn(4, 8, 3, 3)
    conv = quantized.QuantizedConv(w, None, 1 / 255, 1 / 255)
    q = torch.round(w / conv.weight_scales.float()[:, None, None, None])
    assert q.abs().amax() == limit


# ---------------------------------------------------------------- the int8 AdaIN decoder

def adain_decoder_and_maps() -> tuple:
    from styletransfer.adain import AdaINDecoder, DecoderConfig

    torch.manual_seed(0)
    decoder = AdaINDecoder(DecoderConfig(widths=(16, 12, 8, 8)), precision="fp32").eval()
    g = torch.Generator().manual_seed(1)
    maps = [torch.randn(1, 16, 6 + k, 7, generator=g) * 2 + 1 for k in range(4)]  # signed, as AdaIN's features are
    return decoder, maps


def test_int8_adain_decoder_writes_the_float_decoders_bytes_to_within_a_few_levels():
    decoder, maps = adain_decoder_and_maps()
    record = quantized.calibrate_adain_decoder(decoder, maps[:3])
    assert record["fingerprint"] == decoder.fingerprint() and record["images"] == 3 and len(record["ranges"]) == 7
    assert record["psnr_db"] > 35 and record["weight_bits"] in (7, 8)
    out = quantized.QuantizedAdaINDecoder(decoder, record["ranges"])(maps[3])
    with torch.no_grad():
        ref = decoder(maps[3]).clamp(0, 1).mul(255).round()
    assert out.dtype == torch.uint8 and out.shape == ref.shape == (1, 3, 72, 56)
    assert 10 * math.log10(255**2 / float((out.float() - ref).square().mean())) > 30  # a map it was not calibrated on
    with pytest.raises(Int8UnavailableError, match="does not fit its layers"):
        quantized.QuantizedAdaINDecoder(decoder, record["ranges"][:-1])


def test_adain_decoder_precision_int8_needs_a_calibration_for_its_weights_and_auto_picks_it_only_where_it_pays(
        monkeypatch, tmp_path):
    from styletransfer import adain
    from styletransfer.adain import AdaINDecoder

    decoder, maps = adain_decoder_and_maps()
    decoder.precision = "int8"
    with pytest.raises(Int8UnavailableError, match="no int8 calibration for its weights .*training.calibrate_adain"):
        decoder.uses_int8("cpu")
    # the record travels in the file's metadata
    path = decoder.save_pretrained(tmp_path / "decoder.safetensors")
    update_extra_metadata(path, {METADATA_KEY: quantized.calibrate_adain_decoder(decoder, maps[:3])})
    loaded = AdaINDecoder.from_pretrained(path, precision="int8").eval()
    with torch.no_grad():
        out = loaded(maps[3])
    assert loaded.uses_int8("cpu") and out.dtype == torch.float32
    assert torch.equal(out * 255, (out * 255).round()) and out.min() >= 0 and out.max() <= 1  # the copy's bytes
    with pytest.raises(Int8UnavailableError, match="not on cuda"):
        loaded.uses_int8("cuda")
    # auto: int8 where it is fast and bf16 is not, with a calibration for these weights measuring enough
    loaded.precision = "auto"
    monkeypatch.setattr(adain, "int8_is_fast", lambda device: True)
    monkeypatch.setattr(adain, "bf16_is_fast", lambda device: False)
    monkeypatch.setattr(adain, "int8_min_psnr", lambda: loaded.int8_calibration["psnr_db"] - 1)
    assert loaded.uses_int8("cpu")
    monkeypatch.setattr(adain, "int8_min_psnr", lambda: loaded.int8_calibration["psnr_db"] + 1)
    assert not loaded.uses_int8("cpu")
    monkeypatch.setattr(adain, "int8_min_psnr", lambda: 0.0)
    monkeypatch.setattr(adain, "bf16_is_fast", lambda device: True)
    assert not loaded.uses_int8("cpu")
    monkeypatch.setattr(adain, "bf16_is_fast", lambda device: False)
    with torch.no_grad():
        loaded.layers[1].weight.mul_(1.5)  # other weights: the calibration is not theirs
    assert not loaded.uses_int8("cpu")
    with torch.enable_grad():
        assert loaded(maps[3].requires_grad_()).grad_fn is not None  # training never runs the int8 copy


def test_calibrate_adain_command_says_what_is_missing(tmp_path, capsys):
    from training.calibrate_adain import main as calibrate_adain_cli

    decoder, _ = adain_decoder_and_maps()
    path = decoder.save_pretrained(tmp_path / "decoder.safetensors")
    (tmp_path / "photos").mkdir()
    assert calibrate_adain_cli(["--decoder", str(path), "--contents", str(tmp_path / "photos"),
                                "--styles", str(tmp_path / "none")]) == 2
    assert "error: no images (" in capsys.readouterr().err
    assert METADATA_KEY not in read_metadata(path).get("extra", "")  # nothing written
