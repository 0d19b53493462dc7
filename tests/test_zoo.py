import re

import pytest
import torch
from safetensors.torch import save_file

import zoo.hub
from zoo.__main__ import main as zoo_cli
from zoo.cards import model_card
from zoo.manifest import MODELS
from zoo.registry import get_spec, list_models


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
    assert [s.name for s in list_models("shared")] == ["vgg16.tv_in1k", "vgg16.normalized"]


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


def test_load_stylebank_without_a_trained_model_says_so():
    import zoo

    if any(s.kind == "stylebank-autoencoder" for s in zoo.list_models()):
        pytest.skip("a StyleBank model ships; loading it is tested in the slow tier")
    with pytest.raises(zoo.WeightsNotFoundError, match="no trained StyleBank"):
        zoo.load_stylebank()
