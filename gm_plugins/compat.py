"""Workarounds that make the 2023-era OpenMMLab stack run on today's torch and numpy.

Every workaround lives here, is applied once by :func:`apply` when ``gm_plugins``
is imported, and has a test in ``tests/test_compat.py`` that fails when it is
removed (and, where possible, one that shows it is still needed).

1. mmaction2 1.2.0's wheel lacks ``mmaction/models/localizers/drn`` (upstream
   mmaction2 issue #2714), so ``import mmaction.models`` fails. We serve a stand-in
   module whose ``DRN`` explains the problem when someone tries to build it.
2. torch >= 2.6 loads checkpoints with ``weights_only=True`` and mmengine 0.10.7
   calls ``torch.load`` without that argument (upstream mmengine pull request #1650), so
   checkpoints saved by an mmengine ``Runner`` fail to load. We allow-list exactly
   the classes such checkpoints hold, instead of disabling the safety globally.
3. ``mmseg.apis.init_model``, ``mmpose.apis.init_model`` and ``inference_topdown``
   switch mmengine's global default scope (upstream mmaction2 issue #2467);
   :func:`library_scope` runs such calls under their own scope and restores the
   caller's.
4. numpy 2 removed ``np.Inf``, which mmaction2 1.2.0's ``PoseCompact`` and
   ``MMCompact`` (``mmaction/datasets/transforms/pose_transforms.py``) still use.
5. mmengine 0.10.7's ``pytorch`` and ``slurm`` launchers call ``torch.cuda.set_device``
   unconditionally (``mmengine/dist/utils.py``), so ``torchrun`` fails on a machine without
   CUDA before any process group exists. Without CUDA we skip that call and use the gloo
   backend (nccl needs GPUs); with CUDA mmengine's own code runs unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.machinery
import pickle
import sys
import types
from collections.abc import Iterator

import numpy as np

_DRN_PACKAGE = "mmaction.models.localizers.drn"
_DRN_MODULE = "mmaction.models.localizers.drn.drn"
_applied = False


# 1. The missing DRN localizer ---------------------------------------------------------------


class MissingDRN:
    """Stand-in for mmaction2's DRN localizer, which its 1.2.0 release does not ship."""

    def __init__(self, *args, **kwargs) -> None:
        raise ImportError(
            "mmaction2 1.2.0 on PyPI ships without mmaction/models/localizers/drn "
            "(upstream mmaction2 issue #2714), so the DRN localizer is unavailable. "
            "Install mmaction2 from its source repository to use DRN."
        )


