import pytest
import torch
from safetensors.torch import save_file

from styletransfer import reparam
from styletransfer import vgg as vgg_module
from styletransfer.reparam import conv_relu
from styletransfer.serialization import ModelFileError
from styletransfer.vgg import LAYER_NAMES, VGGConfig, VGGEncoder
from styletransfer.vgg_normalize import RELU_LAYERS, apply_filter_scales, mean_filter_activations
from tests.conftest import TINY_WIDTHS


def test_layer_names_follow_torchvision_indices(tiny_vgg):
    assert LAYER_NAMES.index("relu1_1") == 1
    assert LAYER_NAMES.index("relu4_2") == 20
    assert LAYER_NAMES[-1] == "relu5_3" and len(tiny_vgg.features) == 30
    assert [n for n in LAYER_NAMES if n.startswith("relu")] == list(RELU_LAYERS)


def test_returns_requested_layers_only_and_stops_early(tiny_vgg):
    calls = []
    tiny_vgg.features[LAYER_NAMES.index("conv4_3")].register_forward_hook(lambda *a: calls.append(1))
    out = tiny_vgg(torch.rand(2, 3, 32, 32), ["relu4_1", "relu1_1"])
    assert list(out) == ["relu4_1", "relu1_1"]
    assert out["relu1_1"].shape == (2, 4, 32, 32) and out["relu4_1"].shape == (2, 8, 4, 4)
    assert all(v.dtype == torch.float32 for v in out.values())
    assert calls == []


def test_frozen(tiny_vgg):
    assert not any(p.requires_grad for p in tiny_vgg.parameters())
    assert not tiny_vgg.training


