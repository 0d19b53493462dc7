import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer import color
from styletransfer.imageio import ImageInputError, load_image, pil_to_tensor
from styletransfer.masks import kmeans_masks
from styletransfer.serialization import ModelFileError
from styletransfer.stylebank import (
    AutoEncoderConfig,
    BankConfig,
    LossConfig,
    StyleBank,
    StyleBankAutoEncoder,
    learn_bank,
    load_bank,
    read_thumbnail,
    save_bank,
    style_targets,
    stylize,
)
from training.train_stylebank import grad_norm, identity_step, stylizing_step
from tests.conftest import gradient_image

TINY = AutoEncoderConfig(channels=(4, 8, 16), norm="instance")  # instance norm keeps random outputs visible
LOSS = LossConfig(content_layer="relu2_2", style_layers=("relu1_2", "relu2_2"), style_weight=10.0)


@pytest.fixture
def autoencoder() -> StyleBankAutoEncoder:
    torch.manual_seed(0)
    return StyleBankAutoEncoder(TINY)


def make_bank(ae: StyleBankAutoEncoder, name: str, seed: int) -> StyleBank:
    torch.manual_seed(seed)
    return StyleBank(BankConfig(name, ae.feature_channels, 3, ae.fingerprint()))


@pytest.mark.parametrize("upsample", ["transposed", "resize"])
@pytest.mark.parametrize("norm", ["none", "instance"])
def test_shapes(upsample, norm):
    ae = StyleBankAutoEncoder(AutoEncoderConfig((4, 8, 16), upsample, norm))
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in ae.modules()) == (norm == "instance")
    x = torch.rand(2, 3, 32, 48)
    feats = ae.encode(x)
    assert feats.shape == (2, 16, 8, 12)
    assert make_bank(ae, "a", 0)(feats).shape == feats.shape
    assert ae(x).shape == x.shape
    default = StyleBankAutoEncoder()
    convs = [m for m in default.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.out_channels) for c in convs] == [
        ((9, 9), (1, 1), 32), ((3, 3), (2, 2), 64), ((3, 3), (2, 2), 128)]
    with pytest.raises(ValueError, match="norm must be one of"):
        AutoEncoderConfig(norm="batch")


