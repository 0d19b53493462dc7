import functools
import re
import threading
import types
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer import color, gatys, progress
from styletransfer.gatys import GatysConfig, default_schedule, fast_schedule, measure_losses, stylize, upscale_result
from styletransfer.imageio import ImageInputError, pil_to_tensor, read_settings, save_image
from styletransfer.ops import gram_matrix
from tests.conftest import gradient_image, image_size

FAST = dict(size=32, num_steps=3, style_layers=("relu1_1", "relu2_1", "relu3_1"), content_layers=("relu2_2",))


@pytest.fixture(autouse=True)
def fresh_step_paces(monkeypatch):
    """Each test starts with no step timings remembered from earlier ones (some run on a fake clock)."""
    monkeypatch.setattr(progress, "_PACES", weakref.WeakKeyDictionary())


@pytest.fixture
def content():
    return gradient_image(48, 32)


@pytest.fixture
def style():
    g = torch.Generator().manual_seed(3)
    return (torch.rand(40, 40, 3, generator=g) * 255).to(torch.uint8).numpy()


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_loss_falls_and_output_has_content_aspect(tiny_vgg, content, style, optimizer):
    result = stylize(content, style, encoder=tiny_vgg, **{**FAST, "num_steps": 12}, optimizer=optimizer, init="noise")
    assert result.image.mode == "RGB" and result.image.size == (32, 21)
    totals = [entry["total"] for entry in result.losses]
    assert len(totals) == 12 and all(np.isfinite(totals))
    assert totals[-1] < 0.7 * totals[0]
    assert result.settings["optimizer"] == optimizer and not result.stopped


def test_same_seed_same_image_other_seed_differs(tiny_vgg, content, style):
    run = lambda seed: np.asarray(stylize(content, style, encoder=tiny_vgg, **FAST, init="noise", seed=seed).image)  # noqa: E731
    assert np.array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_coarse_to_fine_returns_requested_size_and_runs_each_scale(tiny_vgg, content, style):
    result = stylize(content, style, encoder=tiny_vgg, **{**FAST, "size": 64}, scales=(32, 64), scale_steps=(3, 2))
    assert result.image.size == (64, 43)
    assert stylize(content, style, encoder=tiny_vgg, **{k: v for k, v in FAST.items() if k != "size"}, scales=(16, 40),
                   scale_steps=(1, 1)).settings["size"] == 40  # without a size, the last scale is the output's
    assert [e["scale"] for e in result.losses] == [0, 0, 0, 1, 1] and result.settings["steps_taken"] == (3, 2)
    assert default_schedule(512, 300) == ((256, 512), (50, 85))
    assert default_schedule(1024, 300) == ((256, 512, 1024), (50, 85, 85))
    assert default_schedule(300, 30) == ((300,), (30,))
    assert fast_schedule(512) == ((128, 256, 512), (50, 20, 12))
    assert fast_schedule(200) == ((100, 200), (50, 12)) and fast_schedule(100) == ((100,), (100,))
    auto = stylize(content, style, encoder=tiny_vgg, **{**FAST, "size": 40}, coarse_to_fine=True)
    assert auto.image.size == (40, 27) and auto.settings["scales"] == (40,)


def test_detail_upscale_keeps_the_coarse_result_and_adds_the_content_detail():
    g = torch.Generator().manual_seed(0)
    fine = torch.rand(1, 3, 32, 48, generator=g) * 0.6 + 0.2
    coarse = torch.nn.functional.interpolate(fine, size=(16, 24), mode="bicubic", antialias=True, align_corners=False)
    # A coarse result that is still the coarse content starts the next scale as the fine content itself.
    torch.testing.assert_close(upscale_result(coarse, fine, coarse), fine, atol=1e-5, rtol=0)
    blurred = upscale_result(coarse, fine, coarse, "bicubic")
    assert (blurred - fine).abs().mean() > 0.05
    # What the coarse scale changed (here a uniform brightening) is carried over on top of the detail.
    torch.testing.assert_close(upscale_result(coarse + 0.1, fine, coarse), (fine + 0.1).clamp(0, 1), atol=1e-5, rtol=0)


def test_coarse_to_fine_upscale_modes_differ_and_are_recorded(tiny_vgg, content, style):
    run = lambda mode: stylize(content, style, encoder=tiny_vgg, **{**FAST, "size": 64}, scales=(32, 64),  # noqa: E731
                               scale_steps=(1, 1), upscale=mode)
    detail, bicubic = run("detail"), run("bicubic")
    assert detail.settings["upscale"] == "detail" and bicubic.settings["upscale"] == "bicubic"
    # The first step at 64 px is evaluated at the start point; the one coarse step (torch's tiny first
    # L-BFGS step) left the coarse content nearly as it was, so the detail start is nearer the content.
    assert detail.losses[1]["content"] < bicubic.losses[1]["content"]


def test_luminance_mode_keeps_content_chroma(tiny_vgg, content, style):
    result = stylize(content, style, encoder=tiny_vgg, **FAST, color="luminance", color_space="ycbcr")
    out = pil_to_tensor(result.image)
    ref = pil_to_tensor(content.resize(result.image.size))
    chroma_out = color.rgb_to_luma_chroma(out, "ycbcr")[:, 1:]
    chroma_ref = color.rgb_to_luma_chroma(ref, "ycbcr")[:, 1:]
    assert (chroma_out - chroma_ref).abs().mean() < 0.01  # 8-bit rounding and clamping only


@pytest.mark.parametrize(("method", "direction"), [("cholesky", "style_to_content"), ("eigen", "content_to_style")])
def test_histogram_modes_run(tiny_vgg, content, style, method, direction):
    result = stylize(content, style, encoder=tiny_vgg, **FAST, color="histogram", color_method=method,
                     color_direction=direction)
    assert result.image.size == (32, 21)


def test_several_styles_with_weights(tiny_vgg, content, style):
    other = gradient_image(30, 30).rotate(90)
    result = stylize(content, [style, other], style_weights=[3, 1], encoder=tiny_vgg, **FAST)
    assert result.settings["style_weights"] == [0.75, 0.25]
    with pytest.raises(ValueError, match="style_weights must be >= 0"):
        stylize(content, [style, other], style_weights=[1, -1], encoder=tiny_vgg, **FAST)
    with pytest.raises(ValueError, match="2 entries for 1 style"):
        stylize(content, style, style_weights=[1, 1], encoder=tiny_vgg, **FAST)


