"""NNPACK's Winograd convolutions for the frozen VGG (styletransfer.winograd) and where they run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from styletransfer import cpu, gatys, winograd
from styletransfer import vgg as vgg_module
from tests.conftest import gradient_image, run_python

needs_nnpack = pytest.mark.skipif(not torch.backends.nnpack.is_available(), reason="this torch build has no NNPACK")


def _frozen_conv(cin: int, cout: int, padding: int = 1) -> torch.nn.Conv2d:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(cin, cout, 3, padding=padding)
    torch.nn.init.kaiming_normal_(conv.weight)
    torch.nn.init.uniform_(conv.bias, -0.1, 0.1)
    return conv.requires_grad_(False)


@needs_nnpack
@pytest.mark.parametrize("shape,padding", [((1, 8, 20, 20), 1), ((2, 16, 9, 13), 1), ((1, 4, 1, 1), 1),
                                           ((1, 8, 11, 7), 0)])
def test_nnpack_conv_relu_matches_conv2d_and_its_input_gradient(shape, padding):
    conv = _frozen_conv(shape[1], 12, padding)
    x = torch.rand(shape, dtype=torch.float64)
    ref_x = x.clone().requires_grad_(True)
    ref = F.relu(F.conv2d(ref_x, conv.weight.double(), conv.bias.double(), padding=padding))
    got_x = x.float().requires_grad_(True)
    got = winograd.nnpack_conv_relu(got_x, conv)
    assert got.shape == ref.shape and got.is_contiguous()
    torch.testing.assert_close(got.double(), ref, rtol=1e-4, atol=1e-4)
    upstream = torch.randn(ref.shape, dtype=torch.float64)
    ref.backward(upstream)
    got.backward(upstream.float())
    torch.testing.assert_close(got_x.grad.double(), ref_x.grad, rtol=1e-4, atol=1e-4)


@needs_nnpack
def test_nnpack_conv_relu_works_as_a_process_first_call():
    """NNPACK's convolutions fail until it is initialised; nnpack_conv_relu does that itself (this process's NNPACK
    is initialised already, so a fresh one checks it)."""
    code = ("import torch\nfrom styletransfer.winograd import nnpack_conv_relu\n"
            "conv = torch.nn.Conv2d(4, 4, 3, padding=1).requires_grad_(False)\n"
            "print(tuple(nnpack_conv_relu(torch.rand(1, 4, 8, 8), conv).shape))\n")
    assert run_python(code).strip() == "(1, 4, 8, 8)"


def test_nnpack_conv_relu_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="frozen stride-1 3x3"):
        winograd.nnpack_conv_relu(torch.rand(1, 4, 8, 8), torch.nn.Conv2d(4, 4, 3, padding=1))  # trainable
    with pytest.raises(ValueError, match="frozen stride-1 3x3"):
        winograd.nnpack_conv_relu(torch.rand(1, 4, 8, 8), torch.nn.Conv2d(4, 4, 5, padding=2).requires_grad_(False))
    with pytest.raises(ValueError, match="frozen stride-1 3x3"):
        winograd.nnpack_conv_relu(torch.rand(1, 4, 8, 8),
                                  torch.nn.Conv2d(4, 4, 3, stride=2, padding=1).requires_grad_(False))


@pytest.mark.parametrize("flags,setting,expected", [
    ({"avx2"}, "auto", True), ({"avx2", "avx512f"}, "auto", False), (set(), "auto", False),
    ({"avx2"}, "0", False), ({"avx2", "avx512f"}, "1", True),
])
def test_winograd_cpu_is_an_avx2_cpu_without_avx512_unless_the_setting_says(monkeypatch, flags, setting, expected):
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setenv("STYLETRANSFER_NNPACK", setting)
    assert cpu.winograd_cpu() is expected


def test_nnpack_runs_float32_cpu_passes_from_256x192_px(monkeypatch):
    monkeypatch.setattr(winograd, "winograd_cpu", lambda: True)
    monkeypatch.setattr(winograd, "_nnpack_ready", lambda: True)
    monkeypatch.delenv("STYLETRANSFER_NNPACK", raising=False)
    assert winograd.nnpack_pays(torch.empty(1, 3, 192, 256))
    assert winograd.nnpack_pays(torch.empty(1, 3, 96, 512))
    assert not winograd.nnpack_pays(torch.empty(1, 3, 191, 256))
    assert not winograd.nnpack_pays(torch.empty(1, 3, 512, 512, dtype=torch.bfloat16))
    monkeypatch.setenv("STYLETRANSFER_NNPACK", "1")
    assert winograd.nnpack_pays(torch.empty(1, 3, 16, 16))  # forced: every size
    monkeypatch.setattr(winograd, "winograd_cpu", lambda: False)
    assert not winograd.nnpack_pays(torch.empty(1, 3, 512, 512))


@needs_nnpack
def test_vgg_features_and_gradient_are_the_same_through_nnpack(monkeypatch, tiny_vgg):
    calls = []
    monkeypatch.setattr(vgg_module, "nnpack_conv_relu", lambda *a: calls.append(1) or winograd.nnpack_conv_relu(*a))
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_2", "relu5_1"]
    x = torch.rand(2, 3, 40, 48)
    out = {}
    for setting in ("0", "1"):
        monkeypatch.setenv("STYLETRANSFER_NNPACK", setting)
        image = x.clone().requires_grad_(True)
        features = tiny_vgg(image, layers)
        sum(f.square().mean() for f in features.values()).backward()
        out[setting] = features, image.grad
    assert len(calls) == 10  # every VGG-16 convolution up to relu5_1 but the RGB one, through NNPACK
    for name in layers:
        torch.testing.assert_close(out["1"][0][name], out["0"][0][name], rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(out["1"][1], out["0"][1], rtol=1e-3, atol=1e-6)


@needs_nnpack
def test_gatys_through_nnpack_is_reproducible_and_close_to_onednn(monkeypatch, tiny_vgg):
    content, style = gradient_image(48, 40), gradient_image(40, 40).rotate(90)
    images = {}
    for setting in ("1", "1", "0"):
        monkeypatch.setenv("STYLETRANSFER_NNPACK", setting)
        result = gatys.stylize(content, style, encoder=tiny_vgg, size=48, num_steps=8, coarse_to_fine=False)
        images.setdefault(setting, []).append(torch.from_numpy(np.asarray(result.image, dtype=np.float32)))
    assert torch.equal(images["1"][0], images["1"][1])
    assert (images["1"][0] - images["0"][0]).abs().mean() < 2.0  # 8-bit levels: float rounding only


def test_shorten_openmp_spin_leaves_a_users_setting(monkeypatch):
    monkeypatch.setattr(cpu, "winograd_cpu", lambda: True)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("GOMP_SPINCOUNT", "5")
    cpu.shorten_openmp_spin()
    assert cpu.os.environ["GOMP_SPINCOUNT"] == "5"
    monkeypatch.delenv("GOMP_SPINCOUNT")
    cpu.shorten_openmp_spin()
    assert cpu.os.environ["GOMP_SPINCOUNT"] == cpu.OPENMP_SPIN
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setattr(cpu, "winograd_cpu", lambda: False)
    cpu.shorten_openmp_spin()
    assert "GOMP_SPINCOUNT" not in cpu.os.environ


@pytest.mark.parametrize("module", ["styletransfer", "styletransfer.__main__", "zoo", "app", "training.learn_bank",
                                    "training.train_adain"])
def test_each_entry_point_sets_the_spin_before_torch_loads(module):
    """libgomp reads GOMP_SPINCOUNT once, when torch loads it: each entry point imports styletransfer first."""
    code = (
        "import os, sys\n"
        "os.environ.pop('GOMP_SPINCOUNT', None); os.environ.pop('OMP_WAIT_POLICY', None)\n"
        "os.environ['STYLETRANSFER_NNPACK'] = '1'\n"
        "seen = []\n"
        "class Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' and not seen:\n"
        "            seen.append(os.environ.get('GOMP_SPINCOUNT'))\n"
        "sys.meta_path.insert(0, Spy())\n"
        f"__import__({module!r})\n"
        "print(seen[0])\n"
    )
    assert run_python(code).split()[-1] == cpu.OPENMP_SPIN
