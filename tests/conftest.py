"""Shared fixtures: tiny random-weight models, small generated images, real-weight and data gates."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from PIL import Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from styletransfer.vgg import VGGConfig, VGGEncoder  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TINY_WIDTHS = (4, 8, 8, 8, 8)


def pytest_configure(config: pytest.Config) -> None:
    """Gradio's cache (uploads, outputs, the examples' copies) goes into a folder of this session's, removed at its
    end, unless ``GRADIO_TEMP_DIR`` is set: set here, before any test module imports Gradio, which reads it then."""
    if not os.environ.get("GRADIO_TEMP_DIR"):
        folder = tempfile.mkdtemp(prefix="styletransfer-tests-")
        os.environ["GRADIO_TEMP_DIR"] = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def shared_data_dir() -> Path:
    """``$STYLETRANSFER_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("STYLETRANSFER_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def tiny_vgg() -> VGGEncoder:
    torch.manual_seed(0)
    encoder = VGGEncoder(VGGConfig(widths=TINY_WIDTHS), precision="fp32")
    for module in encoder.features:
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
            torch.nn.init.uniform_(module.bias, 0.0, 0.1)
    return encoder


def run_python(code: str) -> str:
    """Run ``code`` in a fresh Python process at the repository root; fail the test with its stderr unless it
    succeeds, else return its stdout."""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def image_size(path: str | Path) -> tuple[int, int]:
    """The (width, height) of the image file at ``path`` (closed again at once)."""
    with Image.open(path) as img:
        return img.size


def gradient_image(w: int = 64, h: int = 48, mode: str = "RGB") -> Image.Image:
    """A deterministic colourful test image."""
    x = torch.linspace(0, 1, w).view(1, w).expand(h, w)
    y = torch.linspace(0, 1, h).view(h, 1).expand(h, w)
    rgb = torch.stack([x, y, (x * y * 4).sin().abs()], dim=-1)
    img = Image.fromarray((rgb * 255).round().to(torch.uint8).numpy(), "RGB")
    return img if mode == "RGB" else img.convert(mode)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not (path / "content").is_dir():
        pytest.skip(f"test images not found at {path} (set STYLETRANSFER_DATA or put shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def real_vgg_fp32() -> VGGEncoder:
    import zoo

    try:
        return zoo.load_vgg16("fp32")
    except zoo.WeightsNotFoundError as e:
        pytest.skip(f"real VGG-16 weights unavailable: {e}")


@pytest.fixture
def tiny_models(tiny_vgg):
    """The app's model provider with tiny random models (AdaIN encoder = the tiny VGG)."""
    import app
    from styletransfer.adain import AdaINDecoder, DecoderConfig
    from styletransfer.lpips import LPIPSConfig, LPIPSHeads

    from styletransfer.stylebank import AutoEncoderConfig, BankConfig, StyleBank, StyleBankAutoEncoder

    torch.manual_seed(0)
    decoder = AdaINDecoder(DecoderConfig(widths=(8, 8, 8, 8)), precision="fp32").eval()
    # Instance norm keeps the tiny auto-encoder's outputs visible (not flat grey).
    autoencoder = StyleBankAutoEncoder(AutoEncoderConfig(channels=(4, 8, 16), norm="instance")).eval()
    banks = {}
    for name in ("waves", "dots"):
        banks[name] = StyleBank(BankConfig(name, 16, 3, autoencoder.fingerprint())).eval()
        banks[name].thumbnail = gradient_image(32, 32)
    contents = [torch.rand(1, 3, 72, 80, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    heads = LPIPSHeads(LPIPSConfig(TINY_WIDTHS))
    for lin in heads.lins:
        torch.nn.init.uniform_(lin.weight, 0.0, 1.0)
    return app.Models(vgg=lambda: tiny_vgg, adain_encoder=lambda: tiny_vgg, adain_decoder=lambda: decoder,
                      stylebank=lambda: (autoencoder, banks), lpips_heads=lambda: heads,
                      train_contents=lambda size: contents)