def test_per_layer_style_weights_take_each_layer_from_its_own_style(tiny_vgg, content, style):
    """Scale control: fine texture (relu1_1) from one style, the coarser layers from another."""
    other = gradient_image(30, 30).rotate(90)
    split = [(1, 0, 0), (0, 2, 2)]
    mixed = measure_losses(content, content, [style, other], encoder=tiny_vgg, style_weights=split, **FAST)
    first = measure_losses(content, content, style, encoder=tiny_vgg, **FAST)
    second = measure_losses(content, content, other, encoder=tiny_vgg, **FAST)
    assert mixed["style/relu1_1"] == pytest.approx(first["style/relu1_1"], rel=1e-5)
    for name in ("style/relu2_1", "style/relu3_1"):
        assert mixed[name] == pytest.approx(second[name], rel=1e-5)
    half = measure_losses(content, content, [style, other], encoder=tiny_vgg, style_weights=[(1, 1, 1), 1], **FAST)
    blend = measure_losses(content, content, [style, other], encoder=tiny_vgg, style_weights=[1, 1], **FAST)
    assert half == pytest.approx(blend, rel=1e-6)  # a number stands for the same weight at every layer
    result = stylize(content, [style, other], encoder=tiny_vgg, style_weights=split, **FAST)
    assert result.settings["style_weights"] == [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]
    with pytest.raises(ValueError, match="entry 2 has 2 per-layer weights for the 3 style layers"):
        stylize(content, [style, other], encoder=tiny_vgg, style_weights=[1, (1, 1)], **FAST)
    with pytest.raises(ValueError, match="no style any weight at relu2_1"):
        stylize(content, [style, other], encoder=tiny_vgg, style_weights=[(1, 0, 1), (1, 0, 0)], **FAST)


def test_progress_previews_and_cancel_returns_best_so_far(tiny_vgg, content, style):
    stop, seen = threading.Event(), []

    def progress(info):
        seen.append(info)
        if info.step == 3:
            stop.set()

    result = stylize(content, style, encoder=tiny_vgg, **{**FAST, "num_steps": 10}, progress=progress,
                     preview_every=2, cancel=stop)
    assert result.stopped and len(result.losses) == 3 and result.image.size == (32, 21)
    assert [info.preview is not None for info in seen] == [False, True, False]
    assert seen[0].total == 10 and set(seen[0].losses) >= {"content", "style", "tv", "total"}


def test_cancel_at_a_coarse_scale_returns_the_best_image_at_the_output_size(tiny_vgg, content, style):
    stop = threading.Event()
    result = stylize(content, style, encoder=tiny_vgg, **{**FAST, "size": 64}, scales=(32, 64), scale_steps=(5, 5),
                     progress=lambda info: info.step == 2 and stop.set(), cancel=stop)
    assert result.stopped and result.settings["steps_taken"] == (2,) and not result.hit_time_limit
    assert result.image.size == (64, 43)
    assert stylize(content, style, encoder=tiny_vgg, **{k: v for k, v in FAST.items() if k != "size"}, scales=(16, 40),
                   scale_steps=(1, 1)).settings["size"] == 40  # without a size, the last scale is the output's


def test_time_limit_shares_the_time_between_scales_by_their_work(tiny_vgg, content, style, monkeypatch):
    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(gatys, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))

    reports = []

    def one_second_per_step(info):
        reports.append(info)
        clock.now += 1.0

    result = stylize(content, style, encoder=tiny_vgg, **{**FAST, "size": 64}, scales=(32, 64), scale_steps=(10, 10),
                     time_limit=10, progress=one_second_per_step)
    # Planned work 10 x 32x21 and 10 x 64x43 pixels. The run's first step may pay one-off costs, so with no pace
    # known here it comes off the limit before the shares: the 32 px scale may run until 1 + 9 x 0.196 = 2.77 s,
    # and stops after two steps (a third would end at 3 s); the 64 px one expects its first step to take 4.1 s
    # (one second times the pixel ratio), starts it at 2 s and then runs steps of 1 s until 10 s.
    assert result.settings["steps_taken"] == (2, 8) and not result.stopped and result.hit_time_limit
    assert result.steps_taken_text() == "2+8 of 10+10 steps"
    assert result.seconds == 10.0 and result.image.size == (64, 43)
    # From the 64 px size's second step on (its pace, 1 s, is known), each estimate ends the run at the limit.
    assert [r.seconds + r.seconds_left for r in reports[3:]] == [10.0] * 7 and reports[-1].seconds_left == 1.0
    clock.now = 0.0
    assert stylize(content, style, encoder=tiny_vgg, **{**FAST, "size": 64}, scales=(32, 64), scale_steps=(10, 10),
                   progress=one_second_per_step).settings["steps_taken"] == (10, 10)


def test_one_off_costs_of_a_first_step_starve_no_size_of_a_time_limit(tiny_vgg, content, style, monkeypatch):
    """A fresh process's first step costs many steps' time (kernels set up on first use): it comes off the limit
    before the sizes share it, and it does not stand for the next step's time."""
    clock = types.SimpleNamespace(now=0.0, passes=0)
    monkeypatch.setattr(gatys, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))

    def six_seconds_the_first_step_one_each_after(module, inputs, output):
        if torch.is_grad_enabled():  # a step's pass (not the targets' or a size's closing measure)
            clock.passes += 1
            clock.now += 6.0 if clock.passes == 1 else 1.0

    hook = tiny_vgg.register_forward_hook(six_seconds_the_first_step_one_each_after)
    run = functools.partial(stylize, content, style, encoder=tiny_vgg, **{**FAST, "size": 64}, scales=(32, 64),
                            scale_steps=(10, 10), time_limit=20)
    try:
        first = run()
        clock.now = clock.passes = 0
        later = run()
    finally:
        hook.remove()
    # With no pace known, the first step's 6 s come off the limit: the 32 px size runs until 6 + 14 x 0.196 =
    # 8.75 s (two more steps), the 64 px one from 8 s all its steps. Judged by the first step and sharing all
    # 20 s, the 32 px size stopped after it (its share ended at 3.9 s) and the 64 px one, expecting 6 x 4.1 s
    # a step, took none.
    assert first.settings["steps_taken"] == (3, 10) and first.seconds == 18.0
    # A later run knows the pace (1 s a step at both sizes, so the plan fits and the limit is shared by
    # seconds): the 5 s its first step took beyond it come off the limit, and 32 px runs until 5 + 7.5 s.
    assert later.settings["steps_taken"] == (7, 8) and later.seconds == 20.0


def test_recorded_controls_redo_a_time_limited_run_step_for_step(tiny_vgg, content, style, monkeypatch, tmp_path):
    """A record, saved and read back, gives the controls that redo its run: the steps each size took (here cut by
    the time limit), no time limit, the same weights per style layer; so the same image."""
    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(gatys, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))
    tick = lambda info: setattr(clock, "now", clock.now + 1.0)  # noqa: E731
    first = stylize(content, [style, content], encoder=tiny_vgg, **{**FAST, "size": 64}, scales=(32, 64),
                    scale_steps=(10, 10), time_limit=10, init="content+noise", seed=4, pooling="avg",
                    style_weights=[(1, 0, 0), (0, 1, 1)], progress=tick)
    assert first.settings["steps_taken"] == (2, 8) and first.settings["precision"] == "fp32"
    save_image(first.image, tmp_path / "first.png", method="gatys", settings=first.settings)
    controls = gatys.recorded_controls(read_settings(tmp_path / "first.png")["settings"])
    assert controls["scales"] == (32, 64) and controls["scale_steps"] == (2, 8) and controls["time_limit"] is None
    assert controls["style_weights"] == [(1.0, 0.0, 0.0), (0.0, 1.0, 1.0)] and controls["pooling"] == "avg"
    again = stylize(content, [style, content], encoder=tiny_vgg, **controls)
    assert again.settings["steps_taken"] == (2, 8) and not again.hit_time_limit
    assert np.array_equal(np.asarray(again.image), np.asarray(first.image))
    # A size the time limit left no step takes none again: it only carries its start to the next size.
    assert gatys.recorded_controls({**first.settings, "steps_taken": (0, 8)})["scale_steps"] == (0, 8)
    skipped = stylize(content, style, encoder=tiny_vgg, **{**FAST, "size": 64}, scales=(32, 64), scale_steps=(0, 2))
    assert skipped.settings["steps_taken"] == (0, 2) and len(skipped.losses) == 2 and skipped.image.size == (64, 43)


