"""Checkerboard artefacts of StyleBank decoders: the paper's transposed convolutions against resize-then-convolve.

    python benchmarks/checkerboard_stylebank.py runs/a:transposed runs/b:resize [--data ../shared/data]

Loads each training run's checkpoint (``RUN:UPSAMPLE``, the upsampling the run was trained
with), stylises the test photos with every bank, and prints the checkerboard index: the mean
absolute response of the 2x2 checkerboard filter ``[[1, -1], [-1, 1]] / 4`` on the output's
luminance, divided by the same on the content. Period-2 patterns from strided transposed
convolutions raise it; compare runs at the same iteration. Writes one strip per run to
``benchmarks/out/stylebank/``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import have_test_data  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors import safe_open  # noqa: E402

from styletransfer.imageio import fit_within, load_image, pil_to_tensor, tensor_to_pil  # noqa: E402
from styletransfer.stylebank import AutoEncoderConfig, BankConfig, StyleBank, StyleBankAutoEncoder  # noqa: E402
from training.checkpoints import load_checkpoint  # noqa: E402

CHECKER = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).div(4).view(1, 1, 2, 2)


def checker_response(x: torch.Tensor) -> float:
    """Mean absolute 2x2 checkerboard response of the luminance of ``x`` ``[N, 3, H, W]``."""
    y = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return float(F.conv2d(y, CHECKER).abs().mean())


def load_run(run: Path, upsample: str) -> tuple[StyleBankAutoEncoder, dict[str, StyleBank], int]:
    ckpt = run / "checkpoint.safetensors"
    with safe_open(str(ckpt), framework="pt") as f:
        names = sorted({k.split(".")[2] for k in f.keys() if k.startswith("model.banks.")})
        channels = tuple(f.get_slice(f"model.autoencoder.encoder.{i}.1.weight").get_shape()[0] for i in range(3))
        norm = "instance" if "model.autoencoder.encoder.0.2.weight" in f.keys() else "none"
    autoencoder = StyleBankAutoEncoder(AutoEncoderConfig(channels, upsample, norm))
    banks = torch.nn.ModuleDict({n: StyleBank(BankConfig(n, channels[-1])) for n in names})
    step, _ = load_checkpoint(ckpt, {"autoencoder": autoencoder, "banks": banks}, {})
    return autoencoder.eval(), dict(banks), step


@torch.no_grad()
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="RUN_DIR:transposed or RUN_DIR:resize")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "stylebank")
    args = parser.parse_args()
    if not have_test_data(args.data):
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    photos = []
    for path in sorted((args.data / "content").glob("*.jpg"))[: args.photos]:
        x = pil_to_tensor(fit_within(load_image(path), 256)[0])
        photos.append(x[..., : x.shape[-2] // 4 * 4, : x.shape[-1] // 4 * 4])
    base = statistics.mean(checker_response(x) for x in photos)
    print(f"content photos: checkerboard response {base:.5f} (index 1.00)")
    for spec in args.runs:
        run, upsample = spec.rsplit(":", 1)
        autoencoder, banks, step = load_run(Path(run), upsample)
        recon, styled, strip = [], [], []
        for i, x in enumerate(photos):
            feats = autoencoder.encode(x)
            recon.append(checker_response(autoencoder.decode(feats).clamp(0, 1)))
            outs = [autoencoder.decode(bank(feats)).clamp(0, 1) for bank in banks.values()]
            styled += [checker_response(o) for o in outs]
            if i == 0:
                strip = [x, *outs[:6]]
        tensor_to_pil(torch.cat(strip, dim=-1)).save(args.out / f"checkerboard_{Path(run).name}_{step}.jpg")
        print(f"{run} ({upsample}, iteration {step}): checkerboard index reconstruction "
              f"{statistics.mean(recon) / base:.2f}, stylised {statistics.mean(styled) / base:.2f} "
              f"(max over banks {max(styled) / base:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
