import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer import adain, color
from styletransfer.adain import AdaINDecoder, DecoderConfig, StyleStats, encode_style, stylize, stylize_tensor
from styletransfer.masks import auto_regions, prepare_masks
from styletransfer.imageio import ImageInputError, pil_to_tensor
from styletransfer.ops import adain as adain_op
from styletransfer.ops import calc_mean_std, masked_mean_std
from styletransfer.serialization import ModelFileError
from tests.conftest import gradient_image

TINY = DecoderConfig(widths=(8, 8, 8, 8))


@pytest.fixture
def tiny_decoder() -> AdaINDecoder:
    torch.manual_seed(1)
    return AdaINDecoder(TINY, precision="fp32").eval()


class Capture(torch.nn.Module):
    """A stand-in decoder that records its input (the AdaIN target t) and upsamples it."""

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        self.t = t
        return torch.nn.functional.interpolate(t[:, :3], scale_factor=8)


def noise_image(seed: int, w: int = 40, h: int = 40) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(h, w, 3, generator=g) * 255).to(torch.uint8).numpy()


def test_adain_op_gives_the_style_channel_statistics():
    x = torch.randn(2, 5, 7, 9) * 3 + 1
    mean, std = torch.rand(2, 5, 1, 1), torch.rand(2, 5, 1, 1) + 0.5
    got_mean, got_std = calc_mean_std(adain_op(x, mean, std))
    assert torch.allclose(got_mean, mean, atol=1e-5)
    assert torch.allclose(got_std, std, atol=1e-3)


def test_stylized_features_have_each_region_s_style_statistics(tiny_vgg):
    content = pil_to_tensor(gradient_image(64, 64))
    styles = [encode_style(noise_image(i), encoder=tiny_vgg) for i in (1, 2)]
    masks = torch.zeros(2, 1, 8, 8)
    masks[0, :, :, :4] = 1
    masks[1, :, :, 4:] = 1
    capture = Capture()
    stylize_tensor(content, styles, encoder=tiny_vgg, decoder=capture, masks=masks)
    for s, m in zip(styles, masks):
        mean, std = masked_mean_std(capture.t, m[None])
        assert torch.allclose(mean, s.mean, atol=1e-4)
        assert torch.allclose(std, s.std, rtol=1e-3, atol=1e-4)


def test_uncovered_region_keeps_the_content_features(tiny_vgg):
    content = pil_to_tensor(gradient_image(64, 64))
    style = encode_style(noise_image(1), encoder=tiny_vgg)
    masks = torch.zeros(1, 1, 8, 8)
    masks[0, :, :4] = 1
    capture = Capture()
    stylize_tensor(content, [style], encoder=tiny_vgg, decoder=capture, masks=masks)
    fc = tiny_vgg(content, ["relu4_1"])["relu4_1"]
    assert torch.equal(capture.t[..., 4:, :], fc[..., 4:, :])
    assert not torch.allclose(capture.t[..., :4, :], fc[..., :4, :])


def test_alpha_zero_reconstructs_and_alpha_one_is_full_transfer(tiny_vgg, tiny_decoder):
    content = pil_to_tensor(gradient_image(64, 48))
    style = encode_style(noise_image(3), encoder=tiny_vgg)
    fc = tiny_vgg(content, ["relu4_1"])["relu4_1"]
    with torch.no_grad():
        reconstruction = tiny_decoder(fc)
        full = tiny_decoder(adain_op(fc, style.mean, style.std))
    out0 = stylize_tensor(content, [style], encoder=tiny_vgg, decoder=tiny_decoder, alpha=0.0)
    out1 = stylize_tensor(content, [style], encoder=tiny_vgg, decoder=tiny_decoder, alpha=1.0)
    assert torch.allclose(out0, reconstruction, atol=1e-6)
    assert torch.allclose(out1, full, atol=1e-6)
    assert not torch.allclose(out0, out1, atol=1e-3)
    with pytest.raises(ValueError, match="alpha"):
        stylize_tensor(content, [style], encoder=tiny_vgg, decoder=tiny_decoder, alpha=1.5)