def test_gradients_flow_to_the_input(tiny_vgg):
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    tiny_vgg(x, ["relu3_1"])["relu3_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_unknown_layer_lists_valid_names(tiny_vgg):
    with pytest.raises(ValueError, match="unknown VGG layer.*relu9_9.*relu1_1"):
        tiny_vgg(torch.rand(1, 3, 32, 32), ["relu9_9"])
    with pytest.raises(ValueError, match="precision"):
        VGGEncoder(precision="fp8")


def test_pooling_per_call_matches_an_encoder_built_with_it(tiny_vgg):
    """``pooling="avg"`` for one call gives what an average-pooling encoder with the same weights gives."""
    avg = VGGEncoder(VGGConfig(widths=TINY_WIDTHS, pooling="avg"), precision="fp32")
    avg.load_state_dict(tiny_vgg.state_dict())
    x, layers = torch.rand(1, 3, 32, 32), ["relu1_1", "relu3_1", "relu5_1"]
    per_call, built, plain = tiny_vgg(x, layers, pooling="avg"), avg(x, layers), tiny_vgg(x, layers)
    for name in layers:
        torch.testing.assert_close(per_call[name], built[name])
    torch.testing.assert_close(per_call["relu1_1"], plain["relu1_1"])  # before the first pooling
    assert not torch.allclose(per_call["relu3_1"], plain["relu3_1"])
    torch.testing.assert_close(avg(x, layers, pooling="max")["relu5_1"], plain["relu5_1"])
    with torch.no_grad():  # passes without gradients max-pool through ops.max_pool_2x2: the same maps
        for name in layers:
            assert torch.equal(tiny_vgg(x, layers)[name], plain[name])
            assert torch.equal(avg(x, layers, pooling="max")[name], plain[name])
            assert torch.equal(tiny_vgg(x, layers, pooling="avg")[name], per_call[name])
    with pytest.raises(ValueError, match="pooling must be one of"):
        tiny_vgg(x, layers, pooling="min")


def test_fp32_switch_overrides_bf16(monkeypatch, tiny_vgg):
    tiny_vgg.precision = "bf16"
    assert tiny_vgg.uses_bf16("cpu")
    monkeypatch.setenv("STYLETRANSFER_FORCE_FP32", "1")
    assert not tiny_vgg.uses_bf16("cpu")
    tiny_vgg.precision = "auto"
    assert not tiny_vgg.uses_bf16("cpu")


def test_bf16_path_runs_and_is_close(tiny_vgg):
    x = torch.rand(1, 3, 64, 64)
    ref = tiny_vgg(x, ["relu3_1"])["relu3_1"]
    tiny_vgg.precision = "bf16"
    got = tiny_vgg(x, ["relu3_1"])["relu3_1"]
    assert got.dtype == torch.float32
    assert ((got - ref).norm() / ref.norm()).item() < 0.05
    tiny_vgg.precision = "fp32"
    ref_avg = tiny_vgg(x, ["relu3_1"], pooling="avg")["relu3_1"]
    tiny_vgg.precision = "bf16"  # the bf16 inference copy takes the per-call pooling too
    got_avg = tiny_vgg(x, ["relu3_1"], pooling="avg")["relu3_1"]
    assert ((got_avg - ref_avg).norm() / ref_avg.norm()).item() < 0.05
    assert ((got_avg - got).norm() / got.norm()).item() > 0.05


@pytest.mark.parametrize("grad", [False, True])
def test_features_as_computed_are_bf16_channels_last_and_a_conv_map_is_its_own(tiny_vgg, grad):
    """dtype=None keeps a bf16 pass's maps as they are (no copy), except a convolution's map, which
    the bf16 inference copy's in-place ReLU would otherwise overwrite."""
    x = torch.rand(1, 3, 32, 32, requires_grad=grad)
    layers = ["conv1_1", "relu1_1", "relu2_1"]
    tiny_vgg.precision = "bf16"
    kept, floats = tiny_vgg(x, layers, dtype=None), tiny_vgg(x, layers)
    for name in layers:
        assert kept[name].dtype == torch.bfloat16 and kept[name].is_contiguous(memory_format=torch.channels_last)
        assert floats[name].dtype == torch.float32 and floats[name].is_contiguous()
        torch.testing.assert_close(kept[name].float(), floats[name])
    assert float(kept["conv1_1"].detach().min()) < 0  # before its ReLU
    if grad:
        kept["relu2_1"].float().sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
    tiny_vgg.precision = "fp32"
    assert tiny_vgg(x, layers, dtype=None)["relu1_1"].dtype == torch.float32


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fused_convolution_and_relu_give_the_unfused_features_and_input_gradients(tiny_vgg, monkeypatch, precision):
    """On the CPU each frozen convolution and its ReLU run as one call (:func:`reparam.conv_relu`) unless
    the map between them is asked for; the features and the gradient reaching the image are those of
    the separate modules (to rounding: oneDNN may pick other kernels for the fused call), and a
    requested convolution map is still the one before its ReLU."""
    monkeypatch.setenv("STYLETRANSFER_NNPACK", "0")  # oneDNN's fused call (NNPACK's: test_winograd.py)
    tiny_vgg.precision = precision
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_2"]
    x = torch.rand(1, 3, 40, 48)
    calls = []
    monkeypatch.setattr(vgg_module, "conv_relu", lambda *a: calls.append(1) or conv_relu(*a))

    def run(asked: list[str]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        image = x.clone().requires_grad_(True)
        feats = tiny_vgg(image, asked, dtype=None)
        sum((feats[name].float() ** 2).mean() for name in layers).backward()
        return feats, image.grad

    fused, fused_grad = run(layers)
    assert len(calls) == 9  # conv1_1 ... conv4_2
    every_conv = [name for name in LAYER_NAMES[: LAYER_NAMES.index("relu4_2")] if name.startswith("conv")]
    calls.clear()
    plain, plain_grad = run(layers + every_conv)  # every map between asked for: nothing fused
    assert not calls
    tol = {"rtol": 1e-4, "atol": 1e-5} if precision == "fp32" else {"rtol": 2e-2, "atol": 1e-3}  # oneDNN's kernels
    for name in layers:
        torch.testing.assert_close(fused[name].float(), plain[name].float(), **tol)
    torch.testing.assert_close(fused_grad, plain_grad, **tol)
    assert fused_grad.abs().sum() > 0 and float(plain["conv1_1"].detach().min()) < 0


@pytest.mark.parametrize("onednn", [True, False])
def test_conv_relu_is_relu_of_the_convolution_with_its_input_gradient(monkeypatch, onednn):
    """With oneDNN's fused call, or where the torch build lacks it (a convolution, then a ReLU)."""
    monkeypatch.setattr(reparam, "_ONEDNN_FUSED_CONV", onednn)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    with pytest.raises(ValueError, match="frozen stride-1 convolution"):
        conv_relu(torch.rand(1, 3, 8, 8), conv)  # its weights take gradients
    conv.requires_grad_(False)
    x, weights = torch.rand(1, 3, 8, 8), torch.randn(1, 4, 8, 8)
    got_x, want_x = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    got, want = conv_relu(got_x, conv), torch.relu(conv(want_x))
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_x.grad, want_x.grad)
    assert float(want.detach().min()) == 0 and got_x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="frozen stride-1 convolution"):
        conv_relu(torch.rand(1, 3, 8, 8), torch.nn.Conv2d(3, 4, 3, stride=2, padding=1).requires_grad_(False))


