"""The one way a recognizer is built from a config: with or without a checkpoint.

Every caller (the inference API, the ONNX export, the backbone leaderboard, the speed
benchmarks) goes through :func:`load_recognizer` or :func:`build_recognizer`, so a model is built
under MMAction2's default scope whatever the caller's scope is, and a checkpoint that does not
fit its config is refused with the same error everywhere.
"""

from __future__ import annotations

import os

import torch
from mmengine.config import Config

from gm_plugins.compat import library_scope
from gm_plugins.utils.config import ConfigError


def build_recognizer(cfg: Config) -> torch.nn.Module:
    """``cfg.model`` built from MMAction2's MODELS registry as the runner builds it (random
    weights, training mode, on the CPU)."""
    from mmaction.registry import MODELS

    with library_scope("mmaction"):
        return MODELS.build(cfg.model)


def load_recognizer(
    cfg: Config | str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    device: str = "cpu",
    optimize: bool = False,
) -> torch.nn.Module:
    """The config's recognizer in eval mode on ``device``.

    Built with ``mmaction.apis.init_recognizer`` (random weights without a checkpoint), then the
    checkpoint is loaded strictly.

    Args:
        cfg: the classifier config (or its file).
        checkpoint: a checkpoint ``tools/train.py`` wrote for this config; None keeps the random
            initial weights.
        device: where the model goes.
        optimize: fold BatchNorm into the convolutions and store them NHWC when the result is
            checked to be the same function (:mod:`gm_plugins.models.inference_speed`).

    Raises:
        FileNotFoundError: the checkpoint does not exist.
        ConfigError: the checkpoint does not fit the config.
    """
    from mmaction.apis import init_recognizer
    from mmengine.runner import load_checkpoint

    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise FileNotFoundError(
            f"classifier checkpoint {checkpoint} does not exist: pass the .pth that "
            "tools/train.py wrote for this config"
        )
    with library_scope("mmaction"):
        model = init_recognizer(cfg, None, device="cpu")
    if checkpoint is not None:
        try:
            load_checkpoint(model, os.fspath(checkpoint), map_location="cpu", strict=True,
                            logger="silent")  # fmt: skip
        except RuntimeError as error:
            raise ConfigError(
                f"checkpoint {checkpoint} does not match the classifier config: {error}\n"
                "Pass the checkpoint tools/train.py wrote for this config."
            ) from error
    model = model.to(device).eval()
    if optimize:
        from mmengine.logging import print_log

        from gm_plugins.models.inference_speed import optimize_for_inference

        model, record = optimize_for_inference(model)
        print_log(f"classifier optimised for inference: {record}", logger="current")
    return model
