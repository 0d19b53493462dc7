"""End-to-end in a real headless Chromium (Debian's, driven by Playwright) against the app with tiny models.

Skips with the reason when Chromium or the playwright package is missing. Screenshots go to
``tests/artifacts/`` (ignored by git).
"""

import io
import re
import shutil
from pathlib import Path

import pytest

from styletransfer.imageio import read_settings
from styletransfer.stylebank import BankConfig, StyleBank, save_bank
from tests.conftest import gradient_image

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
CONTENT_SIZE = (96, 72)  # the uploaded content image (width, height)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # a made-up camera, allowed


@pytest.fixture
def page(tmp_path, monkeypatch, tiny_models):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    import app

    demo = app.build_demo(tiny_models)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, css=app.STUDIO_CSS)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(demo.local_url)
            yield page
            browser.close()
    finally:
        demo.close()


@pytest.fixture
def uploads(tmp_path):
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    gradient_image(*CONTENT_SIZE).save(content)
    gradient_image(64, 64).rotate(90).save(style)
    return content, style


def upload(panel, index: int, image: Path) -> None:
    """Upload ``image`` into the ``index``-th file input of ``panel`` and wait until the page shows it (the
    upload has reached the server and the component holds it; a loaded machine can take seconds)."""
    panel.locator("input[type=file]").nth(index).set_input_files(str(image))
    panel.locator(f"img[src$='/{image.name}']").first.wait_for(state="attached", timeout=60_000)


def open_and_stylize(page, tab: str, marker: str, uploads):
    """Open ``tab``, upload content and style 1 into its panel, press Stylize; returns the panel."""
    content, style = uploads
    page.get_by_role("tab", name=tab).click()
    panel = page.get_by_role("tabpanel").filter(has_text=marker)
    upload(panel, 1, style)  # style 1 first: a filled upload drops its file input
    upload(panel, 0, content)
    panel.get_by_role("button", name="Stylize").click()
    return panel


def output_block(panel, label: str):
    """The block of the output labelled ``label`` (exactly) in ``panel``."""
    name = panel.page.get_by_test_id("block-label").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return panel.locator(".block").filter(has=name).last  # the innermost block


def assert_shows_result(panel, label: str) -> None:
    """The output labelled ``label`` shows a loaded image with the content's aspect ratio
    (Gradio loads output images lazily, when they come into view: the output is scrolled there first)."""
    block = output_block(panel, label)
    block.scroll_into_view_if_needed()
    image = block.locator("img").first
    image.wait_for(state="attached", timeout=30_000)
    panel.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(),
                                 timeout=30_000)
    width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert width * CONTENT_SIZE[1] == height * CONTENT_SIZE[0], (width, height)


def test_page_and_every_tab_open_without_console_warnings(page):
    """Opening the page and each tab logs no warning or error (a component labelled "status" made Gradio's
    front end warn that it is one of its own translation keys)."""
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}") if m.type in ("warning", "error") else None)
    page.reload()
    for tab in ("AdaIN", "Gatys", "StyleBank", "Live camera", "Train a style", "Compare", "Zoo"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(300)
    page.wait_for_timeout(1000)
    assert not messages


def test_adain_tab_upload_stylize_and_see_the_result(page, uploads):
    """The result comes into view by itself, also when Stylize was pressed with the page scrolled down
    (as after a click on an example at its foot)."""
    panel = open_and_stylize(page, "AdaIN", "Real-time arbitrary style transfer", uploads)
    panel.get_by_text("Done in").wait_for(timeout=60_000)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    panel.get_by_role("button", name="Stylize").click()
    page.wait_for_timeout(300)  # the second run's status replaces the first's
    panel.get_by_text("Done in").wait_for(timeout=60_000)
    page.wait_for_function("b => { const r = b.getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight; }",
                           arg=output_block(panel, "Result").element_handle(), timeout=10_000)
    assert_shows_result(panel, "Result")
    page.screenshot(path=str(ARTIFACTS / "adain_tab.png"), full_page=True)


def test_adain_result_follows_its_controls(page, uploads):
    """With a content and a style uploaded the result comes without a press of Stylize, and a new alpha, typed
    into the slider's box, re-stylises: the downloadable PNG then carries that alpha."""
    expect = pytest.importorskip("playwright.sync_api").expect
    content, style = uploads
    page.get_by_role("tab", name="AdaIN").click()
    panel = page.get_by_role("tabpanel").filter(has_text="Real-time arbitrary style transfer")
    inputs = panel.locator("input[type=file]")
    inputs.nth(1).set_input_files(str(style))
    inputs.nth(0).set_input_files(str(content))
    panel.get_by_text("Done in").wait_for(timeout=60_000)
    assert_shows_result(panel, "Result")
    link = output_block(panel, "PNG with settings").locator("a[href]").first
    first = link.get_attribute("href")
    alpha = panel.get_by_label("number input for Content-style trade-off (alpha)")
    alpha.fill("0.25")
    alpha.press("Tab")  # leaving the box releases the slider
    expect(link).not_to_have_attribute("href", first, timeout=60_000)  # the file of a new run
    png = page.request.get(link.get_attribute("href")).body()
    assert read_settings(io.BytesIO(png))["settings"]["alpha"] == 0.25


def test_gatys_tab_shows_progress_while_running(page, uploads):
    panel = open_and_stylize(page, "Gatys", "Optimises the pixels", uploads)
    panel.get_by_text("Step ").first.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "gatys_progress.png"), full_page=True)
    panel.get_by_text("Done.").or_(panel.get_by_text("Stopped early")).first.wait_for(timeout=120_000)
    assert_shows_result(panel, "Result (updates while it runs)")
    plot = panel.locator(".block").filter(has_text="Loss per step").last
    plot.locator("svg, canvas").first.wait_for(timeout=30_000)  # the loss plot is drawn
    plot.scroll_into_view_if_needed()
    plot.screenshot(path=str(ARTIFACTS / "gatys_loss_plot.png"))
    panel.get_by_role("button", name="Refine this result").click()
    panel.get_by_text("The result is now the start image").wait_for(timeout=30_000)
    panel.get_by_role("button", name="Controls").click()
    start = panel.locator(".block").filter(has_text="Start image (optional)").locator("img")
    start.first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "gatys_refine.png"), full_page=True)


