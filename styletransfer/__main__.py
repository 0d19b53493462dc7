"""Command line: ``python -m styletransfer {gatys,adain} CONTENT STYLE [STYLE ...] -o OUT [controls]``
and ``python -m styletransfer stylebank CONTENT --style NAME[:W] ... -o OUT``. CONTENT may be a folder:
every image in it is stylised into the folder OUT (``<name>.png`` each, or the ``--format`` named), with
the models loaded once (and AdaIN's style statistics computed once); an image that cannot be read is
reported and skipped.

This is an application entry point, not library code: it resolves the VGG-16 weights through
the zoo's chain (imported inside ``main`` only, so ``import styletransfer`` never pulls in the
zoo or huggingface_hub) unless ``--vgg`` names a file. Ctrl-C stops the optimisation and
still writes the best image so far; in a batch it ends the batch after the current image. The output
(PNG, JPEG or WebP, by its name) carries the method and settings in its metadata (``gatys
--settings-from`` redoes a recorded run); an output that cannot be written, or that would overwrite an
input, is refused before any work, and a result that cannot be saved where asked (a full disk, a folder
removed meanwhile) is saved in the temp folder instead, never lost.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import adain, stylebank
from .allocator import keep_freed_memory
from .color import COLOR_MODES, COLOR_SPACES, MATCH_METHODS
from .gatys import (COLOR_DIRECTIONS, GUIDANCES, INITS, OPTIMIZERS, UPSCALES, GatysConfig, StepInfo,
                    fast_schedule, loss_text, parse_schedule, recorded_controls, stylize)
from .imageio import OUTPUT_SUFFIXES, ImageInputError, list_images, output_format, read_settings, save_image
from .masks import auto_regions
from .outputs import check_output, save_or_keep
from .progress import time_left_text
from .vgg import POOLINGS, VGGEncoder

_DEFAULTS = GatysConfig()
_PLAN_OPTIONS = frozenset({"size", "num_steps", "coarse_to_fine", "schedule", "scales", "scale_steps", "fast"})
"""The gatys options that plan the sizes and steps: one given replaces a recorded plan as a whole."""
_PLAN_CONTROLS = ("size", "num_steps", "coarse_to_fine", "scales", "scale_steps")
_FLAGS = {"num_steps": "--steps", "masks": "--mask", "style_masks": "--style-mask"}
"""Option names that are not their destination's name with dashes."""
_Runner = Callable[[Path, Path], str]
"""Stylises one content image into one output file and says what it wrote."""


def _flag(dest: str) -> str:
    """The option that sets ``dest``, as a person types it."""
    return _FLAGS.get(dest, "--" + dest.replace("_", "-"))


def _add_content_and_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("content", type=Path, help="content image, or a folder of them (each stylised, models loaded once)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output image (.png, .jpg or .webp: the ending chooses the format; each carries its "
                        "settings); a folder (made if missing) when CONTENT is a folder: <name>.png for each image")
    p.add_argument("--format", choices=[suffix[1:] for suffix in OUTPUT_SUFFIXES],
                   help="file type of the results when CONTENT is a folder (default png)")


def _add_region_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--mask", type=Path, nargs="+", dest="masks",
                       help="spatial control: one mask image per style, at the content's size (white = that style)")
    group.add_argument("--auto-regions", action="store_true",
                       help="spatial control: one region per style, from K-means on the content's relu4_1 features")


def _add_color_options(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--preserve-color", "--color", dest="preserve_color", choices=COLOR_MODES, default="none",
                   help=help_text + " (--color: the gatys spelling)")
    p.add_argument("--color-method", choices=MATCH_METHODS, default="cholesky",
                   help="histogram matching solution")


def _region_masks(args: argparse.Namespace, content: Path, encoder: VGGEncoder,
                  seed: int = 0) -> tuple[list | None, Any]:
    """The masks ``--mask`` or ``--auto-regions`` ask for (None: no spatial control), and how to record them."""
    if args.auto_regions:
        return list(auto_regions(content, len(args.styles), encoder=encoder, seed=seed)), "auto regions"
    if args.masks:
        return args.masks, [m.name for m in args.masks]
    return None, None


