"""The README's front matter is the Hugging Face Space configuration: it must agree with the project."""

import re
import tomllib
from pathlib import Path

from huggingface_hub.repocard import metadata_load

from zoo.manifest import MODELS

ROOT = Path(__file__).resolve().parent.parent


def space_config() -> dict:
    config = metadata_load(ROOT / "README.md")
    assert config, "README.md has no YAML front matter"
    return config


def test_space_runs_app_py_with_the_pinned_gradio_and_a_supported_python():
    config = space_config()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", (ROOT / "requirements.txt").read_text(), re.MULTILINE))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert config["sdk"] == "gradio" and config["sdk_version"] == pins["gradio"]
    assert (ROOT / config["app_file"]).is_file()
    least = tuple(int(part) for part in project["requires-python"].removeprefix(">=").split("."))
    assert tuple(int(part) for part in str(config["python_version"]).split(".")) >= least
    assert len(config["short_description"]) <= 60  # the Hub's limit
    assert config["license"] == project["license"]["text"].lower()
    assert (ROOT / "LICENSE").read_text().startswith(f"{project['license']['text']} License")


def test_space_preloads_every_hub_model_of_the_zoo_at_its_pinned_revision():
    config = space_config()
    wanted = {f"{spec.repo_id} {spec.filename} {spec.revision}" for spec in MODELS if spec.on_hub}
    assert wanted, "the zoo pins no Hub model"
    assert set(config["preload_from_hub"]) == wanted
    assert set(config["models"]) == {spec.repo_id for spec in MODELS if spec.on_hub}
