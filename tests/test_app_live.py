"""The Live camera tab: its per-frame handler, frame rate, and the session banks it reads each frame."""

import io
import os
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styletransfer import adain
from styletransfer.serialization import ModelFileError
from styletransfer.stylebank import BankConfig, StyleBank, save_bank
from tests.conftest import gradient_image

FRAME = np.asarray(gradient_image(96, 72))  # a camera frame as Gradio hands it over (type="numpy")


@pytest.fixture
def live(tiny_models):
    """The handler as the tab wires it: failures keep the last frame and say why in the status."""
    import app

    return app.follow_handler(app.make_live_handler(tiny_models), 2, 1, app.live_inputs_ready)


def frame_args(method="StyleBank", bank="waves", style=None, alpha=1.0, preserve="none", size=64, steadiness=0.0,
               user_banks=None, frame=FRAME):
    return [frame, method, bank, style, alpha, preserve, size, steadiness, user_banks or {}]


def test_each_method_stylises_a_frame_at_the_frame_size_and_says_how_long_it_took(live, tmp_path):
    style = tmp_path / "style.png"
    gradient_image(40, 40).rotate(90).save(style)
    page = types.SimpleNamespace(session_hash="page")
    for method, extra in (("StyleBank", {}), ("AdaIN", {"style": str(style), "preserve": "luminance"})):
        image, status = live(*frame_args(method, **extra), page)
        assert isinstance(image, Image.Image) and image.size == (64, 48)  # long side 64, the frame's 4:3
        assert status.startswith(f"{method} at 64x48: ") and " ms a frame" in status
    bank_image = live(*frame_args(size=512), page)[0]
    assert bank_image.size == (96, 72)  # frames are only ever made smaller
    assert np.asarray(bank_image).std() > 1  # a picture, not a flat fill


def test_the_style_is_encoded_once_for_all_frames(tiny_models, tmp_path, monkeypatch):
    import app

    style = tmp_path / "style.png"
    gradient_image(40, 40).save(style)
    encoded = []
    real = adain.encode_style
    monkeypatch.setattr(adain, "encode_style", lambda *a, **kw: encoded.append(a[0]) or real(*a, **kw))
    handler = app.make_live_handler(tiny_models)
    first = [np.asarray(handler(*frame_args("AdaIN", style=str(style)))[0]) for _ in range(3)]
    assert encoded == [str(style)]
    np.testing.assert_array_equal(first[0], first[2])  # the same frame, the same result
    other = tmp_path / "other.png"
    gradient_image(40, 40).rotate(90).save(other)
    handler(*frame_args("AdaIN", style=str(other)))
    assert encoded == [str(style), str(other)]


def test_a_frame_that_cannot_be_stylised_keeps_the_last_result_and_says_why(live):
    import gradio as gr

    cases = {("StyleBank", ""): "choose a style bank", ("StyleBank", "nope"): "nope",
             ("AdaIN", "waves"): "upload a style image for AdaIN", ("sketch", "waves"): "choose one of the methods"}
    for (method, bank), says in cases.items():
        image, status = live(*frame_args(method, bank=bank))
        assert image == gr.skip() and status.startswith("Not updated: ") and says in status, status
    image, status = live(*frame_args(preserve="histogram"))
    assert image == gr.skip() and "none, luminance" in status
    assert live(None, *frame_args()[1:]) == (gr.skip(), gr.skip())  # no frame yet: nothing changes


def test_a_pages_frames_go_to_files_of_its_own_and_only_the_newest_stay(live, tiny_models, tmp_path):
    import app

    forgotten = []
    handler = app.follow_handler(app.make_live_handler(tiny_models, lambda: app.FrameFiles(tmp_path, forgotten.append,
                                                                                            keep=3)),
                                 2, 1, app.live_inputs_ready)
    page, other = types.SimpleNamespace(session_hash="page"), types.SimpleNamespace(session_hash="other")
    shown = [handler(*frame_args(), page)[0] for _ in range(5)]
    elsewhere = handler(*frame_args(), other)[0]
    assert Path(shown[0]).parent != Path(elsewhere).parent and Path(shown[0]).is_relative_to(tmp_path.resolve())
    assert [p for p in shown if Path(p).exists()] == shown[2:] and forgotten == shown[:2]  # oldest first
    with Image.open(shown[-1]) as frame:
        assert frame.format == "JPEG" and frame.size == (64, 48)
        expected = io.BytesIO()
        live(*frame_args(), page)[0].save(expected, "JPEG")  # the same frame, as an image, as JPEG
        np.testing.assert_array_equal(np.asarray(frame), np.asarray(Image.open(expected)))
    assert live(*frame_args())[0].size == (64, 48)  # without a page, an image as before


