"""Fixtures of the model tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def single_torch_thread():
    """Run each test on one intra-op thread and restore the setting afterwards.

    The test models are tiny, so threads only add synchronisation; on a busy 2-core machine
    OpenMP barriers made a 32 px forward pass 100x slower with 2 threads than with 1.
    """
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
