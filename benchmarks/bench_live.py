"""The Live camera tab: what a frame costs the server, and the frames a page gets from Chromium's made-up camera.

    python benchmarks/bench_live.py [--data ../shared/data] [--sizes 256 384 512] [--frames 20] [--seconds 15]
        [--steadiness 0 0.3 0.5 0.7 0.9] [--no-browser] [--port 7872]

1. The tab's handler (``app.make_live_handler`` on the zoo's models) on camera-like frames (the test photos
   cropped to 4:3 and resized to 640x480, as the tab asks the camera for), StyleBank with the zoo's first bank
   and AdaIN with starry_night (or the first style), at each frame size: the median milliseconds a frame after
   two warm-up frames, in this process.
2. With Playwright and Debian's Chromium: this tree's ``app.py`` in a fresh process, a headless page streaming
   Chromium's made-up camera (640x480) to the tab for ``--seconds`` per method and size; the result images the
   page received a second (counted in the page) and the tab's own status line at the end. The browser shares
   the machine's cores with the server, as it would on a laptop serving itself.

Between the two, at the first frame size: what each ``--steadiness`` does (``styletransfer.temporal``) to 12
frames of the first test photo with camera-like noise, still and panning: the flicker (change between
consecutive results) and the error (difference from the result of the same frame without noise).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import have_test_data, studio_server  # noqa: E402

CAMERA = (640, 480)
COUNT_FRAMES = """b => { window.__frames = 0; let last = null;
  new MutationObserver(() => { const i = b.querySelector('img'); if (i && i.src !== last) { last = i.src;
    window.__frames += 1; } }).observe(b, {subtree: true, childList: true, attributes: true}); }"""


def camera_frames(data: Path, count: int) -> list[np.ndarray]:
    """The test photos as a 640x480 camera would give them (cropped to 4:3), as numpy arrays."""
    photos = sorted((data / "content").glob("*.jpg"))[:count]
    return [np.asarray(ImageOps.fit(Image.open(p).convert("RGB"), CAMERA)) for p in photos]


def style_image(data: Path) -> Path:
    preferred = data / "styles" / "starry_night.jpg"
    return preferred if preferred.is_file() else sorted((data / "styles").glob("*.jpg"))[0]


def live_handler() -> tuple[Callable, str]:
    """The Live tab's handler on the zoo's models (one for every part, so AdaIN encodes its style once) and the
    zoo's first bank."""
    import app
    from styletransfer.allocator import keep_freed_memory

    keep_freed_memory()
    models = app.zoo_models()
    return app.make_live_handler(models), next(iter(app.on_fresh_thread(models.stylebank)[1]))


def handler_ms(data: Path, handler: Callable, bank: str, sizes: list[int], frames: int) -> None:
    import app

    shots = camera_frames(data, frames)
    style = str(style_image(data))
    print(f"handler, {len(shots)} camera-like frames of {CAMERA[0]}x{CAMERA[1]}; StyleBank bank {bank}, AdaIN style "
          f"{Path(style).name}; device: {app.device_notice()}")
    print("| method | frame size | ms a frame (median) | status of the last frame |")
    print("| --- | --- | --- | --- |")
    for method in app.LIVE_METHODS:
        for size in sizes:
            args = dict(method=method, bank=bank, style=style, alpha=1.0, preserve_color="none", size=size,
                        steadiness=0.0, user_banks={})
            for shot in shots[:2]:  # warm-up (AdaIN: the style's encoding)
                handler(shot, **args)
            times = []
            for shot in shots:
                t0 = time.perf_counter()
                _, status = handler(shot, **args)
                times.append(1000 * (time.perf_counter() - t0))
            print(f"| {method} | {size} | {statistics.median(times):.0f} | {status} |", flush=True)