def test_interpolation_weights_are_normalised_and_must_be_non_negative(tiny_vgg):
    content = pil_to_tensor(gradient_image(32, 32))
    styles = [encode_style(noise_image(i), encoder=tiny_vgg) for i in (1, 2)]
    capture = Capture()
    stylize_tensor(content, styles, encoder=tiny_vgg, decoder=capture, style_weights=(2, 2))
    t_scaled = capture.t
    stylize_tensor(content, styles, encoder=tiny_vgg, decoder=capture, style_weights=(0.5, 0.5))
    assert torch.allclose(t_scaled, capture.t)
    stylize_tensor(content, styles, encoder=tiny_vgg, decoder=capture, style_weights=(1, 0))
    fc = tiny_vgg(content, ["relu4_1"])["relu4_1"]
    assert torch.allclose(capture.t, adain_op(fc, styles[0].mean, styles[0].std), atol=1e-6)
    for bad, match in (((1, -1), ">= 0"), ((0, 0), "> 0"), ((1,), "2 styles")):
        with pytest.raises(ValueError, match=match):
            stylize_tensor(content, styles, encoder=tiny_vgg, decoder=capture, style_weights=bad)


def test_images_too_elongated_for_the_working_size_are_clear_errors(tiny_vgg, tiny_decoder):
    with pytest.raises(ImageInputError, match="content: 20x2000 px is too elongated"):
        stylize(gradient_image(20, 2000), [noise_image(1)], encoder=tiny_vgg, decoder=tiny_decoder, size=512)
    with pytest.raises(ImageInputError, match="style: 2000x20 px is too elongated"):
        stylize(gradient_image(64, 48), [gradient_image(2000, 20)], encoder=tiny_vgg, decoder=tiny_decoder, size=512)


def test_masks_of_wrong_size_count_or_coverage_give_clear_errors(tiny_vgg, tiny_decoder):
    content = gradient_image(64, 48)
    styles = [noise_image(1), noise_image(2)]
    good = [Image.new("L", (64, 48), 255), Image.new("L", (64, 48), 0)]
    run = lambda masks: stylize(content, styles, encoder=tiny_vgg, decoder=tiny_decoder, masks=masks)  # noqa: E731
    with pytest.raises(ImageInputError, match="mask 2 is 32x32 px but the content is 64x48"):
        run([good[0], Image.new("L", (32, 32), 255)])
    with pytest.raises(ImageInputError, match="1 masks for 2 styles"):
        run(good[:1])
    with pytest.raises(ImageInputError, match="mask 2 covers"):
        run(good)
    with pytest.raises(ImageInputError, match=r"\[0, 1\]"):
        run([torch.full((48, 64), 2.0), torch.ones(48, 64)])


def test_masks_are_given_at_the_input_size_even_when_the_content_is_downscaled(tiny_vgg, tiny_decoder):
    content = gradient_image(200, 100)
    left = Image.new("L", (200, 100), 0)
    left.paste(255, (0, 0, 100, 100))
    right = Image.eval(left, lambda v: 255 - v)
    out = stylize(content, [noise_image(1), noise_image(2)], encoder=tiny_vgg, decoder=tiny_decoder,
                  masks=[left, right], size=64)
    assert out.size == (64, 32)


def test_painted_rgba_layer_uses_alpha_as_coverage():
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    layer.paste((255, 0, 0, 255), (0, 0, 32, 64))
    masks = prepare_masks([layer], (64, 64), (8, 8))
    assert masks.shape == (1, 1, 8, 8)
    assert torch.equal(masks[0, 0, :, :4], torch.ones(8, 4)) and torch.equal(masks[0, 0, :, 4:], torch.zeros(8, 4))


def test_output_keeps_sizes_that_are_not_multiples_of_8(tiny_vgg, tiny_decoder):
    out = stylize(gradient_image(53, 37), noise_image(4), encoder=tiny_vgg, decoder=tiny_decoder)
    assert out.size == (53, 37) and out.mode == "RGB"


