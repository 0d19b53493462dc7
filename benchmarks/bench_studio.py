"""Gatys through the studio's API, against the library on a thread without a server and an earlier revision.

    python benchmarks/bench_studio.py [--data ../shared/data] [--steps 30] [--size 512] [--runs 4] [--rev REV]
        [--rounds 1] [--port 7871]

Starts this tree's ``app.py`` in a fresh process (with ``--rev``, also REV's, checked out into a temporary
worktree, the two alternating ``--rounds`` times) and, through ``gradio_client``, runs Gatys twice (direct,
``--steps`` steps at ``--size`` px, tubingen x starry_night where the data has them), one AdaIN request, then
``--runs`` more Gatys runs. For each it prints the run's own seconds (from its status line) and the server's OS
threads and minor page faults after it. Then the same Gatys run three times in a fresh process without a server,
each on a new thread after ``allocator.keep_freed_memory()``, with the studio's preview every 10 steps. The
client shares the machine's cores with the server, as a browser would. Linux only (reads ``/proc``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import benchmark_pairs, have_test_data, studio_server  # noqa: E402

BARE = """
import sys, threading, time
from styletransfer.allocator import keep_freed_memory
keep_freed_memory()
import zoo
from styletransfer import gatys
content, style, steps, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def run():
    result = gatys.stylize(content, style, encoder=zoo.load_vgg16(), num_steps=steps, size=size, preview_every=10,
                           progress=lambda info: None)
    print(f"{result.seconds:.2f}", flush=True)
for _ in range(4):  # the first one loads VGG-16 and warms up; the main thread runs no torch (see app.on_fresh_thread)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
"""


def pair(data: Path) -> tuple[Path, Path]:
    """tubingen x starry_night where the data has them, else the benchmarks' first pair."""
    content, style = data / "content" / "tubingen.jpg", data / "styles" / "starry_night.jpg"
    return (content, style) if content.is_file() and style.is_file() else benchmark_pairs(data, 1)[0]


def server_state(pid: int) -> tuple[int, int]:
    """(OS threads, minor page faults so far) of process ``pid``."""
    faults = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])
    return len(os.listdir(f"/proc/{pid}/task")), faults


def run_seconds(status: str) -> str:
    """The run's own seconds from a status line (``... 30 steps in 6.8 s ...``, ``Done in 0.57 s``)."""
    found = re.search(r"in ([\d.]+) s", status)
    return found.group(1) if found else "?"


def bench_server(tree: Path, label: str, args: argparse.Namespace, content: Path, style: Path) -> None:
    """Start ``tree``'s studio, run the sequence through its API and print a line per request."""
    from gradio_client import Client, handle_file

    with studio_server(tree, args.port, args.data) as server:
        client = Client(f"http://127.0.0.1:{args.port}", verbose=False)
        threads, faults = server_state(server.pid)
        print(f"{label}: server up, {threads} threads")
        inputs = {"content": handle_file(str(content)), "style1": handle_file(str(style))}
        requests = ["gatys"] * 2 + ["adain"] + ["gatys"] * args.runs
        for k, name in enumerate(requests, start=1):
            if name == "gatys":
                result = client.predict(**inputs, num_steps=args.steps, size=args.size,
                                        schedule="direct (every step at full size)", api_name="/gatys")
            else:
                result = client.predict(**inputs, api_name="/adain")
            now_threads, now_faults = server_state(server.pid)
            print(f"{label}: request {k} {name:5s} {run_seconds(result[1]):>6s} s (its own), server "
                  f"{now_threads} threads, {now_faults - faults} minor faults", flush=True)
            faults = now_faults


def bench_bare(content: Path, style: Path, args: argparse.Namespace) -> None:
    done = subprocess.run([sys.executable, "-c", BARE, str(content), str(style), str(args.steps), str(args.size)],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          check=True)
    seconds = done.stdout.split()[1:]
    print(f"library on a thread, no server: {' / '.join(seconds)} s (after one warm-up run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=4, help="Gatys runs after the AdaIN request")
    parser.add_argument("--rev", help="an earlier git revision to run alternately, e.g. HEAD~3")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--port", type=int, default=7871)
    args = parser.parse_args()
    if not have_test_data(args.data):
        return
    args.data = args.data.resolve()
    content, style = pair(args.data)
    print(f"{content.stem} x {style.stem}, Gatys direct {args.steps} steps at {args.size} px")
    with tempfile.TemporaryDirectory() as tmp:
        trees = [(ROOT, "this tree")]
        if args.rev:
            old = Path(tmp) / "old"
            subprocess.run(["git", "worktree", "add", "--detach", str(old), args.rev], cwd=ROOT, check=True,
                           capture_output=True)
            trees.insert(0, (old, args.rev))
        try:
            for _ in range(args.rounds):
                for tree, label in trees:
                    bench_server(tree, label, args, content, style)
        finally:
            if args.rev:
                subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, check=True)
    bench_bare(content, style, args)


if __name__ == "__main__":
    main()
