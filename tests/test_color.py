import pytest
import torch

from styletransfer import color


def _image(seed: int, h: int = 24, w: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h, w, generator=g)
    mix = torch.rand(3, 3, generator=g)
    return (torch.einsum("ij,bjhw->bihw", mix, base) / mix.sum(1).view(1, 3, 1, 1)).clamp(0, 1)


def _stats(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = t[0].double().reshape(3, -1)
    mean = flat.mean(1, keepdim=True)
    return mean, (flat - mean) @ (flat - mean).T / flat.shape[1]


@pytest.mark.parametrize("space", color.COLOR_SPACES)
def test_luma_chroma_round_trip(space):
    x = _image(0)
    back = color.luma_chroma_to_rgb(color.rgb_to_luma_chroma(x, space), space)
    torch.testing.assert_close(back, x, atol=1e-5, rtol=0)
    grey = torch.full((1, 3, 4, 4), 0.4)
    chroma = color.rgb_to_luma_chroma(grey, space)[:, 1:]
    assert chroma.abs().max() < 1e-6  # grey has no chroma in either space


@pytest.mark.parametrize("method", color.MATCH_METHODS)
def test_match_color_gives_target_mean_and_covariance(method):
    source, target = _image(1), _image(2, 40, 20)
    out = color.match_color(source, target, method, clamp=False)
    mu_o, cov_o = _stats(out)
    mu_t, cov_t = _stats(target)
    torch.testing.assert_close(mu_o, mu_t, atol=1e-5, rtol=0)
    torch.testing.assert_close(cov_o, cov_t, atol=2e-5, rtol=0)
    assert out.shape == source.shape


def test_cholesky_and_eigen_are_different_solutions():
    source, target = _image(1), _image(2)
    a = color.match_color(source, target, "cholesky", clamp=False)
    b = color.match_color(source, target, "eigen", clamp=False)
    assert (a - b).abs().max() > 1e-3


def test_match_color_rejects_bad_arguments():
    with pytest.raises(ValueError, match="cholesky"):
        color.match_color(_image(0), _image(1), "pca")
    with pytest.raises(ValueError, match=r"source must be \[1, 3, H, W\]"):
        color.match_color(_image(0)[:, :2], _image(1))


def test_transfer_luminance_keeps_content_chroma():
    content, stylized = _image(3), _image(4)
    out = color.transfer_luminance(stylized, content, "ycbcr")
    ycc_out = color.rgb_to_luma_chroma(out, "ycbcr")
    ycc_content = color.rgb_to_luma_chroma(content, "ycbcr")
    ycc_styl = color.rgb_to_luma_chroma(stylized, "ycbcr")
    inside = ((out > 0.001) & (out < 0.999)).all(dim=1, keepdim=True).expand(-1, 2, -1, -1)
    assert (ycc_out[:, 1:] - ycc_content[:, 1:])[inside].abs().max() < 1e-4
    assert (ycc_out[:, :1] - ycc_styl[:, :1]).abs().mean() < 0.02


def test_match_luminance_matches_content_luminance_stats():
    style, content = _image(5), _image(6)
    out = color.match_luminance(style, content)
    assert out.shape == style.shape and torch.equal(out[:, 0], out[:, 1])
    yc = color.luminance(content)
    assert abs(out[:, :1].mean() - yc.mean()) < 0.02 and abs(out[:, :1].std() - yc.std()) < 0.02
