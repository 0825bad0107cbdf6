"""A per-machine cache of trained preprocessing models, keyed by what they were trained from.

The benchmark's evaluation-grade segmentation and pose models take hours to train on 2 cores. A
model trained once is stored under ``$GM_PLUGINS_MODEL_CACHE`` (default
``~/.cache/gm_plugins/models``) in a folder named after its config and a key: the sha256 of the
config as mmengine resolves it (every inherited file included), of the checkpoint it starts
from (``load_from``), if any, and of the data it trains and validates on (:func:`training_data`:
the generator record ``meta.json`` of each dataset folder, its annotation file, the chain record
of a cache). A fresh clone that needs the model gets the cached checkpoint copied to the path
its preprocessing config names (``work_dirs/<config>/<file>.pth``) instead of training again;
another config, an edited one, another starting checkpoint or other data gets another key, so a
stale model is never reused.

A checkpoint already in place is reused only when its training folder says it was trained
(or restored) under the current key (``model_key.json``, written before training starts), or
when the cache holds the same bytes under that key; otherwise the folder is set aside
(``<folder>.stale``) and the model restored or trained again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from mmengine.config import Config

from gm_plugins.utils.io import atomic_path, write_json_atomic
from gm_plugins.utils.zoo import sha256_of

#: Environment variable naming the cache folder.
CACHE_ENV = "GM_PLUGINS_MODEL_CACHE"
#: The file in a model's training folder naming the key it was trained under.
KEY_FILE = "model_key.json"
#: The dataloaders whose data a model's key covers.
LOADERS = ("train_dataloader", "val_dataloader")


def model_cache_dir() -> Path:
    """``$GM_PLUGINS_MODEL_CACHE``, else ``~/.cache/gm_plugins/models``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "gm_plugins" / "models"


def _datasets(cfg: Config) -> list[tuple[str, dict]]:
    """(loader, dataset) of the config's :data:`LOADERS` that name a ``data_root`` (dataset
    wrappers such as ``RepeatDataset`` unwrapped)."""
    found = []
    for loader in LOADERS:
        dataset = (cfg.get(loader) or {}).get("dataset")
        while isinstance(dataset, dict) and isinstance(dataset.get("dataset"), dict):
            dataset = dataset["dataset"]
        if isinstance(dataset, dict) and dataset.get("data_root"):
            found.append((loader, dataset))
    return found


def data_roots(cfg: Config) -> list[str]:
    """The ``data_root`` of each dataset the config trains or validates on."""
    return list(dict.fromkeys(str(dataset["data_root"]) for _, dataset in _datasets(cfg)))


def _generator_record(folder: Path, root: Path) -> tuple[str, dict] | None:
    """The nearest ``meta.json`` at or above ``folder`` (within ``root``): where, and what made
    the dataset (generator version and arguments)."""
    for candidate in [folder, *folder.parents]:
        meta = candidate / "meta.json"
        if meta.is_file():
            record = json.loads(meta.read_text())
            made_by = {k: record.get(k) for k in ("generator_version", "arguments")}
            return os.path.relpath(candidate, root), made_by
        if candidate == root or root not in candidate.parents:
            return None
    return None


def training_data(cfg: Config, root: str | os.PathLike = ".") -> dict:
    """What a model trains and validates on, for its key: per dataset of :data:`LOADERS`, the
    generator record of the dataset folder it lies in, the sha256 of its annotation file and of
    its cache's chain record (``preprocess_pipeline.json``), where there are such files.

    Raises:
        FileNotFoundError: a ``data_root`` does not exist (make the dataset first).
    """
    root = Path(root).resolve()
    identity: dict[str, dict] = {}
    for loader, dataset in _datasets(cfg):
        folder = root / str(dataset["data_root"])
        if not folder.is_dir():
            raise FileNotFoundError(f"{loader}'s data {dataset['data_root']} does not exist: "
                                    "make that dataset first")  # fmt: skip
        entry: dict[str, object] = {}
        generator = _generator_record(folder.resolve(), root)
        if generator is not None:
            entry["dataset"], entry["made_by"] = generator
        for name, relative in (("annotations", dataset.get("ann_file")),
                               ("cache", dataset.get("cache_root"))):  # fmt: skip
            if not relative:
                continue
            path = folder / str(relative) if name == "annotations" else root / str(relative)
            path = path / "preprocess_pipeline.json" if name == "cache" else path
            if path.is_file():
                entry[name] = sha256_of(path)
        identity[loader] = entry
    return identity