def _schedule(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A ``--schedule``: sizes and steps (see :func:`styletransfer.gatys.parse_schedule`)."""
    try:
        return parse_schedule(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _seconds(text: str) -> float:
    """A ``--time-limit``: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0 (leave the option out for no "
                                         "limit)")
    return value


def _style_weight(text: str) -> float | tuple[float, ...]:
    """A ``--style-weights`` entry: one number, or a comma list of one per style layer."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or a comma list of numbers") from None
    return values[0] if len(values) == 1 else values


class _DefaultsShown(argparse.HelpFormatter):
    """Help that ends each option's text with its default, where it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if not action.option_strings or any(default is v for v in (None, False, argparse.SUPPRESS)) \
                or default in ([], ()) or "default" in text:
            return text
        values = default if isinstance(default, (list, tuple)) else [default]
        shown = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
        return f"{text} (default: {shown.replace('%', '%%')})".strip()


def _gatys_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("gatys", help="optimisation-based style transfer (Gatys et al.)",
                       formatter_class=_DefaultsShown)
    _add_content_and_output(p)
    p.add_argument("styles", type=Path, nargs="+", help="one or more style images")
    p.add_argument("--style-weights", type=_style_weight, nargs="+", metavar="W",
                   help="one non-negative weight per style image, or per style a comma list with one weight per "
                        "style layer (scale control, e.g. 1,1,0,0,0 0,0,1,1,1: fine texture from the first style, "
                        "coarse structure from the second)")
    _add_region_options(p)
    p.add_argument("--style-mask", nargs="+", dest="style_masks", metavar="MASK",
                   help="one mask per style image, at that image's size: its statistics come from that region "
                        "only ('none' for the whole image)")
    p.add_argument("--guidance", choices=GUIDANCES, default=_DEFAULTS.guidance,
                   help="how masks reach each layer: simple (area-averaged) or inside (eroded by the layer's "
                        "receptive field, so less of a region's style spills over its edge)")
    p.add_argument("--size", type=int, help=f"long side of the output in px (default {_DEFAULTS.size}; with "
                                            "--schedule or --scales, their last size)")
    p.add_argument("--steps", type=int, default=_DEFAULTS.num_steps, dest="num_steps",
                   help="optimiser steps in all (coarse-to-fine spreads them over its sizes)")
    p.add_argument("--content-weight", type=float, default=_DEFAULTS.content_weight, help="alpha")
    p.add_argument("--style-weight", type=float, default=_DEFAULTS.style_weight, help="beta")
    p.add_argument("--tv-weight", type=float, default=_DEFAULTS.tv_weight, help="total-variation weight")
    p.add_argument("--content-layers", nargs="+", default=list(_DEFAULTS.content_layers), metavar="LAYER",
                   help="VGG layer names, e.g. relu4_2")
    p.add_argument("--style-layers", nargs="+", default=list(_DEFAULTS.style_layers), metavar="LAYER",
                   help="VGG layers whose Gram matrices are matched")
    p.add_argument("--style-layer-weights", type=float, nargs="+", metavar="W",
                   help="one weight per style layer (default: equal)")
    p.add_argument("--pooling", choices=POOLINGS, default=_DEFAULTS.pooling,
                   help="VGG's pooling: max (as trained) or avg (the paper's choice, smoother results)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=_DEFAULTS.optimizer, help="L-BFGS (the paper's) or Adam")
    p.add_argument("--lr", type=float, help="learning rate (default: 1 for L-BFGS, 0.02 for Adam; pixels in 0..1)")
    p.add_argument("--init", choices=INITS, default=_DEFAULTS.init, help="where the optimisation starts: content "
                   "stays closest to the photo, content+noise gives more of the painting at about the same loss")
    p.add_argument("--init-image", type=Path, metavar="IMAGE",
                   help="start from this image instead of the content, e.g. an earlier result to refine "
                        "(with --init content+noise it is mixed with noise)")
    p.add_argument("--noise-ratio", type=float, default=_DEFAULTS.noise_ratio,
                   help="noise share of a content+noise start")
    p.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="noise and K-means seed")
    p.add_argument("--style-scale", type=float, default=_DEFAULTS.style_scale,
                   help="the style image's size relative to the output (below 1: smaller motifs)")
    p.add_argument("--coarse-to-fine", action="store_true", help="solve small, upscale, refine (default schedule)")
    plan = p.add_mutually_exclusive_group()
    plan.add_argument("--schedule", type=_schedule, metavar="SIZExSTEPS+...",
                      help="coarse-to-fine schedule as text, e.g. 256x50+512x85: long side x steps at each size, "
                           "smallest first; the last size is the output's (overrides --steps)")
    plan.add_argument("--scales", type=int, nargs="+",
                      help="explicit coarse-to-fine sizes, smallest first; the last is the output's")
    p.add_argument("--scale-steps", type=int, nargs="+", help="steps at each of --scales")
    p.add_argument("--upscale", choices=UPSCALES, default=_DEFAULTS.upscale,
                   help="how a coarse result starts the next size: detail adds the content's finer detail, "
                        "bicubic only resamples")
    plan.add_argument("--fast", action="store_true",
                      help="quick coarse-to-fine schedule: 50/20/12 steps at 1/4, 1/2 and full size (21-35 s at 512 px "
                           "on a 2-core CPU without native bf16); overrides --steps")
    p.add_argument("--time-limit", type=_seconds, metavar="SECONDS",
                   help="end the run within about this time: each size gets a share in proportion to its planned "
                        "steps x pixels and takes the steps that fit")
    p.add_argument("--color", "--preserve-color", dest="color", choices=COLOR_MODES, default=_DEFAULTS.color,
                   help="colour control: luminance-only transfer, or histogram matching (--preserve-color: the "
                        "adain and stylebank spelling)")
    p.add_argument("--color-space", choices=COLOR_SPACES, default=_DEFAULTS.color_space,
                   help="of luminance-only transfer")
    p.add_argument("--color-method", choices=MATCH_METHODS, default=_DEFAULTS.color_method,
                   help="histogram matching solution")
    p.add_argument("--color-direction", choices=COLOR_DIRECTIONS, default=_DEFAULTS.color_direction,
                   help="histogram matching: the style's colours to the content's, or the reverse")
    p.add_argument("--fp32", action="store_true", help="run VGG in float32 (default: bf16 where it pays)")
    p.add_argument("--vgg", type=Path, help="VGG-16 weights file (default: the zoo's resolution chain)")
    p.add_argument("--settings-from", type=Path, metavar="RESULT",
                   help="redo the run a result records (an image this tool or the studio wrote): its controls, "
                        "sizes and the steps each size took, without its time limit, so the same machine gives "
                        "the same image; each option given here replaces what it records, and a plan option "
                        "(--size, --steps, --coarse-to-fine, --schedule, --scales, --scale-steps, --fast) the "
                        "recorded plan as a whole. Name the images again: content, styles, and any masks or "
                        "start image the run had")
    return p


def _gatys_controls(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`~styletransfer.gatys.stylize` the options ask for."""
    controls = {
        name: getattr(args, name)
        for name in GatysConfig.__dataclass_fields__
        if getattr(args, name, None) is not None
    }
    for key in ("content_layers", "style_layers", "style_layer_weights", "scales", "scale_steps"):
        if key in controls:
            controls[key] = tuple(controls[key])
    if args.fast:
        controls["scales"], controls["scale_steps"] = fast_schedule(controls.get("size", _DEFAULTS.size))
    if args.schedule:
        sizes, steps = args.schedule
        controls["scales"], controls["scale_steps"] = sizes, steps
    controls["style_weights"] = args.style_weights
    return controls


def _given_options(parser: argparse.ArgumentParser, sub: argparse.ArgumentParser, argv: list[str] | None,
                   args: argparse.Namespace) -> set[str]:
    """The destinations of the options ``argv`` gives the subcommand parser ``sub`` (``args``: what ``parser``
    made of it), found by parsing it again with every default of ``sub`` unset."""
    unset = object()
    defaults = {dest: sub.get_default(dest) for dest in vars(args) if dest != "method"}
    sub.set_defaults(**dict.fromkeys(defaults, unset))
    try:
        again = parser.parse_args(argv)
    finally:
        sub.set_defaults(**defaults)
    return {dest for dest in defaults if getattr(again, dest) is not unset}


def _replayed_controls(args: argparse.Namespace, given: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--settings-from``: the controls that redo the recorded run (:func:`~styletransfer.gatys.recorded_controls`),
    each option ``given`` replacing its recorded value and a plan option the recorded plan, and the recorded
    settings. The run's auto regions and float32 carry over into ``args``; masks, style masks, a start image
    and the number of blended styles must be given again."""
    source = args.settings_from.name
    if not args.settings_from.is_file():
        raise FileNotFoundError(f"--settings-from {args.settings_from}: there is no such file")
    record = read_settings(args.settings_from)
    if record.get("method") != "gatys":
        raise ValueError(f"--settings-from {source}: that image was made by {record.get('method')}, not gatys")
    settings = record["settings"]
    controls = recorded_controls(settings)
    own = _gatys_controls(args)
    if given & _PLAN_OPTIONS:
        for key in _PLAN_CONTROLS:
            controls.pop(key, None)
        controls.update({key: own[key] for key in _PLAN_CONTROLS if key in own})
    controls.update({key: value for key, value in own.items() if key in given})
    masks = settings.get("masks")
    if masks == "auto regions" and not args.masks:
        args.auto_regions = True
    elif masks and not (args.masks or args.auto_regions):
        which = ", ".join(masks) if isinstance(masks, list) else f"{masks} of them"
        raise ValueError(f"--settings-from {source}: that run had a region mask per style ({which}); name them "
                         "with --mask, or use --auto-regions")
    if any(settings.get("style_masks") or ()) and args.style_masks is None:
        which = ", ".join(m if isinstance(m, str) else f"style {i + 1}"
                          for i, m in enumerate(settings["style_masks"]) if m)
        raise ValueError(f"--settings-from {source}: that run took each style from a region ({which}); name the "
                         "masks with --style-mask ('none' for a whole style image)")
    if settings.get("init_image") and args.init_image is None:
        which = f" ({settings['init_image']})" if isinstance(settings["init_image"], str) else ""
        raise ValueError(f"--settings-from {source}: that run started from an image{which}; name it with "
                         "--init-image")
    weights = controls["style_weights"]
    if weights is not None and len(weights) != len(args.styles):
        raise ValueError(f"--settings-from {source}: that run blended {len(weights)} styles "
                         f"({', '.join(settings.get('styles') or ())}); name as many style images, or give "
                         "--style-weights")
    args.fp32 = args.fp32 or settings.get("precision") == "fp32"
    replaced = sorted(_flag(dest) for dest in given
                      if dest not in ("content", "styles", "output", "format", "settings_from", "vgg"))
    print(f"settings from {source}" + (f", but {' '.join(replaced)} as given here" if replaced else ""),
          file=sys.stderr)
    return controls, settings


def _gatys_runner(args: argparse.Namespace, stop: threading.Event, given: set[str]) -> _Runner:
    import zoo  # application layer only; see the module docstring

    controls, recorded = _replayed_controls(args, given) if args.settings_from else (_gatys_controls(args), {})
    encoder = zoo.load_vgg16("fp32" if args.fp32 else "auto", str(args.vgg) if args.vgg else None)
    if recorded.get("precision") == "bf16" and not encoder.uses_bf16(next(encoder.parameters()).device):
        print(f"note: {args.settings_from.name} was made with bf16 VGG passes, which this machine does not run "
              "fast: float32 here, so the image will differ a little", file=sys.stderr)
    term_weights = controls.get("style_weight", _DEFAULTS.style_weight), controls.get("tv_weight", _DEFAULTS.tv_weight)

    def progress(info: StepInfo) -> None:
        loss = loss_text(info.losses, *term_weights)
        print(f"\rstep {info.step}/{info.total} at {info.size[1]}x{info.size[0]}: loss {loss}, "
              f"{time_left_text(info.seconds_left)}   ", end="", file=sys.stderr, flush=True)

    style_masks = None if args.style_masks is None else [
        None if m.lower() == "none" else Path(m) for m in args.style_masks]

    def run(content: Path, output: Path) -> str:
        masks, masks_record = _region_masks(args, content, encoder, controls.get("seed", _DEFAULTS.seed))
        result = stylize(content, args.styles, encoder=encoder, init_image=args.init_image, masks=masks,
                         style_masks=style_masks, progress=progress, cancel=stop, **controls)
        settings = {**result.settings, "content": content.name, "styles": [s.name for s in args.styles]}
        if args.init_image:
            settings["init_image"] = args.init_image.name
        if masks_record:
            settings["masks"] = masks_record
        if style_masks:
            settings["style_masks"] = [m.name if m else None for m in style_masks]
        _write(result.image, output, method="gatys", settings=settings)
        note = " (stopped early: best so far)" if result.stopped else ""
        if result.hit_time_limit:
            note = f" (time limit: {result.steps_taken_text()})"
        print(file=sys.stderr)  # ends the progress line
        loss = ""
        if result.final_losses:
            loss = f"; loss {loss_text(result.final_losses, *term_weights)}"
        return f"wrote {output} in {result.seconds:.1f} s{note}{loss}"

    return run


def _adain_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adain", help="AdaIN arbitrary style transfer (Huang & Belongie)",
                       formatter_class=_DefaultsShown)
    _add_content_and_output(p)
    p.add_argument("styles", type=Path, nargs="+", help="one or more style images")
    p.add_argument("--alpha", type=float, default=1.0, help="content-style trade-off in [0, 1] (default 1)")
    p.add_argument("--weights", type=float, nargs="+", dest="style_weights", help="interpolation weight per style")
    _add_region_options(p)
    _add_color_options(p, "luminance: the content's chroma; histogram: the styles recoloured to the content's colours")
    p.add_argument("--size", type=int, default=512, help="long side of the working size in px (0 = keep)")
    p.add_argument("--style-size", type=int, default=512, help="long side the styles are resized to (0 = keep)")
    p.add_argument("--fp32", action="store_true", help="run in float32 (default: bf16 where it pays)")
    p.add_argument("--precision", choices=adain.DECODER_PRECISIONS, default=None,
                   help="the decoder's precision (default: auto, or fp32 with --fp32): auto is bf16 where it pays, "
                        "else int8 where the decoder is calibrated for it and int8 pays, else fp32")
    p.add_argument("--decoder", type=Path, help="decoder weights file (default: the zoo's adain.vgg16n)")
    p.add_argument("--vgg", type=Path, help="VGG-16 weights file (default: the zoo's resolution chain)")


def _adain_runner(args: argparse.Namespace) -> _Runner:
    import zoo  # application layer only; see the module docstring

    precision = "fp32" if args.fp32 else "auto"
    if args.fp32 and args.precision not in (None, "fp32"):
        raise ValueError(f"--fp32 runs everything in float32: leave out --precision {args.precision}")
    encoder = zoo.load_normalized_vgg(precision, str(args.vgg) if args.vgg else None)
    decoder = zoo.load_adain_decoder(path=str(args.decoder) if args.decoder else None,
                                     precision=args.precision or precision)
    decoder_precision = decoder.inference_precision(next(decoder.parameters()).device)  # int8: refused here if not
    controls = {
        "alpha": args.alpha,
        "style_weights": args.style_weights,
        "preserve_color": args.preserve_color,
        "color_method": args.color_method,
        "size": args.size or None,
        "style_size": args.style_size or None,
    }
    styles: list = list(args.styles)
    if args.preserve_color != "histogram":  # histogram matching recolours the styles to each content
        styles = [adain.encode_style(s, encoder=encoder, size=controls["style_size"]) for s in styles]

    def run(content: Path, output: Path) -> str:
        t0 = time.perf_counter()
        masks, masks_record = _region_masks(args, content, encoder)
        image = adain.stylize(content, styles, encoder=encoder, decoder=decoder, masks=masks, **controls)
        seconds = time.perf_counter() - t0
        settings = {**controls, "content": content.name, "styles": [s.name for s in args.styles],
                    "masks": masks_record, "decoder": decoder.weights_source, "decoder_precision": decoder_precision}
        _write(image, output, method="adain", settings=settings)
        return f"wrote {output} in {seconds:.2f} s ({decoder_precision} decoder)"

    return run


def _stylebank_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stylebank", help="StyleBank: an auto-encoder plus one filter bank per style",
                       formatter_class=_DefaultsShown)
    _add_content_and_output(p)
    p.add_argument("--style", nargs="+", required=True, metavar="NAME[:W]",
                   help="bank name(s); NAME:W gives linear-fusion weights (normalised to sum 1)")
    p.add_argument("--regions", type=int, help="region fusion with K K-means regions (style i -> region i)")
    p.add_argument("--mask", type=Path, nargs="+", dest="masks", help="region fusion with one mask per style")
    p.add_argument("--seed", type=int, default=0, help="K-means seed")
    p.add_argument("--size", type=int, default=512, help="long side of the working size in px (0 = keep)")
    p.add_argument("--autoencoder", type=Path,
                   help="StyleBank auto-encoder file (default: the zoo's StyleBank, with its banks)")
    p.add_argument("--bank", type=Path, nargs="+", default=[], help="more bank files (or folders of them)")
    p.add_argument("--regions-out", type=Path,
                   help="also write the region map here (PNG; a folder when CONTENT is a folder)")
    p.add_argument("--precision", choices=stylebank.PRECISIONS, default="auto",
                   help="auto: int8 on a CPU with VNNI and a calibrated auto-encoder, else bf16 where fast, else fp32")
    _add_color_options(p, "luminance: the content's chroma; histogram: the result recoloured to the content's colours")


def _parse_styles(items: list[str]) -> dict[str, float] | list[str]:
    if not any(":" in item for item in items):
        return items
    weights = {}
    for item in items:
        name, _, weight = item.partition(":")
        try:
            weights[name] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"--style {item!r}: the weight after ':' must be a number") from None
    return weights


