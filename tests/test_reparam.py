"""The inference re-parameterisations agree with the layers they replace."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from styletransfer import reparam
from styletransfer.adain import AdaINDecoder, DecoderConfig
from styletransfer.reparam import (ColumnUnfoldConv, ReflectPadConv, SpaceToDepthConv, SubPixelConv, SubPixelGridConv,
                                   reparameterize)
from styletransfer.stylebank import AutoEncoderConfig, StyleBankAutoEncoder
from styletransfer.vgg import InferenceCopy


def _resize_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    return conv(F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (1, 1, 1, 1), mode="reflect"))


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", [(1, 5, 4, 4), (2, 3, 7, 10), (1, 4, 1, 3)])
def test_subpixel_conv_equals_upsample_pad_conv(relu: bool, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(shape[1], 6, 3)
    x = torch.randn(shape)
    want = _resize_conv(x, conv)
    want = want.relu() if relu else want
    with torch.no_grad():
        got = SubPixelConv(conv, relu)(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("k,factor,size", [(9, 2, (20, 20)), (9, 2, (19, 24)), (5, 3, (17, 13)), (7, 2, (8, 9))])
def test_space_to_depth_conv_equals_conv(k: int, factor: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 3, k)
    x = torch.randn(2, 4, *size)
    with torch.no_grad():
        got = SpaceToDepthConv(conv, factor)(x)
        want = conv(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm", ["none", "instance"])
def test_reparameterized_stylebank_decoder_matches(norm: str) -> None:
    torch.manual_seed(0)
    ae = StyleBankAutoEncoder(AutoEncoderConfig(channels=(5, 6, 8), norm=norm)).eval()
    fast = reparameterize(copy.deepcopy(ae))
    kinds = [type(m) for m in fast.modules()]
    assert SubPixelConv in kinds and nn.Upsample not in kinds
    assert ColumnUnfoldConv in kinds and ReflectPadConv in kinds  # the encoder's padded convolutions (CPU weights)
    if norm == "none":  # the last sub-pixel convolution, its ReLU, the padding and the RGB layer become one
        assert SubPixelGridConv in kinds and SpaceToDepthConv not in kinds
    else:  # instance norm sits between the convolutions and their ReLUs
        assert kinds.count(SpaceToDepthConv) == 1 and SubPixelGridConv not in kinds
    x = torch.rand(2, 3, 20, 28)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), ae(x), atol=1e-5, rtol=1e-4)


def test_reparameterized_adain_decoder_matches() -> None:
    torch.manual_seed(0)
    dec = AdaINDecoder(DecoderConfig(widths=(8, 8, 6, 4), depths=(2, 2, 2)), precision="fp32").eval()
    fast = reparameterize(copy.deepcopy(dec.layers))
    assert sum(isinstance(m, SubPixelConv) for m in fast.modules()) == 3
    assert not any(isinstance(m, SpaceToDepthConv) for m in fast.modules())  # a 3x3 RGB layer stays as it is
    x = torch.randn(1, 8, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), dec.layers(x), atol=1e-5, rtol=1e-4)


def test_only_exact_patterns_are_rewritten() -> None:
    layers = nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear"), nn.ReflectionPad2d(1), nn.Conv2d(3, 3, 3),  # not nearest
        nn.Upsample(scale_factor=2, mode="nearest"), nn.ZeroPad2d(1), nn.Conv2d(3, 3, 3),  # not reflection
        nn.ConvTranspose2d(3, 3, 3, stride=2), nn.Conv2d(3, 3, 9, stride=2),  # strided narrow conv
    )
    kinds = [type(m) for m in reparameterize(layers)]
    assert not {SubPixelConv, SubPixelGridConv, SpaceToDepthConv} & set(kinds)
    assert kinds.count(nn.Upsample) == 2 and nn.ZeroPad2d in kinds and nn.ConvTranspose2d in kinds
    transposed = StyleBankAutoEncoder(AutoEncoderConfig(channels=(4, 6, 8), upsample="transposed"))
    assert not any(isinstance(m, SubPixelConv) for m in reparameterize(transposed).modules())


def test_inference_copy_is_reparameterized_bf16_without_gradients() -> None:
    ae = StyleBankAutoEncoder(AutoEncoderConfig(channels=(4, 6, 8)))
    fast = InferenceCopy().get(ae)
    assert any(isinstance(m, SubPixelConv) for m in fast.modules())
    assert all(p.dtype == torch.bfloat16 and not p.requires_grad for p in fast.parameters())
    assert all(p.requires_grad for p in ae.parameters())  # the original is untouched
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        got = fast(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)).float()
        torch.testing.assert_close(got, ae(x), atol=0.05, rtol=0.05)


def test_float32_decoders_run_a_reparameterized_copy_on_the_cpu() -> None:
    torch.manual_seed(0)
    decoder = AdaINDecoder(DecoderConfig(widths=(8, 6, 5, 4)), precision="fp32")
    features = torch.rand(1, 8, 3, 5)
    with torch.no_grad():
        got = decoder(features)
    assert any(isinstance(m, SubPixelConv) for m in decoder._fp32.get(decoder.layers).modules())
    torch.testing.assert_close(got, decoder.layers(features), atol=1e-5, rtol=1e-5)
    assert decoder(features.requires_grad_()).grad_fn is not None  # with gradients (training) its own layers run
    ae = StyleBankAutoEncoder(AutoEncoderConfig(channels=(4, 6, 8)))
    fast = ae.for_inference(torch.device("cpu"), "fp32")
    assert fast is not ae and any(isinstance(m, (SubPixelConv, SpaceToDepthConv)) for m in fast.modules())
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in fast.parameters())
    x = torch.rand(1, 3, 16, 12)
    with torch.no_grad():
        torch.testing.assert_close(fast(x.contiguous(memory_format=torch.channels_last)), ae(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("factor,pad,size", [(4, 4, (21, 18)), (2, 4, (9, 5)), (4, 1, (9, 13)), (4, 0, (12, 12))])
def test_space_to_depth_conv_absorbs_reflection_padding(
    factor: int, pad: int, size: tuple[int, int], channels_last: bool
) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 3, 9)
    x = torch.randn(2, 5, *size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = conv(F.pad(x, (pad,) * 4, mode="reflect") if pad else x)
        got = SpaceToDepthConv(conv, factor, reflect_pad=pad)(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_space_to_depth_conv_rejects_a_map_smaller_than_its_padding() -> None:
    with pytest.raises(ValueError, match="too small for reflection padding 4"):
        SpaceToDepthConv(nn.Conv2d(2, 3, 9), reflect_pad=4)(torch.randn(1, 2, 4, 9))


def test_pad_before_narrow_conv_is_absorbed_and_relus_after_convs_run_in_place() -> None:
    layers = nn.Sequential(nn.ReLU(), nn.Conv2d(3, 4, 3), nn.ReLU(), nn.ReflectionPad2d(4), nn.Conv2d(4, 3, 9))
    ref = copy.deepcopy(layers)
    fast = reparameterize(layers)
    assert [type(m) for m in fast] == [nn.ReLU, nn.Conv2d, nn.ReLU, SpaceToDepthConv]
    assert not fast[0].inplace and fast[2].inplace  # the first ReLU would overwrite the caller's tensor
    x = torch.randn(1, 3, 14, 15)
    keep = x.clone()
    with torch.no_grad():
        torch.testing.assert_close(fast(x), ref(x), atol=1e-5, rtol=1e-5)
    assert torch.equal(x, keep)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("pad,size", [(4, (6, 7)), (4, (3, 5)), (1, (4, 4)), (2, (5, 3)), (3, (4, 6))])
def test_subpixel_grid_conv_equals_subpixel_pad_and_narrow_conv(pad: int, size: tuple[int, int],
                                                                channels_last: bool) -> None:
    torch.manual_seed(0)
    up, conv = nn.Conv2d(5, 4, 3), nn.Conv2d(4, 3, 2 * pad + 1)
    x = torch.randn(2, 5, *size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = conv(F.pad(_resize_conv(x, up).relu(), (pad,) * 4, mode="reflect"))
        got = SubPixelGridConv(SubPixelConv(up, True), conv, pad)(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="too small for reflection padding"):
        tiny = torch.randn(1, 5, 1, 1) if pad > 1 else torch.randn(1, 5, 0, 3)
        SubPixelGridConv(SubPixelConv(up, True), conv, pad)(tiny)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("k,stride,pad,size", [(3, 2, 1, (8, 10)), (3, 2, 1, (7, 10)), (3, 2, 1, (2, 2)),
                                               (9, 1, 4, (12, 13)), (3, 1, 1, (5, 6))])
def test_reflect_pad_conv_equals_pad_then_conv(k: int, stride: int, pad: int, size: tuple[int, int],
                                               relu: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 6, k, stride)
    x = torch.randn(2, 5, *size).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = conv(F.pad(x, (pad,) * 4, mode="reflect"))
        got = ReflectPadConv(pad, conv, relu)(x)
    torch.testing.assert_close(got, want.relu() if relu else want, atol=1e-5, rtol=1e-5)


def test_reflect_pad_conv_stride_2_in_bf16_is_right_in_its_left_column() -> None:
    """oneDNN's AMX kernels gave NaN for the one-column-wide left strip of a tall bf16 map."""
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, 2)
    x = torch.randn(1, 16, 100, 6).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = conv(F.pad(x, (1,) * 4, mode="reflect"))
        got = ReflectPadConv(1, copy.deepcopy(conv).bfloat16(), False)(x.bfloat16()).float()
    torch.testing.assert_close(got, want, atol=0.05, rtol=0.05)


