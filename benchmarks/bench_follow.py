"""How closely the AdaIN tab's result follows its controls, in a headless Chromium against a fresh studio.

    python benchmarks/bench_follow.py [--data ../shared/data] [--changes 5] [--port 7872]

Starts this tree's ``app.py`` in a fresh process, opens the AdaIN tab in Debian's Chromium (driven by
Playwright), uploads the style and then the content (tubingen x starry_night where the data has them, each as
it is: the tab works at the upload's size, up to 1024 px) and prints the seconds from the content's upload to
the first result, then from each new alpha (typed into the slider's box, which is then left: the slider's
release) to the next result, each with the handler's own seconds from its status line. No button is pressed.
The browser shares the machine's cores with the server, as it would on a user's own machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_studio import pair, run_seconds  # noqa: E402
from benchmarks.common import have_test_data, studio_server  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The result's PNG for download: each run writes it to a new folder, so a new link means a new result.
DOWNLOAD_HREF = "() => document.querySelector('a[href$=\"/adain_result.png\"]')?.getAttribute('href')"
ALPHAS = ("0.5", "0.8", "0.3", "1", "0.6", "0.9", "0.4", "0.7")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--changes", type=int, default=5, choices=range(1, len(ALPHAS) + 1))
    parser.add_argument("--port", type=int, default=7872)
    args = parser.parse_args()
    if not have_test_data(args.data):
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("skipped: the playwright package is not installed (requirements-dev.txt)")
        return
    if not Path(CHROMIUM).exists():
        print("skipped: Debian's chromium is not installed (apt-get install -y chromium)")
        return
    content, style = pair(args.data.resolve())
    print(f"{content.stem} x {style.stem}, AdaIN tab, {args.changes} changes of alpha")
    with studio_server(ROOT, args.port, args.data.resolve()), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(f"http://127.0.0.1:{args.port}/", wait_until="load")
        page.get_by_role("tab", name="AdaIN").click()
        panel = page.get_by_role("tabpanel").filter(has_text="Real-time arbitrary style transfer")
        uploads = panel.locator("input[type=file]")
        uploads.nth(1).set_input_files(str(style))
        status = panel.get_by_text("Done in")
        t0 = time.perf_counter()
        uploads.nth(0).set_input_files(str(content))
        status.wait_for(timeout=120_000)
        print(f"content uploaded -> result: {time.perf_counter() - t0:.2f} s "
              f"(handler {run_seconds(status.inner_text())} s)")
        alpha = panel.get_by_label("number input for Content-style trade-off (alpha)")
        for value in ALPHAS[:args.changes]:
            before = page.evaluate(DOWNLOAD_HREF)
            alpha.fill(value)
            t0 = time.perf_counter()
            alpha.press("Tab")
            page.wait_for_function(f"before => ({DOWNLOAD_HREF})() !== before", arg=before, polling="raf",
                                   timeout=120_000)
            print(f"alpha {value:>3s} -> result: {time.perf_counter() - t0:.2f} s "
                  f"(handler {run_seconds(status.inner_text())} s)", flush=True)
        browser.close()


if __name__ == "__main__":
    main()
