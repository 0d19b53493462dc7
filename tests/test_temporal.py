"""Temporal smoothing of stylised frames: steadier where the scene stands still, no ghost where it moves."""

import numpy as np
import pytest
from PIL import Image

from styletransfer.temporal import TemporalSmoother
from tests.conftest import gradient_image

RNG = np.random.default_rng(0)
SCENE = np.asarray(gradient_image(64, 48), np.float32)


def noisy(scene: np.ndarray, sigma: float = 3.0) -> Image.Image:
    return Image.fromarray(np.clip(scene + RNG.normal(0, sigma, scene.shape), 0, 255).astype(np.uint8))


def flickering_result(frame: Image.Image) -> Image.Image:
    """A stand-in stylisation that amplifies the input's noise fivefold, as the AdaIN decoder does."""
    x = np.asarray(frame, np.float32)
    return Image.fromarray(np.clip(SCENE + 5 * (x - SCENE), 0, 255).astype(np.uint8))


def frame_to_frame(results: list[Image.Image]) -> float:
    arrays = [np.asarray(r, np.float32) for r in results]
    return float(np.mean([np.abs(a - b).mean() for a, b in zip(arrays, arrays[1:])]))


def test_a_still_noisy_scene_flickers_less():
    frames = [noisy(SCENE) for _ in range(12)]
    plain = [flickering_result(f) for f in frames]
    smoother = TemporalSmoother(strength=0.6)
    steady = [smoother(f, r) for f, r in zip(frames, plain)]
    assert frame_to_frame(steady[2:]) < 0.6 * frame_to_frame(plain[2:])
    assert steady[0].tobytes() == plain[0].tobytes()  # the first frame has nothing to blend with
    assert TemporalSmoother(strength=0.0)(frames[0], plain[0]).tobytes() == plain[0].tobytes()


def test_what_moves_shows_the_new_result_alone():
    smoother = TemporalSmoother(strength=0.9)
    before = SCENE.copy()
    after = SCENE.copy()
    after[16:32, 16:32] = 255  # a white square comes in
    smoother(Image.fromarray(before.astype(np.uint8)), Image.fromarray(np.zeros_like(before, np.uint8)))
    result = np.full_like(before, 200, dtype=np.uint8)
    out = np.asarray(smoother(Image.fromarray(after.astype(np.uint8)), Image.fromarray(result)), np.float32)
    assert np.abs(out[20:28, 20:28] - 200).max() <= 1  # inside the moving square: the new result
    assert np.abs(out[40:, 50:] - 0.9 * 0 - 0.1 * 200).max() <= 1  # far from it, still: 90% of the last output


def test_a_texture_that_shifts_counts_as_motion():
    """Stripes of period 5 look the same in every 5x5 mean wherever they move: the change, averaged, sees them."""
    stripes = np.zeros((48, 64, 3), np.uint8)
    stripes[:, np.arange(64) % 5 < 2] = 255
    shifted = np.roll(stripes, 2, axis=1)
    smoother = TemporalSmoother(strength=0.9)
    smoother(Image.fromarray(stripes), Image.fromarray(np.zeros_like(stripes)))
    out = np.asarray(smoother(Image.fromarray(shifted), Image.fromarray(np.full_like(stripes, 200))), np.float32)
    assert np.abs(out[4:-4, 4:-4] - 200).max() <= 1


def test_another_context_or_size_starts_again():
    frame, other = noisy(SCENE), noisy(SCENE)
    first, second = flickering_result(frame), flickering_result(other)
    smoother = TemporalSmoother(strength=0.8)
    smoother(frame, first, context=("StyleBank", "waves"))
    assert smoother(other, second, context=("StyleBank", "dots")).tobytes() == second.tobytes()
    assert smoother(frame, first.resize((32, 24)), context=("StyleBank", "dots")).size == (32, 24)
    smoother.reset()
    assert smoother(other, second, context=("StyleBank", "dots")).tobytes() == second.tobytes()
    assert smoother(frame, first, context=("StyleBank", "dots")).tobytes() != first.tobytes()  # same: blended


@pytest.mark.parametrize("kwargs", [{"strength": 1.0}, {"strength": -0.1}, {"motion": 0.0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        TemporalSmoother(**kwargs)