def test_gatys_settings_from_a_result_fill_the_controls_on_the_page(page, tmp_path):
    """A result's record dropped on "Settings from a result" sets the page's controls: its steps as the custom
    schedule (whose box shows), its seed, and a status saying what to upload."""
    from styletransfer.gatys import GatysConfig
    from styletransfer.imageio import save_image

    settings = {**GatysConfig().__dict__, "scales": [48, 96], "scale_steps": [5, 5], "steps_taken": [5, 3],
                "time_limit": 10.0, "stopped": False, "seed": 7, "styles": ["starry.jpg"], "content": "town.jpg"}
    save_image(gradient_image(96, 72), tmp_path / "result.png", method="gatys", settings=settings)
    page.get_by_role("tab", name="Gatys").click()
    panel = page.get_by_role("tabpanel").filter(has_text="Optimises the pixels")
    panel.get_by_role("button", name="Controls").click()
    box = panel.locator(".block").filter(has_text="Settings from a result").last
    box.locator("input[type=file]").set_input_files(str(tmp_path / "result.png"))
    panel.get_by_text(re.compile(r"Controls set from result\.png: custom schedule 48x5, 96x3")).wait_for(timeout=30_000)
    assert "Upload its content and style image(s) (town.jpg, starry.jpg)" in panel.inner_text()
    custom = panel.get_by_label("Custom schedule: long side x steps at each size", exact=False)
    assert custom.input_value() == "48x5, 96x3"
    assert panel.get_by_label("Seed (noise start, K-means regions)").input_value() == "7"
    box.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "gatys_settings_from.png"))


def test_train_tab_shows_progress_and_finishes_a_bank(page, uploads):
    _, style = uploads
    page.get_by_role("tab", name="Train a style").click()
    panel = page.get_by_role("tabpanel").filter(has_text="Learn a new StyleBank style")
    panel.locator("input[type=file]").first.set_input_files(str(style))
    numbers = panel.locator("input[type=number]")
    numbers.nth(0).fill("40")  # iterations
    numbers.nth(0).press("Enter")
    numbers.nth(1).fill("64")  # crop size (the tiny test photos are 72x80)
    numbers.nth(1).press("Enter")
    page.wait_for_timeout(500)
    panel.get_by_role("button", name="Train", exact=True).click()
    panel.get_by_text("Step ").first.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "train_progress.png"), full_page=True)
    panel.get_by_text("is ready").wait_for(timeout=120_000)


