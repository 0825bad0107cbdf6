"""Loading configs: the one function every tool reads a config file with.

:func:`load_config` checks what each tool would otherwise find out late: that the file exists,
that its ``default_scope`` names a library gm_plugins runs, and that the keys the tool needs are
there. Each error names the file and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from mmengine.config import Config

#: Default scopes of the configs gm_plugins runs (its own, the preprocessing models').
SUPPORTED_SCOPES = ("mmaction", "mmseg", "mmpose", "mmdet")
#: The scope of configs holding a ``preprocess_pipeline`` (the transforms are MMAction2's).
PREPROCESS_SCOPES = ("mmaction",)


class ConfigError(ValueError):
    """A config file gm_plugins cannot use as asked; the message names the file and the fix."""


def load_config(
    path: str | os.PathLike,
    cfg_options: Mapping | None = None,
    *,
    scopes: Iterable[str | None] = SUPPORTED_SCOPES,
    required: Iterable[str] = (),
) -> Config:
    """Load a config file, apply ``--cfg-options`` overrides and check it.

    Args:
        path: the config file.
        cfg_options: dotted-key overrides (``--cfg-options``), merged after loading.
        scopes: the default scopes accepted (None: a config that sets none).
        required: top-level keys the caller needs (e.g. ``preprocess_pipeline``).

    Raises:
        FileNotFoundError: the file does not exist.
        ConfigError: its ``default_scope`` is not one of ``scopes``, or a required key is
            missing.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Config file not found: {path}. Pass a path under configs/.")
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    scopes = tuple(scopes)
    scope = cfg.get("default_scope", None)
    if scope not in scopes:
        raise ConfigError(
            f"{path}: default_scope={scope!r}; set it to one of {scopes} "
            "(gm_plugins configs use 'mmaction')."
        )
    missing = [key for key in required if key not in cfg]
    if missing:
        raise ConfigError(
            f"{path} has no {', '.join(missing)}: define "
            f"{' and '.join(missing)} in it or in a _base_ file it inherits"
        )
    return cfg