def test_cached_style_statistics_give_the_same_result(tiny_vgg, tiny_decoder):
    content, style = gradient_image(48, 40), noise_image(5)
    stats = encode_style(style, encoder=tiny_vgg)
    direct = stylize(content, style, encoder=tiny_vgg, decoder=tiny_decoder)
    cached = stylize(content, stats, encoder=tiny_vgg, decoder=tiny_decoder)
    assert np.array_equal(np.asarray(direct), np.asarray(cached))
    with pytest.raises(ValueError, match="histogram"):
        stylize(content, stats, encoder=tiny_vgg, decoder=tiny_decoder, preserve_color="histogram")


def test_a_feature_cache_skips_the_encoder_for_pixels_it_has_seen_and_changes_no_result(tiny_vgg, tiny_decoder):
    content, style, style2 = gradient_image(48, 40), noise_image(5), noise_image(6)
    passes = []
    tiny_vgg.register_forward_hook(lambda *_: passes.append(1))
    cache = adain.FeatureCache(capacity=2)
    for alpha in (1.0, 0.5):
        plain = stylize(content, style, encoder=tiny_vgg, decoder=tiny_decoder, alpha=alpha)
        before = len(passes)
        cached = stylize(content, style, encoder=tiny_vgg, decoder=tiny_decoder, alpha=alpha, cache=cache)
        assert np.array_equal(np.asarray(plain), np.asarray(cached))
        assert len(passes) - before == (2 if alpha == 1.0 else 0)  # content and style encoded once, then kept
    assert len(cache) == 2
    brighter = Image.fromarray(np.minimum(np.asarray(content).astype(np.int16) + 1, 255).astype(np.uint8))
    before = len(passes)
    stylize(brighter, style, encoder=tiny_vgg, decoder=tiny_decoder, cache=cache)
    assert len(passes) - before == 1  # other pixels: encoded
    stylize(content, [style, style2], encoder=tiny_vgg, decoder=tiny_decoder, cache=cache)
    assert len(cache) == 2  # the oldest maps make room
    x = pil_to_tensor(content).to(torch.bfloat16)  # any dtype hashes
    assert torch.equal(cache.encode(tiny_vgg, x), cache.encode(tiny_vgg, x.clone()))
    with pytest.raises(ValueError, match="capacity"):
        adain.FeatureCache(capacity=0)


def test_color_preservation_modes(tiny_vgg, tiny_decoder):
    content, style = gradient_image(48, 40), noise_image(6)
    x = pil_to_tensor(content)
    last = tiny_decoder.layers[-1]
    with torch.no_grad():  # keep the random decoder's output mid-grey so clipping does not hide the chroma
        last.weight.mul_(0.05)
        last.bias.fill_(0.5)
    out = pil_to_tensor(stylize(content, style, encoder=tiny_vgg, decoder=tiny_decoder, preserve_color="luminance"))
    chroma = lambda t: color.rgb_to_luma_chroma(t, "ycbcr")[:, 1:]  # noqa: E731
    assert (chroma(out) - chroma(x)).abs().mean() < 0.02
    recolored = encode_style(style, encoder=tiny_vgg, recolor_to=x)
    plain = encode_style(style, encoder=tiny_vgg)
    assert not torch.allclose(recolored.mean, plain.mean)
    with pytest.raises(ValueError, match="preserve_color"):
        stylize(content, style, encoder=tiny_vgg, decoder=tiny_decoder, preserve_color="sepia")