def test_recorded_controls_redo_a_stopped_run_in_full_and_default_what_they_lack(tiny_vgg, content, style):
    stop = threading.Event()
    stopped = stylize(content, style, encoder=tiny_vgg, **{**FAST, "size": 64}, scales=(32, 64), scale_steps=(5, 5),
                      progress=lambda info: info.step == 2 and stop.set(), cancel=stop)
    assert stopped.settings["steps_taken"] == (2,) and stopped.settings["stopped"] is True
    assert gatys.recorded_controls(stopped.settings)["scale_steps"] == (5, 5)
    older = {k: v for k, v in stopped.settings.items() if k not in ("pooling", "guidance")}  # before those existed
    assert "pooling" not in gatys.recorded_controls(older)
    with pytest.raises(ValueError, match="not a Gatys run's"):
        gatys.recorded_controls({"alpha": 1.0, "style_weights": None})  # an AdaIN record


def test_progress_estimates_the_time_left_from_the_pace_of_each_size(tiny_vgg, content, style, monkeypatch):
    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(gatys, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))

    def pass_costs_its_pixels(module, inputs, output):
        clock.now += inputs[0].shape[-2] * inputs[0].shape[-1] / 1000

    hook = tiny_vgg.register_forward_hook(pass_costs_its_pixels)
    reports, limited = [], []
    run = functools.partial(stylize, content, style, encoder=tiny_vgg, **{**FAST, "size": 64}, scales=(32, 64),
                            scale_steps=(4, 3))
    try:
        run(progress=reports.append)
        run(progress=limited.append, time_limit=11)
    finally:
        hook.remove()
    # A step is one pass: 0.672 s at 32x21, 2.752 s at 64x43. From its own size's pace each report foresees
    # exactly the steps left, the larger size's included.
    cost = [r.size[0] * r.size[1] / 1000 for r in reports]
    assert [r.size for r in reports] == [(21, 32)] * 4 + [(43, 64)] * 3
    assert [r.seconds_left for r in reports] == pytest.approx([sum(cost[k + 1:]) for k in range(7)])
    assert reports[-1].seconds_left == 0 and all(b.seconds > a.seconds for a, b in zip(reports, reports[1:]))
    # With a time limit no estimate goes past it: the first (10.3 s of steps left, at 2.4 s) stops there.
    assert limited[0].seconds + limited[0].seconds_left == pytest.approx(11)
    assert all(r.seconds + r.seconds_left <= 11 + 1e-9 for r in limited)


def test_a_later_run_foresees_each_size_from_the_steps_measured_there(tiny_vgg, content, style, monkeypatch):
    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(gatys, "time", types.SimpleNamespace(perf_counter=lambda: clock.now))

    def step_costs_a_fixed_part_and_its_pixels(module, inputs, output):  # so a coarse pixel costs more
        if torch.is_grad_enabled():  # a step's pass (not the targets' or a size's closing measure)
            clock.now += 1.0 + inputs[0].shape[-2] * inputs[0].shape[-1] / 1000

    hook = tiny_vgg.register_forward_hook(step_costs_a_fixed_part_and_its_pixels)
    reports = []
    run = functools.partial(stylize, content, style, encoder=tiny_vgg, **{**FAST, "size": 64}, scales=(32, 64),
                            scale_steps=(20, 15))
    try:
        first, short = run(time_limit=95), run(time_limit=45)
        run(progress=reports.append)
        clock.now = 0.0
        later, later_short = run(time_limit=95), run(time_limit=45)
    finally:
        hook.remove()
    cost = {(21, 32): 1.672, (43, 64): 3.752}  # seconds a step: 33.4 s planned at 32 px, 56.3 s at 64 px
    # The first run shares a time limit by pixels (672 : 2752 a step; after its first step, which comes off the
    # limit as nothing is known of the pace, the 32 px size may run until 1.672 + 93.3 x 0.246 = 24.6 s), which
    # cuts the 32 px size's steps though the whole plan (89.7 s) fits in 95 s; a later one knows it fits.
    assert first.settings["steps_taken"] == (14, 15) and later.settings["steps_taken"] == (20, 15)
    # Where the measured plan does not fit, the limit is still shared by pixels (by seconds each size would get
    # half its steps): the 32 px size gets 30% of its steps and the 64 px one 60%.
    assert short.settings["steps_taken"] == later_short.settings["steps_taken"] == (6, 9)
    # With both sizes measured every estimate of the time left is exact.
    expected = [sum(cost[r.size] for r in reports[k + 1:]) for k in range(35)]
    assert [r.seconds_left for r in reports] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        ({"style_layers": ("relu9_1",)}, "style_layers: unknown layer"),
        ({"content_layers": ()}, "content_layers must name at least one"),
        ({"style_weight": -1.0}, "style_weight must be a finite number >= 0"),
        ({"num_steps": 0}, "num_steps must be >= 1"),
        ({"optimizer": "sgd"}, "optimizer must be one of"),
        ({"init": "zeros"}, "init must be one of"),
        ({"color": "sepia"}, "color must be one of"),
        ({"upscale": "nearest"}, "upscale must be one of"),
        ({"pooling": "min"}, "pooling must be one of"),
        ({"size": 8}, "size must be in"),
        ({"style_layer_weights": (1.0,)}, "style_layer_weights has 1 entries"),
        ({"scales": (32, 64), "scale_steps": (1,)}, "scale_steps must give"),
        ({"scales": (32, 64), "scale_steps": (2, -1)}, "scale_steps must give >= 0 steps"),
        ({"scales": (32, 64), "scale_steps": (0, 0)}, r">= 1 in all, got \[0, 0\]"),
        ({"scales": (64, 32)}, r"scales must grow, smallest first, within \[16, 4096\] px, got \[64, 32\]"),
        ({"scales": (32, 32, 64)}, "scales must grow"),
        ({"scales": ()}, "scales must grow"),
        ({"size": 96, "scales": (32, 64)}, "size 96 is not the last of the scales"),
        ({"time_limit": 0}, "time_limit must be a number of seconds > 0"),
        ({"time_limit": float("nan")}, "time_limit must be a number of seconds > 0"),
        ({"seed": -1}, r"seed must be a whole number from 0 to 2\*\*64 - 1, got -1"),
        ({"seed": 2**64}, "seed must be a whole number"),
        ({"seed": 1.5}, "seed must be a whole number"),
        ({"bogus": 1}, r"unknown control\(s\) \['bogus'\]"),
    ],
)
def test_bad_controls_give_clear_errors(tiny_vgg, content, style, controls, message):
    with pytest.raises((ValueError, TypeError), match=message):
        stylize(content, style, encoder=tiny_vgg, **{**FAST, **controls})