def test_stylebank_gallery_click_fills_bank_one_and_stylizes(page, uploads):
    content, _ = uploads
    page.get_by_role("tab", name="StyleBank").click()
    panel = page.get_by_role("tabpanel").filter(has_text="One auto-encoder, one small filter bank per style")
    bank_one = panel.get_by_label("Bank 1")
    bank_one.wait_for(timeout=30_000)
    # The gallery's own thumbnails: the example photos below are image buttons too, and can show before the
    # page's load event has filled the gallery.
    thumbnails = output_block(panel, "Style banks").get_by_role("button").filter(has=page.locator("img"))
    thumbnails.nth(1).click(timeout=30_000)  # the second thumbnail: "dots"
    page.wait_for_function("() => [...document.querySelectorAll('input')].some(i => i.value === 'dots')",
                           timeout=30_000)
    upload(panel, 0, content)
    panel.get_by_role("button", name="Stylize").click()
    panel.get_by_text("Done in").wait_for(timeout=60_000)
    assert_shows_result(panel, "Result")
    page.screenshot(path=str(ARTIFACTS / "stylebank_tab.png"), full_page=True)


def test_live_tab_stylises_the_camera_stream_with_a_bank_then_with_adain(page, uploads, tiny_models, tmp_path):
    """Chromium's made-up camera (640x480) streams to the Live tab: the first bank is chosen when the page loads,
    the result follows the stream at the frame size with the camera's shape, and a bank added in the StyleBank
    tab is offered here too."""
    _, style = uploads
    autoencoder, _ = tiny_models.stylebank()
    bank_file = tmp_path / "mine.safetensors"
    save_bank(StyleBank(BankConfig("mine", 16, 3, autoencoder.fingerprint())), bank_file)
    page.get_by_role("tab", name="Live camera").click()
    panel = page.get_by_role("tabpanel").filter(has_text="Your camera, stylised as it streams")
    page.wait_for_function("() => [...document.querySelectorAll('input')].some(i => i.value === 'waves')",
                           timeout=30_000)
    panel.get_by_role("button", name="Click to Access Webcam").click()
    page.wait_for_function("() => document.querySelector('video')?.readyState >= 2", timeout=30_000)  # playing
    panel.get_by_role("button", name="capture photo").click(timeout=30_000)  # "Record"
    panel.get_by_text(re.compile(r"StyleBank at 256x192: \d+ ms a frame, [\d.]+ frames/s")).wait_for(timeout=60_000)
    shown = page.wait_for_function(  # each frame is a new image: read whichever is there, once it has loaded
        "b => { const i = b.querySelector('img'); return i?.complete && i.naturalWidth && [i.naturalWidth, "
        "i.naturalHeight]; }", arg=output_block(panel, "Live result").element_handle(), timeout=30_000)
    assert shown.json_value() == [256, 192]
    page.screenshot(path=str(ARTIFACTS / "live_tab.png"), full_page=True)
    assert_keeps_only_the_newest_frames(page, output_block(panel, "Live result"), tmp_path / "gradio")
    panel.get_by_label("AdaIN").check()
    panel.get_by_text("upload a style image for AdaIN").wait_for(timeout=30_000)
    panel.locator("input[type=file]").last.set_input_files(str(style))
    panel.get_by_text(re.compile(r"AdaIN at 256x192: \d+ ms a frame")).wait_for(timeout=60_000)
    page.get_by_role("tab", name="StyleBank").click()
    bank_panel = page.get_by_role("tabpanel").filter(has_text="One auto-encoder, one small filter bank per style")
    bank_panel.get_by_role("button", name="Add a bank (file or Hub repo)").click()
    bank_panel.locator("input[type=file][accept*='.safetensors']").set_input_files(str(bank_file))
    page.wait_for_timeout(500)
    bank_panel.get_by_role("button", name="Add bank").click()
    bank_panel.get_by_text("Added the bank 'mine'").wait_for(timeout=30_000)
    page.get_by_role("tab", name="Live camera").click()
    panel.get_by_label("StyleBank").check()
    panel.get_by_label("Style bank (the zoo's, and those added or trained this session)").click()
    page.get_by_role("option", name="mine").click(timeout=30_000)
    panel.get_by_text(re.compile(r"StyleBank at 256x192: \d+ ms a frame")).wait_for(timeout=60_000)


def assert_keeps_only_the_newest_frames(page, result, cache: Path) -> None:
    """Once the page has shown more frames than the studio keeps, Gradio's cache holds no more than that of them:
    each in the page's own folder, none copied elsewhere."""
    import app

    result.evaluate("b => { window.shownFrames = new Set(); const note = () => b.querySelectorAll('img')"
                    ".forEach(i => i.src && window.shownFrames.add(i.src)); note(); new MutationObserver(note)"
                    ".observe(b, {subtree: true, childList: true, attributes: true}); }")
    page.wait_for_function(f"() => window.shownFrames.size > {app.LIVE_FRAMES_KEPT + 8}", timeout=90_000)
    frames = list(cache.rglob("*.jpeg"))
    assert 0 < len(frames) <= app.LIVE_FRAMES_KEPT
    assert len({p.parent for p in frames}) == 1 and frames[0].parent.parent.name == "live"