def test_onednn_rewrites_are_for_cpu_weights_by_default() -> None:
    ae = StyleBankAutoEncoder(AutoEncoderConfig(channels=(5, 6, 8), norm="none"))
    for module, onednn in [(copy.deepcopy(ae).to("meta"), None), (copy.deepcopy(ae), False)]:
        kinds = [type(m) for m in reparameterize(module, onednn=onednn).modules()]
        assert ReflectPadConv not in kinds and ColumnUnfoldConv not in kinds and nn.ReflectionPad2d in kinds
        assert SubPixelGridConv in kinds  # the device-independent rewrites still apply


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("cin,k,pad,size,channels_last", [(3, 9, 4, (12, 13), True), (3, 9, 4, (5, 7), False),
                                                          (2, 5, 2, (6, 9), True), (1, 7, 0, (9, 8), False)])
def test_column_unfold_conv_equals_pad_then_conv(cin: int, k: int, pad: int, size: tuple[int, int],
                                                 channels_last: bool, relu: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, 6, k)
    x = torch.randn(2, cin, *size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want = conv(F.pad(x, (pad,) * 4, mode="reflect") if pad else x)
        got = ColumnUnfoldConv(pad, conv, relu)(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want.relu() if relu else want, atol=1e-5, rtol=1e-5)


def test_bf16_conv_relu_takes_the_plain_path_where_the_cpu_lacks_fused_bf16(monkeypatch):
    """oneDNN's fused bf16 convolution needs AVX512-BW/VL/DQ or AVX-NE-CONVERT (it raised on an AVX2-only CPU)."""
    monkeypatch.setattr(reparam, "cpu_flags", lambda: frozenset({"avx2", "avx512bw", "avx512vl", "avx512dq"}))
    assert reparam._fused_bf16()
    monkeypatch.setattr(reparam, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert not reparam._fused_bf16()
    torch.manual_seed(0)
    x, w, b = torch.rand(1, 4, 12, 12), torch.randn(6, 4, 3, 3), torch.randn(6)
    got = reparam._conv_relu(x.bfloat16(), w.bfloat16(), b.bfloat16(), padding=1).float()
    torch.testing.assert_close(got, F.relu(F.conv2d(x, w, b, padding=1)), atol=0.1, rtol=0.05)