def test_default_autoencoder_learns_to_reconstruct():
    """The default (no normalisation) auto-encoder fits a few images by the identity loss alone."""
    torch.manual_seed(0)
    ae = StyleBankAutoEncoder(AutoEncoderConfig((8, 16, 16)))
    x = torch.stack([torch.from_numpy(np.array(gradient_image(32, 32).rotate(90 * i))).permute(2, 0, 1)
                     for i in range(2)])
    x = x.float() / 255
    optimizer = torch.optim.Adam(ae.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(ae(x), x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_save_load_round_trips_and_fingerprint_survives_fp16(tmp_path, autoencoder):
    path = autoencoder.save_pretrained(tmp_path / "ae.safetensors")
    loaded = StyleBankAutoEncoder.from_pretrained(path)
    for (k, a), b in zip(autoencoder.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    half_path = autoencoder.save_pretrained(tmp_path / "h.safetensors", dtype=torch.float16)
    half = StyleBankAutoEncoder.from_pretrained(half_path)
    assert half.fingerprint() == autoencoder.fingerprint() == loaded.fingerprint()
    bank = make_bank(autoencoder, "waves", 1)
    bank_path = save_bank(bank, tmp_path / "waves.safetensors", thumbnail=gradient_image(200, 100))
    back = load_bank(bank_path, loaded)
    assert back.name == "waves" and back.config.kernel_size == 3
    assert torch.equal(back.conv.weight, bank.conv.weight)
    assert read_thumbnail(bank_path).size == (96, 48)


def test_foreign_bank_is_refused(tmp_path, autoencoder):
    bank_path = save_bank(make_bank(autoencoder, "waves", 1), tmp_path / "waves.safetensors")
    torch.manual_seed(9)
    other = StyleBankAutoEncoder(TINY)
    with pytest.raises(ModelFileError, match="another StyleBank auto-encoder"):
        load_bank(bank_path, other)
    with pytest.raises(ModelFileError, match="holds a StyleBankAutoEncoder"):
        StyleBank.from_pretrained(autoencoder.save_pretrained(tmp_path / "ae.safetensors"))


def test_bank_names_are_checked():
    for bad in ("", "a.b", "../x", "x" * 65, "with space"):
        with pytest.raises(ValueError, match="bank name"):
            BankConfig(bad)


def test_identity_step_rescales_the_gradient_to_lambda_times_the_stylizing_norm(autoencoder):
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=1e-3)
    x = torch.rand(2, 3, 32, 32)
    for lam, norm_k in ((1.0, 0.37), (2.5, 0.1)):
        _, scale = identity_step(autoencoder, x, optimizer, norm_k, lam, clip=1e9)
        assert scale > 0
        assert grad_norm(list(autoencoder.parameters())) == pytest.approx(lam * norm_k, rel=1e-4)


def test_few_stylizing_steps_lower_the_loss(autoencoder, tiny_vgg):
    banks = torch.nn.ModuleDict({"a": make_bank(autoencoder, "a", 1), "b": make_bank(autoencoder, "b", 2)})
    targets = {n: style_targets(torch.rand(1, 3, 32, 32) * s, tiny_vgg, LOSS) for n, s in (("a", 1.0), ("b", 0.5))}
    optimizer = torch.optim.Adam([*autoencoder.parameters(), *banks.parameters()], lr=3e-3)
    x = torch.rand(2, 3, 32, 32)
    totals = [stylizing_step(autoencoder, banks, tiny_vgg, x, ["a", "b"], targets, optimizer, LOSS, 10.0)[0]["total"]
              for _ in range(30)]
    assert totals[-1] < 0.7 * totals[0]


def test_incremental_learning_changes_only_the_new_bank(autoencoder, tiny_vgg):
    before = {k: v.clone() for k, v in autoencoder.state_dict().items()}
    contents = [torch.rand(1, 3, 40, 40) for _ in range(3)]
    seen = []
    torch.manual_seed(5)
    reference = StyleBank(BankConfig("new", 16, 3))
    bank = learn_bank(gradient_image(48, 48), contents, name="new", autoencoder=autoencoder, vgg=tiny_vgg,
                      num_steps=4, size=32, batch_size=2, loss=LOSS, seed=5, progress=seen.append,
                      preview_every=2, preview_content=torch.rand(1, 3, 32, 32))
    for k, v in autoencoder.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.equal(bank.conv.weight, reference.conv.weight)
    assert bank.config.autoencoder == autoencoder.fingerprint()
    assert [s.step for s in seen] == [1, 2, 3, 4] and seen[1].preview is not None and seen[0].preview is None
    assert seen[-1].seconds_left == 0 and all(s.seconds_left >= 0 for s in seen)
    assert seen[0].seconds_left == pytest.approx(seen[0].seconds * 3)  # three more steps at the first one's pace


def test_incremental_learning_can_be_cancelled(autoencoder, tiny_vgg):
    stop = threading.Event()
    steps = []

    def progress(info):
        steps.append(info.step)
        if info.step == 2:
            stop.set()

    bank = learn_bank(gradient_image(48, 48), [torch.rand(1, 3, 40, 40)], name="x", autoencoder=autoencoder,
                      vgg=tiny_vgg, num_steps=50, size=32, batch_size=1, loss=LOSS, progress=progress, cancel=stop)
    assert steps == [1, 2] and isinstance(bank, StyleBank)
    with pytest.raises(ValueError, match="smaller than the 64 px crop"):
        learn_bank(gradient_image(48, 48), [torch.rand(1, 3, 40, 40)], name="x", autoencoder=autoencoder,
                   vgg=tiny_vgg, num_steps=1, size=64, loss=LOSS)


def test_identity_init_starts_from_the_reconstruction(autoencoder, tiny_vgg):
    x = torch.rand(1, 3, 32, 32)
    bank = learn_bank(gradient_image(48, 48), [torch.rand(1, 3, 40, 40)], name="x", autoencoder=autoencoder,
                      vgg=tiny_vgg, num_steps=1, size=32, batch_size=1, lr=0.0, loss=LOSS, init="identity")
    with torch.no_grad():
        features = autoencoder.encode(x)
        torch.testing.assert_close(bank(features), features)
    with pytest.raises(ValueError, match="init must be one of random, identity"):
        learn_bank(gradient_image(48, 48), [torch.rand(1, 3, 40, 40)], name="x", autoencoder=autoencoder,
                   vgg=tiny_vgg, num_steps=1, size=32, loss=LOSS, init="zeros")


def test_ema_returns_the_moving_average_of_the_iterates(autoencoder, tiny_vgg):
    def run(ema, seen):
        contents = [torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))]
        return learn_bank(gradient_image(48, 48), contents,
                          name="x", autoencoder=autoencoder, vgg=tiny_vgg, num_steps=5, size=32, batch_size=1,
                          loss=LOSS, seed=3, init="random", ema=ema,
                          progress=lambda info: seen.append(info.bank.conv.weight.clone()))

    iterates, averages = [], []
    last = run(0.0, iterates)
    assert torch.equal(last.conv.weight, iterates[-1])
    averaged = run(0.5, averages)
    torch.manual_seed(3)  # the average starts at learn_bank's initial weights (same seed)
    want = StyleBank(BankConfig("x", 16, 3)).conv.weight.detach().clone()
    for t, w in enumerate(iterates, start=1):
        want.lerp_(w, 1 - min(0.5, (1 + t) / (10 + t)))
    torch.testing.assert_close(averaged.conv.weight, want)
    assert not torch.equal(averaged.conv.weight, last.conv.weight)
    torch.testing.assert_close(averages[-1], averaged.conv.weight)
    with pytest.raises(ValueError, match=r"ema must be in \[0, 1\)"):
        run(1.0, [])


