"""Names to specs, and names to loaded models (each loaded once and shared)."""

from __future__ import annotations

import functools
import os

import torch
from safetensors.torch import load_file

from styletransfer.adain import AdaINDecoder
from styletransfer.lpips import LPIPSHeads
from styletransfer.stylebank import StyleBank, StyleBankAutoEncoder, load_banks
from styletransfer.vgg import VGGConfig, VGGEncoder
from styletransfer.vgg_normalize import apply_filter_scales

from .manifest import MODELS, VGG16_FIRST_FILTER, ModelSpec
from .resolve import WeightsNotFoundError, resolve_bank, resolve_weights

__all__ = ["list_models", "get_spec", "load_vgg16", "load_normalized_vgg", "load_lpips_heads", "load_adain_decoder",
           "load_stylebank"]


def list_models(method: str | None = None) -> list[ModelSpec]:
    """Every zoo entry, or those serving ``method``."""
    return [spec for spec in MODELS if method is None or spec.method == method]


def get_spec(name: str) -> ModelSpec:
    """The entry called ``name``.

    Raises:
        KeyError: unknown name; the message lists the valid ones.
    """
    for spec in MODELS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown zoo model '{name}'; available: {', '.join(s.name for s in MODELS)}")


def _check_first_filter(encoder: VGGEncoder, source: str) -> None:
    got = encoder.features[0].weight[0, 0, 0]
    if not torch.allclose(got, torch.tensor(VGG16_FIRST_FILTER), atol=1e-4):
        raise ValueError(f"the VGG-16 weights from {source} are not torchvision's IMAGENET1K_V1 "
                         f"(first filter {got.tolist()})")


@functools.lru_cache(maxsize=4)
def load_vgg16(precision: str = "auto", path: str | None = None) -> VGGEncoder:
    """The ImageNet VGG-16 encoder, resolved through the weights chain; cached and shared.

    Args:
        precision: ``"auto"``, ``"bf16"`` or ``"fp32"`` (see :class:`~styletransfer.vgg.VGGEncoder`).
        path: an explicit weights file (torchvision layout) to use instead of the chain.
    """
    spec = get_spec("vgg16.tv_in1k")
    found = resolve_weights(spec, path=path)
    encoder = VGGEncoder.from_safetensors(found.path, VGGConfig(**spec.config), precision=precision)
    _check_first_filter(encoder, found.source)
    encoder.weights_source = found.source
    return encoder


@functools.lru_cache(maxsize=4)
def load_normalized_vgg(precision: str = "auto", path: str | None = None) -> VGGEncoder:
    """VGG-16 with the zoo's per-filter scales applied (mean activation 1 per filter); cached.

    Args:
        precision: as for :func:`load_vgg16`.
        path: an explicit base VGG-16 weights file.
    """
    spec = get_spec("vgg16.normalized")
    scales_file = resolve_weights(spec).path
    encoder = load_vgg16.__wrapped__(precision, path)
    apply_filter_scales(encoder, load_file(str(scales_file)))
    encoder.weights_source = f"{encoder.weights_source} + {os.path.basename(scales_file)}"
    return encoder


@functools.lru_cache(maxsize=1)
def load_lpips_heads() -> LPIPSHeads:
    """The LPIPS v0.1 heads for the VGG-16 of :func:`load_vgg16` (see :mod:`styletransfer.lpips`); cached."""
    found = resolve_weights(get_spec("lpips.vgg16"))
    heads = LPIPSHeads.from_pretrained(found.path).eval()
    heads.weights_source = found.source
    return heads


@functools.lru_cache(maxsize=4)
def load_adain_decoder(name: str = "adain.vgg16n", path: str | None = None, precision: str = "auto") -> AdaINDecoder:
    """A trained AdaIN decoder from the zoo (or an explicit file), in float32 weights; cached.

    Raises:
        WeightsNotFoundError: no step of the chain has the file.
        ModelFileError: the file is not an AdaIN decoder.
    """
    spec = get_spec(name)
    found = resolve_weights(spec, path=path)
    decoder = AdaINDecoder.from_pretrained(found.path, precision=precision).eval()
    decoder.requires_grad_(False)
    decoder.weights_source = found.source
    return decoder


@functools.lru_cache(maxsize=2)
def load_stylebank(name: str | None = None) -> tuple[StyleBankAutoEncoder, dict[str, StyleBank]]:
    """The zoo's StyleBank: its auto-encoder and its banks by style name (each with a ``thumbnail``); cached.

    The banks ship beside the auto-encoder as ``banks/<style>.safetensors`` (see :func:`~zoo.resolve.resolve_bank`).

    Raises:
        WeightsNotFoundError: the zoo has no trained StyleBank (or its files are missing).
        ModelFileError: a bank does not fit the auto-encoder.
    """
    specs = [s for s in list_models("stylebank") if s.kind == "stylebank-autoencoder" and name in (None, s.name)]
    if not specs:
        raise WeightsNotFoundError(
            f"the zoo has no StyleBank model{f' called {name!r}' if name else ''} "
            "(training/train_stylebank.py makes one; add banks for your own auto-encoder with the CLI)"
        )
    spec = specs[0]
    found = resolve_weights(spec)
    autoencoder = StyleBankAutoEncoder.from_pretrained(found.path).eval().requires_grad_(False)
    banks = load_banks([resolve_bank(spec, found, style) for style in spec.style_names], autoencoder)
    autoencoder.weights_source = found.source
    return autoencoder, banks