def test_average_pooling_optimises_the_average_pooled_objective(tiny_vgg, content, style):
    """``pooling="avg"`` runs every VGG pass with average pooling: its record is that objective's, which
    the max-pooled one is not."""
    result = stylize(content, style, encoder=tiny_vgg, **{**FAST, "pooling": "avg"})
    assert result.settings["pooling"] == "avg"
    last = result.final_losses["total"]
    assert last < result.losses[0]["total"]
    judged = {pooling: measure_losses(result.image, content, style, encoder=tiny_vgg, **FAST, pooling=pooling)["total"]
              for pooling in ("avg", "max")}
    assert judged["avg"] == pytest.approx(last, rel=0.05) and judged["max"] != pytest.approx(last, rel=0.05)


def test_init_image_continues_from_an_earlier_result(tiny_vgg, content, style):
    first = stylize(content, style, encoder=tiny_vgg, **{**FAST, "num_steps": 12})
    more = stylize(content, style, encoder=tiny_vgg, **{**FAST, "num_steps": 3}, init_image=first.image)
    # the first evaluation is the earlier result itself (as saved, 8-bit)
    assert more.losses[0]["total"] == pytest.approx(measure_losses(first.image, content, style, encoder=tiny_vgg,
                                                                   **FAST)["total"], rel=1e-4)
    assert more.losses[0]["total"] < 0.5 * first.losses[0]["total"] and more.settings["init_image"] is True
    assert first.settings["init_image"] is False
    # another size is resized to the first scale; with noise, it is mixed as the content would be
    bigger = first.image.resize((96, 64))
    mixed = stylize(content, style, encoder=tiny_vgg, **{**FAST, "num_steps": 1}, init_image=bigger,
                    init="content+noise", noise_ratio=0.0, color="luminance")
    assert mixed.image.size == first.image.size
    with pytest.raises(ValueError, match="init='noise' starts from noise alone"):
        stylize(content, style, encoder=tiny_vgg, **FAST, init="noise", init_image=first.image)
    with pytest.raises(ImageInputError, match="start image"):
        stylize(content, style, encoder=tiny_vgg, **FAST, init_image=b"not an image")


def test_measure_losses_agrees_with_the_optimiser(tiny_vgg, content, style):
    result = stylize(content, style, encoder=tiny_vgg, **{**FAST, "num_steps": 1}, init="content")
    first = result.losses[0]
    measured = measure_losses(content, content, style, encoder=tiny_vgg, **FAST)
    assert measured["content"] == pytest.approx(0.0, abs=1e-6) and first["content"] == pytest.approx(0.0, abs=1e-6)
    assert measured["style"] == pytest.approx(first["style"], rel=1e-4)


def test_per_layer_style_terms_sum_to_the_style_loss_and_follow_the_layer_weights(tiny_vgg, content, style):
    measured = measure_losses(content, content, style, encoder=tiny_vgg, **FAST, style_layer_weights=(2.0, 0.0, 1.0))
    terms = {k: v for k, v in measured.items() if k.startswith("style/")}
    assert list(terms) == ["style/relu1_1", "style/relu2_1", "style/relu3_1"]
    assert sum(terms.values()) == pytest.approx(measured["style"], rel=1e-5)
    assert terms["style/relu2_1"] == 0.0 and terms["style/relu1_1"] > 0 and terms["style/relu3_1"] > 0
    alone = measure_losses(content, content, style, encoder=tiny_vgg, **{**FAST, "style_layers": ("relu1_1",)})
    assert terms["style/relu1_1"] == pytest.approx(2.0 * alone["style"], rel=1e-5)
    record = stylize(content, style, encoder=tiny_vgg, **FAST).losses[0]
    assert sum(v for k, v in record.items() if k.startswith("style/")) == pytest.approx(record["style"], rel=1e-5)


def test_parse_schedule_reads_sizes_and_steps_and_refuses_bad_ones():
    assert gatys.parse_schedule("128x100, 256X30;512x8") == ((128, 256, 512), (100, 30, 8))
    assert gatys.parse_schedule("256x50+512x85") == ((256, 512), (50, 85))
    assert gatys.parse_schedule(" 64x5 ") == ((64,), (5,))
    assert gatys.parse_schedule("128x0+256x20") == ((128, 256), (0, 20))  # as a time limit may leave a run
    for text, message in (("", "at least one size x steps"), ("256x50, 256x10", "the sizes must grow"),
                          ("512x8, 256x30", "the sizes must grow"), ("8x3, 64x3", r"within \[16, 4096\]"),
                          ("256", "write each size as"), ("256x5x5", "write each size as"), ("axb", "write each size"),
                          ("256x0", "needs at least one step in all"), ("128x0+256x0", r"got \[0, 0\]")):
        with pytest.raises(ValueError, match=message):
            gatys.parse_schedule(text)


def test_loss_text_gives_each_weighted_terms_share_of_the_total(tiny_vgg, content, style):
    controls = {**FAST, "size": 64, "style_weight": 1e3, "tv_weight": 1e-3, "scales": (32, 64), "scale_steps": (2, 2)}
    result = stylize(content, style, encoder=tiny_vgg, **controls)
    for entry in (result.losses[0], result.losses[-1]):  # the content weight is area-scaled at 32 px
        text = gatys.loss_text(entry, 1e3, 1e-3)
        shares = dict(part.rsplit(" ", 1) for part in text[text.index("(") + 1:-1].split(", "))
        assert text.startswith(f"{entry['total']:.4g} (") and list(shares) == ["content", "style", "tv"]
        assert float(shares["style"][:-1]) == pytest.approx(100 * 1e3 * entry["style"] / entry["total"], abs=0.5)
        assert float(shares["tv"][:-1]) == pytest.approx(100 * 1e-3 * entry["tv"] / entry["total"], abs=0.5)
        assert sum(float(v[:-1]) for v in shares.values()) == pytest.approx(100, abs=1.5)
    assert "tv" not in gatys.loss_text(result.losses[-1], 1e3)
    assert gatys.loss_text({"content": 0.0, "style": 0.0, "tv": 0.0, "total": 0.0}, 1e3) == "0"
    at_the_content = {"content": 0.0, "style": 2351.000001, "tv": 0.0, "total": 2.351e6}  # total - style < 0
    assert gatys.loss_text(at_the_content, 1e3) == "2.351e+06 (content 0%, style 100%)"
    last = result.losses[-1]  # at the output size the content weight is the given one, 1
    terms = gatys.weighted_terms(last, 1e3, 1e-3)
    expected = {"content": last["content"], "style": 1e3 * last["style"], "tv": 1e-3 * last["tv"]}
    assert terms == pytest.approx(expected, abs=1e-5 * last["total"])  # content is what the others leave of the total