def _stylebank_runner(args: argparse.Namespace, region_maps: dict[Path, Path]) -> _Runner:
    if args.autoencoder is None:
        import zoo  # application layer only; see the module docstring

        autoencoder, banks = zoo.load_stylebank()
        banks, source = dict(banks), autoencoder.weights_source
    else:
        autoencoder, banks = stylebank.StyleBankAutoEncoder.from_pretrained(args.autoencoder).eval(), {}
        source = args.autoencoder.name
    files = [f for b in args.bank for f in (sorted(b.glob("*.safetensors")) if b.is_dir() else [b])]
    banks |= stylebank.load_banks(files, autoencoder)
    style = _parse_styles(args.style)

    def run(content: Path, output: Path) -> str:
        t0 = time.perf_counter()
        result = stylebank.stylize(content, style, autoencoder=autoencoder, banks=banks, regions=args.regions,
                                   masks=args.masks, seed=args.seed, size=args.size or None,
                                   precision=args.precision, preserve_color=args.preserve_color,
                                   color_method=args.color_method)
        seconds = time.perf_counter() - t0
        settings = {**result.settings, "content": content.name, "autoencoder": source}
        _write(result.image, output, method="stylebank", settings=settings)
        if content in region_maps and result.region_map is not None:
            save_or_keep(result.region_map.save, region_maps[content])
        return f"wrote {output} in {seconds:.2f} s ({result.settings['precision']})"

    return run


