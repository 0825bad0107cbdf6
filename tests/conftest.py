"""Shared fixtures: tiny model configs for the OpenMMLab stack, built on the CPU."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import gm_plugins  # noqa: E402,F401  (applies compat before any OpenMMLab model import)


@pytest.fixture
def restore_default_scope():
    """Snapshot mmengine's default scopes and put them back after the test."""
    import copy

    from mmengine.registry import DefaultScope

    saved = copy.deepcopy(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = saved