def model_key(config: str | os.PathLike, root: str | os.PathLike = ".") -> str:
    """16 hex digits identifying a model by its resolved config, its starting checkpoint and
    its training data (:func:`training_data`).

    Args:
        config: the model's training config, relative to ``root`` or absolute.
        root: the repository root (relative paths in the config are taken from it).

    Raises:
        FileNotFoundError: the config's ``load_from`` checkpoint or its data does not exist yet
            (train the model it starts from, or make the dataset, first).
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
    data = training_data(cfg, root)
    if data:  # a config without dataloaders keys as before
        digest.update(json.dumps(data, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def key_file(checkpoint: str | os.PathLike, root: str | os.PathLike = ".") -> Path:
    """Where a model's training folder names its key (:data:`KEY_FILE` next to the checkpoint)."""
    return Path(root) / Path(checkpoint).parent / KEY_FILE


def trained_key(checkpoint: str | os.PathLike, root: str | os.PathLike = ".") -> str | None:
    """The key the checkpoint's folder says its model was trained under (None: not said)."""
    path = key_file(checkpoint, root)
    try:
        return json.loads(path.read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        return None


def mark_training(
    config: str | os.PathLike, checkpoint: str | os.PathLike, root: str | os.PathLike = "."
) -> str:
    """Write the key a model is (about to be) trained or restored under; returns it."""
    key = model_key(config, root)
    write_json_atomic(key_file(checkpoint, root), dict(key=key, config=str(config)))
    return key


def _set_aside(config: str | os.PathLike, checkpoint: Path) -> Path:
    """Move a model of another key out of the way: its training folder when it is the one
    tools/train.py makes for ``config``, else the checkpoint file alone."""
    from gm_plugins.experiments.results_store import set_aside

    folder = checkpoint.parent
    return set_aside(folder if folder.name == Path(config).stem else checkpoint)


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
    """Put the model of the current key at ``root / checkpoint``, or say it must be trained.

    A checkpoint already there stays when its folder names the current key (or the cache holds
    the same bytes under it); one of another key, or of none, is set aside (said). Then the
    cache's copy, if any, is taken.

    Returns:
        True when the checkpoint of the current key is in place afterwards; False when the
        model must be trained (its folder then holds nothing of another key).
    """
    destination = Path(root) / checkpoint
    try:
        source = cached_checkpoint(config, checkpoint, root)
    except FileNotFoundError:
        return False  # its starting model or its data is missing too: both are made first
    key = source.parent.name.rpartition("-")[2]
    stamped = trained_key(checkpoint, root)
    vouched = destination.is_file() and stamped != key and source.is_file()
    if vouched and sha256_of(source) == sha256_of(destination):  # the cache has these bytes
        mark_training(config, checkpoint, root)
        stamped = key
    if destination.is_file() and stamped == key:
        return True
    folder = destination.parent
    if stamped != key and (destination.is_file() or key_file(checkpoint, root).is_file()):
        aside = _set_aside(config, destination)
        why = "another key" if stamped else "no recorded key"
        print(f"{checkpoint}: trained under {why} (now {key}): moved to {aside}", flush=True)
    if not source.is_file():
        return False
    folder.mkdir(parents=True, exist_ok=True)
    _copy_atomic(source, destination)
    mark_training(config, checkpoint, root)
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
        dict(config=str(config), checkpoint=str(checkpoint), sha256=sha256_of(destination),
             training_data=training_data(cfg, root)),
    )  # fmt: skip
    return destination