def _outputs(content: Path, output: Path, option: str = "--output", suffixes: tuple[str, ...] = (".png",),
             batch_format: str = "png") -> list[tuple[Path, Path]]:
    """What to write: ``(content, output)`` for one content image (its ending one of ``suffixes``), or for
    each image of a content folder ``(image, output / "<name>.<batch_format>")`` into the output folder
    (``_make_folders`` makes it once every check has passed). Refused before any work where a file cannot be
    written, where the output folder is the content folder (a second run would take the results for
    contents), or where two images would share an output name."""
    if not content.is_dir():
        check_output(output, suffixes, option)
        return [(content, output)]
    images = list_images(content)
    if output.suffix.lower() in suffixes or (output.exists() and not output.is_dir()):
        raise ValueError(f"{option} {output}: {content} is a folder, so name an output folder")
    if output.exists() and output.resolve() == content.resolve():
        raise ValueError(f"{option} {output}: write the results into another folder than the contents'")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"{option} {output}: there is no folder {output.parent}")
    if not output.exists() and not os.access(output.parent, os.W_OK):
        raise PermissionError(f"{option} {output}: this folder cannot be made")
    names: dict[str, Path] = {}
    for image in images:
        if (clash := names.setdefault(image.stem, image)) is not image:
            raise ValueError(f"{clash.name} and {image.name} would both be written as {image.stem}.{batch_format}: "
                             "rename one or stylise them apart")
    pairs = [(image, output / f"{image.stem}.{batch_format}") for image in images]
    if output.exists():  # a folder still to be made holds no file to check
        for _, target in pairs:
            check_output(target, suffixes, option)
    return pairs


