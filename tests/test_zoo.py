import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import zoo.hub
from zoo.__main__ import main as zoo_cli
from zoo.cards import model_card
from zoo.manifest import MODELS
from zoo.registry import get_spec, list_models

HUB_REV = "89abcdef0123456789abcdef0123456789abcdef"


def test_manifest_entries_are_well_formed():
    names = [s.name for s in MODELS]
    assert len(names) == len(set(names))
    for spec in MODELS:
        assert re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", spec.name), spec.name
        assert spec.filename.endswith(".safetensors")
        assert spec.license and spec.source_url and spec.paper and spec.preprocessing
        if spec.revision is not None:
            assert re.fullmatch(r"[0-9a-f]{40}", spec.revision), f"{spec.name}: revision must be a pinned commit"
            assert spec.sha256 and re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
        if spec.embedded is not None:
            assert spec.embedded_path.is_file(), f"{spec.name}: embedded file missing"
            assert spec.sha256 == zoo.hub.file_sha256(spec.embedded_path)
        if spec.base is not None:
            get_spec(spec.base)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(KeyError, match="available: vgg16.tv_in1k, vgg16.normalized"):
        get_spec("adain.nope")
    assert [s.name for s in list_models("shared")] == ["vgg16.tv_in1k", "vgg16.normalized", "lpips.vgg16"]


def test_model_card_carries_licence_and_source():
    card = model_card(get_spec("vgg16.tv_in1k"))
    assert card.startswith("---\nlicense: bsd-3-clause\n") and "github.com/pytorch/vision" in card


