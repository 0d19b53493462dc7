"""LPIPS (VGG-16, v0.1): against the official implementation, its properties, and where its heads come from."""

import warnings

import pytest
import torch
import torch.nn.functional as F

import zoo
from styletransfer.imageio import load_image, pil_to_tensor
from styletransfer.lpips import LPIPS_LAYERS, LPIPSConfig, LPIPSHeads, lpips
from styletransfer.metrics import lpips_content_distance
from styletransfer.vgg import VGGConfig, VGGEncoder
from tests.conftest import TINY_WIDTHS, gradient_image


@pytest.fixture
def heads() -> LPIPSHeads:
    torch.manual_seed(1)
    heads = LPIPSHeads(LPIPSConfig(TINY_WIDTHS))
    for lin in heads.lins:
        torch.nn.init.uniform_(lin.weight, 0.0, 1.0)
    return heads


def images(seed: int, shape=(2, 3, 40, 56)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    return x, (x + 0.2 * torch.randn(shape, generator=g)).clamp(0, 1)


def official_lpips(vgg: VGGEncoder, heads: LPIPSHeads) -> torch.nn.Module:
    """The official implementation (the ``lpips`` package) holding ``vgg``'s and ``heads``' weights."""
    reference = pytest.importorskip("lpips", reason="the lpips package (requirements-dev.txt) is not installed")
    with warnings.catch_warnings():  # it asks torchvision for vgg16(pretrained=False), a deprecated keyword
        warnings.simplefilter("ignore")
        official = reference.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False).eval()
    theirs = [m for m in official.net.modules() if isinstance(m, torch.nn.Conv2d)]
    ours = [m for m in vgg.features if isinstance(m, torch.nn.Conv2d)]
    assert len(theirs) == len(ours) == 13
    with torch.no_grad():
        for a, b in zip(theirs, ours):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
        for k, lin in enumerate(heads.lins):
            getattr(official, f"lin{k}").model[-1].weight.copy_(lin.weight)
    return official


def test_matches_the_official_lpips_package_given_the_same_weights():
    torch.manual_seed(0)
    vgg = VGGEncoder(VGGConfig(), precision="fp32")  # full widths: the official class builds VGG-16 itself
    heads = LPIPSHeads()
    for lin in heads.lins:
        torch.nn.init.uniform_(lin.weight, 0.0, 1.0)
    official = official_lpips(vgg, heads)
    x, y = images(0, (3, 3, 48, 64))
    with torch.no_grad():
        torch.testing.assert_close(lpips(x, y, vgg=vgg, heads=heads), official(x, y, normalize=True).flatten(),
                                   rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_real_weights_match_the_official_lpips_and_bf16_stays_within_a_thousandth(real_vgg_fp32, data_dir):
    heads = zoo.load_lpips_heads()
    official = official_lpips(real_vgg_fp32, heads)
    photo = pil_to_tensor(load_image(data_dir / "content" / "tubingen.jpg").resize((256, 192)))
    others = torch.cat([photo.flip(-1), F.avg_pool2d(photo, 3, 1, 1), (photo + 0.05).clamp(0, 1)])
    with torch.no_grad():
        want = official(photo.expand_as(others), others, normalize=True).flatten()
        got = lpips(photo.expand_as(others), others, vgg=real_vgg_fp32, heads=heads)
        bf16 = lpips(photo.expand_as(others), others, vgg=zoo.load_vgg16("bf16"), heads=heads)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    assert (bf16 - want).abs().max() < 1e-3  # LPIPS is quoted to three decimals
    assert want[2] < want[1] < want[0]  # a slight brightening < a blur < a mirrored photo


def test_is_zero_for_equal_images_symmetric_and_grows_with_the_difference(tiny_vgg, heads):
    x, y = images(2)
    assert lpips(x, x, vgg=tiny_vgg, heads=heads).abs().max() < 1e-6
    torch.testing.assert_close(lpips(x, y, vgg=tiny_vgg, heads=heads), lpips(y, x, vgg=tiny_vgg, heads=heads))
    near, far = ((x + t * (y - x)) for t in (0.2, 1.0))
    assert (lpips(x, near, vgg=tiny_vgg, heads=heads) < lpips(x, far, vgg=tiny_vgg, heads=heads)).all()
    # one value per image, each the distance of that pair alone
    pair = lpips(x[1:], y[1:], vgg=tiny_vgg, heads=heads)
    torch.testing.assert_close(pair, lpips(x, y, vgg=tiny_vgg, heads=heads)[1:])


def test_gradients_reach_the_image(tiny_vgg, heads):
    x, y = images(3)
    x.requires_grad_(True)
    lpips(x, y, vgg=tiny_vgg, heads=heads).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_bad_inputs_are_clear(tiny_vgg, heads):
    x, y = images(4)
    with pytest.raises(ValueError, match="one size"):
        lpips(x, y[..., :32], vgg=tiny_vgg, heads=heads)
    with pytest.raises(ValueError, match="do not fit a VGG of widths"):
        lpips(x, y, vgg=tiny_vgg, heads=LPIPSHeads())
    with pytest.raises(ValueError, match="5 positive ints"):
        LPIPSConfig((4, 8))


def test_content_distance_of_a_stylised_image(tiny_vgg, heads):
    content = gradient_image(64, 48)
    same = lpips_content_distance(content, content, vgg=tiny_vgg, heads=heads)
    other = lpips_content_distance(gradient_image(64, 48).rotate(180), content, vgg=tiny_vgg, heads=heads)
    smaller = lpips_content_distance(content.resize((32, 24)), content, vgg=tiny_vgg, heads=heads)  # content resized
    assert same < 1e-6 < smaller < other


def test_the_shipped_heads_load_and_fit_vgg16():
    heads = zoo.load_lpips_heads()
    assert "embedded" in heads.weights_source and heads.config.channels == VGGConfig().widths
    assert all((lin.weight >= 0).all() for lin in heads.lins) and len(heads.lins) == len(LPIPS_LAYERS)