def _result_outputs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    """Where each result goes: ``--output`` (a file named .png, .jpg or .webp, or a folder of
    ``--format`` files); ``--format`` must agree with a file's ending."""
    chosen = args.format and output_format(f".{args.format}")
    if chosen and not args.content.is_dir() and output_format(args.output.suffix) != chosen:
        raise ValueError(f"--format {args.format} and --output {args.output} disagree: for one image the "
                         "output's ending chooses the format")
    return _outputs(args.content, args.output, suffixes=OUTPUT_SUFFIXES, batch_format=args.format or "png")


def _make_folders(targets: list[Path]) -> None:
    """Make the output folders a folder of contents writes into, once nothing is left to refuse."""
    for folder in {target.parent for target in targets}:
        folder.mkdir(exist_ok=True)


def _region_map_outputs(args: argparse.Namespace) -> dict[Path, Path]:
    """Where StyleBank's ``--regions-out`` writes each content's region map (nowhere without it)."""
    if not getattr(args, "regions_out", None):
        return {}
    if args.regions_out.resolve() == args.output.resolve():
        raise ValueError("--regions-out and --output name the same place: the maps would overwrite the results")
    return dict(_outputs(args.content, args.regions_out, "--regions-out"))  # maps stay lossless PNGs


def _check_outputs_spare_inputs(args: argparse.Namespace, pairs: list[tuple[Path, Path]],
                                region_maps: dict[Path, Path]) -> None:
    """Refuse, before any work, an output that would overwrite an input: a content or style image, a mask, a
    start image or a result whose settings are redone."""
    inputs = {content.resolve(): "the content" for content, _ in pairs}
    for dest, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            if dest not in ("output", "regions_out") and isinstance(item, (str, Path)) and Path(item).is_file():
                what = "a style image" if dest == "styles" else f"given to {_flag(dest)}"
                inputs.setdefault(Path(item).resolve(), what)
    for target in [output for _, output in pairs] + list(region_maps.values()):
        if (what := inputs.get(target.resolve())) is not None:
            raise ValueError(f"{target} is an input ({what}): write the result to another file")