def test_the_returned_image_has_the_best_measured_loss(tiny_vgg, content, style, monkeypatch):
    """L-BFGS steps leave [0, 1]; the optimiser is evaluated on the clamped image, the one returned, and
    the point after the last step is measured too."""
    converted: list[torch.Tensor] = []
    to_pil = gatys.tensor_to_pil
    monkeypatch.setattr(gatys, "tensor_to_pil", lambda t: converted.append(t.clone()) or to_pil(t))
    controls = {**FAST, "num_steps": 30, "style_weight": 1e9}
    result = stylize(content, style, encoder=tiny_vgg, **controls, init="content+noise")
    final = result.final_losses["total"]
    assert final <= min(entry["total"] for entry in result.losses)
    returned = converted[-1]  # the float image the returned PIL image was made from
    assert 0 <= returned.min() and returned.max() <= 1
    measured = measure_losses(returned, content, style, encoder=tiny_vgg, **controls)
    assert measured == pytest.approx(result.final_losses, rel=1e-4)
    # 8-bit rounding alone moves this sharp loss (style weight 1e9) by up to 8% on this tiny model
    assert measure_losses(result.image, content, style, encoder=tiny_vgg, **controls)["total"] == pytest.approx(
        final, rel=0.1)
    # Adam with a large rate overshoots: the best image is not the last one evaluated
    result = stylize(content, style, encoder=tiny_vgg, **controls, init="content+noise", optimizer="adam", lr=0.1)
    totals = [entry["total"] for entry in result.losses]
    assert min(totals) < 0.5 * totals[-1] and result.final_losses["total"] == pytest.approx(min(totals), rel=1e-6)
    assert measure_losses(converted[-1], content, style, encoder=tiny_vgg, **controls)["total"] == pytest.approx(
        min(totals), rel=1e-4)


def test_the_last_step_counts(tiny_vgg, content, style, monkeypatch):
    """No step evaluates where the last one moves to; the run measures that point, and one step from
    the content returns a better image than the content (it returned the content)."""
    converted: list[torch.Tensor] = []
    to_pil = gatys.tensor_to_pil
    monkeypatch.setattr(gatys, "tensor_to_pil", lambda t: converted.append(t.clone()) or to_pil(t))
    controls = {**FAST, "num_steps": 1}
    result = stylize(content, style, encoder=tiny_vgg, **controls, optimizer="adam", lr=0.05)
    measured = measure_losses(converted[-1], content, style, encoder=tiny_vgg, **controls)["total"]
    assert measured < 0.99 * result.losses[0]["total"]
    assert result.final_losses["total"] == pytest.approx(measured, rel=1e-4)


def test_lbfgs_starts_a_finer_size_with_the_last_sizes_curvature():
    """torch's L-BFGS makes a tiny first step (grad / |grad|_1); at a finer size the run starts it from
    the inverse Hessian scale of the coarser size (whose L-BFGS state these helpers read and write)."""
    def steps(opt, x, n):
        for _ in range(n):
            opt.step(lambda: (opt.zero_grad(), (0.5 * (x * x).sum()).backward())[0] or 0.5 * (x * x).sum())

    x = torch.tensor([2.0, -4.0], requires_grad=True)
    opt = gatys._optimizer(x, {"optimizer": "lbfgs", "lr": None})
    assert gatys._lbfgs_curvature(opt) is None
    steps(opt, x, 1)
    assert torch.allclose(x.detach(), torch.tensor([2.0, -4.0]) * (1 - 1 / 6))  # torch's first step
    steps(opt, x, 2)
    assert gatys._lbfgs_curvature(opt) == pytest.approx(1.0)  # f = |x|^2 / 2: the inverse Hessian is 1
    assert gatys._lbfgs_curvature(torch.optim.Adam([x])) is None
    x = torch.tensor([2.0, -4.0], requires_grad=True)
    opt = gatys._optimizer(x, {"optimizer": "lbfgs", "lr": None})
    gatys._start_lbfgs_scaled(opt, x, 0.25)
    steps(opt, x, 1)
    assert torch.allclose(x.detach(), torch.tensor([1.5, -3.0]))  # x - 0.25 grad
    steps(opt, x, 1)  # then L-BFGS goes on as usual: its first pair gives the exact scale here
    assert torch.allclose(x.detach(), torch.zeros(2), atol=1e-6)


def test_a_finer_size_does_not_waste_its_first_step(tiny_vgg, content, style):
    result = stylize(content, style, encoder=tiny_vgg, **{**FAST, "size": 64}, scales=(32, 64), scale_steps=(8, 3))
    fine = [e["total"] for e in result.losses if e["scale"] == 1]
    assert fine[1] < 0.95 * fine[0]  # torch's own first step (grad / |grad|_1) hardly moves the image


def test_a_step_that_overshoots_is_taken_back(tiny_vgg, content):
    """L-BFGS steps without a line search. Towards a white style one step here multiplies the best loss; the run
    goes back to its best point and on with a shorter step along the gradient there, which evaluates lower (the
    step after the overshoot used to be worse than the best still, and real runs stayed saturated for dozens)."""
    white = np.full((40, 40, 3), 255, np.uint8)
    totals = [e["total"] for e in stylize(content, white, encoder=tiny_vgg, **{**FAST, "num_steps": 6}).losses]
    overshoot = next(i for i in range(1, len(totals)) if totals[i] > gatys.OVERSHOOT * min(totals[:i]))
    assert totals[overshoot + 1] < min(totals[:overshoot])


def _tinted_texture(channel: int, seed: int) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(40, 40, 3, generator=g) * 0.25
    a[..., channel] += 0.7 * torch.rand(40, 40, generator=g)
    return Image.fromarray((a.clamp(0, 1) * 255).byte().numpy())


def test_guided_gram_loss_is_the_area_weighted_loss_of_each_region(tiny_vgg, content, style):
    square = gradient_image(32, 32)
    one = measure_losses(square, square, style, encoder=tiny_vgg, **FAST)
    full = measure_losses(square, square, style, encoder=tiny_vgg, **FAST, masks=[torch.ones(32, 32)])
    assert one == pytest.approx(full, rel=1e-5)  # one mask over everything: the plain loss
    inside = measure_losses(square, square, style, encoder=tiny_vgg, **FAST, masks=[torch.ones(32, 32)],
                            guidance="inside")
    assert one == pytest.approx(inside, rel=1e-5)  # the image border does not erode
    stripe = torch.zeros(32, 32)
    stripe[:, 14:18] = 1  # thinner than the deep layers' erosion: those layers keep the mask as it is
    thin = measure_losses(square, square, style, encoder=tiny_vgg, **FAST, masks=[stripe], guidance="inside")
    assert all(np.isfinite(v) and v > 0 for k, v in thin.items() if k.startswith("style"))
    # Left and right halves, at every layer a whole number of feature columns: each region's Gram is
    # the mean outer product over its own positions, its term weighted by its share (one half).
    other = _tinted_texture(2, seed=5)
    left = torch.zeros(32, 32)
    left[:, :16] = 1
    guided = measure_losses(content, square, [style, other], encoder=tiny_vgg, **FAST, masks=[left, 1 - left])
    x = pil_to_tensor(content.resize((32, 32), Image.Resampling.BICUBIC))
    measured = measure_losses(x, square, [style, other], encoder=tiny_vgg, **FAST, masks=[left, 1 - left])
    feats = tiny_vgg(x, list(FAST["style_layers"]))
    expected = 0.0
    for name in FAST["style_layers"]:
        f, half = feats[name], feats[name].shape[-1] // 2
        n = f.shape[1]
        for region, source in ((f[..., :half], style), (f[..., half:], other)):
            styled = gatys._resize_long(pil_to_tensor(Image.fromarray(np.asarray(source))), 32)  # as measured
            target = gram_matrix(tiny_vgg(styled, [name])[name])
            expected += 0.5 * (gram_matrix(region) - target).pow(2).sum() / (4 * n * n) / len(FAST["style_layers"])
    assert measured["style"] == pytest.approx(float(expected), rel=1e-4)
    assert guided["style"] != pytest.approx(one["style"], rel=1e-2)