def test_learning_a_bank_is_seeded_and_leaves_the_callers_random_state_alone(autoencoder, tiny_vgg):
    contents = [torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))]

    def weights(seed):
        return learn_bank(gradient_image(48, 48), contents, name="x", autoencoder=autoencoder, vgg=tiny_vgg,
                          num_steps=2, size=32, batch_size=1, loss=LOSS, seed=seed, init="random").conv.weight

    state = torch.get_rng_state()
    first = weights(4)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, weights(4)) and not torch.equal(first, weights(5))


def test_auto_init_probes_both_starts_and_continues_the_better(autoencoder, tiny_vgg):
    seen = []
    bank = learn_bank(gradient_image(48, 48), [torch.rand(1, 3, 40, 40)], name="x", autoencoder=autoencoder,
                      vgg=tiny_vgg, num_steps=12, size=32, batch_size=1, loss=LOSS, init="auto", probe_steps=4,
                      progress=seen.append)
    assert [s.step for s in seen] == list(range(1, 13))
    assert [s.init for s in seen[:6]] == ["random"] * 3 + ["identity"] * 3  # probes: a quarter of 12 steps each
    probe_loss = {init: sum(s.losses["total"] for s in seen if s.init == init and s.step in steps) / 2
                  for init, steps in (("random", (2, 3)), ("identity", (5, 6)))}
    winner = min(probe_loss, key=probe_loss.get)
    assert {s.init for s in seen[6:]} == {winner}
    assert seen[-1].bank is not None and torch.equal(bank.conv.weight, seen[-1].bank.conv.weight)


def test_cancel_during_the_probes_returns_the_better_start_so_far(autoencoder, tiny_vgg):
    stop, seen = threading.Event(), []

    def progress(info):
        seen.append(info)
        if info.step == 5:  # the identity probe's second step
            stop.set()

    bank = learn_bank(gradient_image(48, 48), [torch.rand(1, 3, 40, 40)], name="x", autoencoder=autoencoder,
                      vgg=tiny_vgg, num_steps=12, size=32, batch_size=1, loss=LOSS, init="auto", probe_steps=3,
                      progress=progress, cancel=stop)
    assert [s.step for s in seen] == [1, 2, 3, 4, 5]
    recent = {"random": (seen[1].losses["total"] + seen[2].losses["total"]) / 2, "identity": seen[4].losses["total"]}
    best = min(recent, key=recent.get)
    want = next(s for s in reversed(seen) if s.init == best).bank
    assert torch.equal(bank.conv.weight, want.conv.weight)


def test_linear_fusion_with_weights_one_zero_equals_the_single_style(autoencoder):
    banks = {"a": make_bank(autoencoder, "a", 1), "b": make_bank(autoencoder, "b", 2)}
    content = gradient_image(50, 38)
    single = stylize(content, "a", autoencoder=autoencoder, banks=banks).image
    fused = stylize(content, {"a": 1.0, "b": 0.0}, autoencoder=autoencoder, banks=banks).image
    other = stylize(content, {"a": 0.5, "b": 0.5}, autoencoder=autoencoder, banks=banks).image
    assert single.size == (50, 38)
    assert np.array_equal(np.asarray(single), np.asarray(fused))
    assert not np.array_equal(np.asarray(single), np.asarray(other))
    with pytest.raises(ValueError, match="unknown style bank"):
        stylize(content, "zzz", autoencoder=autoencoder, banks=banks)
    with pytest.raises(ValueError, match=">= 0"):
        stylize(content, {"a": -1.0, "b": 2.0}, autoencoder=autoencoder, banks=banks)