def _check_batch(args: argparse.Namespace) -> None:
    """Refuse the options that name a file for one content image when the content is a folder."""
    if not args.content.is_dir():
        return
    for option, dest in (("--mask", "masks"), ("--init-image", "init_image")):
        if getattr(args, dest, None):
            raise ValueError(f"{option} is made for one content image, but {args.content} is a folder: "
                             "stylise that image on its own" + (", or use --auto-regions" if dest == "masks" else ""))


def _run_all(run: _Runner, pairs: list[tuple[Path, Path]], stop: threading.Event) -> int:
    """Stylise every pair; in a batch an image that cannot be used is reported and skipped, and a stop
    (Ctrl-C) ends the batch after the current image. Returns the exit code: 1 where an image was skipped."""
    skipped = []
    for k, (content, output) in enumerate(pairs, start=1):
        counter = f"[{k}/{len(pairs)}] " if len(pairs) > 1 else ""
        try:
            print(counter + run(content, output), file=sys.stderr, flush=True)
        except ImageInputError as e:
            if len(pairs) == 1:
                raise
            skipped.append(content.name)
            print(f"{counter}skipped {content.name}: {e}", file=sys.stderr, flush=True)
        if stop.is_set():
            if k < len(pairs):
                print(f"stopped: {k - len(skipped)} of {len(pairs)} images written", file=sys.stderr)
            break
    else:
        if len(pairs) > 1:
            print(f"{len(pairs) - len(skipped)} of {len(pairs)} images written"
                  + (f"; skipped {', '.join(skipped)}" if skipped else ""), file=sys.stderr)
    return 1 if skipped else 0


