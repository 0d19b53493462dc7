"""The demo launches with tiny models and its API endpoints answer through gradio_client."""

import dataclasses
import os
import re
import shutil
import tempfile
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from styletransfer.imageio import read_settings
from tests.conftest import gradient_image, image_size, run_python


@pytest.fixture
def client(tmp_path, monkeypatch, tiny_models):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # gradio_client leaves a folder there a download
    from gradio_client import Client

    import app

    monkeypatch.setattr(app, "HANDOFF", app.HandoffFolder("studio-", app.CACHE_SECONDS))  # inside that temp folder
    demo = app.build_demo(tiny_models)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


@pytest.fixture
def images(tmp_path):
    content, style, style2 = tmp_path / "content.png", tmp_path / "style.png", tmp_path / "style2.png"
    gradient_image(72, 56).save(content)
    gradient_image(40, 40).rotate(90).save(style)
    gradient_image(48, 40).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(style2)
    return content, style, style2


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def adain_args(content, styles, **kw):
    from gradio_client import handle_file

    slots = [handle_file(str(s)) for s in styles] + [None] * (4 - len(styles))
    args = dict(alpha=1.0, preserve="none", spatial="off", editor=None, seed=0, color_method="cholesky")
    args.update(kw)
    return [handle_file(str(content)), *slots, 1.0, 1.0, 1.0, 1.0, args["alpha"], args["preserve"], args["spatial"],
            args["editor"], args["seed"], args["color_method"]]


def test_zoo_and_device_endpoints(client):
    table = client.predict(api_name="/zoo_list")
    names = [row[0] for row in table["data"]]
    assert names[:4] == ["vgg16.tv_in1k", "vgg16.normalized", "lpips.vgg16", "adain.vgg16n"]
    assert client.predict(api_name="/device").startswith("Running on ")


@pytest.mark.parametrize(("bf16", "int8", "says"), [
    (True, True, "bf16 autocast (StyleBank: int8 where"),
    (False, True, "float32 (StyleBank and the AdaIN decoder: int8"),
    (False, False, "float32. Uploads"),
])
def test_the_device_line_says_which_precisions_run(monkeypatch, bf16, int8, says):
    import app

    monkeypatch.setattr(app, "bf16_is_fast", lambda device: bf16)
    monkeypatch.setattr(app, "int8_is_fast", lambda device: int8)
    assert says in app.device_notice()


