"""The three methods on a CUDA GPU, as the app runs them there (every model on the GPU, bf16 autocast).

    python benchmarks/bench_gpu.py [--data ../shared/data] [--relearn BANK] [--steps 1000] [--batch 4]

1. seconds per image at 256 and 512 px: StyleBank (one zoo bank) and AdaIN (one style, zoo decoder),
   each from a PIL image to a PIL image;
2. Gatys at 512 px: the fast coarse-to-fine schedule and the library default (300 steps at 512 px),
   wall time and final loss;
3. incremental learning of ``--relearn`` (a bank of the joint set) with the app's GPU settings
   (batch 4, 256 px crops), measured as ``bench_stylebank.py`` measures it on the CPU: the training
   time until its style loss on fixed evaluation crops first comes within 10% of the joint bank's.

Prints "skipped" and exits 0 where there is no CUDA device or no test data; ``--device cpu`` runs the
same on the CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

import zoo  # noqa: E402
import zoo.publish  # noqa: E402
from benchmarks.bench_stylebank import WITHIN, eval_losses, relearn, square_crop  # noqa: E402
from benchmarks.common import have_test_data, median_time  # noqa: E402
from styletransfer import adain, gatys, stylebank  # noqa: E402
from styletransfer.imageio import fit_within, load_image, pil_to_tensor  # noqa: E402
from styletransfer.stylebank import STYLE_SIZE, LossConfig, StyleBank, style_targets  # noqa: E402
from training.learn_bank import load_contents  # noqa: E402
from zoo.resolve import bank_path_in_repo  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--relearn", default="fete_galante_engraving", help="bank of the joint set to learn again")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--eval-crops", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cuda", help="where to run (cpu for a dry run of the script)")
    args = parser.parse_args()
    cuda = torch.device(args.device)
    if cuda.type == "cuda" and not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return 0
    if not have_test_data(args.data):
        return 0
    where = torch.cuda.get_device_name(cuda) if cuda.type == "cuda" else f"the CPU ({torch.get_num_threads()} threads)"
    print(f"torch {torch.__version__} on {where}", flush=True)
    contents = sorted((args.data / "content").glob("*.jpg"))
    styles = sorted((args.data / "styles").glob("*.jpg"))
    photo, painting = load_image(contents[0]), load_image(styles[0])
    images = {size: photo.resize((size, size), Image.Resampling.LANCZOS) for size in (256, 512)}

    # ---- 1. feed-forward speed
    ae, banks = zoo.load_stylebank()
    ae, banks = ae.to(cuda), {n: b.to(cuda) for n, b in banks.items()}
    encoder, decoder = zoo.load_normalized_vgg().to(cuda), zoo.load_adain_decoder().to(cuda)
    style_stats = adain.encode_style(painting, encoder=encoder)
    name = next(iter(banks))
    print(f"\nseconds per image (median of {args.repeats}, PIL in, PIL out)")
    print(f"{'size':>6} {'StyleBank':>10} {'AdaIN':>10}")
    for size, img in images.items():
        sb = median_time(lambda: stylebank.stylize(img, name, autoencoder=ae, banks=banks, size=None), args.repeats)
        ad = median_time(lambda: adain.stylize(img, style_stats, encoder=encoder, decoder=decoder, size=None),
                         args.repeats)
        print(f"{size:>6} {sb:>10.4f} {ad:>10.4f}", flush=True)

    # ---- 2. Gatys
    vgg = zoo.load_vgg16().to(cuda)
    gatys.stylize(photo, painting, encoder=vgg, size=512, num_steps=5)  # warm-up: kernels picked, memory pooled
    print("\nGatys at 512 px (L-BFGS; after a 5-step warm-up run)")
    for label, controls in (("fast schedule", dict(zip(("scales", "scale_steps"), gatys.fast_schedule(512)))),
                            ("direct, 300 steps", {})):
        t0 = time.perf_counter()
        result = gatys.stylize(photo, painting, encoder=vgg, size=512, **controls)
        print(f"  {label:<24} {time.perf_counter() - t0:>6.1f} s, final loss {result.final_losses['total']:.4g}",
              flush=True)

    # ---- 3. incremental learning with the app's GPU settings
    spec = next(s for s in zoo.list_models("stylebank") if s.kind == "stylebank-autoencoder")
    bank_file = zoo.publish.pull(spec.name)[1][bank_path_in_repo(args.relearn)]
    style_file = StyleBank.extra_metadata(bank_file).get("style_image", args.relearn)
    style_img = fit_within(load_image(next((args.data / "train" / "styles").glob(style_file + ".*"))), STYLE_SIZE)[0]
    loss = LossConfig()
    targets = style_targets(pil_to_tensor(style_img, cuda), vgg, loss)
    crops = torch.cat([square_crop(load_image(p), 256) for p in contents[: args.eval_crops]]).to(cuda)
    joint = eval_losses(ae, banks[args.relearn], vgg, crops, targets, loss)
    pool = load_contents(args.data / "train" / "content", 200, 256, 0)
    print(f"\n{args.relearn}: joint bank style {joint['style']:.3f}; a new bank, {args.steps} steps, "
          f"batch {args.batch}, 256 px crops", flush=True)
    _, curve = relearn(style_img, pool, ae, vgg, crops, targets, loss, joint, "auto", 0.98, args)
    reached = next((seconds for _, seconds, m in curve if m["style"] <= WITHIN * joint["style"]), None)
    when = f"{reached:.1f} s" if reached is not None else "not reached"
    print(f"within 10% of the joint bank's style loss after {when} of training; "
          f"{args.steps} steps in {curve[-1][1]:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