def test_masks_give_each_style_its_region(tiny_vgg):
    red, blue = _tinted_texture(0, seed=1), _tinted_texture(2, seed=2)
    grey = Image.new("RGB", (32, 32), (128, 128, 128))
    left = torch.zeros(32, 32)
    left[:, :16] = 1
    controls = {**FAST, "num_steps": 50, "content_weight": 0.0, "style_weight": 1e3}

    def red_minus_blue(image: Image.Image) -> tuple[float, float]:
        a = np.asarray(image).astype(np.float64)
        diff = a[..., 0] - a[..., 2]
        return diff[:, :16].mean(), diff[:, 16:].mean()

    result = stylize(grey, [red, blue], encoder=tiny_vgg, masks=[left, 1 - left], **controls)
    left_tint, right_tint = red_minus_blue(result.image)
    assert left_tint - right_tint > 15
    assert result.settings["masks"] == 2 and result.settings["style_weights"] is None
    blend = red_minus_blue(stylize(grey, [red, blue], encoder=tiny_vgg, **controls).image)
    assert abs(blend[0] - blend[1]) < 5  # without masks neither half leans to a style
    # Adam: L-BFGS without a line search jumps about on this tiny random model, whichever way a size starts
    region = stylize(grey, [red, blue], encoder=tiny_vgg, masks=[left, 1 - left], **{**controls, "size": 64},
                     scales=(32, 64), scale_steps=(40, 10), optimizer="adam", lr=0.05)
    left_tint, right_tint = red_minus_blue(region.image.resize((32, 32)))  # coarse-to-fine keeps the regions
    assert region.image.size == (64, 64) and left_tint - right_tint > 15
    # one style in one region: the rest keeps only the content loss and stays near the grey content,
    # but for a band along the edge that the region's receptive fields reach into
    alone = np.asarray(stylize(grey, red, encoder=tiny_vgg, masks=[left], **{**controls, "content_weight": 1.0}).image)
    change = np.abs(alone.astype(np.float64) - 128).mean(axis=(0, 2))  # per column
    assert change[:16].mean() > 5 * change[24:].mean()
    # "inside" guidance erodes the masks by each layer's receptive field: less style spills over the edge
    inside = np.asarray(stylize(grey, red, encoder=tiny_vgg, masks=[left], guidance="inside",
                                **{**controls, "content_weight": 1.0}).image)
    inside_change = np.abs(inside.astype(np.float64) - 128).mean(axis=(0, 2))
    assert inside_change[16:24].mean() < 0.6 * change[16:24].mean()  # measured 2.8 against 6.8
    assert inside_change[:16].mean() == pytest.approx(change[:16].mean(), rel=0.2)  # the region itself as styled


