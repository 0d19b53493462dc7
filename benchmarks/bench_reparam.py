"""Inference re-parameterisation (styletransfer/reparam.py): bf16 seconds per image with and without it, in one run.

    python benchmarks/bench_reparam.py [--repeats 7]

For the zoo's StyleBank (one bank, ``stylebank.stylize``) and AdaIN (cached style statistics,
``adain.stylize_tensor``) at 256 and 512 px: the standing bf16 copies built plainly, then
re-parameterised without the rewrites made for oneDNN (sub-pixel convolutions, the RGB output
layer on the sub-pixel grid or the space-to-depth grid, in-place ReLUs), then with them as
shipped (column-unfolded RGB input layer, padding + convolution with fused ReLU); medians and
the ratios to the plain copies. Needs only the zoo's embedded weights.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import median_time  # noqa: E402

import torch  # noqa: E402

import styletransfer.vgg as vgg  # noqa: E402
from styletransfer import adain, stylebank  # noqa: E402
from styletransfer.imageio import tensor_to_pil  # noqa: E402
from zoo.registry import load_adain_decoder, load_normalized_vgg, load_stylebank  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    autoencoder, banks = load_stylebank()
    encoder, decoder = load_normalized_vgg(), load_adain_decoder()
    bank = next(iter(banks))
    rewrite = vgg.reparameterize
    variants = {"plain": lambda module: module, "portable": functools.partial(rewrite, onednn=False),
                "shipped": rewrite}
    torch.manual_seed(0)
    style = adain.encode_style(tensor_to_pil(torch.rand(1, 3, 512, 512)), encoder=encoder)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats}, bf16")
    print(f"{'method':<10} {'size':>5} {'plain (s)':>10} {'portable (s)':>13} {'shipped (s)':>12} "
          f"{'plain/portable':>15} {'plain/shipped':>14}")
    for size in (256, 512):
        content = torch.rand(1, 3, size, size)
        image = tensor_to_pil(content)
        times: dict[tuple[str, str], float] = {}
        for variant in [*variants, *variants]:  # two rounds; the second's figures are kept (the first warms up)
            vgg.reparameterize = variants[variant]
            autoencoder._bf16, decoder._bf16 = vgg.InferenceCopy(), vgg.InferenceCopy()  # rebuilt on next use
            times["StyleBank", variant] = median_time(
                lambda: stylebank.stylize(image, bank, autoencoder=autoencoder, banks=banks, size=None), args.repeats)
            times["AdaIN", variant] = median_time(
                lambda: adain.stylize_tensor(content, [style], encoder=encoder, decoder=decoder), args.repeats)
        vgg.reparameterize = rewrite
        for method in ("StyleBank", "AdaIN"):
            plain, portable, shipped = (times[method, v] for v in variants)
            print(f"{method:<10} {size:>5} {plain:>10.3f} {portable:>13.3f} {shipped:>12.3f} "
                  f"{plain / portable:>14.2f}x {plain / shipped:>13.2f}x", flush=True)


if __name__ == "__main__":
    main()
