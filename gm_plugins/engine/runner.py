"""Build an mmengine ``Runner`` from a config of any scope, with MMAction2-style CLI options.

``tools/train.py`` and ``tools/test.py`` are thin wrappers around these functions, so
the same options work for gm_plugins' own configs (``default_scope='mmaction'``) and
for the preprocessing models' configs (``default_scope='mmseg'`` or ``'mmpose'``).
"""

from __future__ import annotations

import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from gm_plugins.utils.allocator import keep_freed_memory
from gm_plugins.utils.config import SUPPORTED_SCOPES, load_config

__all__ = [
    "SUPPORTED_SCOPES",
    "add_common_args",
    "best_or_last_checkpoint",
    "build_runner",
    "enable_amp",
    "latest_checkpoint",
    "load_config",
    "set_local_rank",
    "set_work_dir",
]


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options shared by training and testing (work dir, config overrides, launcher)."""
    parser.add_argument("--work-dir", help="directory for logs and checkpoints")
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help="override config entries, e.g. train_dataloader.batch_size=4 "
        'optim_wrapper.optimizer.lr=1e-4 or key="[a,b]" for lists',
    )
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch", "slurm", "mpi"],
        default="none",
        help="job launcher for distributed runs (see tools/dist_train.sh)",
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)


def set_work_dir(cfg: Config, config_path: str, work_dir: str | None) -> None:
    """CLI ``--work-dir`` > ``work_dir`` in the file > ``work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get("work_dir", None) is None:
        cfg.work_dir = osp.join("work_dirs", osp.splitext(osp.basename(config_path))[0])


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to mixed precision (needs a GPU in mmengine 0.10.7)."""
    if not torch.cuda.is_available():
        raise RuntimeError(
            "--amp needs a CUDA GPU: mmengine's AmpOptimWrapper cannot be built on the CPU. "
            "Drop --amp to train in full precision."
        )
    wrapper = cfg.optim_wrapper.get("type", "OptimWrapper")
    if wrapper not in ("OptimWrapper", "AmpOptimWrapper"):
        raise ValueError(f"--amp cannot convert the custom optimizer wrapper {wrapper!r}.")
    cfg.optim_wrapper.type = "AmpOptimWrapper"
    cfg.optim_wrapper.setdefault("loss_scale", "dynamic")


def build_runner(cfg: Config) -> Runner:
    """Build the runner the config asks for (``runner_type``) in the config's own scope.

    A distributed run (``cfg.launcher`` not ``'none'``) on a machine without CUDA wraps the
    model in a CPU ``MMDistributedDataParallel`` (mmengine's default passes the rank as a CUDA
    device id, which DDP refuses for CPU modules); processes talk over gloo (see
    :func:`gm_plugins.compat.enable_cpu_distributed`).

    glibc's malloc is first told to keep the memory each step frees
    (:func:`gm_plugins.utils.allocator.keep_freed_memory`; ``GM_PLUGINS_MALLOC=default`` keeps
    its own settings); the runner's log says which.
    """
    allocator = keep_freed_memory()
    use_cpu_ddp_wrapper(cfg)
    if "runner_type" not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        from mmengine.registry import RUNNERS

        from gm_plugins.compat import library_scope

        with library_scope(cfg.default_scope):
            runner = RUNNERS.build(cfg)
    state = "set" if allocator["applied"] else "not set"
    runner.logger.info(f"memory allocator {state}: {allocator['reason']}")
    return runner


def use_cpu_ddp_wrapper(cfg: Config) -> None:
    """Without CUDA, give a distributed config a DDP wrapper without device ids."""
    if cfg.get("launcher", "none") == "none" or torch.cuda.is_available():
        return
    if cfg.get("sync_bn", None):
        raise ValueError(
            f"sync_bn={cfg.sync_bn!r}: torch's SyncBatchNorm runs on GPUs only. On CPUs drop "
            "it (--cfg-options sync_bn=None): each process then keeps its own BatchNorm statistics."
        )
    if cfg.get("model_wrapper_cfg", None) is None:
        cfg.model_wrapper_cfg = dict(
            type="MMDistributedDataParallel",
            broadcast_buffers=False,
            find_unused_parameters=cfg.get("find_unused_parameters", False),
        )
    # The runner's default device_ids=[LOCAL_RANK] names a CUDA device; CPU modules take None.
    cfg.model_wrapper_cfg.setdefault("device_ids", None)


def set_local_rank(local_rank: int) -> None:
    """torch.distributed.launch passes ``--local-rank``; torchrun sets the variable."""
    os.environ.setdefault("LOCAL_RANK", str(local_rank))


def latest_checkpoint(work_dir: str | os.PathLike) -> str | None:
    """The checkpoint to resume from: the one ``last_checkpoint`` names, else the newest
    ``epoch_*.pth`` / ``iter_*.pth``, else None (nothing to resume: train from scratch).

    ``CheckpointHook`` writes ``last_checkpoint`` after the checkpoint itself, so it never names
    a half-written file; a run killed while writing ``last_checkpoint`` leaves it empty, and
    the newest numbered checkpoint, complete by then, is the one to resume.
    """
    import re
    from pathlib import Path

    pointer = Path(work_dir) / "last_checkpoint"
    named = pointer.read_text().strip() if pointer.is_file() else ""
    if named and Path(named).is_file():
        return named
    numbered = [
        (int(match.group(2)), match.group(1) == "epoch", path)
        for path in Path(work_dir).glob("*.pth")
        if (match := re.fullmatch(r"(epoch|iter)_(\d+)\.pth", path.name))
    ]
    if numbered:
        return str(max(numbered)[2])
    return named or None  # a named but missing file: let the runner say so


def best_or_last_checkpoint(work_dir: str | os.PathLike) -> str:
    """The newest ``best_*.pth`` (saved by the validation metric) if any, else the last one.

    Raises FileNotFoundError naming the work dir when training saved no checkpoint.
    """
    from pathlib import Path

    best = sorted(Path(work_dir).glob("best_*.pth"), key=lambda p: p.stat().st_mtime)
    if best:
        return str(best[-1])
    last = Path(work_dir) / "last_checkpoint"
    if not last.is_file():
        raise FileNotFoundError(f"{work_dir} holds no checkpoint: train there first")
    return last.read_text().strip()