def test_every_endpoint_names_its_inputs_and_outputs(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/gatys", "/adain", "/stylebank", "/train_bank", "/compare", "/zoo_list", "/device"} <= set(api)
    unnamed = [(name, part["label"]) for name, endpoint in api.items()
               for part in endpoint["parameters"] + endpoint["returns"] if re.fullmatch(r"value_\d+", part["label"])]
    assert not unnamed
    gatys_returns = [part["label"] for part in api["/gatys"]["returns"]][1:]
    assert gatys_returns == ["status message", "PNG with settings", "Loss per step"]
    names = {endpoint: [part["parameter_name"] for part in api[endpoint]["parameters"]]
             for endpoint in ("/gatys", "/adain", "/stylebank")}
    slots = [f"{kind}{i}" for kind in ("style", "weight") for i in range(1, 5)]
    assert names["/gatys"][:9] == names["/adain"][:9] == ["content", *slots]
    assert {"region4", "pooling", "schedule_text"} <= set(names["/gatys"])
    assert names["/stylebank"][:9] == ["content", *(f"{kind}{i}" for i in range(1, 5) for kind in ("bank", "weight"))]


def test_the_api_requires_only_what_a_request_must_carry(client, images):
    """Inputs without a value of their own that the page lets one leave empty (styles 2-4, painted regions, a
    start image, training photos) are optional in the API too, so a call names only what it uses."""
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    required = {name: [part["parameter_name"] for part in endpoint["parameters"] if not part["parameter_has_default"]]
                for name, endpoint in api.items()}
    assert required["/adain"] == required["/gatys"] == ["content", "style1"]
    assert required["/stylebank"] == ["content", "bank1"] and required["/compare"] == ["content", "style"]
    assert required["/train_bank"] == ["style"] and required["/stylebank_add"] == []
    assert required["/push_bank"] == ["bank_file", "repo_id", "token"] and required["/zoo_push"] == ["repo_id", "token"]
    from gradio_client import handle_file

    content, style, _ = images
    image, status, png = client.predict(content=handle_file(str(content)), style1=handle_file(str(style)),
                                        api_name="/adain")
    assert image_size(image) == (72, 56) and status.startswith("Done in")
    assert read_settings(png)["settings"]["alpha"] == 1.0  # the slider's own value


def test_adain_endpoint_returns_image_status_and_png_with_settings(client, images):
    content, style, _ = images
    image, status, png = client.predict(*adain_args(content, [style], alpha=0.7), api_name="/adain")
    assert image_size(image) == (72, 56)
    assert re.match(r"Done in \d+\.\d\d s \((fp32|bf16) decoder\)", status)  # the tiny decoder has no int8 calibration
    record = read_settings(png)
    assert record["method"] == "adain" and record["settings"]["alpha"] == 0.7
    assert record["settings"]["decoder_precision"] in status


def test_adain_and_stylebank_take_the_histogram_matching_solution(client, images, monkeypatch):
    from styletransfer import color

    used = []
    match_color = color.match_color
    monkeypatch.setattr(color, "match_color", lambda *a, **kw: used.append(a[2]) or match_color(*a, **kw))
    content, style, _ = images
    for method in ("cholesky", "eigen"):
        _, _, png = client.predict(*adain_args(content, [style], preserve="histogram", color_method=method),
                                   api_name="/adain")
        assert read_settings(png)["settings"]["color_method"] == method and used[-1] == method
    _, _, _, png = client.predict(*stylebank_args(content, ["waves"], preserve_color="histogram",
                                                  color_method="eigen"), api_name="/stylebank")
    assert read_settings(png)["settings"]["color_method"] == "eigen" and used == ["cholesky", "eigen", "eigen"]
    with pytest.raises(Exception, match="is not in the list of choices"):
        client.predict(*adain_args(content, [style], preserve="histogram", color_method="svd"), api_name="/adain")


def test_adain_auto_regions_with_two_styles(client, images):
    content, style, style2 = images
    image, status, _ = client.predict(*adain_args(content, [style, style2], spatial="auto regions (K-means)"),
                                      api_name="/adain")
    assert image_size(image) == (72, 56)
    assert "K-means regions, largest first: style 1" in status


def test_bad_uploads_give_readable_errors(client, images, tmp_path):
    content, style, _ = images
    not_image = tmp_path / "notes.png"
    not_image.write_bytes(b"this is not an image at all")
    with pytest.raises(Exception, match="not an image"):
        client.predict(*adain_args(not_image, [style]), api_name="/adain")
    with pytest.raises(Exception, match="upload at least one style"):
        client.predict(*adain_args(content, []), api_name="/adain")
    with pytest.raises(Exception, match="paint a region"):
        client.predict(*adain_args(content, [style], spatial="painted regions"), api_name="/adain")
    bomb = tmp_path / "bomb.png"
    Image.new("1", (9000, 8000)).save(bomb)
    with pytest.raises(Exception, match="larger than the 64 MP accepted"):
        client.predict(*adain_args(bomb, [style]), api_name="/adain")


def test_large_upload_is_downscaled_with_a_note(client, images, tmp_path):
    _, style, _ = images
    big = tmp_path / "big.png"
    gradient_image(1300, 700).save(big)
    image, status, _ = client.predict(*adain_args(big, [style]), api_name="/adain")
    assert max(image_size(image)) == 1024
    assert "Downscaled from 1300x700" in status


def gatys_args(content, styles, schedule: int | str = 2, **kw):
    """The /gatys endpoint's inputs: 10 steps at 128 px unless ``kw`` says otherwise; ``styles`` fill the style
    slots in order (None leaves one empty); ``schedule``: a schedule's number or its label."""
    from gradio_client import handle_file

    from app import GATYS_COMBINES, GATYS_SCHEDULES, MAX_STYLES

    slots = [None if s is None else handle_file(str(s)) for s in styles] + [None] * (MAX_STYLES - len(styles))
    args = dict(content_weight=1.0, time_limit=0, start=None, spatial="off", editor=None, regions=(None,) * MAX_STYLES,
                weights=(1.0, 0.5, 0.5, 0.5), style_weight=1e6, tv_weight=0.0, num_steps=10, size=128,
                color_method="cholesky",
                combine=GATYS_COMBINES[0], inside=False, seed=0, init="content", style_scale=1.0, color="none",
                color_space="yiq", color_direction="style_to_content", optimizer="lbfgs", lr=0,
                content_layers=["relu4_2"], style_layers=["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
                style_layer_weights="", split="relu2_1", noise_ratio=0.5, upscale="detail", schedule_text="",
                pooling="max")
    args.update(kw)
    start = None if args["start"] is None else handle_file(str(args["start"]))
    return [handle_file(str(content)), *slots, *args["weights"], args["content_weight"], args["style_weight"],
            args["tv_weight"], args["num_steps"], args["size"], GATYS_SCHEDULES[schedule] if isinstance(schedule, int)
            else schedule, args["color"], args["color_method"], args["seed"], args["time_limit"], start,
            args["spatial"], args["editor"], *args["regions"], args["combine"], args["inside"], args["init"],
            args["style_scale"], args["color_space"], args["color_direction"], args["optimizer"], args["lr"],
            args["content_layers"], args["style_layers"], args["style_layer_weights"], args["split"],
            args["noise_ratio"], args["upscale"], args["schedule_text"], args["pooling"]]


def test_gatys_endpoint_runs_to_the_end(client, images):
    content, style, style2 = images
    job = client.submit(*gatys_args(content, [style]), api_name="/gatys")
    image, status, png, curve = job.result()
    assert max(image_size(image)) == 128
    # while it runs, the status gives the step, the loss and an estimate of the time left
    assert any(re.fullmatch(r"Step 5/10 at 128x\d+: loss \S+ \(content \d+%, style \d+%\); "
                            r"(a few seconds|about \d+ s) left", update[1]) for update in job.outputs())
    loss = re.search(r"loss (\S+) \(content \d+%, style \d+%\)", status)
    assert status.startswith("Done. 10 steps") and loss
    assert curve["columns"] == ["step", "term", "log10 loss", "loss"]
    totals = [(step, log, value) for step, term, log, value in curve["data"] if term == "total"]
    assert [step for step, _, _ in totals] == list(range(1, 11))  # the loss plot: every step's total
    # the status gives the returned image's loss: the point after the last step is measured too
    assert float(loss[1]) <= min(value for _, _, value in totals) * (1 + 1e-3)
    assert all(10**log == pytest.approx(value, rel=1e-6) for _, _, log, value in curve["data"])
    assert {term for _, term, _, _ in curve["data"]} == {"total", "content", "style"}
    image, status, png, _ = client.predict(*gatys_args(content, [style], schedule=1), api_name="/gatys")
    assert max(image_size(image)) == 128
    assert status.startswith("Done. 62 steps")  # fast: 50 at 64 px, 12 at 128 px
    assert read_settings(png)["method"] == "gatys"
    # refine the result: it is the start image
    image, status, png, _ = client.predict(*gatys_args(content, [style], start=image), api_name="/gatys")
    assert status.startswith("Done. 10 steps") and read_settings(png)["settings"]["init_image"] is True
    assert "stretched" not in status
    # a start image of another shape is stretched, and the status says so
    _, status, _, _ = client.predict(*gatys_args(content, [style], start=style), api_name="/gatys")
    assert "start image: its aspect ratio differs from the content's" in status
    # a time limit no step fits in: the content carried up to the size
    image, status, png, _ = client.predict(*gatys_args(content, [style], schedule=1, time_limit=1e-6),
                                           api_name="/gatys")
    assert max(image_size(image)) == 128 and status.startswith("Time limit reached (0+0 of 50+12 steps)")
    assert "loss not measured (no step ran)" in status
    with pytest.raises(Exception, match="content_weight must be a finite number >= 0"):
        client.predict(*gatys_args(content, [style], content_weight=-1.0), api_name="/gatys")
    with pytest.raises(Exception, match="greater than maximum value 4294967295"):
        client.predict(*gatys_args(content, [style], seed=2**70), api_name="/gatys")
    # "inside" guidance without spatial control: the run says it did nothing
    _, status, png, _ = client.predict(*gatys_args(content, [style], inside=True), api_name="/gatys")
    assert status.startswith("Done. 10 steps") and "does nothing without spatial control" in status
    assert read_settings(png)["settings"]["guidance"] == "simple"


def test_a_cancelled_gatys_event_stops_its_job(client, images):
    """Closing the page or cancelling the event must not leave the optimisation running for nobody."""
    import app

    content, style, _ = images
    job = client.submit(*gatys_args(content, [style], schedule=3, schedule_text="64x100000"), api_name="/gatys")
    key = f"gatys:{client.session_hash}"
    wait_until(lambda: job.status().code.name == "ITERATING" and key in app._CANCELS, "the job never started")
    stop = app._CANCELS[key]
    time.sleep(0.5)
    assert not stop.is_set()
    job.cancel()
    wait_until(stop.is_set, "the cancelled event left its job running", seconds=10)


def test_stop_buttons_keep_the_work_so_far_and_then_find_nothing_running(client, images):
    from gradio_client import handle_file

    import app

    content, style, _ = images

    def stop_when_running(job, key: str, endpoint: str) -> str:
        wait_until(lambda: job.status().code.name == "ITERATING" and key in app._CANCELS, "the job never started")
        return client.predict(api_name=endpoint)

    def status_said(job, text: str) -> Callable[[], bool]:
        return lambda: any(text in out[4] for out in job.outputs())

    job = client.submit(*gatys_args(content, [style], schedule=3, schedule_text="64x100000"), api_name="/gatys")
    assert stop_when_running(job, f"gatys:{client.session_hash}", "/gatys_stop") == "Stopping after the current step..."
    image, status, png, _ = job.result(timeout=30)
    assert status.startswith("Stopped early; kept the best image so far.") and image_size(image) == (64, 50)
    assert client.predict(api_name="/gatys_stop") == "Nothing is running."

    job = client.submit(handle_file(str(style)), "stopped", 2000, 64, next(iter(app.BANK_RECIPES)), None,
                        api_name="/train_bank")
    assert stop_when_running(job, f"train:{client.session_hash}", "/train_stop") == "Stopping after the current step..."
    _, status, bank_file = job.result(timeout=60)
    assert status.startswith("Stopped early; bank 'stopped' is ready") and bank_file.endswith("stopped.safetensors")
    assert client.predict(api_name="/train_stop") == "Nothing is training."

    job = client.submit(handle_file(str(content)), handle_file(str(style)), 500, 128, app.COMPARE_BANK_MODES[1], 1000,
                        api_name="/compare")
    wait_until(status_said(job, "StyleBank learning a bank"), "the bank learning never started")
    assert client.predict(api_name="/compare_stop") == "Stopping after the current step..."
    adain_img, bank_img, gatys_img, table, status = job.result(timeout=60)
    assert status.startswith("Stopped early.") and adain_img and bank_img and gatys_img is None
    assert len(table["data"]) == 2 and table["data"][0][0] == "AdaIN"  # Gatys never started
    assert re.fullmatch(r"StyleBank \(new bank, stopped after \d+ of 1000 steps\)", table["data"][1][0])
    assert client.predict(api_name="/compare_stop") == "Nothing is running."

    large = content.with_name("large.png")  # 500 steps at 800 px take long enough to stop, even for tiny models
    gradient_image(800, 600).save(large)
    job = client.submit(handle_file(str(large)), handle_file(str(style)), 500, 1024, app.COMPARE_BANK_MODES[1], 10,
                        api_name="/compare")  # Stop still reaches Gatys after the bank learning ended
    wait_until(status_said(job, "Gatys: step"), "Gatys never started")
    assert client.predict(api_name="/compare_stop") == "Stopping after the current step..."
    *_, gatys_img, table, status = job.result(timeout=60)
    assert status.startswith("Stopped early.") and gatys_img
    assert re.fullmatch(r"Gatys \(stopped after \d+ of 500 L-BFGS steps\)", table["data"][2][0])


def test_a_background_job_is_cancelled_only_when_left_before_its_end():
    import threading

    import app

    def counter(limit: int, cancel: threading.Event, progress) -> int:
        step = 0
        while step < limit and not cancel.is_set():
            step += 1
            progress(step)
        return step

    cancel = threading.Event()
    job = app.BackgroundJob(lambda progress, cancel: counter(5, cancel, progress), cancel=cancel)
    assert list(job) == [1, 2, 3, 4, 5] and job.result("failed") == 5 and not cancel.is_set()

    cancel = threading.Event()
    job = app.BackgroundJob(lambda progress, cancel: counter(10**9, cancel, progress), cancel=cancel)
    updates = iter(job)
    assert [next(updates) for _ in range(3)] == [1, 2, 3]
    updates.close()  # what Gradio does to the handler when the page goes away
    assert cancel.is_set() and 3 <= job.result("failed") < 10**9  # it stopped after its current step


def _os_threads_settle_to(count: int) -> int:
    """This process's OS threads, once they are at most ``count`` or 5 s have passed (an ended thread, and the
    OpenMP team it led, leave the list a moment after ``join``)."""
    deadline = time.monotonic() + 5
    while (now := len(os.listdir("/proc/self/task"))) > count and time.monotonic() < deadline:
        time.sleep(0.01)
    return now


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_handlers_run_on_threads_that_end_with_them():
    import contextvars
    import threading

    import torch

    import app

    page = contextvars.ContextVar("page", default=None)
    seen: list[tuple[threading.Thread, str | None]] = []

    def torch_work(n: int) -> float:  # big enough for a parallel region: an OpenMP team where threads > 1
        seen.append((threading.current_thread(), page.get()))
        return float(torch.ones(1 << 20).mul_(n).sum())

    @app.studio_handler
    def plain(n):
        return torch_work(n)

    @app.studio_handler
    def steps(n):
        for k in range(n):
            yield torch_work(k)

    @app.studio_handler
    def bad():
        raise ValueError("no such layer")

    page.set("session 1")
    before = len(os.listdir("/proc/self/task"))
    assert plain(3) == 3.0 * (1 << 20) and list(steps(3)) == [0.0, 1.0 * (1 << 20), 2.0 * (1 << 20)]
    assert _os_threads_settle_to(before) <= before  # no worker thread or OpenMP team outlived its call
    threads = {thread for thread, _ in seen}
    assert len(threads) == 4 and threading.current_thread() not in threads  # each step on a thread of its own
    assert not any(thread.is_alive() for thread in threads)
    assert {name for _, name in seen} == {"session 1"}  # in the caller's context (Gradio's page)
    with pytest.raises(app.gr.Error, match="no such layer"):
        bad()

    closed = threading.Event()

    @app.studio_handler
    def endless():
        try:
            while True:
                yield 1
        finally:
            closed.set()

    updates = endless()
    assert next(updates) == 1
    updates.close()  # what Gradio does when the page goes away
    assert closed.is_set()


def test_gatys_start_and_style_scale_reach_the_library(client, images):
    import numpy as np

    content, style, _ = images
    runs = {seed: client.predict(*gatys_args(content, [style], init="noise", seed=seed, style_scale=0.5),
                                 api_name="/gatys") for seed in (1, 2)}
    settings = read_settings(runs[1][2])["settings"]
    assert settings["init"] == "noise" and settings["seed"] == 1 and settings["style_scale"] == 0.5
    with Image.open(runs[1][0]) as first, Image.open(runs[2][0]) as second:
        assert not np.array_equal(np.asarray(first), np.asarray(second))
    with pytest.raises(Exception, match="init='noise' starts from noise alone"):
        client.predict(*gatys_args(content, [style], init="noise", start=style), api_name="/gatys")


def test_gatys_colour_controls_reach_the_library(client, images):
    from app import GATYS_COLOR_DIRECTIONS
    from styletransfer import gatys

    assert tuple(value for _, value in GATYS_COLOR_DIRECTIONS) == gatys.COLOR_DIRECTIONS
    content, style, _ = images
    for controls in (dict(color="histogram", color_direction="content_to_style"),
                     dict(color="luminance", color_space="ycbcr")):
        _, status, png, _ = client.predict(*gatys_args(content, [style], **controls), api_name="/gatys")
        settings = read_settings(png)["settings"]
        assert status.startswith("Done. 10 steps") and {k: settings[k] for k in controls} == controls


def test_gatys_layers_and_optimiser_reach_the_library(client, images):
    content, style, _ = images
    controls = dict(optimizer="adam", lr=0.05, content_layers=["relu3_2"], style_layers=["relu2_1", "relu1_1"],
                    style_layer_weights="3, 1", pooling="avg")
    _, status, png, _ = client.predict(*gatys_args(content, [style], **controls), api_name="/gatys")
    settings = read_settings(png)["settings"]
    assert status.startswith("Done. 10 steps") and settings["optimizer"] == "adam" and settings["lr"] == 0.05
    assert settings["pooling"] == "avg"
    assert settings["content_layers"] == ["relu3_2"] and settings["style_layers"] == ["relu1_1", "relu2_1"]
    assert settings["style_layer_weights"] == [3.0, 1.0]
    _, _, png, _ = client.predict(*gatys_args(content, [style]), api_name="/gatys")
    assert read_settings(png)["settings"]["lr"] is None  # 0: the optimiser's default
    assert read_settings(png)["settings"]["pooling"] == "max"
    for bad, message in ((dict(style_layers=[]), "tick at least one style layer"),
                         (dict(content_layers=["relu9_9"]), "'relu9_9' .* is not in the list of choices"),
                         (dict(style_layer_weights="1, 2"), "one number per style layer \\(5: relu1_1"),
                         (dict(style_layer_weights="1, x, 1, 1, 1"), "type numbers separated by commas"),
                         (dict(style_layer_weights="1, -1, 1, 1, 1"), "style_layer_weights must be >= 0")):
        with pytest.raises(Exception, match=message):
            client.predict(*gatys_args(content, [style], **bad), api_name="/gatys")


def test_gatys_custom_schedule_noise_share_and_upscale_reach_the_library(client, images):
    content, style, _ = images
    image, status, png, _ = client.predict(*gatys_args(content, [style], schedule=3, schedule_text="48x4; 96X3",
                                                       init="content+noise", noise_ratio=0.25, upscale="bicubic"),
                                           api_name="/gatys")
    settings = read_settings(png)["settings"]
    assert max(image_size(image)) == 96 and status.startswith("Done. 7 steps")  # the size slider said 128
    assert "The custom schedule's last size, 96 px, is the output's (not the size slider's 128 px)" in status
    assert settings["scales"] == [48, 96] and settings["scale_steps"] == [4, 3]
    assert settings["noise_ratio"] == 0.25 and settings["upscale"] == "bicubic" and settings["size"] == 96
    for text, message in (("", "custom schedule: a schedule needs at least one size x steps"),
                          ("96x3, 48x4", "custom schedule: the sizes must grow"),
                          ("48x4, 4000x1", r"custom schedule: the last size may be at most \d+ px here"),
                          ("48 by 4", "write each size as <long side>x<steps>"), ("48x0", "at least one step")):
        with pytest.raises(Exception, match=message):
            client.predict(*gatys_args(content, [style], schedule=3, schedule_text=text), api_name="/gatys")


def test_gatys_settings_from_a_result_set_the_controls_that_redo_its_run(client, images, tmp_path):
    import numpy as np
    from gradio_client import handle_file

    import app

    content, style, style2 = images
    made = dict(schedule_text="48x4, 96x3", init="content+noise", seed=3, noise_ratio=0.3, pooling="avg",
                weights=(0.75, 0.25, 0.5, 0.5), style_layer_weights="1, 1, 1, 2, 2", upscale="bicubic",
                color="histogram", color_method="eigen", style_weight=3e5, lr=0.8)
    image, _, png, _ = client.predict(*gatys_args(content, [style, style2], schedule=3, **made), api_name="/gatys")
    *values, status = client.predict(handle_file(png), api_name="/gatys_settings")
    got = dict(zip(app.GATYS_SETTINGS, values))
    assert status.startswith("Controls set from gatys_result.png: custom schedule 48x4, 96x3 (the steps that run "
                             "took, without a time limit), seed 3. Upload its content and style image(s)")
    assert got["schedule"] == app.GATYS_SCHEDULES[3] and got["time_limit"] == 0 and got["pooling"] == "avg"
    assert (got["weight1"], got["weight2"]) == (0.75, 0.25) and got["style_layer_weights"] == "1, 1, 1, 2, 2"
    again, _, _, _ = client.predict(*gatys_args(
        content, [style, style2], schedule=got.pop("schedule"),
        weights=(got.pop("weight1"), got.pop("weight2"), 0.5, 0.5),
        **{k: v for k, v in got.items() if not k.startswith("weight")}), api_name="/gatys")
    with Image.open(image) as first, Image.open(again) as second:
        assert np.array_equal(np.asarray(first), np.asarray(second))  # the same run, pixel for pixel
    _, _, png, _ = client.predict(*gatys_args(content, [style, style2], combine=app.GATYS_COMBINES[2], split="relu3_1"),
                                  api_name="/gatys")
    *values, status = client.predict(handle_file(png), api_name="/gatys_settings")
    got = dict(zip(app.GATYS_SETTINGS, values))
    assert got["combine"] == app.GATYS_COMBINES[2] and got["split"] == "relu3_1"
    _, _, png = client.predict(*adain_args(content, [style]), api_name="/adain")
    with pytest.raises(Exception, match="was made by adain, not Gatys: its settings do not apply here"):
        client.predict(handle_file(png), api_name="/gatys_settings")
    (tmp_path / "notes.png").write_bytes(b"not an image")
    with pytest.raises(Exception, match="notes.png carries no style-transfer settings"):
        client.predict(handle_file(str(tmp_path / "notes.png")), api_name="/gatys_settings")


def test_gatys_settings_say_what_a_record_cannot_set(tmp_path):
    import app
    from styletransfer import gatys
    from styletransfer.imageio import save_image

    settings = {**dataclasses.asdict(gatys.GatysConfig()), "scales": [512, 2048], "scale_steps": [50, 20],
                "steps_taken": [50, 3], "stopped": True, "size": 2048, "masks": 2, "style_weights": None,
                "style_masks": [True, False], "init_image": True, "style_scale": 3.0,
                "content_layers": ["conv4_2"], "style_layers": ["relu1_1", "relu2_1", "relu3_1"],
                "style_layer_weights": [1, 2, 3]}
    save_image(gradient_image(32, 24), tmp_path / "r.png", method="gatys", settings=settings)
    values, status = app.gatys_controls_from(str(tmp_path / "r.png"))
    assert values["schedule_text"] == "512x50, 2048x20"  # stopped by hand: its planned steps
    assert values["spatial"] == app.SPATIAL_MODES[1] and values["style_scale"] == 2.0
    assert values["content_layers"] == [] and values["style_layer_weights"] == "1, 2, 3"
    for note in (f"above this server's {app.MAX_SIDE} px", "stopped early: these are its planned steps",
                 "layers other than ReLUs", "outside this tab's 0.25-2: set to 2", "Paint its regions again",
                 "Paint the parts of its style images again", "Upload its start image again"):
        assert note in status, note
    rows = [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    save_image(gradient_image(32, 24), tmp_path / "s.png", method="gatys",
               settings={**settings, "style_weights": rows, "masks": 0, "style_masks": None})
    values, status = app.gatys_controls_from(str(tmp_path / "s.png"))
    assert (values["combine"], values["split"]) == (app.GATYS_COMBINES[1], "relu2_1")
    save_image(gradient_image(32, 24), tmp_path / "t.png", method="gatys",
               settings={**settings, "style_weights": [[0.5, 1.0, 0.0], [0.5, 0.0, 1.0]], "masks": 0})
    values, status = app.gatys_controls_from(str(tmp_path / "t.png"))
    assert values["combine"] == app.GATYS_COMBINES[0] and "no split between two styles" in status
    save_image(gradient_image(32, 24), tmp_path / "u.png", method="gatys",
               settings={**settings, "style_weights": [0.3, 0.2, 0.2, 0.2, 0.1], "masks": 0})
    values, status = app.gatys_controls_from(str(tmp_path / "u.png"))
    assert [values[f"weight{i}"] for i in range(1, 5)] == [0.3, 0.2, 0.2, 0.2]
    assert "It blended 5 styles and this tab takes 4: the first 4 are set." in status


def test_gatys_spatial_control_gives_each_style_a_region(client, images):
    content, style, style2 = images
    image, status, png, _ = client.predict(*gatys_args(content, [style, style2], spatial="auto regions (K-means)",
                                                       inside=True), api_name="/gatys")
    settings = read_settings(png)["settings"]
    assert status.startswith("Done. 10 steps") and settings["masks"] == "auto regions"
    assert settings["style_weights"] is None
    assert settings["guidance"] == "inside" and "does nothing" not in status
    shares = re.search(r"K-means regions, largest first: style 1 (\d+)%, style 2 (\d+)% of the image", status)
    assert shares and int(shares[1]) >= int(shares[2]) and 99 <= int(shares[1]) + int(shares[2]) <= 101
    with pytest.raises(Exception, match="paint a region"):
        client.predict(*gatys_args(content, [style, style2], spatial="painted regions"), api_name="/gatys")
    from gradio_client import handle_file

    strokes = Image.new("RGBA", (72, 56))
    strokes.paste((230, 25, 75, 255), (0, 0, 36, 56))  # style 1's brush on the left half
    strokes.paste((60, 180, 75, 255), (36, 0, 72, 56))  # style 2's on the right
    strokes.save(images[0].parent / "strokes.png")
    painted = {"background": handle_file(str(content)), "layers": [handle_file(str(images[0].parent / "strokes.png"))],
               "composite": None}
    _, status, png, _ = client.predict(*gatys_args(content, [style, style2], spatial="painted regions", editor=painted),
                                       api_name="/gatys")
    assert status.startswith("Done. 10 steps") and read_settings(png)["settings"]["masks"] == 2
    # a region painted on style 2 (its top half): style 2's statistics come from there only
    top = Image.new("RGBA", (48, 40))
    top.paste((60, 180, 75, 255), (0, 0, 48, 20))
    top.save(images[0].parent / "top.png")
    region = {"background": handle_file(str(style2)), "layers": [handle_file(str(images[0].parent / "top.png"))],
              "composite": None}
    _, status, png, _ = client.predict(*gatys_args(content, [style, style2], regions=(None, region, None, None)),
                                       api_name="/gatys")
    settings = read_settings(png)["settings"]
    assert status.startswith("Done. 10 steps") and settings["style_masks"] == [False, True]


def test_gatys_takes_up_to_four_styles_each_with_its_own_slot_and_colour(client, images):
    """Styles in slots 1, 3 and 4 (2 empty): the weights blend in slot order, K-means names the slots, and a
    painted region in style 3's yellow goes to style 3."""
    from gradio_client import handle_file

    content, style, style2 = images
    given = [style, None, style2, style]
    _, status, png, _ = client.predict(*gatys_args(content, given, weights=(0.6, 0.9, 0.2, 0.2)), api_name="/gatys")
    settings = read_settings(png)["settings"]
    assert status.startswith("Done. 10 steps") and settings["style_weights"] == pytest.approx([0.6, 0.2, 0.2])
    _, status, png, _ = client.predict(*gatys_args(content, given, spatial="auto regions (K-means)"),
                                       api_name="/gatys")
    assert read_settings(png)["settings"]["masks"] == "auto regions"  # one for each of the 3 styles
    assert re.search(r"largest first: style 1 \d+%, style 3 \d+%, style 4 \d+% of the image", status), status
    strokes = Image.new("RGBA", (72, 56))
    strokes.paste((230, 25, 75, 255), (0, 0, 24, 56))  # style 1's red
    strokes.paste((255, 225, 25, 255), (24, 0, 48, 56))  # style 3's yellow
    strokes.paste((67, 99, 216, 255), (48, 0, 72, 56))  # style 4's blue
    strokes.save(images[0].parent / "strokes3.png")
    painted = {"background": handle_file(str(content)),
               "layers": [handle_file(str(images[0].parent / "strokes3.png"))], "composite": None}
    _, status, png, _ = client.predict(*gatys_args(content, given, spatial="painted regions", editor=painted),
                                       api_name="/gatys")
    assert status.startswith("Done. 10 steps") and read_settings(png)["settings"]["masks"] == 3
    with pytest.raises(Exception, match=r"painted in yellow \(style 3\), but that style has no image"):
        client.predict(*gatys_args(content, [style, style2, None, style], spatial="painted regions", editor=painted),
                       api_name="/gatys")


def test_gatys_scale_control_takes_fine_texture_from_one_style_and_structure_from_the_other(client, images):
    from app import GATYS_COMBINES

    content, style, style2 = images
    _, status, png, _ = client.predict(*gatys_args(content, [style, style2], combine=GATYS_COMBINES[2]),
                                       api_name="/gatys")
    weights = read_settings(png)["settings"]["style_weights"]
    assert status.startswith("Done. 10 steps") and weights == [[0, 0, 1, 1, 1], [1, 1, 0, 0, 0]]
    _, _, png, _ = client.predict(*gatys_args(content, [style, style2], combine=GATYS_COMBINES[1], split="relu3_1",
                                              style_layers=["relu1_1", "relu3_1", "relu4_1"]), api_name="/gatys")
    assert read_settings(png)["settings"]["style_weights"] == [[1, 1, 0], [0, 0, 1]]
    with pytest.raises(Exception, match="style layers on both sides of its split after relu4_1"):
        client.predict(*gatys_args(content, [style, style2], combine=GATYS_COMBINES[1], split="relu4_1",
                                   style_layers=["relu1_1", "relu3_1", "relu4_1"]), api_name="/gatys")
    for given in ([style], [style, None, style2], [style, style2, style]):
        with pytest.raises(Exception, match="upload style 1 and style 2, and no other"):
            client.predict(*gatys_args(content, given, combine=GATYS_COMBINES[1]), api_name="/gatys")
    with pytest.raises(Exception, match="spatial control .* or scale control .*, not both"):
        client.predict(*gatys_args(content, [style, style2], combine=GATYS_COMBINES[1],
                                   spatial="auto regions (K-means)"), api_name="/gatys")


def test_a_painted_style_region_is_everything_painted_in_any_colour():
    import numpy as np

    import app

    layer = np.zeros((40, 60, 4), np.uint8)
    layer[:10, :30] = (230, 25, 75, 255)
    layer[30:, 50:] = (1, 2, 3, 255)
    mask = np.asarray(app.painted_region({"background": None, "layers": [layer], "composite": None}, (120, 80))) > 0
    assert mask[:20, :60].all() and mask[60:, 100:].all() and mask.sum() == 20 * 60 + 20 * 20
    assert app.painted_region({"background": None, "layers": [np.zeros((40, 60, 4), np.uint8)]}, (60, 40)) is None
    assert app.painted_region(None, (60, 40)) is None


@pytest.mark.parametrize("bank_mode", ["nearest zoo bank", "quick incremental bank"])
def test_compare_endpoint_reports_time_and_losses_for_each_method(client, images, bank_mode):
    from gradio_client import handle_file

    content, style, _ = images
    adain_img, bank_img, gatys_img, table, status = client.predict(
        handle_file(str(content)), handle_file(str(style)), 10, 128, bank_mode, 10, api_name="/compare")
    assert image_size(adain_img) == image_size(bank_img) == image_size(gatys_img) == (72, 56)
    rows = table["data"]
    bank_label = "StyleBank (nearest bank: " if bank_mode.startswith("nearest") else "StyleBank (new bank, 10 steps)"
    assert [r[0][: len(bank_label)] for r in rows] == ["AdaIN", bank_label, "Gatys (10 L-BFGS steps)"]
    assert table["headers"] == ["method", "seconds", "content loss", "LPIPS to content", "style loss"]
    assert all(r[1] >= 0 and r[2] >= 0 and r[3] > 0 and r[4] >= 0 for r in rows)
    assert status.startswith("Done.") and "LPIPS" in status


def test_zoo_pull_and_push_give_readable_answers(client, monkeypatch):
    assert "from embedded" in client.predict("vgg16.normalized", api_name="/zoo_pull")
    with pytest.raises(Exception, match="token"):
        client.predict("vgg16.normalized", "me/models", "", api_name="/zoo_push")
    with pytest.raises(Exception, match="owner/name"):
        client.predict("vgg16.normalized", "no-slash", "secret", api_name="/zoo_push")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(Exception, match="HF_HUB_OFFLINE") as info:
        client.predict("vgg16.normalized", "me/models", "hf_secret_value", api_name="/zoo_push")
    assert "hf_secret_value" not in str(info.value)


def stylebank_args(content, names, mode="linear fusion", k=2, preserve_color="none", color_method="cholesky"):
    from gradio_client import handle_file

    slots = []
    for i in range(4):
        slots += [names[i] if i < len(names) else None, 1.0]
    return [handle_file(str(content)), *slots, mode, k, None, 0, preserve_color, color_method]


def test_stylebank_linear_and_kmeans_fusion(client, images):
    content, _, _ = images
    image, region_map, status, png = client.predict(*stylebank_args(content, ["waves", "dots"]), api_name="/stylebank")
    assert image_size(image) == (72, 56) and region_map is None
    assert read_settings(png)["settings"]["weights"] == {"waves": 0.5, "dots": 0.5}
    _, _, _, png = client.predict(*stylebank_args(content, ["waves"], preserve_color="luminance"),
                                  api_name="/stylebank")
    assert read_settings(png)["settings"]["preserve_color"] == "luminance"
    image, region_map, status, _ = client.predict(*stylebank_args(content, ["waves", "dots"], "K-means regions", 3),
                                                  api_name="/stylebank")
    assert image_size(region_map) == (72, 56)
    with pytest.raises(Exception, match="choose at least one style bank"):
        client.predict(*stylebank_args(content, []), api_name="/stylebank")


def test_train_a_bank_then_use_it_and_refuse_a_foreign_one(client, images, tmp_path):
    import torch
    from gradio_client import handle_file

    from styletransfer.stylebank import AutoEncoderConfig, BankConfig, StyleBank, StyleBankAutoEncoder, save_bank

    content, style, _ = images
    from app import BANK_RECIPES

    first, paper = BANK_RECIPES
    preview, status, bank_file = client.predict(handle_file(str(style)), "fresh", 10, 64, first, None,
                                                api_name="/train_bank")
    assert "bank 'fresh' is ready" in status
    assert image_size(preview) == (64, 64)
    image, _, _, _ = client.predict(*stylebank_args(content, ["fresh"]), api_name="/stylebank")
    assert image_size(image) == (72, 56)
    assert StyleBank.extra_metadata(bank_file)["init"] == "auto"
    _, status, bank_file = client.predict(handle_file(str(style)), "paper", 10, 64, paper, None, api_name="/train_bank")
    assert "bank 'paper' is ready" in status and StyleBank.extra_metadata(bank_file)["init"] == "random"
    with pytest.raises(Exception, match="bank name"):
        client.predict(handle_file(str(style)), "bad name!", 10, 64, first, None, api_name="/train_bank")

    torch.manual_seed(3)
    other = StyleBankAutoEncoder(AutoEncoderConfig(channels=(4, 8, 16)))
    foreign = save_bank(StyleBank(BankConfig("alien", 16, 3, other.fingerprint())), tmp_path / "alien.safetensors")
    with pytest.raises(Exception, match="another StyleBank auto-encoder"):
        client.predict(handle_file(str(foreign)), "", "", api_name="/stylebank_add")
    with pytest.raises(Exception, match="one of these formats"):
        client.predict(handle_file(str(content)), "", "", api_name="/stylebank_add")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(Exception, match="not a readable safetensors"):
        client.predict(handle_file(str(garbage)), "", "", api_name="/stylebank_add")
    with pytest.raises(Exception, match="token"):
        client.predict(handle_file(str(foreign)), "me/banks", "", api_name="/push_bank")


def test_train_on_uploaded_photos_resized_to_the_crop(client, images, tmp_path):
    from gradio_client import handle_file

    from app import BANK_RECIPES

    content, style, style2 = images
    photos = [handle_file(str(content)), handle_file(str(style2))]
    preview, status, bank_file = client.predict(handle_file(str(style)), "mine", 10, 96, next(iter(BANK_RECIPES)),
                                                photos, api_name="/train_bank")
    assert "bank 'mine' is ready" in status
    assert image_size(preview) == (96, 96)  # the first photo, 72x56, was resized to a 96 px short side
    text, broken = tmp_path / "notes.txt", tmp_path / "broken.png"
    text.write_text("not a photo")
    broken.write_bytes(b"\x89PNG not really")
    for upload, message in ((text, "one of these formats"), (broken, "broken.png")):
        with pytest.raises(Exception, match=message):
            client.predict(handle_file(str(style)), "mine", 10, 96, next(iter(BANK_RECIPES)),
                           [handle_file(str(upload))], api_name="/train_bank")


def test_without_a_photo_set_training_asks_for_photos_and_compare_learns_on_the_content(tiny_models):
    import dataclasses

    import app

    def no_photo_set(size: int):
        raise FileNotFoundError("this server has no training photos")

    models = dataclasses.replace(tiny_models, train_contents=no_photo_set)
    with pytest.raises(ValueError, match="upload a few photos under \"Training photos\""):
        app.training_photos(models, None, 64, [])
    notes: list[str] = []
    photos = app.training_photos(models, [gradient_image(120, 90), gradient_image(50, 70)] * 40, 64, notes)
    assert len(photos) == app.MAX_TRAIN_PHOTOS and notes == ["Used the first 64 of your 80 photos."]
    assert [tuple(p.shape[-2:]) for p in photos[:2]] == [(64, 85), (90, 64)]
    content, style = gradient_image(72, 56), gradient_image(40, 40).rotate(90)
    session = types.SimpleNamespace(session_hash="test")
    *_, (_, bank_img, _, rows, status) = app.make_compare_handler(models)(content, style, 5, 128,
                                                                       app.COMPARE_BANK_MODES[1], 5, session)
    assert rows[1][0] == "StyleBank (new bank, 5 steps)" and bank_img.size == content.size
    assert "learned on crops of your content photo" in status


def test_the_servers_photo_set_is_scaled_up_to_the_crop(tmp_path, monkeypatch):
    import app

    for i, size in enumerate([(100, 80), (80, 100), (150, 90)]):
        gradient_image(*size).save(tmp_path / f"photo{i}.png")
    monkeypatch.setenv("STUDIO_TRAIN_CONTENT", str(tmp_path))
    app._train_contents.cache_clear()
    try:
        assert all(min(p.shape[-2:]) >= 320 for p in app._train_contents(320))
        assert sorted(tuple(p.shape[-2:]) for p in app._train_contents(64)) == [(80, 100), (90, 150), (100, 80)]
        monkeypatch.setenv("STUDIO_TRAIN_CONTENT", str(tmp_path / "missing"))
        app._train_contents.cache_clear()
        with pytest.raises(FileNotFoundError, match="STUDIO_TRAIN_CONTENT"):
            app._train_contents(64)
    finally:
        app._train_contents.cache_clear()


def test_examples_are_the_classic_public_domain_pairs_where_the_folder_has_them(tmp_path, monkeypatch):
    import app

    (tmp_path / "content").mkdir(), (tmp_path / "styles").mkdir()
    for name in ["avril.jpg", "golden_gate.jpg", "tubingen.jpg"]:
        gradient_image(32, 32).save(tmp_path / "content" / name)
    for name in ["antimonocromatismo.jpg", "starry_night.jpg", "the_scream.jpg"]:
        gradient_image(32, 32).save(tmp_path / "styles" / name)
    monkeypatch.setenv("STUDIO_EXAMPLES", str(tmp_path))
    names = [[Path(p).name for p in pair] for pair in app.example_pairs()]
    assert names == [["tubingen.jpg", "starry_night.jpg"], ["golden_gate.jpg", "the_scream.jpg"]]
    monkeypatch.chdir(tmp_path / "styles")  # a relative folder is taken from the app's folder, not the working one
    monkeypatch.setenv("STUDIO_EXAMPLES", os.path.relpath(tmp_path, app.REPO))
    assert [[Path(p).name for p in pair] for pair in app.example_pairs()] == names

    for name in ["tubingen.jpg", "golden_gate.jpg"]:  # none of the pairs left: the files in order
        (tmp_path / "content" / name).unlink()
    gradient_image(32, 32).save(tmp_path / "content" / "bridge.png")
    names = [[Path(p).name for p in pair] for pair in app.example_pairs()]
    assert names == [["avril.jpg", "antimonocromatismo.jpg"], ["bridge.png", "starry_night.jpg"]]

    for folder in ["content", "styles"]:
        for f in (tmp_path / folder).iterdir():
            f.unlink()
    assert app.example_pairs() == []
    monkeypatch.setenv("STUDIO_EXAMPLES", str(tmp_path / "missing"))
    assert app.example_pairs() == []


def test_painted_strokes_become_one_mask_per_style_colour():
    import numpy as np

    import app

    layer = np.zeros((40, 60, 4), np.uint8)
    layer[:, :30] = (230, 25, 75, 255)  # style 1's brush (red)
    layer[:, 30:] = (60, 180, 75, 255)  # style 2's brush (green)
    masks = app.painted_masks({"background": None, "layers": [layer], "composite": None}, [1, 2], (120, 80))
    assert [m.size for m in masks] == [(120, 80), (120, 80)]
    left, right = (np.asarray(m) > 0 for m in masks)
    assert left[:, :60].all() and not left[:, 60:].any() and right[:, 60:].all()
    with pytest.raises(Exception, match="no region is painted for style"):
        app.painted_masks({"layers": [layer]}, [1, 2, 3], (120, 80))
    # styles 1 and 3 given (style 2's slot empty): style 3 paints in its own yellow, not in green
    layer[:, 30:] = (255, 225, 25, 255)
    left, right = (np.asarray(m) > 0 for m in app.painted_masks({"layers": [layer]}, [1, 3], (60, 40)))
    assert left[:, :30].all() and not left[:, 30:].any() and right[:, 30:].all() and not right[:, :30].any()
    with pytest.raises(Exception, match=r"painted in yellow \(style 3\), but that style has no image"):
        app.painted_masks({"layers": [layer]}, [1, 2], (60, 40))


def test_first_load_preselects_a_bank_and_gallery_clicks_fill_bank_one(tiny_models):
    import gradio as gr

    import app

    items, first, *rest = app.first_load_banks(tiny_models, {})
    assert [name for _, name in items] == ["waves", "dots"]
    assert first["value"] == "waves" and first["choices"] == ["waves", "dots"] and "value" not in rest[0]
    click = gr.SelectData(None, {"index": 1, "value": {"caption": "dots"}})
    assert app.pick_from_gallery(items, click) == "dots"
    assert app.pick_from_gallery([], click) == gr.update()


def test_results_that_other_events_read_are_not_upload_boxes(tiny_models):
    import app

    config = app.build_demo(tiny_models).get_config_file()
    components = {c["id"]: c for c in config["components"]}
    read = {i for dep in config["dependencies"] for i in dep["inputs"]}
    endpoints = {"gatys", "adain", "stylebank", "train_bank", "compare"}
    results = {i for dep in config["dependencies"] if dep.get("api_name") in endpoints
               for i in dep["outputs"] if components[i]["type"] in ("image", "file")}
    props = [components[i]["props"] for i in results & read]
    assert {p["label"] for p in props} == {"Result (updates while it runs)", "Bank file (shareable)"}
    assert all(p["interactive"] is False for p in props)
    # The bank gallery is read by its click event, yet a user must not upload into it or clear it.
    galleries = [c["props"] for c in components.values() if c["type"] == "gallery"]
    assert [p["label"] for p in galleries] == ["Style banks"] and galleries[0]["interactive"] is False


def test_a_changed_control_restylizes_once_the_inputs_are_there_and_keeps_the_result_when_it_fails(
        tiny_models, images):
    """The quick tabs' results follow their controls (``app.follow_controls``): a change before the content and a
    style are there changes nothing, a change with them re-stylises, and one that fails keeps the last result and
    says why in the status, with no pop-up."""
    import gradio as gr

    import app

    content, style, _ = images
    unchanged = gr.skip()
    follow = app.follow_handler(app.make_adain_handler(tiny_models), 3, 1, app.adain_inputs_ready)
    args = [str(content), None, str(style), None, None, 1.0, 1.0, 1.0, 1.0, 0.4, "none", "off", None, 0, "cholesky"]
    assert follow(None, *args[1:]) == (unchanged,) * 3
    assert follow(*args[:2], None, *args[3:]) == (unchanged,) * 3
    image, status, png = follow(*args)
    assert image_size(image) == (72, 56) and status.startswith("Done in")
    assert read_settings(png)["settings"]["alpha"] == 0.4
    painted_without_paint = args[:11] + ["painted regions"] + args[12:]
    image, status, png = follow(*painted_without_paint)
    assert image == png == unchanged
    assert status.startswith("Not updated: ") and "paint" in status

    follow = app.follow_handler(app.make_stylebank_handler(tiny_models), 4, 2, app.stylebank_inputs_ready)
    args = [str(content), None, 1.0, None, 1.0, None, 1.0, None, 1.0, "linear fusion", 2, None, 0, "none", "cholesky",
            {}]
    assert follow(*args) == (unchanged,) * 4
    args[3] = "dots"
    image, region_map, status, _ = follow(*args)
    assert image_size(image) == (72, 56) and region_map is None and status.startswith("Done in")


def test_a_run_that_ends_after_a_newer_one_of_the_same_page_leaves_the_outputs_to_it(
        tiny_models, images, monkeypatch):
    """A Stylize press and a run following the controls can run at once; the older must not replace the
    newer one's result by ending last. Another page's runs do not count."""
    import gradio as gr

    import app

    content, style, _ = images
    release, entered = threading.Event(), threading.Event()
    stylize = app.adain.stylize

    def slow_first(*args, **kwargs):
        if kwargs["alpha"] == 0.3:  # the older run: held until the newer one has ended
            entered.set()
            assert release.wait(30)
        return stylize(*args, **kwargs)

    monkeypatch.setattr(app.adain, "stylize", slow_first)
    handler = app.make_adain_handler(tiny_models)
    page, other = types.SimpleNamespace(session_hash="page"), types.SimpleNamespace(session_hash="other")
    args = [str(content), str(style), None, None, None, 1.0, 1.0, 1.0, 1.0, 0.3, "none", "off", None, 0, "cholesky"]
    older: dict = {}
    thread = threading.Thread(target=lambda: older.update(out=handler(*args, request=page)))
    thread.start()
    assert entered.wait(30)
    newer = handler(*args[:9], 0.6, *args[10:], request=page)
    assert read_settings(newer[2])["settings"]["alpha"] == 0.6
    assert handler(*args[:9], 0.8, *args[10:], request=other)[1].startswith("Done in")  # another page
    release.set()
    thread.join(30)
    assert older["out"] == (gr.skip(),) * 3  # nothing of the older run reaches the page
    assert handler(*args, request=page)[1].startswith("Done in")  # the page's newest again: shown


def test_the_files_handed_out_live_in_one_folder_that_drops_what_gradio_no_longer_keeps(tmp_path, monkeypatch):
    """Result PNGs and learned banks go into one folder per process, a subfolder each (a download keeps its
    name); each new file prunes what is older than the keeping time, and a folder removed meanwhile is made anew."""
    import app

    monkeypatch.setattr(app.tempfile, "tempdir", str(tmp_path))
    folder = app.HandoffFolder("studio-", keep_seconds=3600)
    first, second = folder.new_path("gatys_result.png"), folder.new_path("gatys_result.png")
    assert first.name == second.name == "gatys_result.png" and first != second
    assert first.parent.parent == second.parent.parent and first.parent.parent.parent == tmp_path
    first.write_bytes(b"old")
    second.write_bytes(b"young")
    day_ago = time.time() - 86400
    os.utime(first.parent, (day_ago, day_ago))
    third = folder.new_path("mine.safetensors")
    assert not first.parent.exists() and second.read_bytes() == b"young" and third.parent.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.parent.parent.name]  # nothing else written

    shutil.rmtree(first.parent.parent)
    again = folder.new_path("stylebank_result.png")
    assert again.parent.is_dir() and again.parent.parent != first.parent.parent
    monkeypatch.setattr(app, "HANDOFF", folder)
    png = Path(app.write_png(Image.new("RGB", (8, 8)), "adain", {"alpha": 1.0}))
    assert png.parent.parent == again.parent.parent and read_settings(png)["settings"] == {"alpha": 1.0}


def test_a_sigterm_stops_the_studio_as_ctrl_c_does_and_its_temp_folder_goes(tmp_path):
    """Hosts stop a container with SIGTERM: ``app.main`` turns it into Ctrl-C, which Gradio's serving loop catches,
    so the process exits normally and removes the folder of the files it handed out."""
    out = run_python(f"import os, signal, tempfile, time\ntempfile.tempdir = {str(tmp_path)!r}\nimport app\n"
                     "signal.signal(signal.SIGTERM, app.stop_as_on_ctrl_c)\n"
                     "path = app.HANDOFF.new_path('adain_result.png')\nprint(path, path.parent.is_dir())\n"
                     "try:\n    os.kill(os.getpid(), signal.SIGTERM)\n"
                     "    for _ in range(300):\n        time.sleep(0.1)\n"  # as gradio.Blocks.block_thread serves
                     "    print('still serving')\nexcept KeyboardInterrupt:\n    print('closed')\n")
    path, made, closed = out.split()
    assert Path(path).parent.parent.parent == tmp_path and made == "True" and closed == "closed"
    assert not Path(path).parent.parent.exists()  # removed as the process exited