def _write(image: Any, path: Path, *, method: str, settings: dict[str, Any]) -> None:
    save_or_keep(lambda target: save_image(image, target, method=method, settings=settings), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m styletransfer", description="Neural style transfer.")
    sub = parser.add_subparsers(dest="method", required=True)
    gatys_parser = _gatys_parser(sub)
    _adain_parser(sub)
    _stylebank_parser(sub)
    args = parser.parse_args(argv)
    given = _given_options(parser, gatys_parser, argv, args) if getattr(args, "settings_from", None) else set()
    keep_freed_memory()
    stop = threading.Event()  # Gatys stops within an image; the others between images
    try:
        _check_batch(args)
        pairs = _result_outputs(args)
        region_maps = _region_map_outputs(args)
        _check_outputs_spare_inputs(args, pairs, region_maps)
        run = {"gatys": lambda: _gatys_runner(args, stop, given), "adain": lambda: _adain_runner(args),
               "stylebank": lambda: _stylebank_runner(args, region_maps)}[args.method]()
        _make_folders([output for _, output in pairs] + list(region_maps.values()))
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C keeps the work so far
        try:
            return _run_all(run, pairs, stop)
        finally:
            signal.signal(signal.SIGINT, previous)
    except (ImageInputError, ValueError, TypeError, FileNotFoundError, OSError) as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
