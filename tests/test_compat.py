"""Each workaround in gm_plugins.compat: it works, and the stack still needs it."""

from __future__ import annotations

import fractions
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from gm_plugins import compat


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that has NOT imported gm_plugins."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )


# 1. missing DRN module ----------------------------------------------------------------------


def test_mmaction_models_still_fail_to_import_without_the_drn_workaround():
    result = run_python("import mmaction.models")
    assert result.returncode != 0
    assert "mmaction.models.localizers.drn" in result.stderr


def test_mmaction_models_import_with_the_drn_workaround():
    import mmaction.models  # noqa: F401
    from mmaction.models.localizers import DRN

    assert DRN is compat.MissingDRN
    with pytest.raises(ImportError, match="2714"):
        DRN()


def test_drn_finder_is_installed_once():
    compat.install_missing_drn_module()
    compat.install_missing_drn_module()
    finders = [f for f in sys.meta_path if isinstance(f, compat._MissingDRNFinder)]
    assert len(finders) == 1


# 2. weights-only checkpoint loading ----------------------------------------------------------


def message_hub_checkpoint(path) -> None:
    """Save what an mmengine Runner puts in a checkpoint's meta: a message hub state."""
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance("compat-test")
    hub.update_scalar("train/loss", 0.5)
    hub.update_scalar("train/loss", 0.25)
    hub.update_info("iter", 3)
    meta = dict(message_hub=hub.state_dict(), seed=7, epoch=1, np_value=np.float64(2.5))
    torch.save(dict(meta=meta, state_dict={"w": torch.ones(2)}), path)


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / "ckpt.pth"
    message_hub_checkpoint(path)
    loaded = torch.load(path, weights_only=True)
    history = loaded["meta"]["message_hub"]["log_scalars"]["train/loss"]
    assert history.mean() == pytest.approx(0.375)
    assert loaded["meta"]["np_value"] == 2.5


def test_mmengine_checkpoint_still_needs_the_allow_list(tmp_path):
    path = tmp_path / "ckpt.pth"
    message_hub_checkpoint(path)
    torch.serialization.clear_safe_globals()
    try:
        with pytest.raises(pickle.UnpicklingError, match="HistoryBuffer"):
            torch.load(path, weights_only=True)
    finally:
        compat.allow_mmengine_checkpoints()