def test_cli_list_and_verify(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLETRANSFER_WEIGHTS_DIR", str(tmp_path))
    assert zoo_cli(["list"]) == 0
    out = capsys.readouterr().out
    assert "vgg16.tv_in1k" in out and "hub:timm/vgg16.tv_in1k" in out and "embedded" in out
    assert zoo_cli(["verify"]) == 0
    bad = torch.zeros(64, 3, 3, 3)
    save_file({"features.0.weight": bad}, str(tmp_path / "vgg16.tv_in1k.safetensors"))
    assert zoo_cli(["verify", "vgg16.tv_in1k"]) == 1
    assert "not VGG-16's" in capsys.readouterr().out


def test_cli_pull_reports_source_and_errors_cleanly(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLETRANSFER_WEIGHTS_DIR", str(tmp_path))
    assert zoo_cli(["pull", "vgg16.normalized"]) == 0
    assert "embedded in the repository" in capsys.readouterr().out
    assert zoo_cli(["pull", "nope.nope"]) == 2
    assert "unknown zoo model 'nope.nope'" in capsys.readouterr().err
    assert zoo_cli(["pull", "vgg16.normalized", "--path", str(tmp_path / "missing.safetensors")]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_cli_push_uploads_file_and_card_with_env_token(capsys, tmp_path, monkeypatch):
    calls = {}

    class FakeApi:
        def __init__(self, token):
            calls["token"] = token

        def create_repo(self, repo_id, **kw):
            calls["repo"] = repo_id

        def create_commit(self, repo_id, operations, commit_message):
            calls["files"] = sorted(op.path_in_repo for op in operations)
            return type("Info", (), {"oid": "c" * 40})()

    monkeypatch.setattr(zoo.hub, "HfApi", FakeApi)
    monkeypatch.setattr(zoo.hub, "hub_reachable", lambda: True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert zoo_cli(["push", "vgg16.normalized", "--repo", "me/vgg16-normalized"]) == 2
    assert "needs a Hub write token" in capsys.readouterr().err
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    assert zoo_cli(["push", "vgg16.normalized", "--repo", "me/vgg16-normalized"]) == 0
    out = capsys.readouterr()
    assert calls == {"token": "hf_secret_value", "repo": "me/vgg16-normalized",
                     "files": ["README.md", "vgg16_normalized_scales.safetensors"]}
    assert "c" * 40 in out.out and "hf_secret_value" not in out.out + out.err


def _tiny_stylebank(folder, styles=("waves", "dots")):
    """A tiny auto-encoder at ``folder/autoencoder.safetensors`` with ``banks/<style>.safetensors`` beside it."""
    from PIL import Image

    from styletransfer.stylebank import AutoEncoderConfig, BankConfig, StyleBank, StyleBankAutoEncoder, save_bank

    torch.manual_seed(0)
    autoencoder = StyleBankAutoEncoder(AutoEncoderConfig(channels=(4, 8, 16)))
    path = folder / "autoencoder.safetensors"
    autoencoder.save_pretrained(path)
    fingerprint = StyleBankAutoEncoder.from_pretrained(path).fingerprint()
    for style in styles:
        save_bank(StyleBank(BankConfig(style, 16, 3, fingerprint)), folder / "banks" / f"{style}.safetensors",
                  thumbnail=Image.new("RGB", (40, 30), (200, 30, 30)))
    return path


def _stylebank_spec(**kw):
    from zoo.manifest import ModelSpec

    base = dict(name="stylebank.tiny", kind="stylebank-autoencoder", method="stylebank", description="tiny",
                license="mit", source_url="tests", paper="Chen et al. 2017", preprocessing="RGB in [0, 1]",
                filename="autoencoder.safetensors", style_names=("waves", "dots"))
    return ModelSpec(**{**base, **kw})


@pytest.fixture
def stylebank_zoo(monkeypatch):
    """Point the registry at one given StyleBank spec (and forget cached loads before and after)."""
    import zoo.registry

    def use(spec):
        monkeypatch.setattr(zoo.registry, "MODELS", (spec,))
        zoo.registry.load_stylebank.cache_clear()

    yield use
    zoo.registry.load_stylebank.cache_clear()


def test_load_stylebank_finds_banks_beside_the_embedded_autoencoder(tmp_path, monkeypatch, stylebank_zoo):
    import zoo
    import zoo.manifest
    from styletransfer.serialization import ModelFileError

    monkeypatch.setattr(zoo.manifest, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setenv("STYLETRANSFER_WEIGHTS_DIR", str(tmp_path / "empty"))
    path = _tiny_stylebank(tmp_path / "stylebank")
    spec = _stylebank_spec(embedded="stylebank/autoencoder.safetensors", sha256=zoo.hub.file_sha256(path))
    stylebank_zoo(spec)
    autoencoder, banks = zoo.load_stylebank()
    assert list(banks) == ["waves", "dots"] and "embedded" in autoencoder.weights_source
    assert all(b.config.autoencoder == autoencoder.fingerprint() for b in banks.values())
    assert banks["waves"].thumbnail.size == (40, 30)
    assert not any(p.requires_grad for p in autoencoder.parameters())

    (tmp_path / "stylebank" / "banks" / "dots.safetensors").unlink()
    stylebank_zoo(spec)
    with pytest.raises(zoo.WeightsNotFoundError, match="the bank of 'dots' is missing"):
        zoo.load_stylebank()

    from styletransfer.stylebank import BankConfig, StyleBank, save_bank

    save_bank(StyleBank(BankConfig("dots", 16, 3, "0" * 16)), tmp_path / "stylebank" / "banks" / "dots.safetensors")
    stylebank_zoo(spec)
    with pytest.raises(ModelFileError, match="trained for another StyleBank auto-encoder"):
        zoo.load_stylebank()


def test_load_stylebank_from_the_hub_cache_offline(tmp_path, monkeypatch, stylebank_zoo):
    """Auto-encoder and banks come from a Hub cache laid out as huggingface_hub lays it out."""
    import zoo

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("STYLETRANSFER_WEIGHTS_DIR", str(tmp_path / "empty"))
    made = _tiny_stylebank(tmp_path / "made")
    snapshot = tmp_path / "hub" / "models--org--tiny-stylebank" / "snapshots" / HUB_REV
    (tmp_path / "hub" / "models--org--tiny-stylebank" / "refs").mkdir(parents=True)
    (tmp_path / "hub" / "models--org--tiny-stylebank" / "refs" / "main").write_text(HUB_REV)
    blobs = tmp_path / "hub" / "models--org--tiny-stylebank" / "blobs"
    blobs.mkdir()
    for rel in ("autoencoder.safetensors", "banks/waves.safetensors", "banks/dots.safetensors"):
        digest = zoo.hub.file_sha256(made.parent / rel)
        (made.parent / rel).rename(blobs / digest)
        (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / rel).symlink_to(Path(*[".."] * (rel.count("/") + 2), "blobs", digest))
    spec = _stylebank_spec(repo_id="org/tiny-stylebank", revision=HUB_REV,
                           sha256=zoo.hub.file_sha256(snapshot / "autoencoder.safetensors"))
    stylebank_zoo(spec)
    autoencoder, banks = zoo.load_stylebank()
    assert "Hugging Face Hub org/tiny-stylebank" in autoencoder.weights_source and list(banks) == ["waves", "dots"]

    stylebank_zoo(_stylebank_spec(repo_id="org/tiny-stylebank", revision=HUB_REV, style_names=("waves", "stripes")))
    with pytest.raises(zoo.WeightsNotFoundError, match="bank of 'stripes' is missing .* not in the local Hub cache"):
        zoo.load_stylebank()


def test_load_stylebank_unknown_name_says_so(stylebank_zoo):
    import zoo

    stylebank_zoo(_stylebank_spec())
    with pytest.raises(zoo.WeightsNotFoundError, match="no StyleBank model called 'stylebank.nope'"):
        zoo.load_stylebank("stylebank.nope")


def test_push_and_pull_a_stylebank_carry_its_banks(tmp_path, monkeypatch, stylebank_zoo, capsys):
    import zoo.manifest

    calls = {}

    class FakeApi:
        def __init__(self, token):
            pass

        def create_repo(self, repo_id, **kw):
            pass

        def create_commit(self, repo_id, operations, commit_message):
            calls["files"] = sorted(op.path_in_repo for op in operations)
            return type("Info", (), {"oid": "d" * 40})()

    monkeypatch.setattr(zoo.manifest, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setenv("STYLETRANSFER_WEIGHTS_DIR", str(tmp_path / "empty"))
    path = _tiny_stylebank(tmp_path / "stylebank")
    stylebank_zoo(_stylebank_spec(embedded="stylebank/autoencoder.safetensors", sha256=zoo.hub.file_sha256(path)))
    assert zoo_cli(["pull", "stylebank.tiny"]) == 0
    assert "banks/dots.safetensors" in capsys.readouterr().out
    monkeypatch.setattr(zoo.hub, "HfApi", FakeApi)
    monkeypatch.setattr(zoo.hub, "hub_reachable", lambda: True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    assert zoo_cli(["push", "stylebank.tiny", "--repo", "me/tiny-stylebank"]) == 0
    assert calls["files"] == ["README.md", "autoencoder.safetensors", "banks/dots.safetensors",
                              "banks/waves.safetensors"]