def test_color_preservation_keeps_the_contents_colours(autoencoder):
    with torch.no_grad():  # a mid-grey output, so clipping does not hide what the colour modes do
        autoencoder.decoder[-1].bias.fill_(0.5)
    banks = {"a": make_bank(autoencoder, "a", 1)}
    content = gradient_image(48, 40)
    x = pil_to_tensor(content)

    def run(**colour):
        result = stylize(content, "a", autoencoder=autoencoder, banks=banks, **colour)
        return pil_to_tensor(result.image), result.settings

    plain, settings = run()
    luminance, _ = run(preserve_color="luminance")
    chroma = lambda t: color.rgb_to_luma_chroma(t, "yiq")[:, 1:]  # noqa: E731
    luma = lambda t: color.rgb_to_luma_chroma(t, "yiq")[:, :1]  # noqa: E731
    assert (chroma(plain) - chroma(x)).abs().mean() > 0.1 and settings["preserve_color"] == "none"
    assert (chroma(luminance) - chroma(x)).abs().mean() < 0.01  # the content's chroma
    assert (luma(luminance) - luma(plain)).abs().mean() < 0.01  # the result's luminance

    def mean_cov(t):
        pixels = t[0].reshape(3, -1).double()
        return pixels.mean(1), torch.cov(pixels)

    mu_x, cov_x = mean_cov(x)
    mu_plain, cov_plain = mean_cov(plain)
    for method in ("cholesky", "eigen"):
        matched, settings = run(preserve_color="histogram", color_method=method)
        mu, cov = mean_cov(matched)
        assert (mu - mu_x).abs().max() < 0.03 < (mu_plain - mu_x).abs().max()
        # clipping to [0, 1] after the affine map takes some of the spread
        assert torch.linalg.norm(cov - cov_x) < 0.5 * torch.linalg.norm(cov_plain - cov_x)
        assert settings["preserve_color"] == "histogram" and settings["color_method"] == method
    with pytest.raises(ValueError, match="preserve_color must be one of"):
        run(preserve_color="sepia")
    with pytest.raises(ValueError, match="color_method must be one of"):
        run(preserve_color="histogram", color_method="lu")


def test_kmeans_masks_partition_the_grid_and_follow_the_seed():
    feats = torch.randn(1, 8, 10, 12)
    masks = kmeans_masks(feats, 3, seed=1)
    assert masks.shape == (3, 1, 10, 12)
    assert torch.equal(masks.sum(0), torch.ones(1, 10, 12))
    assert torch.equal(masks, kmeans_masks(feats, 3, seed=1))
    sizes = masks.sum(dim=(1, 2, 3))
    assert (sizes[:-1] >= sizes[1:]).all()
    with pytest.raises(ValueError, match="regions"):
        kmeans_masks(feats, 0)


def test_a_content_too_elongated_for_the_working_size_is_a_clear_error(autoencoder):
    banks = {"a": make_bank(autoencoder, "a", 1)}
    with pytest.raises(ImageInputError, match="content: 16x2000 px is too elongated"):
        stylize(gradient_image(16, 2000), "a", autoencoder=autoencoder, banks=banks, size=512)
    full = stylize(gradient_image(16, 2000), "a", autoencoder=autoencoder, banks=banks, size=None)
    assert full.image.size == (16, 2000)


def test_region_fusion_returns_masks_at_image_size(autoencoder):
    banks = {"a": make_bank(autoencoder, "a", 1), "b": make_bank(autoencoder, "b", 2)}
    content = gradient_image(64, 40)
    result = stylize(content, ["a", "b"], autoencoder=autoencoder, banks=banks, regions=2)
    assert result.image.size == (64, 40) and result.region_map.size == (64, 40)
    assert result.masks.shape == (2, 1, 40, 64)
    assert torch.equal(result.masks.sum(0), torch.ones(1, 40, 64))
    painted = [np.zeros((40, 64), np.uint8), np.zeros((40, 64), np.uint8)]
    painted[0][:, :32] = 255
    painted[1][:, 32:] = 255
    by_mask = stylize(content, ["a", "b"], autoencoder=autoencoder, banks=banks, masks=painted)
    assert by_mask.settings["source"] == "masks"
    with pytest.raises(ImageInputError, match="1 masks for 2 styles"):
        stylize(content, ["a", "b"], autoencoder=autoencoder, banks=banks, masks=painted[:1])


