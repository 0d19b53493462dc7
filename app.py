"""Style-transfer studio: the Gradio web demo.

    python app.py        # or: make demo

Thin by design: layout, wiring and error messages. The work is done by the
``styletransfer`` library and the ``zoo``; nothing heavy happens at import.
"""

from __future__ import annotations

import os

import gradio as gr
import torch

import zoo
from styletransfer.vgg import bf16_is_fast

ZOO_COLUMNS = ["name", "kind", "method", "license", "source", "on the Hub"]


def device_notice() -> str:
    """One line saying where the models run and in which precision."""
    if torch.cuda.is_available():
        where = f"GPU ({torch.cuda.get_device_name(0)})"
    else:
        where = f"CPU ({torch.get_num_threads()} threads)"
    precision = "bf16 autocast" if bf16_is_fast("cuda" if torch.cuda.is_available() else "cpu") else "float32"
    return f"Running on {where}, {precision}."


def zoo_table() -> list[list[str]]:
    """The zoo catalogue as table rows."""
    return [
        [s.name, s.kind, s.method, s.license, s.source_url, f"{s.repo_id}@{s.revision[:7]}" if s.on_hub else "no"]
        for s in zoo.list_models()
    ]


def build_demo() -> gr.Blocks:
    """The Blocks app: layout and wiring only."""
    with gr.Blocks(title="Style transfer studio") as demo:
        gr.Markdown("# Style transfer studio\nGatys optimisation, AdaIN and StyleBank on one VGG-16 core.")
        notice = gr.Markdown()
        with gr.Tab("Zoo"):
            gr.Markdown("Every model the studio knows, where its weights come from, and their licence.")
            table = gr.Dataframe(headers=ZOO_COLUMNS, interactive=False)
            refresh = gr.Button("Refresh")
        refresh.click(zoo_table, outputs=table, api_name="zoo_list")
        demo.load(zoo_table, outputs=table, api_name=False)
        demo.load(device_notice, outputs=notice, api_name="device")
    return demo


def main() -> None:
    """Resolve the shared VGG-16 through the weights chain, then serve the demo."""
    encoder = zoo.load_vgg16()
    print(f"VGG-16 weights: {encoder.weights_source}", flush=True)
    build_demo().queue(max_size=int(os.environ.get("STUDIO_QUEUE_SIZE", "32"))).launch()


if __name__ == "__main__":
    main()
