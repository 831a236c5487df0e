"""The layers of pyproject.toml's import-linter contract (`make lint`): they hold on the tree,
they catch an upward import added on purpose, and every module of cxhub is in a layer."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=where,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(where)},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    """The apps and pyproject.toml in a folder of their own, to break on purpose."""
    where = tmp_path_factory.mktemp("layers")
    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, where / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", where / "pyproject.toml")
    return where


def test_the_tree_keeps_its_layers(copy):
    result = lint_imports(copy)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward", "message"),
    [
        (
            "publishing/models.py",
            "from approvals import services",
            "publishing is not allowed to import approvals",
        ),
        ("audit/services.py", "import accounts.models", "audit is not allowed to import accounts"),
        ("cxhub/errors.py", "from publishing import models", "is not allowed to import publishing"),
    ],
)
def test_an_upward_import_breaks_the_contract(copy, module, upward, message):
    path = copy / module
    kept = path.read_text()
    path.write_text(f"{kept}\n\ndef _upward():\n    {upward}\n")  # even inside a function
    try:
        result = lint_imports(copy)
    finally:
        path.write_text(kept)

    assert result.returncode == 1
    assert message in result.stdout


def test_every_module_of_cxhub_sits_in_a_layer():
    named = {
        module.strip()
        for layer in CONFIG["contracts"][0]["layers"]
        for module in layer.replace("|", ":").split(":")
    }
    modules = {
        f"cxhub.{path.stem}" if path.suffix == ".py" else f"cxhub.{path.name}"
        for path in (ROOT / "cxhub").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert modules - {"cxhub.migrations"} <= named, sorted(modules - named)