def test_style_masks_take_the_style_statistics_from_a_region_of_the_style_image(tiny_vgg, content):
    red, blue = _tinted_texture(0, seed=1), _tinted_texture(2, seed=2)
    halves = Image.new("RGB", (32, 32))
    halves.paste(red.crop((0, 0, 16, 32)), (0, 0))
    halves.paste(blue.crop((0, 0, 16, 32)), (16, 0))
    left = torch.zeros(32, 32)
    left[:, :16] = 1
    plain = measure_losses(content, content, halves, encoder=tiny_vgg, **FAST)
    assert measure_losses(content, content, halves, encoder=tiny_vgg, **FAST, style_masks=[torch.ones(32, 32)]) == (
        pytest.approx(plain, rel=1e-5))
    x = pil_to_tensor(content.resize((32, 21), Image.Resampling.BICUBIC))
    measured = measure_losses(x, content, halves, encoder=tiny_vgg, **FAST, style_masks=[left])
    layers = list(FAST["style_layers"])
    feats, style_feats = tiny_vgg(x, layers), tiny_vgg(pil_to_tensor(halves), layers)
    expected = 0.0
    for name in FAST["style_layers"]:
        f, n = style_feats[name], style_feats[name].shape[1]
        target = gram_matrix(f[..., : f.shape[-1] // 2])  # the Gram of the left half's positions
        expected += (gram_matrix(feats[name]) - target).pow(2).sum() / (4 * n * n) / len(FAST["style_layers"])
    assert measured["style"] == pytest.approx(float(expected), rel=1e-4)

    grey = Image.new("RGB", (32, 32), (128, 128, 128))
    controls = {**FAST, "num_steps": 50, "content_weight": 0.0, "style_weight": 1e3}
    tint = {}
    for side, mask in (("left", left), ("right", 1 - left)):
        result = stylize(grey, halves, encoder=tiny_vgg, style_masks=[mask], **controls)
        a = np.asarray(result.image).astype(np.float64)
        tint[side] = (a[..., 0] - a[..., 2]).mean()
    assert tint["left"] - tint["right"] > 15 and result.settings["style_masks"] == [True]
    # the paper's use: one painting given twice, each of its regions styling one region of the output
    both = stylize(grey, [halves, halves], encoder=tiny_vgg, masks=[1 - left, left], style_masks=[left, 1 - left],
                   **controls)
    a = np.asarray(both.image).astype(np.float64)
    diff = a[..., 0] - a[..., 2]
    assert diff[:, 16:].mean() - diff[:, :16].mean() > 15  # the painting's red half now styles the right
    assert both.settings["style_masks"] == [True, True]


def test_bad_masks_give_clear_errors(tiny_vgg, content, style):
    left = torch.zeros(32, 48)
    with pytest.raises(ImageInputError, match="got 1 masks for 2 styles"):
        stylize(content, [style, style], encoder=tiny_vgg, masks=[left], **FAST)
    with pytest.raises(ValueError, match="either style_weights .* or masks"):
        stylize(content, [style, style], encoder=tiny_vgg, masks=[left, left], style_weights=[1, 1], **FAST)
    with pytest.raises(ImageInputError, match="mask 1 is 10x10 px but the content is 48x32 px"):
        stylize(content, style, encoder=tiny_vgg, masks=[torch.ones(10, 10)], **FAST)
    with pytest.raises(ImageInputError, match="mask 1 covers \\(almost\\) no area"):
        stylize(content, style, encoder=tiny_vgg, masks=[left], **FAST)
    with pytest.raises(ImageInputError, match="got 1 style masks for 2 styles"):
        stylize(content, [style, style], encoder=tiny_vgg, style_masks=[None], **FAST)
    with pytest.raises(ImageInputError, match="style mask 2 is 10x10 px but the style image 2 is 40x40 px"):
        stylize(content, [style, style], encoder=tiny_vgg, style_masks=[None, torch.ones(10, 10)], **FAST)


@pytest.fixture
def vgg_file(tmp_path) -> Path:
    """A VGG-16 weights file for the command line: random values, but the first filter torchvision's, which the
    zoo checks."""
    from safetensors.torch import save_file

    from styletransfer.vgg import VGGEncoder

    weights = tmp_path / "vgg.safetensors"
    torch.manual_seed(0)
    state = VGGEncoder().state_dict()
    state["features.0.weight"][0, 0, 0] = torch.tensor([-0.5537, 0.1427, 0.5290])
    save_file(state, str(weights))
    return weights


@pytest.fixture
def half_masks(tmp_path) -> tuple[Path, Path]:
    """``left.png`` and ``right.png`` in ``tmp_path``: the halves of the 48x32 content, white where they are."""
    left = np.zeros((32, 48), np.uint8)
    left[:, :24] = 255
    Image.fromarray(left).save(tmp_path / "left.png")
    Image.fromarray(255 - left).save(tmp_path / "right.png")
    return tmp_path / "left.png", tmp_path / "right.png"


def test_cli_writes_png_with_settings_and_reports_bad_input(tmp_path, content, capsys, vgg_file, half_masks):
    from styletransfer.__main__ import main

    weights = vgg_file
    content.save(tmp_path / "c.png")
    gradient_image(40, 40).rotate(45).save(tmp_path / "s.png")
    out = tmp_path / "out.png"
    code = main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(out), "--size", "32",
                 "--steps", "2", "--vgg", str(weights), "--fp32", "--preserve-color", "luminance"])  # adain's spelling
    assert code == 0 and out.is_file()
    assert re.search(r"wrote .*out.png in [\d.]+ s; loss \S+ \(content \d+%, style \d+%\)", capsys.readouterr().err)
    record = read_settings(out)
    assert record["method"] == "gatys" and record["settings"]["color"] == "luminance"
    assert record["settings"]["num_steps"] == 2 and record["settings"]["styles"] == ["s.png"]
    code = main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(out), "--size", "32",
                 "--fast", "--upscale", "bicubic", "--pooling", "avg", "--vgg", str(weights), "--fp32"])
    settings = read_settings(out)["settings"]
    assert code == 0 and settings["scale_steps"] == list(fast_schedule(32)[1]) and settings["upscale"] == "bicubic"
    assert settings["pooling"] == "avg" and record["settings"]["pooling"] == "max"
    code = main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(tmp_path / "more.png"),
                 "--size", "32", "--steps", "1", "--init-image", str(out), "--vgg", str(weights), "--fp32"])
    assert code == 0 and read_settings(tmp_path / "more.png")["settings"]["init_image"] == "out.png"
    code = main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), str(tmp_path / "c.png"), "-o", str(out),
                 "--size", "32", "--steps", "1", "--mask", *map(str, half_masks),
                 "--vgg", str(weights), "--fp32"])
    assert code == 0 and read_settings(out)["settings"]["masks"] == ["left.png", "right.png"]
    with Image.open(half_masks[0]) as left:
        left.crop((0, 0, 40, 32)).resize((40, 40)).save(tmp_path / "style_part.png")
    code = main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), str(tmp_path / "c.png"), "-o", str(out),
                 "--size", "32", "--steps", "1", "--style-mask", str(tmp_path / "style_part.png"), "none",
                 "--vgg", str(weights), "--fp32"])
    assert code == 0 and read_settings(out)["settings"]["style_masks"] == ["style_part.png", None]
    code = main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), str(tmp_path / "c.png"), "-o", str(out),
                 "--size", "32", "--steps", "1", "--style-weights", "1,1,0,0,0", "0,0,1,1,1",
                 "--vgg", str(weights), "--fp32"])
    assert code == 0 and read_settings(out)["settings"]["style_weights"] == [[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]]
    code = main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), str(tmp_path / "c.png"), "-o", str(out),
                 "--size", "32", "--steps", "1", "--auto-regions", "--guidance", "inside", "--vgg", str(weights),
                 "--fp32"])
    settings = read_settings(out)["settings"]
    assert code == 0 and settings["masks"] == "auto regions" and settings["style_weights"] is None
    assert settings["guidance"] == "inside"
    code = main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(out), "--size", "32",
                 "--mask", str(tmp_path / "s.png"), "--vgg", str(weights), "--fp32"])
    assert code == 2 and "mask 1 is 40x40 px but the content is 48x32 px" in capsys.readouterr().err
    code = main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(out), "--schedule", "16x2+40x1",
                 "--vgg", str(weights), "--fp32"])
    settings = read_settings(out)["settings"]
    assert code == 0 and settings["scales"] == [16, 40] and settings["scale_steps"] == [2, 1]
    assert max(image_size(out)) == 40  # the schedule's last size is the output's
    assert read_settings(out)["settings"]["size"] == 40  # and the record says so
    code = main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(out), "--schedule", "16x2+40x1",
                 "--size", "64", "--vgg", str(weights), "--fp32"])
    assert code == 2 and "size 64 is not the last of the scales [16, 40]" in capsys.readouterr().err
    for bad, message in ((["--schedule", "40x1+16x2"], "the sizes must grow"),
                         (["--schedule", "16x2", "--fast"], "not allowed with argument"),
                         (["--time-limit", "-1"], "'-1' is not a number of seconds above 0 (leave the option out"),
                         (["--time-limit", "nan"], "'nan' is not a number of seconds"),
                         (["--time-limit", "soon"], "'soon' is not a number of seconds")):
        with pytest.raises(SystemExit):
            main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(out), *bad])
        assert message in capsys.readouterr().err
    code = main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(out), "--size", "32",
                 "--fast", "--time-limit", "1e-9", "--vgg", str(weights), "--fp32"])
    assert code == 0 and read_settings(out)["settings"]["steps_taken"] == [0]  # no step fits: the content
    assert "(time limit: 0 of 100 steps)" in capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(b"nope")
    code = main(["gatys", str(tmp_path / "bad.png"), str(tmp_path / "s.png"), "-o", str(out), "--vgg", str(weights)])
    assert code == 2 and "content image: this is not an image file" in capsys.readouterr().err
    code = main(["gatys", str(tmp_path / "c.png"), str(tmp_path / "s.png"), "-o", str(out), "--vgg", str(weights),
                 "--steps", "0"])
    assert code == 2 and "num_steps must be >= 1" in capsys.readouterr().err


