"""The package layout holds: the import-linter contracts of pyproject.toml (layers, no circle
between packages), no private name imported across packages, no repository script run or
found from the package's own path, and a non-editable install runs a cross-validation from
another folder."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.datasets.fake_cache import write_fake_dataset
from tests.runner_configs import REPO_ROOT, tiny_demo_config

PACKAGE = REPO_ROOT / "gm_plugins"


def package_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of gm_plugins."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def subpackage(module: str) -> str:
    """``gm_plugins.preprocess.transforms.flow`` -> ``gm_plugins.preprocess``."""
    return ".".join(module.split(".")[:2])


def absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def test_the_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_list_no_exceptions():
    text = (REPO_ROOT / "pyproject.toml").read_text()
    assert "[tool.importlinter]" in text
    assert "ignore_imports" not in text and "unmatched_ignore" not in text


def test_no_private_name_is_imported_across_packages():
    crossings = []
    for module, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = absolute(module, path, node)
            if not source.startswith("gm_plugins.") or subpackage(source) == subpackage(module):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.endswith("__"):
                    crossings.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {alias.name}")
    assert not crossings, "private names imported from another package: " + ", ".join(crossings)


def test_no_module_runs_a_repository_script_or_finds_files_from_its_own_path():
    found = []
    for path in package_modules().values():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            script = (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith("tools/")
                and node.value.endswith(".py")
            )
            own_path = isinstance(node, ast.Name) and node.id == "__file__"
            if script or own_path:
                found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert not found, "repository paths in the package: " + ", ".join(found)


@pytest.mark.slow
def test_a_non_editable_install_cross_validates_from_another_folder(tmp_path):
    """The package copied into a site folder (no repository on the path) runs a three-fold
    cross-validation of a tiny config, from a folder that is not the repository."""
    source = tmp_path / "source"  # what setup.py reads, copied: the build writes next to it
    shutil.copytree(REPO_ROOT / "gm_plugins", source / "gm_plugins",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(REPO_ROOT / "requirements", source / "requirements")
    for name in ("setup.py", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    assert not (site / "tools").exists() and not (site / "configs").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    where = subprocess.run(
        [sys.executable, "-c", "import gm_plugins; print(gm_plugins.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(site)

    data, cache = write_fake_dataset(tmp_path / "fake", per_class=3)
    config = tiny_demo_config(elsewhere / "tiny.py", data, cache)
    run = subprocess.run(
        [sys.executable, "-m", "gm_plugins.experiments.cross_validate", config.name,
         "--folds", "3", "--work-dir", "cv"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert len(list((elsewhere / "cv" / "tiny").glob("repeat0_fold*/result.json"))) == 3
    assert (elsewhere / "cv" / "report.md").is_file()
