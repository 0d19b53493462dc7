import pytest
import torch

from styletransfer import ops
from styletransfer.ops import calc_mean_std, gram_matrix, total_variation


def test_gram_matrix_matches_hand_computation():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2).repeat(1, 2, 1, 1)
    f[:, 1] *= -1
    g = gram_matrix(f, normalize=False)
    expected = torch.tensor([[30.0, -30.0], [-30.0, 30.0]])
    assert torch.equal(g[0], expected)
    assert torch.allclose(gram_matrix(f)[0], expected / 4)


def test_gram_matrix_gradients_match_autograd_of_the_plain_product():
    """The hand-written backward (one product) against finite differences and bmm's own autograd."""
    torch.manual_seed(0)
    f = torch.randn(2, 3, 20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ops._SymmetricGram.apply, (f,))
    assert torch.autograd.gradgradcheck(ops._SymmetricGram.apply, (f,))
    x, target = torch.randn(2, 3, 4, 5, requires_grad=True), torch.randn(2, 3, 3)
    plain = torch.bmm(x.reshape(2, 3, 20), x.reshape(2, 3, 20).transpose(1, 2)) / 20
    expected = torch.autograd.grad((plain - target).pow(2).sum(), x)[0]
    assert torch.allclose(torch.autograd.grad((gram_matrix(x) - target).pow(2).sum(), x)[0], expected, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # stays float32 under autocast
        assert gram_matrix(x).dtype == torch.float32


def test_gram_matrix_of_channels_last_maps_needs_no_copy_and_keeps_their_layout():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 7)
    last = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    plain = x.detach().clone().requires_grad_(True)
    target = torch.randn(2, 5, 5)
    for f in (plain, last):
        (gram_matrix(f) - target).pow(2).sum().backward()
    torch.testing.assert_close(gram_matrix(last), gram_matrix(plain))
    torch.testing.assert_close(last.grad, plain.grad)
    assert last.grad.is_contiguous(memory_format=torch.channels_last) and plain.grad.is_contiguous()


def test_gram_matrix_of_bf16_maps_multiplies_in_bf16_and_returns_float32():
    torch.manual_seed(0)
    x = torch.rand(1, 16, 32, 32).bfloat16().contiguous(memory_format=torch.channels_last)
    exact = gram_matrix(x.float())
    got = gram_matrix(x)
    assert got.dtype == torch.float32
    assert 0 < float((got - exact).norm() / exact.norm()) < 4e-3  # bf16-rounded, not float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool_2x2_is_max_pool2d(dtype, channels_last):
    for shape in ((1, 8, 32, 48), (2, 3, 33, 17), (1, 4, 5, 2)):  # odd sides: the last row or column is dropped
        x = torch.randn(*shape).to(dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        got = ops.max_pool_2x2(x)
        assert torch.equal(got, torch.nn.functional.max_pool2d(x, 2, 2))
        assert got.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_calc_mean_std_per_channel():
    torch.manual_seed(0)
    f = torch.randn(2, 3, 5, 7) * 3 + 1
    mean, std = calc_mean_std(f, eps=0.0)
    assert mean.shape == std.shape == (2, 3, 1, 1)
    assert torch.allclose(mean.flatten(), f.mean(dim=(2, 3)).flatten())
    assert torch.allclose(std.flatten(), f.std(dim=(2, 3), unbiased=False).flatten())


def test_total_variation_of_constant_is_zero_and_of_step_is_positive():
    assert total_variation(torch.full((1, 3, 8, 8), 0.3)).item() == 0.0
    step = torch.zeros(1, 1, 4, 4)
    step[..., 2:] = 1.0
    assert total_variation(step).item() == pytest.approx(1.0 / 3)


def test_seeded_generator_repeats_and_refuses_seeds_torch_cannot_take():
    import numpy as np

    draw = lambda seed: torch.rand(4, generator=ops.seeded_generator(seed))  # noqa: E731
    assert torch.equal(draw(7), draw(np.int64(7))) and not torch.equal(draw(7), draw(8))
    assert torch.equal(draw(ops.MAX_SEED), draw(ops.MAX_SEED))
    for bad in (-1, ops.MAX_SEED + 1, 2.0, True, "3", None):
        with pytest.raises(ValueError, match="seed must be a whole number from 0 to 2\\*\\*64 - 1"):
            ops.seeded_generator(bad)