def test_save_load_round_trip_is_bit_identical(tmp_path, tiny_decoder):
    path = tiny_decoder.save_pretrained(tmp_path / "dec.safetensors", metadata={"steps": 3})
    loaded = AdaINDecoder.from_pretrained(path)
    assert loaded.config == TINY
    for (k, a), (_, b) in zip(tiny_decoder.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    assert AdaINDecoder.extra_metadata(path) == {"steps": 3}
    half_path = tiny_decoder.save_pretrained(tmp_path / "half.safetensors", dtype=torch.float16)
    half = AdaINDecoder.from_pretrained(half_path)
    w = tiny_decoder.layers[1].weight
    assert torch.equal(half.layers[1].weight, w.half().float())


def test_loading_another_model_file_is_a_clear_error(tmp_path, tiny_vgg):
    path = tiny_vgg.save_pretrained(tmp_path / "vgg.safetensors")
    with pytest.raises(ModelFileError, match="not a AdaINDecoder|not an AdaINDecoder|holds a VGGEncoder"):
        AdaINDecoder.from_pretrained(path)


def test_decoder_mirrors_the_encoder():
    decoder = AdaINDecoder()
    convs = [m for m in decoder.layers if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (512, 256), (256, 256), (256, 256), (256, 128), (128, 128), (128, 64), (64, 64), (64, 3)]
    assert sum(isinstance(m, torch.nn.Upsample) for m in decoder.layers) == 3
    assert sum(isinstance(m, torch.nn.ReflectionPad2d) for m in decoder.layers) == 8
    assert not any("Norm" in type(m).__name__ for m in decoder.layers)
    assert adain.ENCODER_LAYER == "relu4_1"


def test_stats_are_a_plain_record(tiny_vgg):
    stats = encode_style(noise_image(1, 80, 32), encoder=tiny_vgg, size=40)
    assert isinstance(stats, StyleStats) and stats.size == (40, 16)
    assert stats.mean.shape == (1, 8, 1, 1)


def test_metrics_are_zero_for_identical_images_and_grow_with_difference(tiny_vgg):
    from styletransfer.metrics import content_style_losses

    a, b = gradient_image(48, 40), Image.fromarray(noise_image(2, 48, 40))
    same = content_style_losses(a, a, a, encoder=tiny_vgg)
    assert same["content"] == pytest.approx(0, abs=1e-6) and same["style"] == pytest.approx(0, abs=1e-6)
    other = content_style_losses(b, a, a, encoder=tiny_vgg)
    assert other["content"] > 0.01 and other["style"] > 0.01


def test_nearest_style_picks_the_matching_candidate(tiny_vgg):
    from styletransfer.metrics import nearest_style, style_distance

    reddish = noise_image(3, 120, 90) // 2
    reddish[..., 0] += 120
    style = Image.fromarray(reddish)
    candidates = {"bluish": Image.fromarray(reddish[..., ::-1].copy()), "gradient": gradient_image(96, 72),
                  "same": style.resize((96, 72))}
    assert nearest_style(style, candidates, encoder=tiny_vgg) == "same"
    assert style_distance(style, style, encoder=tiny_vgg) == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="no candidate"):
        nearest_style(style, {}, encoder=tiny_vgg)


def test_auto_regions_partition_the_content_at_input_size(tiny_vgg):
    masks = auto_regions(gradient_image(80, 48), 3, encoder=tiny_vgg, size=40)
    assert masks.shape == (3, 48, 80)
    assert torch.equal(masks.sum(0), torch.ones(48, 80))


def test_cli_batch_encodes_each_style_once_unless_the_styles_are_recoloured_per_content(tmp_path, monkeypatch,
                                                                                        capsys):
    from safetensors.torch import save_file

    import styletransfer.__main__ as entry
    from styletransfer.imageio import read_settings
    from styletransfer.vgg import VGGEncoder

    weights = tmp_path / "vgg.safetensors"  # random VGG-16 values; the first filter as the zoo's check wants it
    torch.manual_seed(0)
    state = VGGEncoder().state_dict()
    state["features.0.weight"][0, 0, 0] = torch.tensor([-0.5537, 0.1427, 0.5290])
    save_file(state, str(weights))
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        gradient_image(48 + 8 * k, 40).save(photos / f"p{k}.png")
    gradient_image(40, 40).rotate(30).save(tmp_path / "s.png")
    encoded = []
    real = entry.adain.encode_style
    monkeypatch.setattr(entry.adain, "encode_style", lambda *a, **k: encoded.append(1) or real(*a, **k))
    common = [str(photos), str(tmp_path / "s.png"), "--size", "32", "--vgg", str(weights), "--fp32"]
    assert entry.main(["adain", *common, "-o", str(tmp_path / "out")]) == 0
    assert len(encoded) == 1 and "[3/3] wrote" in capsys.readouterr().err
    assert [read_settings(tmp_path / "out" / f"p{k}.png")["settings"]["content"] for k in range(3)] == [
        "p0.png", "p1.png", "p2.png"]
    encoded.clear()
    assert entry.main(["adain", *common, "-o", str(tmp_path / "recoloured"), "--preserve-color", "histogram"]) == 0
    assert len(encoded) == 3
