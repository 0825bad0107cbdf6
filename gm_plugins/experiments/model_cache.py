"""A per-machine cache of trained preprocessing models, keyed by what they were trained from.

The benchmark's evaluation-grade segmentation and pose models take hours to train on 2 cores. A
model trained once is stored under ``$GM_PLUGINS_MODEL_CACHE`` (default
``~/.cache/gm_plugins/models``) in a folder named after its config and a key: the sha256 of the
config as mmengine resolves it (every inherited file included) and of the checkpoint it starts
from (``load_from``), if any. A fresh clone that needs the model gets the cached checkpoint copied
to the path its preprocessing config names (``work_dirs/<config>/<file>.pth``) instead of training
again; another config, an edited one, or another starting checkpoint gets another key, so a stale
model is never reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from mmengine.config import Config

from gm_plugins.utils.io import atomic_path, write_json_atomic
from gm_plugins.utils.zoo import sha256_of

#: Environment variable naming the cache folder.
CACHE_ENV = "GM_PLUGINS_MODEL_CACHE"


def model_cache_dir() -> Path:
    """``$GM_PLUGINS_MODEL_CACHE``, else ``~/.cache/gm_plugins/models``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "gm_plugins" / "models"


def model_key(config: str | os.PathLike, root: str | os.PathLike = ".") -> str:
    """16 hex digits identifying a model by its resolved config and its starting checkpoint.

    Args:
        config: the model's training config, relative to ``root`` or absolute.
        root: the repository root (relative paths in the config are taken from it).

    Raises:
        FileNotFoundError: the config's ``load_from`` checkpoint does not exist yet (train the
            model it starts from first).
    """
    root = Path(root)
    cfg = Config.fromfile(str(root / config))
    digest = hashlib.sha256(cfg.pretty_text.encode())
    start_from = cfg.get("load_from")
    if start_from:
        start_path = root / start_from
        if not start_path.is_file():
            raise FileNotFoundError(
                f"{config} starts from {start_from}, which does not exist: train that model first"
            )
        digest.update(sha256_of(start_path).encode())
    return digest.hexdigest()[:16]


def cached_checkpoint(
    config: str | os.PathLike, checkpoint: str | os.PathLike, root: str | os.PathLike = "."
) -> Path:
    """Where the cache keeps ``checkpoint`` trained from ``config``."""
    folder = f"{Path(config).stem}-{model_key(config, root)}"
    return model_cache_dir() / folder / Path(checkpoint).name


def _copy_atomic(source: Path, destination: Path) -> None:
    with atomic_path(destination) as temporary:
        shutil.copyfile(source, temporary)


def restore_model(
    config: str | os.PathLike, checkpoint: str | os.PathLike, root: str | os.PathLike = "."
) -> bool:
    """Copy a cached model to ``root / checkpoint`` when it is missing there.

    Returns:
        True when the checkpoint is in place afterwards (it was there, or came from the cache);
        False when the model must be trained.
    """
    destination = Path(root) / checkpoint
    if destination.is_file():
        return True
    try:
        source = cached_checkpoint(config, checkpoint, root)
    except FileNotFoundError:
        return False  # its starting model is missing too: both are trained
    if not source.is_file():
        return False
    _copy_atomic(source, destination)
    print(f"{checkpoint}: taken from the model cache ({source.parent})", flush=True)
    return True


def store_model(
    config: str | os.PathLike, checkpoint: str | os.PathLike, root: str | os.PathLike = "."
) -> Path:
    """Copy a just-trained ``root / checkpoint`` into the cache (atomically); returns its path.

    The folder also gets the resolved config (``config.py``) and a ``model.json`` with the
    source paths and the checkpoint's sha256, so a cached model says what it is.
    """
    source = Path(root) / checkpoint
    if not source.is_file():
        raise FileNotFoundError(f"{source} does not exist: nothing to store in the model cache")
    destination = cached_checkpoint(config, checkpoint, root)
    if destination.is_file():
        return destination
    _copy_atomic(source, destination)
    cfg = Config.fromfile(str(Path(root) / config))
    cfg.dump(str(destination.parent / "config.py"))
    write_json_atomic(
        destination.parent / "model.json",
        dict(config=str(config), checkpoint=str(checkpoint), sha256=sha256_of(destination)),
    )
    return destination
