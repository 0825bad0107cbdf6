"""Loading a preprocessing chain config: the one place a ``preprocess_pipeline`` file is read.

:func:`read_chain_config` gives the checked config (mmaction scope, a ``preprocess_pipeline``);
:func:`load_preprocess_pipeline` gives its steps as plain dicts, checked by building them, and
the modules its ``custom_imports`` names (imported again in every worker process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mmengine.config import Config

from gm_plugins.utils.config import PREPROCESS_SCOPES, ConfigError, load_config


def read_chain_config(config_path: str | os.PathLike) -> Config:
    """A preprocessing chain config, with its scope and ``preprocess_pipeline`` checked.

    Raises:
        FileNotFoundError: the file does not exist.
        ConfigError: not an mmaction-scope config, or no ``preprocess_pipeline``.
    """
    return load_config(config_path, scopes=PREPROCESS_SCOPES, required=("preprocess_pipeline",))


@dataclass(frozen=True)
class ChainConfig:
    """A config's ``preprocess_pipeline`` steps and the modules its ``custom_imports`` names."""

    path: str
    steps: list[dict]
    imports: tuple[str, ...] = ()


def load_preprocess_pipeline(config_path: str | os.PathLike) -> ChainConfig:
    """``preprocess_pipeline`` of an mmengine config as plain dicts, checked by building it.

    The config's ``custom_imports`` are imported here (by mmengine) and again in every
    worker process, so a chain may use transforms of the user's own modules.

    Raises:
        ConfigError: (a ValueError) the file is missing, is not an mmaction-scope config, has
            no preprocess_pipeline, or the chain cannot be built (unknown transform, bad
            argument, missing model file); the message names it.
    """
    from gm_plugins.preprocess.streaming import build_preprocess_pipeline

    try:
        cfg = read_chain_config(config_path)
    except FileNotFoundError as error:
        raise ConfigError(str(error)) from None
    steps = [
        step.to_dict() if hasattr(step, "to_dict") else dict(step)
        for step in cfg.preprocess_pipeline
    ]
    try:
        build_preprocess_pipeline(steps)  # cheap (models load lazily): fails before any work
    except Exception as error:
        raise ConfigError(f"{config_path}: cannot build preprocess_pipeline: {error}") from error
    imports = tuple((cfg.get("custom_imports") or {}).get("imports", ()))
    return ChainConfig(os.fspath(config_path), steps, imports)