def test_input_gradients_of_the_bf16_pass_match_float32_and_a_trainable_vgg_trains(tiny_vgg):
    x = torch.rand(1, 3, 48, 48)
    grads = {}
    for precision in ("fp32", "bf16"):
        tiny_vgg.precision = precision
        image = x.clone().requires_grad_(True)
        tiny_vgg(image, ["relu3_1"])["relu3_1"].pow(2).sum().backward()
        grads[precision] = image.grad
    assert torch.nn.functional.cosine_similarity(grads["bf16"].flatten(), grads["fp32"].flatten(), dim=0) > 0.99
    tiny_vgg.requires_grad_(True)  # not the frozen network: its own weights must get the gradients
    tiny_vgg(x, ["relu1_1"])["relu1_1"].sum().backward()
    assert tiny_vgg.features[0].weight.grad is not None


def test_loads_torchvision_layout_and_ignores_classifier(tmp_path, tiny_vgg):
    state = {k: v.clone() for k, v in tiny_vgg.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    save_file(state, str(tmp_path / "vgg.safetensors"))
    loaded = VGGEncoder.from_safetensors(tmp_path / "vgg.safetensors", VGGConfig(widths=TINY_WIDTHS), precision="fp32")
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded(x, ["relu5_3"])["relu5_3"], tiny_vgg(x, ["relu5_3"])["relu5_3"])
    del state["features.28.bias"]
    save_file(state, str(tmp_path / "broken.safetensors"))
    with pytest.raises(ValueError, match="missing.*features.28.bias"):
        VGGEncoder.from_safetensors(tmp_path / "broken.safetensors", VGGConfig(widths=TINY_WIDTHS))
    with pytest.raises(ValueError, match="shape"):
        VGGEncoder.from_safetensors(tmp_path / "vgg.safetensors", VGGConfig(widths=(4, 8, 8, 8, 16)))