class _MissingDRNFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the DRN modules only when the installed mmaction2 does not have them.

    It sits at the end of ``sys.meta_path``, so a fixed mmaction2 release wins.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in (_DRN_PACKAGE, _DRN_MODULE):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname == _DRN_PACKAGE)

    def create_module(self, spec):
        return types.ModuleType(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        if module.__name__ == _DRN_PACKAGE:
            module.__path__ = []
        else:
            module.DRN = MissingDRN


def install_missing_drn_module() -> None:
    """Let ``import mmaction.models`` succeed on the broken mmaction2 1.2.0 wheel."""
    if not any(isinstance(finder, _MissingDRNFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MissingDRNFinder())


# 2. Loading mmengine checkpoints with weights_only=True --------------------------------------


_HISTORY_BUFFER_METHODS = frozenset({"min", "max", "current", "mean"})


def _history_buffer_method(owner: type, name: str):
    """Restricted stand-in for ``getattr`` when unpickling checkpoints.

    mmengine's ``HistoryBuffer`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. Allow-listing the real ``getattr`` would let
    any pickle call arbitrary methods, so this resolves only those names.
    """
    from mmengine.logging import HistoryBuffer

    if owner is not HistoryBuffer or name not in _HISTORY_BUFFER_METHODS:
        raise pickle.UnpicklingError(
            f"Refusing getattr({owner!r}, {name!r}) while loading a checkpoint: only "
            f"HistoryBuffer statistics methods {sorted(_HISTORY_BUFFER_METHODS)} are allowed."
        )
    return getattr(owner, name)


def mmengine_checkpoint_safe_globals() -> list:
    """The classes and functions that checkpoints saved by mmengine 0.10.7 contain."""
    from mmengine.logging import HistoryBuffer, MessageHub
    from mmengine.utils import ManagerMeta

    numpy_core = getattr(np, "_core", None) or np.core
    safe: list = [
        HistoryBuffer,
        MessageHub,
        ManagerMeta,
        (_history_buffer_method, "builtins.getattr"),
        np.ndarray,
        np.dtype,
        (numpy_core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        (numpy_core.multiarray._reconstruct, "numpy._core.multiarray._reconstruct"),
        (numpy_core.multiarray.scalar, "numpy.core.multiarray.scalar"),
        (numpy_core.multiarray.scalar, "numpy._core.multiarray.scalar"),
    ]
    # numpy >= 1.25 pickles dtypes through their own classes (numpy.dtypes.Float64DType ...).
    dtype_classes = {type(np.dtype(code)) for code in np.typecodes["All"] if code not in "MmOV"}
    dtype_classes |= {type(np.dtype(code)) for code in ("M8[ns]", "m8[ns]", "V8", "O")}
    safe.extend(sorted(dtype_classes, key=lambda cls: cls.__name__))
    return safe


def allow_mmengine_checkpoints() -> None:
    """Allow-list mmengine checkpoint contents for ``torch.load(weights_only=True)``."""
    import torch.serialization

    torch.serialization.add_safe_globals(mmengine_checkpoint_safe_globals())


# 3. Default scope of mmseg / mmpose calls ---------------------------------------------------


@contextlib.contextmanager
def library_scope(scope: str) -> Iterator[None]:
    """Run OpenMMLab calls of another library under ``scope`` and restore the caller's.

    Example:
        >>> with library_scope('mmseg'):
        ...     model = mmseg.apis.init_model(cfg, checkpoint)

    mmengine's ``DefaultScope.overwrite_default_scope`` snapshots every scope
    instance and puts them back on exit, so scopes that the library creates inside
    (``init_default_scope('mmseg')``) disappear with the block.
    """
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope(scope):
        yield


# 4. numpy 2 removed np.Inf ------------------------------------------------------------------


def restore_numpy_inf_alias() -> None:
    """Give numpy 2 back the ``np.Inf`` alias that mmaction2's pose transforms use."""
    if "Inf" not in np.__dict__:
        np.Inf = np.inf


# 5. Distributed launchers on CPU-only machines ----------------------------------------------


def cpu_backend(backend: str | None) -> str:
    """The process-group backend to use without CUDA: nccl (GPU only) becomes gloo."""
    return "gloo" if backend in (None, "nccl") else backend


def _cpu_capable(launch):
    """Wrap an mmengine ``_init_dist_*`` so that it runs without CUDA (gloo, no set_device)."""

    @functools.wraps(launch)
    def init_dist_anywhere(backend, *args, **kwargs) -> None:
        import torch

        if torch.cuda.is_available():
            return launch(backend, *args, **kwargs)
        original_set_device = torch.cuda.set_device
        torch.cuda.set_device = lambda device: None  # the CPU rank has no device to pick
        try:
            return launch(cpu_backend(backend), *args, **kwargs)
        finally:
            torch.cuda.set_device = original_set_device

    init_dist_anywhere.__wrapped_launcher__ = launch
    return init_dist_anywhere


def enable_cpu_distributed() -> None:
    """Let mmengine's ``pytorch`` and ``slurm`` launchers start gloo process groups on CPUs."""
    from mmengine.dist import utils as dist_utils

    for name in ("_init_dist_pytorch", "_init_dist_slurm"):
        launch = getattr(dist_utils, name)
        if not hasattr(launch, "__wrapped_launcher__"):
            setattr(dist_utils, name, _cpu_capable(launch))


def apply() -> None:
    """Apply every workaround once (idempotent)."""
    global _applied
    if _applied:
        return
    install_missing_drn_module()
    allow_mmengine_checkpoints()
    restore_numpy_inf_alias()
    enable_cpu_distributed()
    _applied = True
