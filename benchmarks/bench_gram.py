"""Gram matrix backward: the one-product backward of ``ops.gram_matrix`` against autograd's ``bmm``.

    python benchmarks/bench_gram.py [--sizes 256 512] [--rounds 5] [--precision auto|bf16|fp32] [--no-bank]

For each size, one Gatys L-BFGS step (default losses, a generated 4:3 image, after
``allocator.keep_freed_memory()``) is timed with each Gram implementation in alternating rounds
in this one process (the machine's drift hits both alike); each round is the median of the last 5
of 8 steps. Then the Gram terms alone (forward and backward of ``sum((G - A)^2)`` on each default
style layer's features) at the largest size. Last (unless ``--no-bank``), one step of learning a
new StyleBank bank (``stylebank.learn_bank`` with the zoo's auto-encoder, its defaults: batch 4
of 256 px crops; median of the last 5 of 8 steps), alternating the same way. Prints every round, the
medians and their ratio. No data needed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import styletransfer  # noqa: E402, F401  (before torch: it sets how long OpenMP threads spin)
import torch  # noqa: E402

from benchmarks.common import median_step_seconds  # noqa: E402
from styletransfer import gatys, ops, stylebank  # noqa: E402
from styletransfer.allocator import keep_freed_memory  # noqa: E402
from styletransfer.imageio import tensor_to_pil  # noqa: E402
from zoo.registry import load_stylebank, load_vgg16  # noqa: E402


def autograd_gram(features: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
    """The baseline: the plain product, differentiated by autograd (two products and a transpose-add)."""
    h, w = features.shape[-2:]
    f = ops.gram_operand(features)
    g = torch.bmm(f, f.transpose(1, 2)).float()
    return g / (h * w) if normalize else g


IMPLEMENTATIONS = {"one-product backward": ops.gram_matrix, "autograd bmm": autograd_gram}


def step_seconds(encoder, content, style, size: int) -> float:
    return median_step_seconds(lambda progress: gatys.stylize(content, style, encoder=encoder, size=size,
                                                              num_steps=8, progress=progress))


def bank_step_seconds(autoencoder, encoder, style, contents) -> float:
    return median_step_seconds(lambda progress: stylebank.learn_bank(
        style, contents, name="bench", autoencoder=autoencoder, vgg=encoder, num_steps=8, init="random",
        progress=progress))


def alternate(label: str, rounds: int, modules: list, measure) -> None:
    """Time ``measure()`` with each Gram implementation set on ``modules``, alternating for ``rounds``."""
    times: dict[str, list[float]] = {name: [] for name in IMPLEMENTATIONS}
    for round_ in range(rounds):
        for name, gram in IMPLEMENTATIONS.items():
            for module in modules:
                module.gram_matrix = gram
            times[name].append(measure())
        print(f"{label} round {round_ + 1}: " + ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items()))
    for module in modules:
        module.gram_matrix = ops.gram_matrix
    new, old = (statistics.median(t) for t in times.values())
    print(f"{label}, median of {rounds}: one-product backward {new:.3f} s, autograd bmm {old:.3f} s "
          f"(x{old / new:.2f})")


def gram_terms_seconds(gram, features: list[torch.Tensor], repeats: int = 5) -> float:
    """Least time of ``repeats`` forward+backward passes of every layer's Gram loss."""
    targets = [torch.rand(f.shape[1], f.shape[1]) for f in features]
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        for f, a in zip(features, targets):
            f.grad = None
            (gram(f) - a).pow(2).sum().backward()
        times.append(time.perf_counter() - tic)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    parser.add_argument("--no-bank", action="store_true", help="skip the StyleBank bank-learning step")
    args = parser.parse_args()
    keep_freed_memory()
    torch.manual_seed(0)
    encoder = load_vgg16(args.precision)
    passes = "bf16" if encoder.uses_bf16("cpu") else "float32"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, VGG passes in {passes}")
    long = max(args.sizes)
    content = tensor_to_pil(torch.rand(1, 3, long * 3 // 4, long))
    style = tensor_to_pil(torch.rand(1, 3, long, long))
    for size in args.sizes:
        alternate(f"{size} px Gatys step", args.rounds, [gatys], lambda: step_seconds(encoder, content, style, size))
    with torch.no_grad():
        image = torch.rand(1, 3, long * 3 // 4, long)
        feats = encoder(image, list(gatys.GatysConfig.style_layers), dtype=None)  # as the Gatys objective takes them
    features = [f.requires_grad_(True) for f in feats.values()]
    seconds = {name: gram_terms_seconds(gram, features) for name, gram in IMPLEMENTATIONS.items()}
    new, old = seconds.values()
    print(f"Gram terms alone at {long}x{long * 3 // 4} (5 layers, forward+backward): one-product backward "
          f"{new:.3f} s, autograd bmm {old:.3f} s (x{old / new:.2f})")
    if not args.no_bank:
        autoencoder, _ = load_stylebank()
        contents = [torch.rand(1, 3, 288, 384) for _ in range(4)]
        alternate("StyleBank bank-learning step", args.rounds, [stylebank],
                  lambda: bank_step_seconds(autoencoder, encoder, style, contents))


if __name__ == "__main__":
    main()