def test_cli_stylebank_linear_and_region_fusion(tmp_path, autoencoder):
    from styletransfer.__main__ import main as cli
    from styletransfer.imageio import read_settings

    ae_path = autoencoder.save_pretrained(tmp_path / "ae.safetensors")
    (tmp_path / "banks").mkdir()
    for name, seed in (("a", 1), ("b", 2)):
        save_bank(make_bank(autoencoder, name, seed), tmp_path / "banks" / f"{name}.safetensors")
    content = tmp_path / "c.png"
    gradient_image(64, 48).save(content)
    out = tmp_path / "out.png"
    common = [str(content), "-o", str(out), "--autoencoder", str(ae_path), "--bank", str(tmp_path / "banks")]
    assert cli(["stylebank", *common, "--style", "a:3", "b:1"]) == 0
    assert read_settings(out)["settings"]["weights"] == {"a": 0.75, "b": 0.25}
    assert cli(["stylebank", *common, "--style", "a", "b", "--regions", "2",
                "--regions-out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").is_file()
    # --color: the gatys subcommand's spelling of --preserve-color
    assert cli(["stylebank", *common, "--style", "a", "--color", "histogram", "--color-method", "eigen"]) == 0
    assert {k: read_settings(out)["settings"][k] for k in ("preserve_color", "color_method")} == {
        "preserve_color": "histogram", "color_method": "eigen"}
    assert cli(["stylebank", *common, "--style", "nope"]) == 2
    torch.manual_seed(7)
    foreign = StyleBankAutoEncoder(TINY).save_pretrained(tmp_path / "other.safetensors")
    assert cli(["stylebank", str(content), "-o", str(out), "--autoencoder", str(foreign), "--bank",
                str(tmp_path / "banks"), "--style", "a"]) == 2


def test_cli_refuses_an_unwritable_output_first_and_never_loses_a_result(tmp_path, autoencoder, capsys, monkeypatch):
    import styletransfer.__main__ as entry
    from styletransfer.imageio import read_settings

    ae_path = autoencoder.save_pretrained(tmp_path / "ae.safetensors")
    save_bank(make_bank(autoencoder, "a", 1), tmp_path / "a.safetensors")
    content = tmp_path / "c.png"
    gradient_image(64, 48).save(content)
    common = [str(content), "--autoencoder", str(ae_path), "--bank", str(tmp_path / "a.safetensors"), "--style", "a"]
    work = []
    monkeypatch.setattr(entry.stylebank, "stylize", lambda *a, **k: work.append(1))
    for output, message in ((tmp_path / "out.gif", "written as .png, .jpg, .jpeg or .webp"),
                            (tmp_path / "no" / "out.png", "no folder"), (tmp_path, "written as .png")):
        assert entry.main(["stylebank", *common, "-o", str(output)]) == 2
        assert message in capsys.readouterr().err
    assert entry.main(["stylebank", *common, "-o", str(tmp_path / "out.png"), "--format", "jpg"]) == 2
    assert "--format jpg and --output" in capsys.readouterr().err
    assert entry.main(["stylebank", *common, "-o", str(tmp_path / "o.png"), "--regions-out",
                       str(tmp_path / "r.jpg")]) == 2
    assert "--regions-out" in capsys.readouterr().err  # region maps stay lossless
    assert entry.main(["stylebank", *common, "-o", str(tmp_path / "o.png"), "--regions-out",
                       str(tmp_path / "gone" / "r.png")]) == 2
    assert "--regions-out" in capsys.readouterr().err and not work  # refused before any work
    monkeypatch.undo()

    real_save = entry.save_image

    def disk_full_once(image, path, **kw):
        if Path(path).parent == tmp_path:
            raise OSError(28, "No space left on device")
        return real_save(image, path, **kw)

    monkeypatch.setattr(entry, "save_image", disk_full_once)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    (tmp_path / "temp").mkdir()
    assert entry.main(["stylebank", *common, "-o", str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err
    kept = Path(err.split("the result is saved as ")[1].strip())
    assert kept.name == "out.png" and kept.parent.parent == tmp_path / "temp"
    assert read_settings(kept)["method"] == "stylebank"


def test_cli_stylises_a_folder_into_a_folder_and_skips_what_it_cannot_read(tmp_path, autoencoder, capsys):
    from styletransfer.__main__ import main as cli
    from styletransfer.imageio import read_settings

    ae_path = autoencoder.save_pretrained(tmp_path / "ae.safetensors")
    save_bank(make_bank(autoencoder, "a", 1), tmp_path / "a.safetensors")
    photos = tmp_path / "photos"
    photos.mkdir()
    gradient_image(64, 48).save(photos / "one.png")
    gradient_image(48, 64).save(photos / "two.jpg")
    (photos / "broken.png").write_bytes(b"not an image")
    (photos / "notes.txt").write_text("not listed")
    out = tmp_path / "results"  # made by the CLI
    common = ["--autoencoder", str(ae_path), "--bank", str(tmp_path / "a.safetensors"), "--style", "a"]
    assert cli(["stylebank", str(photos), "-o", str(out), *common, "--regions", "2",
                "--regions-out", str(tmp_path / "maps")]) == 1  # one image skipped
    err = capsys.readouterr().err
    assert "[1/3] skipped broken.png: content" in err and "2 of 3 images written; skipped broken.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["one.png", "two.png"]
    assert read_settings(out / "two.png")["settings"]["content"] == "two.jpg"
    assert load_image(out / "two.png").size == (48, 64)
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["one.png", "two.png"]
    (photos / "broken.png").unlink()
    assert cli(["stylebank", str(photos), "-o", str(out), *common]) == 0
    assert "2 of 2 images written" in capsys.readouterr().err
    assert cli(["stylebank", str(photos), "-o", str(tmp_path / "as_jpeg"), "--format", "jpg", *common]) == 0
    assert sorted(p.name for p in (tmp_path / "as_jpeg").iterdir()) == ["one.jpg", "two.jpg"]
    with Image.open(tmp_path / "as_jpeg" / "one.jpg") as written:
        assert written.format == "JPEG"
    assert read_settings(tmp_path / "as_jpeg" / "one.jpg")["settings"]["content"] == "one.png"


def test_cli_refuses_a_folder_batch_that_would_lose_or_mix_files_before_any_work(tmp_path, autoencoder, capsys,
                                                                                 monkeypatch):
    import styletransfer.__main__ as entry

    ae_path = autoencoder.save_pretrained(tmp_path / "ae.safetensors")
    save_bank(make_bank(autoencoder, "a", 1), tmp_path / "a.safetensors")
    photos = tmp_path / "photos"
    photos.mkdir()
    gradient_image(64, 48).save(photos / "one.png")
    common = ["--autoencoder", str(ae_path), "--bank", str(tmp_path / "a.safetensors"), "--style", "a"]
    monkeypatch.setattr(entry.stylebank, "stylize", lambda *a, **k: pytest.fail("no work before the checks"))
    for output, message in ((tmp_path / "out.png", "is a folder, so name an output folder"),
                            (photos, "into another folder than the contents'"),
                            (tmp_path / "no" / "out", "there is no folder")):
        assert entry.main(["stylebank", str(photos), "-o", str(output), *common]) == 2
        assert message in capsys.readouterr().err
    gradient_image(32, 32).save(photos / "one.jpg")
    assert entry.main(["stylebank", str(photos), "-o", str(tmp_path / "out"), *common]) == 2
    assert "one.jpg and one.png would both be written as one.png" in capsys.readouterr().err
    (photos / "one.jpg").unlink()
    assert entry.main(["stylebank", str(photos), "-o", str(tmp_path / "out"), *common, "--regions", "2",
                       "--regions-out", str(tmp_path / "out")]) == 2
    assert "--regions-out and --output name the same place" in capsys.readouterr().err
    assert entry.main(["stylebank", str(photos), "-o", str(tmp_path / "out"), *common, "--regions", "2",
                       "--regions-out", str(tmp_path / "no" / "maps")]) == 2
    err = capsys.readouterr().err
    assert "--regions-out" in err and "there is no folder" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert entry.main(["stylebank", str(empty), "-o", str(tmp_path / "out"), *common]) == 2
    assert "no images" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # a refused batch leaves no empty folder behind
