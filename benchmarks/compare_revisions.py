"""Inference speed of this working tree against an earlier git revision, in alternating processes.

    python benchmarks/compare_revisions.py REV [--rounds 6] [--repeats 15] [--size 512]

These machines drift by up to 1.5x between minutes, so two figures taken apart say little. This
checks REV out into a temporary worktree and alternates one process per tree, ``--rounds``
times; each process times the zoo's StyleBank (``stylebank.stylize`` from a PIL image, one bank,
two warm-up calls, after ``allocator.keep_freed_memory()`` where the tree has it) and prints its
median. The table shows every round's pair, then the median over rounds of each tree and their
ratio. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import sys
import torch
try:
    from styletransfer.allocator import keep_freed_memory
    keep_freed_memory()
except ImportError:
    pass
from benchmarks.common import median_time
from styletransfer import stylebank
from styletransfer.imageio import tensor_to_pil
from zoo.registry import load_stylebank
size, repeats = int(sys.argv[1]), int(sys.argv[2])
autoencoder, banks = load_stylebank()
torch.manual_seed(0)
image = tensor_to_pil(torch.rand(1, 3, size, size))
run = lambda: stylebank.stylize(image, next(iter(banks)), autoencoder=autoencoder, banks=banks, size=None)
run()
print(median_time(run, repeats))
"""


def time_tree(tree: Path, size: int, repeats: int) -> float:
    """Median seconds per stylisation, measured in a fresh process that imports from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(size), str(repeats)], cwd=tree, env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="git revision to compare against, e.g. HEAD~3")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), args.rev], check=True)
        try:
            print(f"StyleBank {args.size} px, seconds per image (median of {args.repeats}); {args.rev} vs working tree")
            pairs = []
            for i in range(args.rounds):
                pairs.append((time_tree(base, args.size, args.repeats), time_tree(ROOT, args.size, args.repeats)))
                print(f"  round {i + 1}: {pairs[-1][0]:.4f}  {pairs[-1][1]:.4f}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True)
    old, new = (statistics.median(p[i] for p in pairs) for i in range(2))
    print(f"median: {args.rev} {old:.4f} s, working tree {new:.4f} s, ratio {new / old:.3f}")


if __name__ == "__main__":
    main()