def noisy(scene: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    return np.clip(scene + rng.normal(0, sigma, scene.shape), 0, 255).astype(np.uint8)


def steadiness_effect(data: Path, handler: Callable, bank: str, size: int, levels: list[float], sigma: float = 3.0,
                      frames: int = 12) -> None:
    """Flicker of a still, noisy scene and the change a moving one gets, by steadiness (the handler with a page)."""
    import types

    import app

    photo_path = sorted((data / "content").glob("*.jpg"))[0]
    photo = Image.open(photo_path).convert("RGB")
    still = np.asarray(ImageOps.fit(photo, CAMERA), np.float32)
    wide = np.asarray(ImageOps.fit(photo, (CAMERA[0] + 8 * frames, CAMERA[1])), np.float32)
    scenes = {"still": [still] * frames, "panning": [wide[:, 8 * i: 8 * i + CAMERA[0]] for i in range(frames)]}
    print(f"\nsteadiness at {size} px: {frames} frames of {photo_path.name} with camera noise (sigma {sigma:g} "
          f"levels), still or panning 8 px a frame; the mean change between consecutive results (flicker) and the "
          f"mean difference from the result of the frame without noise (error), in levels of 255, from the third "
          f"frame on")
    print("| method | steadiness | still: flicker | still: error | panning: flicker | panning: error | ms a frame |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for method in app.LIVE_METHODS:
        args = dict(method=method, bank=bank, style=str(style_image(data)), alpha=1.0, preserve_color="none",
                    size=size, user_banks={})
        for level in levels:
            row, ms = {}, []
            for name, scene in scenes.items():
                rng = np.random.default_rng(0)
                shots = [noisy(s, rng, sigma) for s in scene]
                clean = [np.asarray(handler(s.astype(np.uint8), steadiness=0.0, **args)[0], np.float32) for s in scene]
                page = types.SimpleNamespace(session_hash=f"{method}{level}{name}")
                steady = []
                for shot in shots:
                    t0 = time.perf_counter()
                    steady.append(np.asarray(handler(shot, steadiness=level, request=page, **args)[0], np.float32))
                    ms.append(1000 * (time.perf_counter() - t0))
                row[name] = (np.mean([np.abs(a - b).mean() for a, b in zip(steady[2:], steady[3:])]),
                             np.mean([np.abs(a - b).mean() for a, b in zip(steady[2:], clean[2:])]))
            print(f"| {method} | {level:g} | {row['still'][0]:.2f} | {row['still'][1]:.2f} | {row['panning'][0]:.2f} | "
                  f"{row['panning'][1]:.2f} | {statistics.median(ms):.0f} |", flush=True)


def browser_rates(data: Path, sizes: list[int], seconds: float, port: int) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("browser part skipped: the playwright package is not installed")
        return
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print("browser part skipped: Debian's chromium is not installed")
        return
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream",
             "--use-fake-ui-for-media-stream"]
    print(f"\nbrowser: Chromium's made-up camera streaming to this tree's studio for {seconds:.0f} s per row")
    print("| method | frame size | results a second (counted in the page) | the tab's status at the end |")
    print("| --- | --- | --- | --- |")
    with studio_server(ROOT, port, data), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=flags)
        for method in ("StyleBank", "AdaIN"):
            for size in sizes:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
                page.get_by_role("tab", name="Live camera").click()
                panel = page.get_by_role("tabpanel").filter(has_text="Your camera, stylised as it streams")
                bank = panel.get_by_label("Style bank (the zoo's, and those added or trained this session)")
                page.wait_for_function("i => i.value", arg=bank.element_handle(), timeout=60_000)  # filled on load
                if method == "AdaIN":
                    panel.get_by_label("AdaIN").check()
                    panel.locator("input[type=file]").last.set_input_files(str(style_image(data)))
                number = panel.get_by_label("number input for Frame size (long side, px; smaller is faster)")
                number.fill(str(size))
                number.press("Enter")
                page.wait_for_timeout(500)
                panel.get_by_role("button", name="Click to Access Webcam").click()
                page.wait_for_function("() => document.querySelector('video')?.readyState >= 2", timeout=30_000)
                panel.get_by_role("button", name="capture photo").click(timeout=30_000)
                try:
                    panel.get_by_text(" ms a frame").wait_for(timeout=120_000)  # the first result (AdaIN: encoding)
                except Exception:
                    page.screenshot(path=str(ROOT / "benchmarks" / "out" / "live_failed.png"), full_page=True)
                    raise
                result = panel.locator("#live-result")
                result.evaluate(COUNT_FRAMES)
                page.wait_for_timeout(seconds * 1000)
                count = page.evaluate("window.__frames")
                status = panel.get_by_text(" ms a frame").inner_text()
                print(f"| {method} | {size} | {count / seconds:.1f} | {status} |", flush=True)
                page.close()
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 384, 512])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--steadiness", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7, 0.9])
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--port", type=int, default=7872)
    args = parser.parse_args()
    if not have_test_data(args.data):
        return
    handler, bank = live_handler()
    handler_ms(args.data, handler, bank, args.sizes, args.frames)
    steadiness_effect(args.data, handler, bank, args.sizes[0], args.steadiness)
    if not args.no_browser:
        browser_rates(args.data, args.sizes, args.seconds, args.port)


if __name__ == "__main__":
    main()