def wait_for_background(painter) -> None:
    """Wait until the image editor ``painter`` holds its background (the content or style image the app sends
    after an upload): a stroke painted before it arrives is wiped by it. Its Pan button is enabled only then."""
    expect = pytest.importorskip("playwright.sync_api").expect
    expect(painter.get_by_role("button", name="Pan", exact=True).first).to_be_enabled(timeout=60_000)


def test_gatys_tab_paints_a_region_per_style(page, uploads, tmp_path):
    """Spatial control as a user does it: paint style 1's region in red and style 2's in green on the
    content, and on style 1 the part to take its style from."""
    content, style = uploads
    style2 = tmp_path / "style2.png"
    gradient_image(64, 64).rotate(180).save(style2)
    page.get_by_role("tab", name="Gatys").click()
    panel = page.get_by_role("tabpanel").filter(has_text="Optimises the pixels")
    upload(panel, 2, style2)
    upload(panel, 1, style)
    upload(panel, 0, content)
    panel.get_by_label("painted regions").check()
    panel.get_by_role("button", name="Paint regions").click()
    painter = panel.locator(".block").filter(has_text="Regions")
    wait_for_background(painter)
    painter.get_by_role("button", name="Brush", exact=True).click()  # scrolls the painter into view
    box = painter.locator("canvas").first.bounding_box()  # mouse positions are in the viewport

    def stroke(x0: float, x1: float) -> None:  # across the canvas in ``box``
        page.mouse.move(box["x"] + box["width"] * x0, box["y"] + box["height"] * 0.4)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * x1, box["y"] + box["height"] * 0.6, steps=4)
        page.mouse.up()

    stroke(0.2, 0.35)  # the first brush colour: style 1
    painter.get_by_role("button", name="Color", exact=True).click()
    painter.locator("button.color[style*='rgb(60, 180, 75)']").click()  # style 2's green
    stroke(0.65, 0.8)
    panel.get_by_role("button", name="Style regions (optional)").click()
    page.wait_for_timeout(1000)
    style_painter = panel.locator(".block").filter(has_text="Style 1 region").last  # the innermost block
    style_painter.scroll_into_view_if_needed()  # mouse positions are in the viewport
    wait_for_background(style_painter)
    box = style_painter.locator("canvas").first.bounding_box()
    style_painter.get_by_role("button", name="Brush", exact=True).click()
    stroke(0.3, 0.6)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "gatys_painted.png"), full_page=True)
    panel.get_by_role("button", name="Controls").click()
    custom, noise = panel.get_by_label("Custom schedule"), panel.get_by_label("Noise share of a content+noise start")
    assert not custom.is_visible() and not noise.first.is_visible()  # shown only where they apply
    panel.get_by_label("custom: the sizes and steps typed below").check()
    panel.get_by_label("content+noise").check()
    custom.wait_for(state="visible")
    noise.first.wait_for(state="visible")
    panel.get_by_label("coarse-to-fine (solve small, upscale, refine)").check()
    panel.get_by_label("content", exact=True).check()
    custom.wait_for(state="hidden")
    for label, value in (("Steps (coarse-to-fine", "10"), ("Output size (long side, px)", "128")):  # a short run
        number = panel.get_by_label(label).first
        number.fill(value)
        number.press("Enter")
    page.wait_for_timeout(500)  # the sliders take the typed values before the run starts
    panel.get_by_role("button", name="Stylize").click()
    panel.get_by_text("Done.").or_(panel.get_by_text("Stopped early")).first.wait_for(timeout=120_000)
    errors = page.locator(".toast-body").filter(has_text="Error")
    assert not errors.count(), errors.all_inner_texts()
    link = panel.locator("a[href*='gatys_result']").first
    link.wait_for(timeout=30_000)
    from urllib.request import urlopen

    from styletransfer.imageio import read_settings

    (tmp_path / "result.png").write_bytes(urlopen(link.get_attribute("href")).read())
    settings = read_settings(tmp_path / "result.png")["settings"]
    assert settings["masks"] == 2 and settings["style_masks"] == [True, False], settings
    assert settings["num_steps"] == 10 and settings["size"] == 128, settings
