"""Tiny synthetic datasets shared by the tests of this folder (built once per session)."""

from __future__ import annotations

import pytest

from gm_plugins.datasets.synthetic import GeneratorConfig, generate_dataset

TINY = GeneratorConfig(
    subjects=6, seconds=2.0, fps=15, width=64, height=48, seed=3, prep_subjects=3, prep_frames=2
)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A dataset made with one worker: (directory, config)."""
    out = tmp_path_factory.mktemp("synthetic") / "one_worker"
    generate_dataset(out, TINY, workers=1, progress=False)
    return out, TINY


@pytest.fixture(scope="session")
def tiny_dataset_two_workers(tmp_path_factory):
    """The same arguments as ``tiny_dataset``, made with two workers."""
    out = tmp_path_factory.mktemp("synthetic") / "two_workers"
    generate_dataset(out, TINY, workers=2, progress=False)
    return out, TINY
