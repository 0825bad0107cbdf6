"""glibc's malloc keeps the memory a step frees: no fresh pages for the next step's tensors."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from tests.runner_configs import REPO_ROOT

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Allocates, fills and frees a 64 MiB tensor three times after two warm-up rounds and counts
# the minor page faults of the three: each fresh mapping faults 16384 4-KiB pages.
PROBE = """
import json, resource, torch
from gm_plugins.utils.allocator import keep_freed_memory
record = keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(2):
    block = torch.ones(16 * 2**20); del block
start = faults()
for _ in range(3):
    block = torch.ones(16 * 2**20); del block
print(json.dumps(dict(record=record, faults=faults() - start)))
"""


def probe(setting: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GM_PLUGINS_MALLOC"}
    if setting is not None:
        env["GM_PLUGINS_MALLOC"] = setting
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's")
def test_freed_blocks_are_reused_without_new_page_faults():
    kept, default = probe(None), probe("default")
    assert kept["record"]["applied"] and "M_MMAP_MAX=0" in kept["record"]["reason"]
    assert not default["record"]["applied"] and "default" in default["record"]["reason"]
    pages = 3 * 16 * 2**20 * 4 // 4096
    assert default["faults"] > 0.9 * pages  # glibc maps each 64 MiB block afresh
    # the freed block is reused: without the setting all three rounds fault every page; with
    # it at most one round did in 2026-12-06's runs (the kernel may reclaim the idle freed
    # pages between rounds, e.g. DAMON on a VM), 0 pages in the others
    assert kept["faults"] < 0.4 * pages


def test_an_unknown_setting_is_refused_with_the_choices(monkeypatch):
    from gm_plugins.utils import allocator

    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setenv("GM_PLUGINS_MALLOC", "fast")
    with pytest.raises(ValueError, match=r"GM_PLUGINS_MALLOC='fast'.*'keep'.*'default'"):
        allocator.keep_freed_memory()
