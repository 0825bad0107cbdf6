"""Every config inherits at most 3 levels of `_base_` (MMAction2's limit) and loads."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
from mmengine.config import Config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ALL_CONFIGS = sorted(CONFIGS.rglob("*.py"))
MAX_DEPTH = 3


def base_files(path: Path) -> list[Path]:
    """The files named by ``_base_`` in ``path``, resolved as mmengine resolves them."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "_base_" for target in node.targets
        ):
            names = ast.literal_eval(node.value)
            names = [names] if isinstance(names, str) else names
            # Relative to the file; `package::path` from the installed package.
            return [Path(Config._get_cfg_path(name, str(path))[0]).resolve() for name in names]
    return []


@cache
def depth(path: Path) -> int:
    """Levels of `_base_` above ``path``: 0 without bases, else 1 + its deepest base's."""
    return max((1 + depth(base) for base in base_files(path)), default=0)


def chain(path: Path) -> list[str]:
    """The deepest line of inheritance from ``path``, for the failure message."""
    bases = base_files(path)
    return [path.name, *chain(max(bases, key=depth))] if bases else [path.name]


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_inherits_at_most_three_levels_and_loads(path):
    assert depth(path) <= MAX_DEPTH, " -> ".join(chain(path))
    Config.fromfile(str(path))


def test_depth_counts_every_level(tmp_path):
    # leaf -> a -> b -> c -> d: four levels, one too many.
    (tmp_path / "d.py").write_text("x = 1\n")
    (tmp_path / "c.py").write_text('_base_ = "./d.py"\n')
    (tmp_path / "b.py").write_text('_base_ = ["./c.py"]\n')
    (tmp_path / "a.py").write_text('_base_ = ["./d.py", "./b.py"]\n')
    (tmp_path / "leaf.py").write_text('_base_ = ["./a.py"]\n')
    assert depth((tmp_path / "c.py").resolve()) == 1
    assert depth((tmp_path / "a.py").resolve()) == 3
    assert depth((tmp_path / "leaf.py").resolve()) == MAX_DEPTH + 1
    assert chain((tmp_path / "leaf.py").resolve()) == ["leaf.py", "a.py", "b.py", "c.py", "d.py"]


def test_external_bases_are_followed():
    seg = CONFIGS / "preprocess/fcn_unet-s5-c16_b4-12k_synthetic-seg-160x120.py"
    bases = base_files(base_files(seg)[0])
    assert bases and all(base.is_file() and "mmseg" in str(base) for base in bases)
    assert depth(seg) >= 2