def test_save_pretrained_round_trip(tmp_path, tiny_vgg):
    path = tiny_vgg.save_pretrained(tmp_path / "enc.safetensors", metadata={"note": "tiny"})
    loaded = VGGEncoder.from_pretrained(path, precision="fp32")
    assert loaded.config == tiny_vgg.config
    assert VGGEncoder.extra_metadata(path) == {"note": "tiny"}
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded(x, ["relu4_2"])["relu4_2"], tiny_vgg(x, ["relu4_2"])["relu4_2"])
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError, match="not a readable safetensors"):
        VGGEncoder.from_pretrained(tmp_path / "junk.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ModelFileError, match="not written by save_pretrained"):
        VGGEncoder.from_pretrained(tmp_path / "plain.safetensors")


def test_normalised_vgg_is_the_same_network_up_to_per_channel_scale(tiny_vgg):
    torch.manual_seed(1)
    images = [torch.rand(2, 3, 48, 48), torch.rand(1, 3, 64, 40)]
    x = torch.rand(1, 3, 48, 48)
    before = tiny_vgg(x, RELU_LAYERS)
    means = mean_filter_activations(tiny_vgg, images)
    apply_filter_scales(tiny_vgg, means)
    after = tiny_vgg(x, RELU_LAYERS)
    for name in RELU_LAYERS:
        scale = means[name].float().clamp_min(1e-12).view(1, -1, 1, 1)
        scale = torch.where(means[name].view(1, -1, 1, 1) > 0, scale, torch.ones_like(scale))
        torch.testing.assert_close(after[name] * scale, before[name], rtol=1e-4, atol=1e-5)
    # Over the calibration images, every live filter now has mean activation 1.
    renormalised = mean_filter_activations(tiny_vgg, images)
    for name in RELU_LAYERS:
        live = means[name] > 0
        ones = torch.ones(int(live.sum()), dtype=torch.float64)
        torch.testing.assert_close(renormalised[name][live], ones, rtol=1e-5, atol=1e-5)


def test_apply_filter_scales_rejects_bad_input(tiny_vgg):
    with pytest.raises(ValueError, match="relu1_1: expected 4 scales"):
        apply_filter_scales(tiny_vgg, {"relu1_1": torch.ones(3)})
    with pytest.raises(ValueError, match="unknown layers"):
        apply_filter_scales(tiny_vgg, {"relu7_1": torch.ones(3)})
    with pytest.raises(ValueError, match="at least one image"):
        mean_filter_activations(tiny_vgg, [])


@pytest.mark.parametrize(("precision", "tolerance"), [("bf16", 0.03), ("fp32", 1e-5)])
def test_inference_copy_matches_the_layers_and_follows_weight_changes(tiny_vgg, monkeypatch, precision, tolerance):
    """The frozen network runs a standing copy: bf16, or float32 on the CPU (channels-last, so faster where
    bf16 is not, unless NNPACK runs its convolutions); it gives what the modules themselves give, and is
    rebuilt when a weight changes."""
    import copy

    monkeypatch.setenv("STYLETRANSFER_NNPACK", "0")

    encoder = copy.deepcopy(tiny_vgg)
    encoder.precision = precision
    x = torch.rand(1, 3, 32, 32)

    def by_the_modules() -> torch.Tensor:
        h = (x - encoder.mean) / encoder.std
        for name, module in zip(LAYER_NAMES, encoder.features):
            h = module(h)
            if name == "relu3_1":
                return h

    with torch.no_grad():
        fast = encoder(x, ["relu3_1"])["relu3_1"]
        ref = by_the_modules()
    assert fast.dtype == torch.float32 and getattr(encoder, f"_{precision}")._copy is not None
    assert ((fast - ref).norm() / ref.norm()) < tolerance
    with torch.no_grad():
        encoder.features[0].weight.mul_(2.0)  # in-place change: the copy must be rebuilt
        changed = encoder(x, ["relu3_1"])["relu3_1"]
        assert ((changed - by_the_modules()).norm() / ref.norm()) < tolerance
    assert not torch.allclose(changed, fast, rtol=0.05)


def test_receptive_fields_of_vgg16_layers():
    from styletransfer.vgg import receptive_field

    assert [receptive_field(n) for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")] == [
        (3, 1), (10, 2), (24, 4), (60, 8), (76, 8), (132, 16)]
    with pytest.raises(ValueError, match="unknown VGG layer 'relu6_1'"):
        receptive_field("relu6_1")
