"""The library's calls on a CUDA device give what they give on the CPU (skipped where there is no GPU).

The app moves every model to the GPU when there is one (``app.DEVICE``); these tests run the same
calls there with tiny random models (and the embedded zoo StyleBank) and compare with the CPU.
"""

import numpy as np
import pytest
import torch

from styletransfer import adain, gatys, stylebank
from styletransfer.adain import AdaINDecoder, DecoderConfig
from styletransfer.masks import auto_regions
from styletransfer.stylebank import AutoEncoderConfig, BankConfig, LossConfig, StyleBank, StyleBankAutoEncoder
from tests.conftest import gradient_image

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
CUDA = torch.device("cuda")
LOSS = LossConfig(content_layer="relu2_2", style_layers=("relu1_2", "relu2_2"), style_weight=10.0)


def mean_abs_difference(a, b) -> float:
    """Mean absolute difference of two RGB images in [0, 1] units."""
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean() / 255)


def tiny_stylebank() -> tuple[StyleBankAutoEncoder, dict[str, StyleBank]]:
    torch.manual_seed(0)
    ae = StyleBankAutoEncoder(AutoEncoderConfig(channels=(4, 8, 16), norm="instance")).eval()
    banks = {n: StyleBank(BankConfig(n, 16, 3, ae.fingerprint())).eval() for n in ("a", "b")}
    return ae, banks


@pytest.mark.parametrize("style", ["a", {"a": 0.3, "b": 0.7}])
def test_stylebank_stylize_on_the_gpu_matches_the_cpu(style):
    ae, banks = tiny_stylebank()
    content = gradient_image(70, 50)
    on_cpu = stylebank.stylize(content, style, autoencoder=ae, banks=banks).image
    gpu_banks = {n: b.to(CUDA) for n, b in banks.items()}
    on_gpu = stylebank.stylize(content, style, autoencoder=ae.to(CUDA), banks=gpu_banks).image
    assert on_gpu.size == on_cpu.size == (70, 50)
    assert mean_abs_difference(on_gpu, on_cpu) < 0.01


def test_stylebank_region_fusion_on_the_gpu_gives_the_cpu_s_regions():
    ae, banks = tiny_stylebank()
    content = gradient_image(64, 48)
    on_cpu = stylebank.stylize(content, ["a", "b"], regions=2, autoencoder=ae, banks=banks)
    gpu_banks = {n: b.to(CUDA) for n, b in banks.items()}
    on_gpu = stylebank.stylize(content, ["a", "b"], regions=2, autoencoder=ae.to(CUDA), banks=gpu_banks)
    assert on_gpu.masks.shape == (2, 1, 48, 64)
    assert (on_gpu.masks.cpu() != on_cpu.masks).float().mean() < 0.05  # bf16 rounding may move a few border cells
    assert on_gpu.region_map.size == (64, 48)
    left = torch.zeros(48, 64)
    left[:, :32] = 1
    painted = stylebank.stylize(content, ["a", "b"], masks=[left.to(CUDA), 1 - left], autoencoder=ae, banks=gpu_banks)
    assert painted.region_map.size == (64, 48)


def test_learning_a_bank_on_the_gpu_trains_only_the_bank_and_saves_a_file_the_cpu_loads(tmp_path, tiny_vgg):
    ae, _ = tiny_stylebank()
    ae = ae.to(CUDA)
    before = {k: v.clone() for k, v in ae.state_dict().items()}
    contents = [torch.rand(1, 3, 40, 40) for _ in range(3)]
    steps = []
    bank = stylebank.learn_bank(gradient_image(48, 48), contents, name="gpu", autoencoder=ae, vgg=tiny_vgg.to(CUDA),
                                num_steps=8, size=32, batch_size=2, loss=LOSS, progress=steps.append,
                                preview_every=4, preview_content=torch.rand(1, 3, 32, 32))
    assert all(torch.equal(v, before[k]) for k, v in ae.state_dict().items())
    assert bank.conv.weight.device.type == "cuda"
    assert len(steps) == 8 and all(np.isfinite(s.losses["total"]) for s in steps)
    path = stylebank.save_bank(bank, tmp_path / "gpu.safetensors", thumbnail=gradient_image(48, 48))
    loaded = stylebank.load_bank(path, ae.cpu())
    assert torch.equal(loaded.conv.weight, bank.conv.weight.cpu())