def test_frame_rate_averages_a_pages_intervals_and_starts_again_after_a_pause():
    import app

    rate = app.FrameRate(smoothing=0.5, gap=2.0)
    assert rate.tick(now=10.0) is None  # a first frame has no rate
    assert rate.tick(now=10.1) == pytest.approx(10.0)
    assert rate.tick(now=10.4) == pytest.approx(1 / 0.2)  # the mean of 0.1 s and 0.3 s
    assert rate.tick(now=13.0) is None  # a pause: the stream started again
    assert rate.tick(now=13.25) == pytest.approx(4.0)


def test_page_memory_keeps_one_object_a_page_and_forgets_the_least_recent():
    import app

    memory = app.PageMemory(list, pages=2)
    page, other, third = (types.SimpleNamespace(session_hash=h) for h in ("page", "other", "third"))
    mine = memory(page)
    assert memory(page) is mine and memory(other) is not mine
    assert memory(None) is None and memory(types.SimpleNamespace(session_hash=None)) is None
    memory(page)  # seen again: "other" is now the least recent
    memory(third)
    assert memory(page) is mine and memory(other) == []  # "other" was forgotten and starts afresh


def test_page_memory_forgets_the_pages_not_seen_for_a_while():
    import app

    now = [0.0]
    memory = app.PageMemory(list, idle_seconds=10, clock=lambda: now[0])
    page, other, third = (types.SimpleNamespace(session_hash=h) for h in ("page", "other", "third"))
    mine = memory(page)
    memory(other)
    now[0] = 9.0
    assert memory(page) is mine and len(memory) == 2
    now[0] = 15.0
    memory(third)  # "other", last seen at 0, is forgotten; "page", seen at 9, is not
    assert len(memory) == 2 and memory(page) is mine
    now[0] = 30.0
    assert memory(page) is not mine and len(memory) == 1  # idle too long: a fresh object, and the others gone


def test_steadiness_keeps_part_of_the_last_frame_where_the_camera_sees_no_motion(live):
    """Two noisy frames of a still scene: with steadiness the second result is nearer the first."""
    rng = np.random.default_rng(0)
    frames = [np.clip(FRAME + rng.normal(0, 3, FRAME.shape), 0, 255).astype(np.uint8) for _ in range(2)]
    change = {}
    for steadiness in (0.0, 0.8):
        page = types.SimpleNamespace(session_hash=f"page{steadiness}")
        first, second = (np.asarray(live(*frame_args(steadiness=steadiness, frame=f), page)[0], np.float32)
                         for f in frames)
        change[steadiness] = np.abs(second - first).mean()
    assert change[0.8] < 0.5 * change[0.0]
    assert change[0.0] > 0  # the noise does reach the result


def test_session_banks_load_once_and_again_when_their_file_changes(tiny_models, tmp_path, monkeypatch):
    import app

    autoencoder, banks = tiny_models.stylebank()
    path = tmp_path / "mine.safetensors"
    save_bank(StyleBank(BankConfig("mine", 16, 3, autoencoder.fingerprint())), path)
    name = "mine"
    loads = []
    real = app.load_banks
    monkeypatch.setattr(app, "load_banks", lambda paths, ae: loads.append(list(paths)) or real(paths, ae))
    app._loaded_banks.cache_clear()
    user_banks = {name: str(path)}
    first = app._all_banks(tiny_models, user_banks)[1]
    again = app._all_banks(tiny_models, user_banks)[1]
    assert loads == [[str(path)]] and first[name] is again[name]  # the same objects: prepacked kernels kept
    assert set(first) == {*banks, name} and first is not again  # each caller gets its own dict
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    app._all_banks(tiny_models, user_banks)
    assert len(loads) == 2
    path.unlink()
    with pytest.raises(ModelFileError, match="is gone"):
        app._all_banks(tiny_models, user_banks)


def test_the_bank_dropdown_keeps_its_choice_while_it_is_there(tiny_models):
    import app

    assert app.live_bank_choices(tiny_models, {}, "dots") == {"__type__": "update", "choices": ["waves", "dots"],
                                                             "value": "dots"}
    assert app.live_bank_choices(tiny_models, {}, "gone")["value"] == "waves"
    assert app.live_bank_choices(tiny_models, {}, None)["value"] == "waves"