def test_cli_redoes_a_recorded_run_with_the_options_given_replacing_its_own(tmp_path, content, capsys, vgg_file,
                                                                           monkeypatch, half_masks):
    from styletransfer.__main__ import main
    from styletransfer.vgg import VGGEncoder

    content.save(tmp_path / "c.png")
    gradient_image(40, 40).rotate(45).save(tmp_path / "s.png")
    images = [str(tmp_path / "c.png"), str(tmp_path / "s.png")]
    run = lambda out, *options: main(["gatys", *images, "-o", str(tmp_path / out), "--vgg", str(vgg_file), *options])  # noqa: E731,E501
    assert run("a.png", "--size", "32", "--steps", "3", "--seed", "2", "--init", "content+noise", "--pooling", "avg",
               "--style-weight", "1e5", "--fp32") == 0
    capsys.readouterr()
    assert run("b.png", "--settings-from", str(tmp_path / "a.png")) == 0
    assert "settings from a.png\n" in capsys.readouterr().err
    first, again = read_settings(tmp_path / "a.png")["settings"], read_settings(tmp_path / "b.png")["settings"]
    assert again["seed"] == 2 and again["pooling"] == "avg" and again["precision"] == "fp32"  # float32 carried over
    assert {k: v for k, v in again.items() if first[k] != v} == {}
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "b.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
    # An option given replaces its recorded value; a plan option the recorded plan as a whole.
    assert run("d.png", "--settings-from", str(tmp_path / "a.png"), "--size", "40", "--steps", "2", "--seed", "5") == 0
    assert "settings from a.png, but --seed --size --steps as given here" in capsys.readouterr().err
    changed = read_settings(tmp_path / "d.png")["settings"]
    assert changed["scales"] == [40] and changed["scale_steps"] == [2] and changed["seed"] == 5
    assert changed["pooling"] == "avg" and changed["style_weight"] == 1e5 and image_size(tmp_path / "d.png")[0] == 40
    # A record of bf16 passes redone where they do not run says the image will differ.
    with Image.open(tmp_path / "a.png") as a:
        save_image(a.copy(), tmp_path / "bf16.png", method="gatys", settings={**first, "precision": "bf16"})
    monkeypatch.setattr(VGGEncoder, "uses_bf16", lambda self, device: False)
    assert run("e.png", "--settings-from", str(tmp_path / "bf16.png")) == 0
    assert "bf16.png was made with bf16 VGG passes" in capsys.readouterr().err
    # What the record cannot give back is asked for, before any work.
    two = [*images, str(tmp_path / "c.png")]
    assert main(["gatys", *two, "-o", str(tmp_path / "m.png"), "--size", "32", "--steps", "1", "--vgg", str(vgg_file),
                 "--mask", *map(str, half_masks)]) == 0
    assert run("x.png", "--settings-from", str(tmp_path / "m.png")) == 2
    assert "m.png: that run had a region mask per style (left.png, right.png); name them with --mask" in \
        capsys.readouterr().err
    assert main(["gatys", *two, "-o", str(tmp_path / "w.png"), "--size", "32", "--steps", "1", "--vgg", str(vgg_file),
                 "--style-weights", "3", "1"]) == 0
    assert run("x.png", "--settings-from", str(tmp_path / "w.png")) == 2
    assert "that run blended 2 styles (s.png, c.png); name as many style images" in capsys.readouterr().err
    assert run("w2.png", "--settings-from", str(tmp_path / "w.png"), "--style-weights", "1") == 0
    assert main(["gatys", *two, "-o", str(tmp_path / "r.png"), "--size", "32", "--steps", "1", "--vgg", str(vgg_file),
                 "--auto-regions", "--seed", "3"]) == 0
    assert main(["gatys", *two, "-o", str(tmp_path / "r2.png"), "--vgg", str(vgg_file),
                 "--settings-from", str(tmp_path / "r.png")]) == 0
    assert read_settings(tmp_path / "r2.png")["settings"]["masks"] == "auto regions"
    for recorded, message in (({"masks": 2, "style_weights": None}, "region mask per style (2 of them)"),
                              ({"style_masks": [True]}, "took each style from a region (style 1); name the masks"),
                              ({"init_image": "start.png"}, "started from an image (start.png); name it with --init")):
        save_image(content, tmp_path / "made.png", method="gatys", settings={**first, **recorded})
        assert run("x.png", "--settings-from", str(tmp_path / "made.png")) == 2 and message in capsys.readouterr().err
    save_image(content, tmp_path / "adain.png", method="adain", settings={"alpha": 1.0})
    for source, message in ((tmp_path / "adain.png", "that image was made by adain, not gatys"),
                            (tmp_path / "c.png", "carries no style-transfer settings"),
                            (tmp_path / "gone.png", "gone.png: there is no such file")):
        assert run("x.png", "--settings-from", str(source)) == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    # Nor does a result overwrite an input, with any method (checked before any model loads).
    assert run("a.png", "--settings-from", str(tmp_path / "a.png")) == 2
    assert "a.png is an input (given to --settings-from): write the result to another file" in capsys.readouterr().err
    assert main(["adain", *images, "-o", images[1]]) == 2 and "is an input (a style image)" in capsys.readouterr().err
    assert main(["stylebank", images[0], "--style", "x", "-o", images[0]]) == 2
    assert "c.png is an input (the content)" in capsys.readouterr().err


def test_output_at_the_input_size_works_with_lbfgs(tiny_vgg):
    # A regression: at size == the input's long side no resize happened, the image tensor kept
    # the permuted (non-contiguous) layout of the decoded pixels and L-BFGS failed to flatten it.
    result = stylize(gradient_image(72, 56), gradient_image(40, 40), encoder=tiny_vgg, size=72, num_steps=2)
    assert result.image.size == (72, 56)


def test_a_content_too_elongated_for_the_output_size_is_a_clear_error(tiny_vgg, style):
    with pytest.raises(ImageInputError, match="content image: 20x2000 px is too elongated for 512 px"):
        stylize(gradient_image(20, 2000), style, encoder=tiny_vgg, **{**FAST, "size": 512})


def test_cli_help_gives_each_control_its_default(capsys):
    from styletransfer.__main__ import main

    with pytest.raises(SystemExit):
        main(["gatys", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    defaults = GatysConfig()
    assert f"beta (default: {defaults.style_weight:g})" in text and "total-variation weight (default: 0)" in text
    assert f"(default: {' '.join(defaults.style_layers)})" in text and f"(default: {defaults.pooling})" in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_cli_batch_ends_after_the_current_image_when_stopped_and_refuses_one_image_options(tmp_path, capsys):
    from styletransfer.__main__ import _run_all, main

    stop, written = threading.Event(), []

    def run(content: Path, output: Path) -> str:
        written.append(content.name)
        stop.set()  # Ctrl-C during the first image
        return f"wrote {output}"

    pairs = [(tmp_path / f"{k}.png", tmp_path / "out" / f"{k}.png") for k in "abc"]
    assert _run_all(run, pairs, stop) == 0 and written == ["a.png"]
    assert "stopped: 1 of 3 images written" in capsys.readouterr().err

    photos = tmp_path / "photos"
    photos.mkdir()
    gradient_image(48, 32).save(photos / "c.png")
    gradient_image(40, 40).save(tmp_path / "s.png")
    for option in (["--mask", str(tmp_path / "s.png")], ["--init-image", str(tmp_path / "s.png")]):
        code = main(["gatys", str(photos), str(tmp_path / "s.png"), "-o", str(tmp_path / "out"), *option])
        assert code == 2 and f"{option[0]} is made for one content image" in capsys.readouterr().err
