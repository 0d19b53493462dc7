"""Colour control shared by every method (Gatys et al., "Controlling Perceptual Factors in
Neural Style Transfer", CVPR 2017, sec. 5).

Two ways to keep the content's colours:

* **luminance-only transfer**: transfer style on the luminance channel only, then put the
  content's chroma back (YIQ or YCbCr);
* **colour histogram matching**: an affine map of one image's pixels so their mean and
  covariance equal the other's, ``x' = A (x - mu_s) + mu_t`` with ``A Sigma_s A^T = Sigma_t``;
  ``A`` from Cholesky factors or from symmetric (eigen) square roots.

All functions take and return float tensors ``[B, 3, H, W]`` with RGB in [0, 1].
"""

from __future__ import annotations

import torch

__all__ = [
    "COLOR_MODES",
    "COLOR_SPACES",
    "MATCH_METHODS",
    "rgb_to_luma_chroma",
    "luma_chroma_to_rgb",
    "luminance",
    "match_luminance",
    "transfer_luminance",
    "match_color",
]

# Rows map RGB to (Y, chroma1, chroma2). Y is the same BT.601 luma in both spaces.
_MATRICES = {
    "yiq": torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64),
    "ycbcr": torch.tensor(
        [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=torch.float64
    ),
}
COLOR_SPACES = tuple(_MATRICES)
MATCH_METHODS = ("cholesky", "eigen")
COLOR_MODES = ("none", "luminance", "histogram")
"""Colour control of every method: none, luminance-only transfer, or mean/covariance matching."""


def _matrix(space: str, inverse: bool, like: torch.Tensor) -> torch.Tensor:
    if space not in _MATRICES:
        raise ValueError(f"color space must be one of {COLOR_SPACES}, got {space!r}")
    m = _MATRICES[space]
    return (torch.linalg.inv(m) if inverse else m).to(device=like.device, dtype=like.dtype)


def rgb_to_luma_chroma(rgb: torch.Tensor, space: str = "yiq") -> torch.Tensor:
    """RGB ``[B, 3, H, W]`` -> (Y, chroma, chroma) in ``space`` (``"yiq"`` or ``"ycbcr"``; chroma centred on 0)."""
    return torch.einsum("ij,bjhw->bihw", _matrix(space, False, rgb), rgb)


def luma_chroma_to_rgb(ycc: torch.Tensor, space: str = "yiq") -> torch.Tensor:
    """Inverse of :func:`rgb_to_luma_chroma` (not clamped)."""
    return torch.einsum("ij,bjhw->bihw", _matrix(space, True, ycc), ycc)


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma ``[B, 1, H, W]``."""
    return rgb_to_luma_chroma(rgb)[:, :1]


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Style luminance as a 3-channel grey image whose mean and std match the content's luminance.

    The affine luminance remap of Gatys et al. (2017, eq. 7), so the style's overall
    brightness and contrast do not leak into the result.
    """
    ys, yc = luminance(style), luminance(content)
    matched = (ys - ys.mean()) / (ys.std() + 1e-8) * yc.std() + yc.mean()
    return matched.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def transfer_luminance(stylized: torch.Tensor, content: torch.Tensor, space: str = "yiq") -> torch.Tensor:
    """Luminance of ``stylized`` with the chroma of ``content`` (resized to match), clamped to [0, 1]."""
    if content.shape[-2:] != stylized.shape[-2:]:
        content = torch.nn.functional.interpolate(content, size=stylized.shape[-2:], mode="bilinear",
                                                  align_corners=False)
    out = rgb_to_luma_chroma(content, space)
    out = torch.cat([rgb_to_luma_chroma(stylized, space)[:, :1], out[:, 1:]], dim=1)
    return luma_chroma_to_rgb(out, space).clamp(0, 1)


def _mean_cov(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = pixels.double().reshape(3, -1)
    mean = flat.mean(dim=1, keepdim=True)
    centred = flat - mean
    cov = centred @ centred.T / flat.shape[1]
    return mean, cov + 1e-5 * torch.eye(3, dtype=cov.dtype, device=cov.device)  # keep flat images invertible


def _sym_sqrt(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(1e-12)
    return vectors @ torch.diag(values.rsqrt() if inverse else values.sqrt()) @ vectors.T


def match_color(source: torch.Tensor, target: torch.Tensor, method: str = "cholesky", *,
                clamp: bool = True) -> torch.Tensor:
    """Affinely map ``source``'s colours so their mean and covariance equal ``target``'s.

    Args:
        source: ``[1, 3, H, W]`` image to recolour (e.g. the style image).
        target: ``[1, 3, H', W']`` image whose colour statistics to take (e.g. the content).
        method: ``"cholesky"`` (``A = L_t L_s^-1``) or ``"eigen"`` (``A = Sigma_t^1/2 Sigma_s^-1/2``).
        clamp: clip the result to [0, 1] (the exact statistics hold before clipping).

    Returns:
        The recoloured ``source``, same shape and dtype.

    Raises:
        ValueError: unknown method, or not single 3-channel images.
    """
    if method not in MATCH_METHODS:
        raise ValueError(f"color matching method must be one of {MATCH_METHODS}, got {method!r}")
    for name, t in (("source", source), ("target", target)):
        if t.ndim != 4 or t.shape[:2] != (1, 3):
            raise ValueError(f"{name} must be [1, 3, H, W], got {tuple(t.shape)}")
    mu_s, cov_s = _mean_cov(source[0])
    mu_t, cov_t = _mean_cov(target[0])
    if method == "cholesky":
        a = torch.linalg.cholesky(cov_t) @ torch.linalg.inv(torch.linalg.cholesky(cov_s))
    else:
        a = _sym_sqrt(cov_t) @ _sym_sqrt(cov_s, inverse=True)
    flat = source[0].double().reshape(3, -1)
    out = (a @ (flat - mu_s) + mu_t).reshape(source.shape).to(source.dtype)
    return out.clamp(0, 1) if clamp else out