class _RunsCode:
    """A pickle payload that would run a shell command when loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _GetattrEscape:
    """A payload that reaches a non-allow-listed method through builtins.getattr."""

    def __reduce__(self):
        return (getattr, (np.ndarray, "tofile"))


def test_malicious_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "payload": _RunsCode(str(marker))}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    assert not marker.exists()


def test_getattr_stand_in_only_resolves_history_buffer_methods(tmp_path):
    path = tmp_path / "evil_getattr.pth"
    torch.save({"payload": _GetattrEscape()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Refusing getattr"):
        torch.load(path)


def test_weights_only_stays_on_in_a_process_that_imported_gm_plugins(tmp_path):
    """compat's allow-list must not turn weights_only off: a fresh process that imported
    gm_plugins (compat applied) still refuses a class outside the allow-list."""
    path = tmp_path / "fraction.pth"
    torch.save({"payload": fractions.Fraction(1, 3)}, path)
    script = (
        "import os, pickle, sys, torch, gm_plugins\n"
        "assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ\n"
        "try:\n"
        f"    torch.load({str(path)!r})\n"
        "except pickle.UnpicklingError:\n"
        "    sys.exit(0)\n"
        "sys.exit('torch.load unpickled a class outside the allow-list')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]


# 3. default scope of other libraries' calls --------------------------------------------------


def test_library_scope_restores_the_callers_scope(restore_default_scope):
    from mmengine.registry import DefaultScope, init_default_scope

    init_default_scope("mmaction")
    with compat.library_scope("mmseg"):
        assert DefaultScope.get_current_instance().scope_name == "mmseg"
        init_default_scope("mmpose")  # what mmseg/mmpose init_model do inside
    assert DefaultScope.get_current_instance().scope_name == "mmaction"


def test_library_scope_restores_the_scope_after_an_error(restore_default_scope):
    from mmengine.registry import DefaultScope, init_default_scope

    init_default_scope("mmaction")
    with pytest.raises(ValueError), compat.library_scope("mmpose"):
        init_default_scope("mmpose")
        raise ValueError("model failed to build")
    assert DefaultScope.get_current_instance().scope_name == "mmaction"


@pytest.mark.slow
def test_mmpose_init_model_leaks_its_scope_and_library_scope_contains_it(
    tmp_path, restore_default_scope
):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope, init_default_scope
    from mmpose.apis import init_model

    from tests.stack_configs import TINY_POSE

    cfg = Config(dict(model=TINY_POSE, default_scope="mmpose"))
    init_default_scope("mmaction")
    init_model(cfg, checkpoint=None, device="cpu")
    assert DefaultScope.get_current_instance().scope_name == "mmpose"  # the upstream leak

    init_default_scope("mmaction")
    with compat.library_scope("mmpose"):
        init_model(cfg, checkpoint=None, device="cpu")
    assert DefaultScope.get_current_instance().scope_name == "mmaction"


# 4. numpy 2 np.Inf ----------------------------------------------------------------------------


def test_numpy_still_lacks_inf_alias_without_the_workaround():
    result = run_python("import numpy; numpy.Inf")
    assert result.returncode != 0
    assert "np.Inf" in result.stderr


def test_pose_compact_runs_on_numpy_2():
    from mmaction.datasets.transforms import PoseCompact

    keypoints = np.zeros((1, 4, 17, 2), dtype=np.float32)
    keypoints[..., 0] = np.linspace(20, 40, 17)
    keypoints[..., 1] = np.linspace(30, 60, 17)
    results = dict(keypoint=keypoints, img_shape=(100, 100))
    out = PoseCompact(hw_ratio=1.0, allow_imgpad=True)(results)
    height, width = out["img_shape"]
    assert height == width
    assert height < 100


# 5. distributed launchers without CUDA --------------------------------------------------------

INIT_SINGLE_RANK = """
import os
os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                  MASTER_PORT="{port}")
{imports}
from mmengine.dist import utils
import torch.distributed as dist
utils.init_dist("pytorch", backend="nccl")
print("backend", dist.get_backend(), "world", dist.get_world_size())
dist.destroy_process_group()
"""


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the workaround only acts without CUDA")
def test_mmengine_pytorch_launcher_still_needs_cuda_without_the_workaround():
    result = run_python(INIT_SINGLE_RANK.format(port=free_port(), imports=""))
    assert result.returncode != 0
    assert "set_device" in result.stderr  # mmengine picks a CUDA device for every rank


@pytest.mark.skipif(torch.cuda.is_available(), reason="the workaround only acts without CUDA")
def test_pytorch_launcher_starts_a_gloo_group_on_the_cpu():
    result = run_python(INIT_SINGLE_RANK.format(port=free_port(), imports="import gm_plugins"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "backend gloo world 1" in result.stdout  # nccl (GPU only) became gloo


def test_cpu_launcher_wrapper_is_installed_once_and_keeps_the_original():
    from mmengine.dist import utils

    wrapped = utils._init_dist_pytorch
    compat.enable_cpu_distributed()
    assert utils._init_dist_pytorch is wrapped
    assert wrapped.__wrapped_launcher__.__module__ == "mmengine.dist.utils"
    assert compat.cpu_backend("nccl") == "gloo" and compat.cpu_backend("mpi") == "mpi"


def test_apply_is_idempotent():
    before = len(sys.meta_path)
    compat.apply()
    compat.apply()
    assert len(sys.meta_path) == before