def test_adain_on_the_gpu_matches_the_cpu(tiny_vgg):
    torch.manual_seed(1)
    decoder = AdaINDecoder(DecoderConfig(widths=(8, 8, 8, 8)), precision="fp32").eval()
    content, style = gradient_image(64, 48), np.asarray(gradient_image(40, 40).rotate(90))
    on_cpu = adain.stylize(content, [style], encoder=tiny_vgg, decoder=decoder, alpha=0.8)
    on_gpu = adain.stylize(content, [style], encoder=tiny_vgg.to(CUDA), decoder=decoder.to(CUDA), alpha=0.8)
    assert on_gpu.size == on_cpu.size == (64, 48)
    assert mean_abs_difference(on_gpu, on_cpu) < 0.01
    regions = auto_regions(content, 2, encoder=tiny_vgg)
    assert regions.shape == (2, 48, 64)
    two = adain.stylize(content, [style, style[::-1].copy()], masks=list(regions), encoder=tiny_vgg, decoder=decoder)
    assert two.size == (64, 48)


def test_gatys_on_the_gpu_lowers_the_loss_like_the_cpu(tiny_vgg):
    content, style = gradient_image(48, 32), np.asarray(gradient_image(40, 40).rotate(90))
    fast = dict(size=32, num_steps=10, style_layers=("relu1_1", "relu2_1", "relu3_1"), content_layers=("relu2_2",),
                init="noise")
    on_cpu = gatys.stylize(content, style, encoder=tiny_vgg, **fast)
    on_gpu = gatys.stylize(content, style, encoder=tiny_vgg.to(CUDA), **fast)
    first, last = on_gpu.losses[0]["total"], on_gpu.losses[-1]["total"]
    assert last < 0.7 * first
    assert last == pytest.approx(on_cpu.losses[-1]["total"], rel=0.2)
    left = torch.zeros(32, 48)
    left[:, :24] = 1
    regions = dict(masks=[left, 1 - left], style_masks=[None, torch.ones(32, 32).tril()])
    two = [style, np.asarray(gradient_image(32, 32))]
    on_cpu = gatys.stylize(content, two, encoder=tiny_vgg.cpu(), **fast, **regions)
    on_gpu = gatys.stylize(content, two, encoder=tiny_vgg.to(CUDA), **fast, **regions)
    assert on_gpu.losses[-1]["total"] == pytest.approx(on_cpu.losses[-1]["total"], rel=0.2)


def test_the_zoo_stylebank_on_the_gpu_matches_the_cpu():
    import zoo

    ae, banks = zoo.load_stylebank()
    name = next(iter(banks))
    content = gradient_image(256, 192)
    on_cpu = stylebank.stylize(content, name, autoencoder=ae, banks=banks).image
    gpu_banks = {n: b.to(CUDA) for n, b in banks.items()}
    on_gpu = stylebank.stylize(content, name, autoencoder=ae.to(CUDA), banks=gpu_banks).image
    assert mean_abs_difference(on_gpu, on_cpu) < 0.01
    assert mean_abs_difference(on_gpu, content) > 0.02  # the style did something


def test_the_live_tab_stylises_frames_on_the_gpu_with_a_session_bank(tiny_vgg, tmp_path):
    """The Live tab's handler with models on the GPU: a bank file added this session is loaded onto the
    auto-encoder's device, and the frames match the CPU's."""
    import app

    path = tmp_path / "mine.safetensors"
    frame = np.asarray(gradient_image(96, 72))
    style = tmp_path / "style.png"
    gradient_image(40, 40).rotate(90).save(style)
    decoder = AdaINDecoder(DecoderConfig(widths=(8, 8, 8, 8)), precision="fp32").eval()
    results = {}
    for device in (torch.device("cpu"), CUDA):
        ae, banks = tiny_stylebank()
        if not path.exists():
            stylebank.save_bank(StyleBank(BankConfig("mine", 16, 3, ae.fingerprint())), path)
        ae, banks = ae.to(device), {name: bank.to(device) for name, bank in banks.items()}
        models = app.Models(vgg=lambda: tiny_vgg, adain_encoder=lambda: tiny_vgg.to(device),
                            adain_decoder=lambda: decoder.to(device), stylebank=lambda: (ae, banks),
                            lpips_heads=lambda: None, train_contents=lambda size: [])
        live = app.make_live_handler(models)
        results[device.type] = [live(frame, "StyleBank", "mine", None, 1.0, "none", 64, 0.0, {"mine": str(path)})[0],
                                live(frame, "AdaIN", None, str(style), 0.8, "luminance", 64, 0.0, {})[0]]
    for on_cpu, on_gpu in zip(results["cpu"], results["cuda"]):
        assert on_gpu.size == on_cpu.size == (64, 48)
        assert mean_abs_difference(on_gpu, on_cpu) < 0.01
