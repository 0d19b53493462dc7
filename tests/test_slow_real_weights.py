"""Slow tier: the real VGG-16 (resolved through the zoo chain) on real photos from ../shared/data."""

import pytest
import torch

import zoo
from styletransfer.imageio import load_image, pil_to_tensor
from styletransfer.vgg_normalize import RELU_LAYERS, mean_filter_activations

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def photo(data_dir) -> torch.Tensor:
    return pil_to_tensor(load_image(data_dir / "content" / "tubingen.jpg").resize((384, 256)))


def test_real_vgg_is_torchvision_imagenet(real_vgg_fp32):
    torch.testing.assert_close(
        real_vgg_fp32.features[0].weight[0, 0, 0], torch.tensor([-0.5537, 0.1427, 0.5290]), atol=1e-4, rtol=0
    )


def test_bf16_features_within_two_percent_of_fp32(real_vgg_fp32, photo):
    bf16 = zoo.load_vgg16("bf16")
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]
    with torch.inference_mode():
        ref, got = real_vgg_fp32(photo, layers), bf16(photo, layers)
    for name in layers:
        err = ((got[name] - ref[name]).norm() / ref[name].norm()).item()
        assert err < 0.02, f"{name}: relative error {err:.4f}"


def test_shipped_normalised_vgg_is_vgg16_up_to_scale(real_vgg_fp32, photo):
    normalised = zoo.load_normalized_vgg("fp32")
    from safetensors.torch import load_file

    scales = load_file(str(zoo.resolve_weights(zoo.get_spec("vgg16.normalized")).path))
    with torch.inference_mode():
        ref, got = real_vgg_fp32(photo, RELU_LAYERS), normalised(photo, RELU_LAYERS)
    for name in RELU_LAYERS:
        torch.testing.assert_close(got[name] * scales[name].view(1, -1, 1, 1), ref[name], rtol=1e-3, atol=1e-3)


def test_normalised_filters_average_one_on_training_photos(data_dir):
    files = sorted((data_dir / "train" / "content").glob("*.jpg"))[:16]
    if not files:
        pytest.skip(f"no training photos in {data_dir / 'train' / 'content'}")
    batch = torch.cat([pil_to_tensor(load_image(f).resize((256, 256))) for f in files])
    means = mean_filter_activations(zoo.load_normalized_vgg("fp32"), [batch])
    for name in RELU_LAYERS:
        # Calibrated on 1,000 photos; on a 16-photo subset each layer's filters still average near 1.
        assert 0.6 < means[name].mean().item() < 1.6, f"{name}: mean filter activation {means[name].mean():.3f}"
