"""Fixtures of the integration tests: models trained briefly on toy data, on the CPU."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def single_torch_thread():
    """One intra-op thread per test (restored afterwards): the models are tiny, and on a busy
    2-core machine OpenMP barriers cost more than a second thread gains."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
