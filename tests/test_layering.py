"""Conventions 1 and the import smoke test: the library never imports Gradio or the Hub."""

import importlib
import pkgutil

import pytest

import styletransfer
import training
import zoo
from tests.conftest import run_python


def _modules(package) -> list[str]:
    return [package.__name__] + [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]


def test_library_imports_without_gradio_or_hub():
    names = _modules(styletransfer)
    code = (
        "import sys\n"
        "for blocked in ('gradio', 'huggingface_hub', 'zoo', 'app', 'training'):\n"
        "    sys.modules[blocked] = None\n"
        f"for name in {names!r}:\n"
        "    __import__(name)\n"
    )
    run_python(code)


def test_zoo_and_training_never_import_the_app():
    names = _modules(zoo) + _modules(training)
    code = "import sys\nsys.modules['app'] = None\nsys.modules['gradio'] = None\n" + "".join(
        f"__import__({n!r})\n" for n in names
    )
    run_python(code)


@pytest.mark.parametrize("name", _modules(styletransfer) + _modules(zoo) + _modules(training) + ["app"])
def test_every_module_imports(name):
    importlib.import_module(name)


@pytest.mark.parametrize("package", [styletransfer, zoo])
def test_public_surface_is_declared(package):
    for name in package.__all__:
        assert hasattr(package, name), f"{package.__name__}.__all__ names missing {name}"
